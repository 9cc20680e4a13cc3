package state

import (
	"errors"
	"testing"
	"time"
)

// TestCheckEntry: every kind of entry kanon writes passes CheckEntry, and a
// key or value of another shape does not.
func TestCheckEntry(t *testing.T) {
	ok := func(key, value []byte) {
		t.Helper()
		if err := CheckEntry(key, value); err != nil {
			t.Errorf("CheckEntry(%q, %x) = %v, want nil", key, value, err)
		}
	}
	bad := func(key, value []byte, want error) {
		t.Helper()
		if err := CheckEntry(key, value); !errors.Is(err, want) {
			t.Errorf("CheckEntry(%q, %x) = %v, want %v", key, value, err, want)
		}
	}
	at := time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)
	term := AppendTermField(nil, "kubectl")
	raised := AppendPartUint(nil, uint64(UnixNano(at)))[1:]
	ok(Key(NSTerms, "r", term), appendTermInfo(nil, TermInfo{FirstSeen: at, LastSeen: at}))
	ok(Key(NSAlerts, "r", []byte("id-1")), raised)
	ok(Key(NSGroups, "r", []byte("k")), appendGroup(nil, &Group{ID: "id", Count: 1, FirstSeen: at, LastSeen: at, End: at}))
	ok(Key(NSPositions, "in", []byte("/var/log/a")), AppendPosition(nil, Position{Offset: 10}))
	ok(AppendWindowRunKey(nil, "r", 5), AppendWindowRun(nil, WindowRun{Fingerprint: 7, State: []byte("s")}))
	ok(AppendWindowMetaKey(nil, "r"), AppendWindowMeta(nil, WindowMeta{Fingerprint: 7, Closed: 5}))

	bad([]byte("k/000001"), []byte("v"), ErrInvalidKey)            // not a kanon key
	bad(Key(Namespace('k'), "r", []byte("x")), nil, ErrInvalidKey) // unknown namespace
	bad(Key(NSTerms, "r", term), []byte("short"), ErrCorrupt)      // not a term entry
	bad(Key(NSAlerts, "r", []byte("id"), []byte("more")), raised, ErrInvalidKey)
	bad(AppendWindowMetaKey(nil, "r"), AppendWindowRun(nil, WindowRun{Fingerprint: 7, Dropped: true}), ErrCorrupt)
	bad(AppendWindowRunKey(nil, "r", 5), []byte{1, 2}, ErrCorrupt)
}
