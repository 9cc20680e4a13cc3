package alert

import (
	"errors"
	"testing"
	"time"
)

// The delivery key of an alert and of its encoded line are one and the
// same, and keep the form files already hold: "<id>" and "<id>#<count>".
func TestDeliveryKey(t *testing.T) {
	plain := testAlert(1)
	grouped := func(count int64) *Alert {
		a := testAlert(2)
		a.Group = &Group{Key: "10.0.0.1", Count: count, FirstSeen: a.Timestamp, LastSeen: a.Timestamp.Add(time.Minute)}
		return a
	}
	// An ungrouped alert whose event holds a "group" object is known by
	// its id alone.
	eventGroup := testAlert(3)
	eventGroup.Event = map[string]any{"group": map[string]any{"count": 7}, "id": "other"}
	for _, c := range []struct {
		a    *Alert
		want string
	}{
		{plain, plain.ID},
		{grouped(1), testAlert(2).ID + "#1"},
		{grouped(42), testAlert(2).ID + "#42"},
		{eventGroup, eventGroup.ID},
	} {
		if got := c.a.DeliveryKey(); got != c.want {
			t.Errorf("DeliveryKey() = %q, want %q", got, c.want)
		}
		line, err := Marshal(c.a)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := LineDeliveryKey(line); err != nil || got != c.want {
			t.Errorf("LineDeliveryKey(%s) = %q, %v; want %q", line, got, err, c.want)
		}
	}
	f := func(line, want string) {
		t.Helper()
		got, err := LineDeliveryKey([]byte(line))
		if err != nil || got != want {
			t.Errorf("LineDeliveryKey(%s) = %q, %v; want %q", line, got, err, want)
		}
	}
	f(`{"id":"a1","group":null}`, "a1")
	f(` {"group":{"count":3,"key":"k"},"id":"a1"} `, "a1#3")
	f(`{"id":"a1","group":{"key":"k"}}`, "a1#0")
	for _, line := range []string{`not json`, `{"hello":"world"}`, `{"id":""}`, `{"id":5}`, `[{"id":"a"}]`, `null`,
		`{"id":"a","group":{"count":"many"}}`, `{"id":"a","group":[1]}`, `{"id":"a"`} {
		if key, err := LineDeliveryKey([]byte(line)); !errors.Is(err, ErrNotAlert) {
			t.Errorf("LineDeliveryKey(%s) = %q, %v; want an error wrapping ErrNotAlert", line, key, err)
		}
	}
}
