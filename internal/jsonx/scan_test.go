package jsonx

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSkip(t *testing.T) {
	f := func(in string, wantErr error) {
		t.Helper()
		end, err := Skip([]byte(in), 0)
		if wantErr == nil {
			if err != nil {
				t.Fatalf("Skip(%q): %v", in, err)
			}
			if SkipWS([]byte(in), end) != len(in) {
				t.Fatalf("Skip(%q) ended at %d", in, end)
			}
			return
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("Skip(%q) = %v, want %v", in, err, wantErr)
		}
	}
	f(`{"a":1,"b":[true,false,null,"x\"y",-1.5e3,{}],"c":{"d":"\u00e9"}}`, nil)
	f(` [ ] `, nil)
	f(`{"a":1,"a":2}`, ErrDuplicateKey)
	f(`{"x":{"a":1,"b":{"a":1},"a":2}}`, ErrDuplicateKey)
	f(`{"a\u0062":1,"ab":2}`, ErrDuplicateKey) // escaped duplicate
	f(`{"a":1,}`, ErrSyntax)
	f(`{"a" 1}`, ErrSyntax)
	f(`[1,2`, ErrSyntax)
	f(`"abc`, ErrSyntax)
	f("\"a\tb\"", ErrSyntax)
	f(`tru`, ErrSyntax)
	f(strings.Repeat("[", MaxDepth+2)+strings.Repeat("]", MaxDepth+2), ErrTooDeep)
}

// SkipSyntax validates what Skip validates but duplicate keys, and ends
// where Skip ends.
func TestSkipSyntax(t *testing.T) {
	f := func(in string, wantEnd int, wantErr error) {
		t.Helper()
		end, err := SkipSyntax([]byte(in), 0)
		if wantErr == nil {
			if err != nil || end != wantEnd {
				t.Fatalf("SkipSyntax(%q) = %d, %v; want %d", in, end, err, wantEnd)
			}
			return
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("SkipSyntax(%q) = %v, want %v", in, err, wantErr)
		}
	}
	f(`{"a":1,"a":2} ,`, 13, nil)
	f(`{"x":{"a":1,"b":{"a":1},"a":2}}]`, 31, nil)
	f(`[{"a":1,"a":[{"b":1,"b":2}]}]`, 29, nil)
	f(` "s" `, 4, nil)
	f(`{}`, 2, nil)
	f(`{"a":1,"a":2,}`, 0, ErrSyntax)
	f(`{"a":1,"a" 2}`, 0, ErrSyntax)
	f(`{"a":1,"a":tru}`, 0, ErrSyntax)
	f(`{"a":1, 5:2}`, 0, ErrSyntax)
	f(`{"a":1,"a":2`, 0, ErrSyntax)
	f(`{"a":1,"a`, 0, ErrSyntax)
	f(`{"a":1,"\q":2}`, 0, ErrSyntax)
	f(strings.Repeat(`{"a":`, MaxDepth+1)+"1"+strings.Repeat("}", MaxDepth+1), 0, ErrTooDeep)
}

func TestReadString(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		var scratch []byte
		got, end, err := ReadString([]byte(in), 0, &scratch)
		if err != nil || string(got) != want || end != len(in) {
			t.Fatalf("ReadString(%q) = %q, %d, %v; want %q", in, got, end, err, want)
		}
	}
	f(`"plain"`, "plain")
	f(`"a\"b\\c\/d\n"`, "a\"b\\c/d\n")
	f(`"\u00e9\ud83d\ude00"`, "é😀")
	f(`"kubernetes/$Format"`, "kubernetes/$Format")
}

func TestObjectIter(t *testing.T) {
	b := []byte(`{"a": 1, "b": {"c": [1,2]}, "d": "x"}`)
	var it ObjectIter
	if err := it.Begin(b, 0); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for it.Next() {
		keys = append(keys, string(it.Key))
		if string(it.Key) == "d" {
			s, end, err := ReadString(b, it.Value, &it.Scratch)
			if err != nil || string(s) != "x" {
				t.Fatalf("d = %q %v", s, err)
			}
			it.Consumed(end)
		}
	}
	if it.Err != nil || strings.Join(keys, ",") != "a,b,d" || it.End != len(b) {
		t.Fatalf("keys %v err %v end %d", keys, it.Err, it.End)
	}
	if err := it.Begin([]byte(`{"a":1,"a":1}`), 0); err != nil {
		t.Fatal(err)
	}
	for it.Next() {
	}
	if !errors.Is(it.Err, ErrDuplicateKey) {
		t.Fatalf("want duplicate, got %v", it.Err)
	}
}

func TestWalk(t *testing.T) {
	b := []byte(`{"spec":{"containers":[{"image":"a","securityContext":{"privileged":true}},{"image":"b"}]},"x.y":["p","q"],"n":null}`)
	f := func(path string, want string) {
		t.Helper()
		var got []string
		err := Walk(b, 0, strings.Split(path, "."), func(at int) {
			end, _ := Skip(b, at)
			got = append(got, string(b[at:end]))
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != want {
			t.Fatalf("Walk(%s) = %v, want %s", path, got, want)
		}
	}
	f("spec.containers.image", `"a" "b"`)
	f("spec.containers.securityContext.privileged", `true`)
	f("x.y", `"p" "q"`)
	f("n", `null`)
	f("missing.path", ``)
}

// FuzzSkip checks that Skip never panics and agrees with encoding/json on
// validity for inputs without duplicate keys.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,"2",{"b":null}]`, `"\u00e9"`, `{"a":{"a":1}}`, `{"a":1,"a":2}`, `-0.5e-3`, `[`, `{"a`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := Skip(b, 0)
		if err != nil {
			return
		}
		if end < 0 || end > len(b) {
			t.Fatalf("end %d out of range", end)
		}
		if !json.Valid(b[:end]) {
			t.Fatalf("Skip accepted invalid JSON %q", b[:end])
		}
	})
}

// FuzzSkipUnchecked: on valid JSON, SkipUnchecked ends where Skip does;
// on anything, it never panics or runs past the input.
func FuzzSkipUnchecked(f *testing.F) {
	for _, s := range []string{`{"a":[1,"]",{"b":"\"}"}]}`, `"x\\"`, `[{"a":1},{"b":2}]`, `12 `, `{"a`, `["\u00e9"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := SkipUnchecked(b, 0)
		if end < 0 || end > len(b) {
			t.Fatalf("end %d out of range", end)
		}
		want, werr := Skip(b, 0)
		if werr == nil && json.Valid(b) && (err != nil || end != want) {
			t.Fatalf("SkipUnchecked = %d, %v; Skip = %d on %q", end, err, want, b)
		}
	})
}

// FuzzSkipSyntax: SkipSyntax accepts exactly the JSON values encoding/json
// accepts (which allows duplicate keys) within the nesting bound, and ends
// where Skip ends whenever Skip accepts.
func FuzzSkipSyntax(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `[{"a":{"b":1,"b":[]}},2]`, `{"a":1,"a":}`, `"x"`, `{"a`, `{"a":1}{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := SkipSyntax(b, 0)
		if err == nil {
			if end < 0 || end > len(b) || !json.Valid(b[:end]) {
				t.Fatalf("SkipSyntax accepted %q up to %d", b, end)
			}
		}
		if want, werr := Skip(b, 0); werr == nil && (err != nil || end != want) {
			t.Fatalf("SkipSyntax = %d, %v; Skip = %d on %q", end, err, want, b)
		}
		if json.Valid(b) && !errors.Is(err, ErrTooDeep) && (err != nil || SkipWS(b, end) != len(b)) {
			t.Fatalf("SkipSyntax = %d, %v on valid %q", end, err, b)
		}
	})
}

// scanStringRef is scanString a byte at a time: what the word-at-a-time
// search must find.
func scanStringRef(b []byte, j int) int {
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
			return j
		}
	}
	return j
}

func TestScanString(t *testing.T) {
	// Every byte value at every position of a 40-byte run, after every
	// start offset: the word search and the byte search agree.
	buf := make([]byte, 40)
	for c := 0; c < 256; c++ {
		for at := range buf {
			for k := range buf {
				buf[k] = 'a'
			}
			buf[at] = byte(c)
			for j := 0; j <= len(buf); j++ {
				if got, want := scanString(buf, j), scanStringRef(buf, j); got != want {
					t.Fatalf("byte %#x at %d from %d: scanString = %d, want %d", c, at, j, got, want)
				}
			}
		}
	}
}

// FuzzScanString: the word-at-a-time search for '"', '\\' and control
// bytes agrees with the byte-at-a-time one from every start offset.
func FuzzScanString(f *testing.F) {
	for _, s := range []string{`abcdefgh"`, "0123456789abcdef\x1f", `\\`, "\x00\x01\"\\\x7f\x80\xff#!", "aaaaaaaaaaaaaaaaaaaaaaaa\x20\x21\x22\x23"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for j := 0; j <= len(b); j++ {
			if got, want := scanString(b, j), scanStringRef(b, j); got != want {
				t.Fatalf("scanString(%q, %d) = %d, want %d", b, j, got, want)
			}
		}
	})
}
