package kqleval

import (
	"bufio"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

//go:embed testdata/*.kqltest
var conformance embed.FS

// confCase is one query of a conformance file with its expectations.
type confCase struct {
	file    string
	line    int
	query   string
	err     string // expected parse or compile error substring
	docs    []confDoc
	options []Option
}

type confDoc struct {
	line  int
	match bool
	json  string
}

// loadConformance reads every testdata/*.kqltest file (format: README.md).
func loadConformance(t testing.TB) []*confCase {
	var out []*confCase
	names, err := fs.Glob(conformance, "testdata/*.kqltest")
	if err != nil || len(names) == 0 {
		t.Fatalf("no conformance files: %v", err)
	}
	for _, name := range names {
		b, err := conformance.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var cur *confCase
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, val, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s:%d: want \"key: value\"", name, n)
			}
			if key != "query" && cur == nil {
				t.Fatalf("%s:%d: %s before any query", name, n, key)
			}
			switch key {
			case "query":
				cur = &confCase{file: name, line: n, query: val}
				out = append(out, cur)
			case "match", "nomatch":
				cur.docs = append(cur.docs, confDoc{line: n, match: key == "match", json: val})
			case "error":
				cur.err = val
			case "default_fields":
				cur.options = append(cur.options, WithDefaultFields(strings.Fields(val)...))
			default:
				t.Fatalf("%s:%d: unknown key %q", name, n, key)
			}
		}
	}
	return out
}

// TestConformance runs the data-driven KQL conformance suite.
func TestConformance(t *testing.T) {
	cases := loadConformance(t)
	docs := 0
	for _, c := range cases {
		where := fmt.Sprintf("%s:%d", c.file, c.line)
		src := pos.NewSource(where, c.query)
		expr, err := kql.Parse(src)
		var m *Matcher
		if err == nil {
			m, err = Compile(expr, append([]Option{WithSource(src)}, c.options...)...)
		}
		if c.err != "" {
			if err == nil {
				t.Errorf("%s: %q compiled, want error containing %q", where, c.query, c.err)
			} else if !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %q: error %q does not contain %q", where, c.query, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %q: %v", where, c.query, err)
			continue
		}
		if len(c.docs) == 0 {
			t.Errorf("%s: query without documents", where)
		}
		for _, d := range c.docs {
			docs++
			err := readAudit(d.json, m.Fields(), func(e *event.Event) {
				if got := m.Match(e); got != d.match {
					t.Errorf("%s:%d: %s\n  on %s\n  got match=%v, want %v (compiled %s)", c.file, d.line, c.query, d.json, got, d.match, describe(m.root))
				}
			})
			if err != nil {
				t.Errorf("%s:%d: the reader cannot read the document: %v", c.file, d.line, err)
			}
		}
	}
	if docs < 100 {
		t.Errorf("only %d documents in the conformance suite", docs)
	}
}
