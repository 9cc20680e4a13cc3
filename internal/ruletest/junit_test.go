package ruletest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/ruletest"
	"github.com/kanon-dev/kanon/rules"
)

// xmlNode is any element, to check the document's shape as a CI parser
// reads it.
type xmlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []xmlNode  `xml:",any"`
}

func (n *xmlNode) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// TestJUnitShape writes the JUnit report of the built-in pack's tests and
// of a rule whose tests fail (with characters XML must escape), and
// checks its shape: a well-formed document whose root testsuites counts
// every test and failure, one testsuite per rule with its counts, file
// and time, one testcase per test with name, classname, file, line and
// time, and a failure (message, type, text) in exactly the failed ones.
func TestJUnitShape(t *testing.T) {
	compiled, err := rule.Load(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := rule.Parse("wrong <&>.yaml", []byte(`id: wrong-1
name: Wrong
type: query
query: kubernetes.audit.verb:get
severity: low
risk_score: 21
tests:
  - name: expects "nothing" & gets <an alert>
    expect: no_alert
    events:
      - {"kind":"Event","auditID":"x","stage":"ResponseComplete","verb":"get","stageTimestamp":"2025-01-01T00:00:00Z"}
  - name: passes
    expect: alert
    events:
      - {"kind":"Event","auditID":"y","stage":"ResponseComplete","verb":"get","stageTimestamp":"2025-01-01T00:00:00Z"}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	results := ruletest.Run(context.Background(), append(compiled, c), formats.Registry())
	passed, failed := ruletest.Summary(results)
	if failed != 1 {
		t.Fatalf("%d passed, %d failed", passed, failed)
	}
	var buf bytes.Buffer
	if err := ruletest.WriteJUnit(&buf, results); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), `<?xml version="1.0" encoding="UTF-8"?>`) {
		t.Errorf("no XML declaration: %.80s", buf.String())
	}
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, buf.String())
		}
	}
	var root xmlNode
	if err := xml.Unmarshal(buf.Bytes(), &root); err != nil {
		t.Fatal(err)
	}
	num := func(n *xmlNode, name string) int {
		t.Helper()
		v, ok := n.attr(name)
		if !ok {
			t.Fatalf("<%s> has no %s", n.XMLName.Local, name)
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("<%s %s=%q>", n.XMLName.Local, name, v)
		}
		return i
	}
	secs := func(n *xmlNode) {
		t.Helper()
		v, _ := n.attr("time")
		if f, err := strconv.ParseFloat(v, 64); err != nil || f < 0 {
			t.Errorf("<%s time=%q>", n.XMLName.Local, v)
		}
	}
	if root.XMLName.Local != "testsuites" || num(&root, "tests") != len(results) || num(&root, "failures") != 1 || num(&root, "errors") != 0 {
		t.Fatalf("root %s %v", root.XMLName.Local, root.Attrs)
	}
	secs(&root)
	if len(root.Children) != len(compiled)+1 {
		t.Fatalf("%d testsuites for %d rules", len(root.Children), len(compiled)+1)
	}
	cases, failures := 0, 0
	for i := range root.Children {
		s := &root.Children[i]
		if s.XMLName.Local != "testsuite" {
			t.Fatalf("<%s> under testsuites", s.XMLName.Local)
		}
		name, _ := s.attr("name")
		file, _ := s.attr("file")
		if name == "" || file == "" || num(s, "tests") != len(s.Children) || num(s, "skipped") != 0 {
			t.Errorf("testsuite %v with %d testcases", s.Attrs, len(s.Children))
		}
		secs(s)
		suiteFailures := 0
		for j := range s.Children {
			tc := &s.Children[j]
			cls, _ := tc.attr("classname")
			tname, _ := tc.attr("name")
			if tc.XMLName.Local != "testcase" || cls != name || tname == "" || num(tc, "line") <= 0 {
				t.Errorf("testcase %s %v in suite %s", tc.XMLName.Local, tc.Attrs, name)
			}
			secs(tc)
			cases++
			for k := range tc.Children {
				f := &tc.Children[k]
				if f.XMLName.Local != "failure" {
					t.Errorf("<%s> in a testcase", f.XMLName.Local)
					continue
				}
				failures++
				suiteFailures++
				msg, _ := f.attr("message")
				if name != "wrong-1" || tname != `expects "nothing" & gets <an alert>` || !strings.HasPrefix(msg, "expected no alert, got 1") {
					t.Errorf("failure in %s/%s: %q", name, tname, msg)
				}
				if !strings.Contains(f.Text, "wrong <&>.yaml:") || !strings.Contains(f.Text, "expected: no alert") {
					t.Errorf("failure text %q", f.Text)
				}
			}
		}
		if num(s, "failures") != suiteFailures {
			t.Errorf("suite %s says %d failures, has %d", name, num(s, "failures"), suiteFailures)
		}
	}
	if cases != len(results) || failures != 1 {
		t.Errorf("%d testcases, %d failures", cases, failures)
	}
}
