package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// errText is an error's message, "" for none: errors are compared by
// what is reported (message and offset), not by identity.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzFastPathsAgree: Skip, SkipSyntax, ReadString and ObjectIter agree
// exactly with the reference scanner (reference_test.go: the scanner
// before its fast paths) on every input, valid or not: same end offset,
// same value, same error message and offset, same error category. On
// strings that are valid JSON and valid UTF-8, ReadString also agrees
// with encoding/json; whatever Skip accepts, encoding/json accepts.
func FuzzFastPathsAgree(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"a":1,"a":2}`, `{"a":{"b":"x","b":"y"}}`, `[1,"2",{"b":null},[true,false]]`,
		`"abcdefghijklmnopqrstuvwxyz\"0123456789"`, `"0123456789abcdef\u0026ghijklmnop\n"`,
		`"\ud83d\ude00 and \ud83d alone"`, "\"tab\there\"", "\"bad\xff\xfeutf8\"", `"\x"`, `"abc`,
		`{"requestObject":{"metadata":{"managedFields":[{"f:spec":{".":{},"f:x":{}}}]}},"k":"v"}`,
		`{"a" : [ "x" , "y" ] , "b" : "z" }`, `{"a":"x" "b":1}`, `["a" "b"]`, `{"a":"\u00e9","\u0061":1}`,
		`{"x":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"b":10}}`,
		`{"x":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"a":9}}`,
		`{"x":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":{"k":1,"k":2}}}`,
		`{"x":{"a":1,"\u0062":2,"b":3}}`, `{"x":{"a":1,"b":2,"\u0061":3}}`, `{"x":{"a":1 "b":2}}`, `{"x":{"a":1,"b"}}`,
		`-0.5e-3`, `[`, `{"a`, `{"a":"0123456789abcdef0123456789abcdef\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s1, s2 []byte
		end, err := skip(b, 0, 0, &s1)
		wend, werr := refSkip(b, 0, 0, &s2)
		if end != wend || errText(err) != errText(werr) || errors.Is(err, ErrDuplicateKey) != errors.Is(werr, ErrDuplicateKey) || errors.Is(err, ErrTooDeep) != errors.Is(werr, ErrTooDeep) {
			t.Fatalf("Skip(%q) = %d, %v; reference %d, %v", b, end, err, wend, werr)
		}
		if err == nil && !json.Valid(b[:end]) {
			t.Fatalf("Skip accepted %q, encoding/json does not", b[:end])
		}
		end, err = SkipSyntax(b, 0)
		wend, werr = refSkip(b, 0, 0, nil)
		if end != wend || errText(err) != errText(werr) {
			t.Fatalf("SkipSyntax(%q) = %d, %v; reference %d, %v", b, end, err, wend, werr)
		}

		s1, s2 = s1[:0], s2[:0]
		v, end, err := ReadString(b, 0, &s1)
		wv, wend, werr := refReadString(b, 0, &s2)
		if !bytes.Equal(v, wv) || end != wend || errText(err) != errText(werr) {
			t.Fatalf("ReadString(%q) = %q, %d, %v; reference %q, %d, %v", b, v, end, err, wv, wend, werr)
		}
		if err == nil && utf8.Valid(b[:end]) {
			var js string
			if jerr := json.Unmarshal(b[:end], &js); jerr != nil || js != string(v) {
				t.Fatalf("ReadString(%q) = %q; encoding/json %q, %v", b[:end], v, js, jerr)
			}
		}

		// ObjectIter skipping every value: ends where the reference skip
		// of the whole object ends, or fails as it fails (nesting bound
		// aside: the iterator's values start one level higher).
		var it ObjectIter
		if it.Begin(b, 0) != nil {
			return
		}
		for it.Next() {
		}
		s2 = s2[:0]
		wend, werr = refSkip(b, 0, 0, &s2)
		if errors.Is(it.Err, ErrTooDeep) || errors.Is(werr, ErrTooDeep) {
			return
		}
		if errText(it.Err) != errText(werr) || it.Err == nil && it.End != wend {
			t.Fatalf("ObjectIter over %q: end %d, %v; reference %d, %v", b, it.End, it.Err, wend, werr)
		}
	})
}

// FuzzKeySet: KeySet.Add reports a key as new exactly when a map has not
// seen it, past the small set's switch to a map too (the keys are the
// input split at NUL bytes, and again with a suffix per key).
func FuzzKeySet(f *testing.F) {
	f.Add([]byte("a\x00b\x00a"))
	f.Add([]byte("kind\x00apiVersion\x00level\x00auditID\x00stage\x00requestURI\x00verb\x00user\x00stage"))
	f.Add(bytes.Repeat([]byte("f:x\x00"), 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys := bytes.Split(b, []byte{0})
		for round := 0; round < 2; round++ {
			var ks KeySet
			seen := map[string]bool{}
			for i, k := range keys {
				if round == 1 {
					k = append(append([]byte{}, k...), byte(i%7), byte('a'+i%3))
				}
				if got, want := ks.Add(k), !seen[string(k)]; got != want {
					t.Fatalf("Add(%q) = %v, want %v (key %d)", k, got, want, i)
				}
				seen[string(k)] = true
			}
		}
	})
}
