package rule

import (
	"io/fs"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/rules"
)

// FuzzParse feeds arbitrary rule files to the loader and the compiler:
// neither may panic, and every refusal must be a positioned error.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodRule))
	_ = fs.WalkDir(rules.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(rules.FS, p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	f.Add([]byte("id: [x\n"))
	f.Add([]byte("tests:\n  - Name: a\n    ExpectedResult: true\n    Log: {a: 1}\n"))
	f.Add([]byte("title:\n  - when: 'a:b'\n    title: '{{ x[0] | \"d\" }}'\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse("fuzz.yaml", b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if _, err := Compile(r); err != nil && err.Error() == "" {
			t.Fatal("empty compile error")
		}
	})
}

// FuzzTemplate: template parsing never panics, and a parsed template
// renders on an empty event.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"a {{ b }} c", "{{ x[0] | \"y\" }}", "{{", "}}{{a[", "{{ a | b }}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTemplate(s)
		if err != nil {
			return
		}
		_ = tm.Render(new(eventForFuzz))
	})
}

type eventForFuzz = event.Event
