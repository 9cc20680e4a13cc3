package jsonx

import (
	"strings"
	"testing"
)

func TestReadings(t *testing.T) {
	f := func(in, first, last, dups string) {
		t.Helper()
		a, b, d, err := Readings([]byte(in), 0)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(a) != first || string(b) != last || strings.Join(d, " ") != dups {
			t.Errorf("%s:\n first %s (want %s)\n last  %s (want %s)\n dups  %q (want %q)", in, a, first, b, last, d, dups)
		}
		for _, r := range [][]byte{a, b} {
			if _, err := Skip(r, 0); err != nil {
				t.Errorf("%s: a reading %s is not valid JSON without duplicates: %v", in, r, err)
			}
		}
	}
	f(`{"a":1,"b":2}`, `{"a":1,"b":2}`, `{"a":1,"b":2}`, "")
	f(`{"a":1,"a":2}`, `{"a":1}`, `{"a":2}`, "a")
	f(`{"user":{"username":"system:anonymous","username":"admin"},"verb":"get"}`,
		`{"user":{"username":"system:anonymous"},"verb":"get"}`, `{"user":{"username":"admin"},"verb":"get"}`, "user.username")
	f(`{"x":{"y":1,"y":2},"x":{"z":3}}`, `{"x":{"y":1}}`, `{"x":{"z":3}}`, "x x.y")
	f(`[{"a":1,"a":2},{"b":[{"c":1,"c":2}]}]`, `[{"a":1},{"b":[{"c":1}]}]`, `[{"a":2},{"b":[{"c":2}]}]`, "[0].a [1].b[0].c")
	// Escaped keys are the same key: "\u0061" is "a".
	f(`{"a":1,"\u0061":2,"a\"b":3}`, `{"a":1,"a\"b":3}`, `{"a":2,"a\"b":3}`, "a")
	f(` {"a" : [ 1 , 2 ] , "a" : null } `, `{"a":[1,2]}`, `{"a":null}`, "a")
	if _, _, _, err := Readings([]byte(`{"a":1,"a":`), 0); err == nil {
		t.Fatal("a cut value has readings")
	}
}

// FuzzReadings: for any valid value, both readings are valid JSON without
// duplicate keys, and equal the value when it has none.
func FuzzReadings(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `[{"a":{"b":1,"b":[1,{"c":2,"c":3}]}}]`, `"x"`, `{"\u0000":1,"\u0000":2}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := SkipSyntax(b, 0); err != nil {
			return
		}
		first, last, dups, err := Readings(b, 0)
		if err != nil {
			t.Fatalf("valid %q: %v", b, err)
		}
		for _, r := range [][]byte{first, last} {
			end, err := Skip(r, 0)
			if err != nil || SkipWS(r, end) != len(r) {
				t.Fatalf("%q: reading %q: %v", b, r, err)
			}
		}
		if _, err := Skip(b, 0); err == nil && len(dups) != 0 {
			t.Fatalf("%q has no duplicate key but Readings found %q", b, dups)
		}
	})
}
