package state_test

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

func TestKeyRoundTrip(t *testing.T) {
	f := func(ns state.Namespace, rule string, parts ...string) {
		t.Helper()
		var bs [][]byte
		for _, p := range parts {
			bs = append(bs, []byte(p))
		}
		key := state.Key(ns, rule, bs...)
		pk, err := state.ParseKey(key)
		if err != nil {
			t.Fatalf("ParseKey(%q): %v", key, err)
		}
		if pk.NS != ns || pk.Rule != rule || len(pk.Parts) != len(parts) {
			t.Fatalf("ParseKey(%q) = %+v, want %c %q %q", key, pk, ns, rule, parts)
		}
		for i, p := range parts {
			if string(pk.Parts[i]) != p {
				t.Fatalf("part %d = %q, want %q", i, pk.Parts[i], p)
			}
		}
		if !bytes.HasPrefix(key, state.AppendPrefix(nil, ns, rule)) {
			t.Fatalf("key %q does not start with its rule's prefix", key)
		}
	}
	f(state.NSTerms, "r")
	f(state.NSTerms, "r", "")
	f(state.NSTerms, "", "x")
	f(state.NSGroups, "rule-1", "a", "", "b\x00c")
	f(state.NSAlerts, string(bytes.Repeat([]byte{'r'}, 300)), string(bytes.Repeat([]byte{0xff}, 200)))
}

func TestKeyEncoding(t *testing.T) {
	// The layout is part of the on-disk format: pin it.
	got := state.Key(state.NSTerms, "ab", []byte("xyz"), nil)
	want := []byte{'t', 2, 'a', 'b', 3, 'x', 'y', 'z', 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	if got := state.AppendPartUint(nil, 258); !bytes.Equal(got, []byte{8, 0, 0, 0, 0, 0, 0, 1, 2}) {
		t.Fatalf("AppendPartUint(258) = %v", got)
	}
	if got := state.AppendPartString([]byte("p"), "q"); string(got) != "p\x01q" {
		t.Fatalf("AppendPartString = %q", got)
	}
	// Rule "a" is not a prefix of rule "ab", nor parts of longer parts.
	a, ab := state.AppendPrefix(nil, state.NSTerms, "a"), state.AppendPrefix(nil, state.NSTerms, "ab")
	if bytes.HasPrefix(ab, a) {
		t.Fatalf("prefix of rule a %q is a prefix of rule ab's %q", a, ab)
	}
	if k1, k2 := state.Key(state.NSTerms, "a", []byte("x")), state.Key(state.NSTerms, "a", []byte("xy")); bytes.HasPrefix(k2, k1) {
		t.Fatalf("key %q is a prefix of %q", k1, k2)
	}
	// Parts do not run into each other: ("ab","c") and ("a","bc") differ.
	if bytes.Equal(state.Key(state.NSTerms, "r", []byte("ab"), []byte("c")), state.Key(state.NSTerms, "r", []byte("a"), []byte("bc"))) {
		t.Fatal("different part splits encode equally")
	}
}

func TestParseKeyErrors(t *testing.T) {
	for _, key := range [][]byte{
		nil,
		{'t'},                 // no rule length
		{'t', 3, 'a'},         // rule shorter than its length
		{'t', 1, 'a', 2, 'x'}, // part shorter than its length
		{'t', 0x80},           // truncated uvarint
		{'t', 0x81, 0x00},     // length 1 not in shortest form
		{'t', 0x80, 0x00},     // length 0 not in shortest form
	} {
		if pk, err := state.ParseKey(key); !errors.Is(err, state.ErrInvalidKey) {
			t.Errorf("ParseKey(%q) = %+v, %v; want ErrInvalidKey", key, pk, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(state.Key(state.NSTerms, "r", []byte("x")))
	f.Add(state.Key(state.NSGroups, "rule", []byte{}, []byte{0xff, 0}))
	f.Add([]byte{'t', 0x81, 0x00})
	f.Fuzz(func(t *testing.T, key []byte) {
		pk, err := state.ParseKey(key)
		if err != nil {
			return
		}
		// A key that decodes re-encodes to itself.
		again := state.Key(pk.NS, pk.Rule, pk.Parts...)
		if !bytes.Equal(again, key) {
			t.Fatalf("ParseKey(%q) re-encodes as %q", key, again)
		}
	})
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ in, want []byte }{
		{nil, nil},
		{[]byte{0xff, 0xff}, nil},
		{[]byte("a"), []byte("b")},
		{[]byte("a\xff"), []byte("b")},
		{[]byte("ab\xff\xff"), []byte("ac")},
		{[]byte{0, 0}, []byte{0, 1}},
	} {
		in := bytes.Clone(tc.in)
		if got := state.PrefixEnd(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !bytes.Equal(in, tc.in) {
			t.Errorf("PrefixEnd modified its input %q", in)
		}
	}
}

func TestNamespaceString(t *testing.T) {
	if s := state.NSTerms.String(); s != "terms" {
		t.Errorf("NSTerms = %q", s)
	}
	if s := state.Namespace(1).String(); s != "namespace(1)" {
		t.Errorf("Namespace(1) = %q", s)
	}
}

func TestUnixNano(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{time.Time{}, 0},
		{time.Unix(0, 0), 1},
		{time.Unix(1, 5), 1e9 + 5},
		{time.Unix(-1, 0), -1e9},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), math.MinInt64 + 1},
	} {
		if got := state.UnixNano(tc.t); got != tc.want {
			t.Errorf("UnixNano(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
	if !state.FromUnixNano(0).IsZero() {
		t.Error("FromUnixNano(0) is not the zero time")
	}
	if got := state.FromUnixNano(1e9 + 5); !got.Equal(time.Unix(1, 5)) {
		t.Errorf("FromUnixNano = %v", got)
	}
}

func TestLive(t *testing.T) {
	for _, tc := range []struct {
		exp, now int64
		want     bool
	}{
		{0, 5, true}, {5, 0, true}, {6, 5, true}, {5, 5, false}, {4, 5, false}, {-5, -6, true}, {-5, -5, false},
	} {
		if got := state.Live(tc.exp, tc.now); got != tc.want {
			t.Errorf("Live(%d, %d) = %t, want %t", tc.exp, tc.now, got, tc.want)
		}
	}
}

func TestEntryEncoding(t *testing.T) {
	b := state.AppendEntry(nil, -42, []byte("v"))
	exp, v, err := state.DecodeEntry(b)
	if err != nil || exp != -42 || string(v) != "v" {
		t.Fatalf("DecodeEntry = %d, %q, %v", exp, v, err)
	}
	if _, _, err := state.DecodeEntry(b[:7]); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("DecodeEntry of 7 bytes: %v, want ErrCorrupt", err)
	}
	// The expiry index sorts by time, negative times first.
	var prev []byte
	for _, e := range []int64{math.MinInt64 + 1, -1e9, -1, 1, 1e9, math.MaxInt64} {
		k := state.AppendExpiryIndexKey(nil, e, []byte("k"))
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			t.Fatalf("index key of %d does not sort after the previous one", e)
		}
		if got, key, err := state.DecodeExpiryIndexKey(k); err != nil || got != e || string(key) != "k" {
			t.Fatalf("DecodeExpiryIndexKey = %d, %q, %v", got, key, err)
		}
		prev = k
	}
	if _, _, err := state.DecodeExpiryIndexKey([]byte{1}); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("DecodeExpiryIndexKey of 1 byte: %v, want ErrCorrupt", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []state.TermsConfig{
		{Window: time.Hour},
		{Rule: "r"},
		{Rule: "r", Window: -time.Hour},
		{Rule: "r", Window: time.Hour, Slack: time.Hour},
		{Rule: "r", Window: time.Hour, Slack: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v is valid", c)
		}
	}
	if err := (state.TermsConfig{Rule: "r", Window: time.Hour, Slack: time.Minute}).Validate(); err != nil {
		t.Error(err)
	}
	if _, err := state.NewAlertIDs(nil, "", 0); err == nil {
		t.Error("NewAlertIDs with an empty rule succeeded")
	}
	if _, err := state.NewAlertIDs(nil, "r", -1); err == nil {
		t.Error("NewAlertIDs with a negative retention succeeded")
	}
	if err := state.ValidateValue(make([]byte, state.MaxValueSize)); err != nil {
		t.Error(err)
	}
}
