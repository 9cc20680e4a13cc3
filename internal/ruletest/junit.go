package ruletest

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// The JUnit XML that CI systems read (Jenkins, GitLab, GitHub actions'
// test reporters): the Ant/Surefire shape, testsuites > testsuite >
// testcase, a failure element in each failed testcase.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	File     string      `xml:"file,attr,omitempty"`
	Cases    []junitCase `xml:"testcase"`

	dur time.Duration
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the results as JUnit XML: one testsuite per rule
// (named by the rule id, with its file), one testcase per test (its name,
// the rule id as classname, file and line), and for a failed test a
// failure whose message says what was expected and what happened and
// whose text lists the problems.
func WriteJUnit(w io.Writer, results []Result) error {
	out := junitSuites{Name: "kanon rules test"}
	var total time.Duration
	idx := map[string]int{}
	for _, r := range results {
		i, ok := idx[r.Rule]
		if !ok {
			i = len(out.Suites)
			idx[r.Rule] = i
			out.Suites = append(out.Suites, junitSuite{Name: r.Rule, File: r.File})
		}
		s := &out.Suites[i]
		c := junitCase{Name: r.Test, Classname: r.Rule, File: r.File, Line: r.Line, Time: seconds(r.Duration)}
		if !r.Pass {
			text := fmt.Sprintf("%s:%d\nexpected: %s\ngot:      %s\n", r.File, r.Line, r.Expected, r.Got)
			for _, p := range r.Problems {
				text += "- " + p + "\n"
			}
			c.Failure = &junitFailure{Message: fmt.Sprintf("expected %s, got %s", r.Expected, r.Got), Type: "failure", Text: text}
			s.Failures++
			out.Failures++
		}
		s.Tests++
		out.Tests++
		s.Cases = append(s.Cases, c)
		s.dur += r.Duration
		total += r.Duration
	}
	for i := range out.Suites {
		out.Suites[i].Time = seconds(out.Suites[i].dur)
	}
	out.Time = seconds(total)
	var b strings.Builder
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("cannot write the JUnit report: %w", err)
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("cannot write the JUnit report: %w", err)
	}
	return nil
}
