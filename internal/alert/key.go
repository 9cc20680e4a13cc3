package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrNotAlert is the category of a line, in an alerts file, that is not
// an alert written by kanon.
var ErrNotAlert = errors.New("not an alert written by kanon")

// DeliveryKey identifies one delivery of the alert, for the outputs that
// drop repeated deliveries (file, webhook, Slack, and their spools): the
// alert id, and for a group (dedup) also its count, "<id>#<count>". A
// dedup group is delivered first with count 1 and later, under the same
// id, as an update with its final count: the update is a delivery of its
// own, while a repeat of either is not.
func (a *Alert) DeliveryKey() string {
	if a.Group == nil {
		return deliveryKey(a.ID, false, 0)
	}
	return deliveryKey(a.ID, true, a.Group.Count)
}

// LineDeliveryKey returns the delivery key of an alert encoded as JSON (a
// line Marshal wrote, read back from an alerts file): the same key that
// the alert's DeliveryKey gives. An error wrapping ErrNotAlert means the
// line is not an alert (not a JSON object, no id, a group without a
// numeric count).
func LineDeliveryKey(line []byte) (string, error) {
	var h struct {
		ID    string `json:"id"`
		Group *struct {
			Count int64 `json:"count"`
		} `json:"group"`
	}
	if err := json.Unmarshal(line, &h); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotAlert, err)
	}
	if h.ID == "" {
		return "", fmt.Errorf("%w: no id", ErrNotAlert)
	}
	if h.Group == nil {
		return deliveryKey(h.ID, false, 0), nil
	}
	return deliveryKey(h.ID, true, h.Group.Count), nil
}

// deliveryKey is the one definition of a delivery key; files written by
// earlier versions hold the same keys, so they deduplicate the same.
func deliveryKey(id string, grouped bool, count int64) string {
	if !grouped {
		return id
	}
	return id + "#" + strconv.FormatInt(count, 10)
}
