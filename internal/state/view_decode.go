package state

import "time"

// DecodeTermInfo decodes a value of the NSTerms namespace, for tools that
// list a store's contents (`kanon state show`). It returns an error
// wrapping ErrCorrupt if v is not a term entry.
func DecodeTermInfo(v []byte) (TermInfo, error) { return decodeTermInfo(v) }

// DecodeRaisedAt decodes a value of the NSAlerts namespace: the event time
// the alert was marked raised at. It returns an error wrapping ErrCorrupt
// if v is not a raised-alert entry.
func DecodeRaisedAt(v []byte) (time.Time, error) { return decodeRaisedAt(v) }
