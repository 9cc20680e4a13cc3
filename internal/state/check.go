package state

import "fmt"

// CheckEntry reports whether key and value (without the expiry header) form
// an entry kanon writes: the key decodes with ParseKey in one of
// KnownNamespaces, and the value decodes with that namespace's codec (for
// NSWindows, DecodeWindowRun or DecodeWindowMeta by the key). It returns an
// error wrapping ErrInvalidKey or ErrCorrupt otherwise. Salvaging a damaged
// store keeps only the entries it accepts.
func CheckEntry(key, value []byte) error {
	pk, err := ParseKey(key)
	if err != nil {
		return err
	}
	known := false
	for _, ns := range KnownNamespaces() {
		known = known || pk.NS == ns
	}
	if !known {
		return fmt.Errorf("%w: key %q is in no namespace kanon writes", ErrInvalidKey, key)
	}
	var it Item
	if err := decodeItem(&it, pk.NS, Entry{Key: key, Value: value}); err != nil {
		return err
	}
	if pk.NS == NSWindows {
		if it.Window.Meta {
			_, err = DecodeWindowMeta(value)
		} else {
			_, err = DecodeWindowRun(value)
		}
	}
	return err
}
