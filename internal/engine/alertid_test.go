package engine

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
)

// eventAlertID gives the ids alert.ID gives with identity(e), with or
// without an auditID, and alert.ID keeps its values.
func TestEventAlertID(t *testing.T) {
	long := string(make([]byte, 300))
	// The values of alert.ID before it hashed on the stack.
	for _, c := range []struct{ got, want string }{
		{alert.ID("r", "a/b"), "622014c9e6b78352bbe2859677ed8596"},
		{alert.ID(), "e3b0c44298fc1c149afbf4c8996fb924"},
		{alert.ID("x", long), "8dda4e23eb0fb54b2dea30ae40220331"},
	} {
		if c.got != c.want {
			t.Errorf("alert.ID = %s, want %s", c.got, c.want)
		}
	}
	for _, e := range []*event.Event{
		{AuditID: "ee621fb1-171a-477b-9a46-8990826a825d", Stage: "ResponseComplete"},
		{AuditID: "x" + long, Stage: "RequestReceived"},
		{Record: []byte(`{"kind":"Event"}`)},
		{},
	} {
		for _, after := range []string{"", "0", "17"} {
			want := alert.ID("rule-1", identity(e))
			if after != "" {
				want = alert.ID("rule-1", identity(e), after)
			}
			if got := eventAlertID("rule-1", e, after); got != want {
				t.Errorf("eventAlertID(%.20q, %q) = %s, alert.ID gives %s", e.AuditID, after, got, want)
			}
		}
	}
}
