package esqleval

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

//go:embed testdata/*.test
var conformanceFS embed.FS

// conformanceCase is one case of a testdata/*.test file; the format is
// described in testdata/README.md.
type conformanceCase struct {
	file, name string
	line       int
	query      string
	queryLine  int
	now        time.Time
	events     []string
	header     []string
	rows       []string // canonical rows
	wantErr    string
}

func loadConformance(t testing.TB) []conformanceCase {
	t.Helper()
	files, err := conformanceFS.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var cases []conformanceCase
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".test") {
			continue
		}
		b, err := conformanceFS.ReadFile(path.Join("testdata", f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		cs, err := parseConformance(f.Name(), string(b))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, cs...)
	}
	if len(cases) == 0 {
		t.Fatal("no conformance cases")
	}
	return cases
}

func parseConformance(file, text string) ([]conformanceCase, error) {
	var cases []conformanceCase
	var cur *conformanceCase
	section := ""
	var query []string
	flush := func() {
		if cur != nil {
			cur.query = strings.TrimSpace(strings.Join(query, "\n"))
			cases = append(cases, *cur)
		}
		query = nil
	}
	for i, line := range strings.Split(text, "\n") {
		ln := i + 1
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "### "):
			flush()
			cur = &conformanceCase{file: file, name: strings.TrimSpace(line[4:]), line: ln}
			section = ""
			continue
		case cur == nil || trimmed == "" || strings.HasPrefix(line, "#"):
			continue
		case line == "query:":
			section, cur.queryLine = "query", ln+1
			continue
		case line == "events:":
			section = "events"
			continue
		case line == "expect:":
			section = "expect"
			continue
		case strings.HasPrefix(line, "now: "):
			t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(line[5:]))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad now: %v", file, ln, err)
			}
			cur.now = t
			continue
		case strings.HasPrefix(line, "error: "):
			cur.wantErr = strings.TrimSpace(line[7:])
			section = ""
			continue
		}
		switch section {
		case "query":
			query = append(query, line)
		case "events":
			n := 1
			if star := strings.Index(trimmed, "* {"); star > 0 {
				k, err := strconv.Atoi(trimmed[:star])
				if err != nil {
					return nil, fmt.Errorf("%s:%d: bad repeat count", file, ln)
				}
				n, trimmed = k, trimmed[star+2:]
			}
			for range n {
				cur.events = append(cur.events, trimmed)
			}
		case "expect":
			d := json.NewDecoder(strings.NewReader(trimmed))
			d.UseNumber()
			var row []any
			if err := d.Decode(&row); err != nil {
				return nil, fmt.Errorf("%s:%d: bad expected row: %v", file, ln, err)
			}
			if cur.header == nil {
				cur.header = []string{}
				for _, h := range row {
					cur.header = append(cur.header, fmt.Sprint(h))
				}
				continue
			}
			parts := make([]string, len(row))
			for k, c := range row {
				parts[k] = formatJSONCell(c)
			}
			cur.rows = append(cur.rows, "["+strings.Join(parts, ", ")+"]")
		default:
			return nil, fmt.Errorf("%s:%d: line outside a section: %q", file, ln, line)
		}
	}
	flush()
	return cases, nil
}

// runCase evaluates a case and returns the output table; the events go
// through one State, and separately through two States merged after an
// Export/Import round trip, which must give the same table.
func runCase(t *testing.T, c conformanceCase) (*Table, error) {
	src := pos.NewEmbeddedSource(c.file, c.query, c.queryLine, 1, 0)
	q, err := esql.Parse(src)
	if err != nil {
		return nil, err
	}
	p, err := Compile(q)
	if err != nil {
		return nil, err
	}
	env := Env{Now: c.now}
	ev := p.NewEvaluator(env)
	whole, a, b := p.NewState(), p.NewState(), p.NewState()
	for i, doc := range c.events {
		var addErr error
		err := readECS(doc, p.Fields(), func(e *event.Event) error {
			// Each event has an origin of its own, for the evidence.
			e.Origin = event.Origin{Name: c.file, Line: int64(i + 1)}
			// Count counts the rows Eval builds (MV_EXPAND included).
			rows, evalErr := ev.Eval(e)
			want := len(rows)
			if n, err := ev.Count(e); n != want || (err == nil) != (evalErr == nil) {
				t.Errorf("%s:%d: event %d: Count = %d, %v; Eval gives %d rows, %v", c.file, c.line, i+1, n, err, want, evalErr)
			}
			if addErr = whole.AddEvent(ev, e); addErr != nil {
				return nil
			}
			half := a
			if i%2 == 1 {
				half = b
			}
			addErr = half.AddEvent(ev, e)
			return nil
		})
		if err != nil {
			t.Fatalf("%s:%d: the reader cannot read event %d: %v", c.file, c.line, i+1, err)
		}
		if addErr != nil {
			return nil, addErr
		}
	}
	want, err := whole.Result(env)
	if err != nil {
		return nil, err
	}
	// Differential: export a, import it into a fresh state, merge b.
	exported := a.Export()
	if !bytes.Equal(exported, a.Export()) {
		t.Errorf("%s:%d: Export is not deterministic", c.file, c.line)
	}
	merged := p.NewState()
	if err := merged.Import(exported); err != nil {
		t.Fatalf("%s:%d: import: %v", c.file, c.line, err)
	}
	if err := merged.Merge(b); err != nil {
		t.Fatalf("%s:%d: merge: %v", c.file, c.line, err)
	}
	got, err := merged.Result(env)
	if err != nil {
		t.Fatalf("%s:%d: result of merged state: %v", c.file, c.line, err)
	}
	if p.Aggregates() || len(want.Rows) == len(got.Rows) {
		w, g := tableText(want), tableText(got)
		if p.Aggregates() && w != g {
			t.Errorf("%s:%d: merged state differs:\n%s\nwhole:\n%s", c.file, c.line, g, w)
		}
		if w, g := evidenceText(want), evidenceText(got); p.Aggregates() && w != g {
			t.Errorf("%s:%d: merged evidence differs:\n%s\nwhole:\n%s", c.file, c.line, g, w)
		}
	} else {
		t.Errorf("%s:%d: merged state has %d rows, whole %d", c.file, c.line, len(got.Rows), len(want.Rows))
	}
	checkEvidence(t, c, p, want)
	return want, nil
}

// evidenceText renders a table's evidence, one line per row.
func evidenceText(tb *Table) string {
	var b strings.Builder
	for _, ev := range tb.Evidence {
		fmt.Fprintf(&b, "%d:", ev.Total)
		for _, r := range ev.Events {
			fmt.Fprintf(&b, " %s", r.Origin)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// checkEvidence checks what every case's output rows say they count: one
// evidence per row, at most EvidenceLimit events named, in order, each one
// of the case's events, and for a program without a second aggregation no
// more events than the case has.
func checkEvidence(t *testing.T, c conformanceCase, p *Program, tb *Table) {
	t.Helper()
	if p.PerEvent() {
		if tb.Evidence != nil {
			t.Errorf("%s:%d: a per-event program has evidence", c.file, c.line)
		}
		return
	}
	if len(tb.Evidence) != len(tb.Rows) {
		t.Fatalf("%s:%d: %d evidence for %d rows", c.file, c.line, len(tb.Evidence), len(tb.Rows))
	}
	for i, ev := range tb.Evidence {
		if len(ev.Events) > EvidenceLimit || int64(len(ev.Events)) > ev.Total || len(ev.Events) < int(min(ev.Total, EvidenceLimit)) {
			t.Errorf("%s:%d: row %d: %d events named of %d", c.file, c.line, i, len(ev.Events), ev.Total)
		}
		for k, r := range ev.Events {
			if !strings.HasPrefix(r.Origin, c.file+":") {
				t.Errorf("%s:%d: row %d names %q", c.file, c.line, i, r.Origin)
			}
			if k > 0 && compareRef(&ev.Events[k-1], &ev.Events[k]) >= 0 {
				t.Errorf("%s:%d: row %d: events out of order", c.file, c.line, i)
			}
		}
	}
}

func tableText(tb *Table) string {
	var b strings.Builder
	h, _ := json.Marshal(tb.Columns)
	b.Write(h)
	for _, r := range tb.Rows {
		b.WriteString("\n")
		b.WriteString(formatRow(r))
	}
	return b.String()
}

func TestConformance(t *testing.T) {
	for _, c := range loadConformance(t) {
		t.Run(strings.TrimSuffix(c.file, ".test")+"/"+c.name, func(t *testing.T) {
			got, err := runCase(t, c)
			if c.wantErr != "" {
				if err == nil {
					t.Fatalf("%s:%d: no error, want %q", c.file, c.line, c.wantErr)
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("%s:%d: error %q, want %q", c.file, c.line, err.Error(), c.wantErr)
				}
				var pe *pos.Error
				if !errors.As(err, &pe) && !errors.Is(err, ErrBudgetExceeded) {
					t.Fatalf("%s:%d: error is not positioned: %v", c.file, c.line, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s:%d: %v", c.file, c.line, pos.Pretty(err))
			}
			h, _ := json.Marshal(c.header)
			want := string(h)
			for _, r := range c.rows {
				want += "\n" + r
			}
			if g := tableText(got); g != want {
				t.Fatalf("%s:%d: got\n%s\nwant\n%s", c.file, c.line, g, want)
			}
		})
	}
}

// TestReadECS checks that the production reader gives the suite's ECS
// documents the fields the conformance files use, read with the fields a
// program reads.
func TestReadECS(t *testing.T) {
	p := mustProgram(t, `from x | keep kubernetes.audit.sourceIPs, kubernetes.audit.responseStatus.code, `+"`kubernetes.audit.annotations.authorization_k8s_io/decision`"+`, @timestamp, kubernetes.audit.verb`)
	for _, doc := range []string{
		`{"@timestamp":"2024-05-01T10:00:00Z","kubernetes":{"audit":{"verb":"get","sourceIPs":["10.0.0.1","10.0.0.2"],"responseStatus":{"code":403},"annotations":{"authorization_k8s_io/decision":"forbid"}}}}`,
		`{"@timestamp":"2024-05-01T10:00:00Z","kubernetes.audit.verb":"get","kubernetes.audit.sourceIPs":["10.0.0.1","10.0.0.2"],"kubernetes.audit.responseStatus.code":403,"kubernetes":{"audit":{"annotations":{"authorization_k8s_io/decision":"forbid"}}}}`,
	} {
		e := ecsEvent(t, p, doc)
		get := func(name string) string { return formatCell(e.Get(event.Lookup(name), nil)) }
		for name, want := range map[string]string{
			"kubernetes.audit.verb":                                      `"get"`,
			"kubernetes.audit.sourceIPs":                                 `["10.0.0.1", "10.0.0.2"]`,
			"kubernetes.audit.responseStatus.code":                       `403`,
			"kubernetes.audit.annotations.authorization_k8s_io/decision": `"forbid"`,
			"@timestamp": `"2024-05-01T10:00:00Z"`,
		} {
			if got := get(name); got != want {
				t.Errorf("%s: %s = %s, want %s", doc, name, got, want)
			}
		}
	}
	if err := readECS(`{"kubernetes":{"audit":{"verb":1}}}`, p.Fields(), func(*event.Event) error { return nil }); err == nil {
		t.Error("the reader takes a number for the verb")
	}
}
