package esqleval

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
)

// evEvent reads an event with a request URI, a verb, a source IP and an
// auditID for p, at base plus sec seconds, read from audit.log line line.
func evEvent(t testing.TB, p *Program, uri, verb, ip string, sec, line int) *event.Event {
	t.Helper()
	ts := time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second).Format(time.RFC3339)
	e := ecsEvent(t, p, fmt.Sprintf(`{"@timestamp":%q,"kubernetes":{"audit":{"auditID":"id-%03d","requestURI":%q,"verb":%q,"sourceIPs":[%q]}}}`, ts, line, uri, verb, ip))
	e.Origin = event.Origin{Name: "audit.log", Line: int64(line)}
	return e
}

// TestEvidence: every output row of an aggregating query names the events
// it counts — the earliest EvidenceLimit by time, with the total — through
// the commands after STATS, and the same after export, import and merge.
func TestEvidence(t *testing.T) {
	f := func(query string, want ...string) {
		t.Helper()
		p := mustProgram(t, query)
		ev := p.NewEvaluator(Env{})
		whole, a, b := p.NewState(), p.NewState(), p.NewState()
		// 25 events from 10.0.0.1 (listed latest first), 3 from 10.0.0.2,
		// one an event from 10.0.0.3 that WHERE drops.
		var evs []*event.Event
		for i := range 25 {
			evs = append(evs, evEvent(t, p, fmt.Sprintf("/api/%d", i%7), "list", "10.0.0.1", 100-i, i+1))
		}
		for i := range 3 {
			evs = append(evs, evEvent(t, p, "/version", "get", "10.0.0.2", i, 30+i))
		}
		evs = append(evs, evEvent(t, p, "/x", "watch", "10.0.0.3", 0, 40))
		for i, e := range evs {
			half := a
			if i%2 == 1 {
				half = b
			}
			if err := whole.AddEvent(ev, e); err != nil {
				t.Fatal(err)
			}
			if err := half.AddEvent(ev, e); err != nil {
				t.Fatal(err)
			}
		}
		merged := p.NewState()
		if err := merged.Import(a.Export()); err != nil {
			t.Fatal(err)
		}
		if err := merged.Merge(b); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*State{whole, merged} {
			tb, err := s.Result(Env{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range tb.Evidence {
				line := fmt.Sprint(e.Total, ":")
				for _, r := range e.Events {
					line += fmt.Sprintf(" %s@%s", r.AuditID, r.Time.Format("04:05"))
				}
				got = append(got, line)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s:\ngot  %q\nwant %q", query, got, want)
			}
		}
	}
	first10 := "25: id-025@01:16 id-024@01:17 id-023@01:18 id-022@01:19 id-021@01:20 id-020@01:21 id-019@01:22 id-018@01:23 id-017@01:24 id-016@01:25"
	by := `from x | where kubernetes.audit.verb != "watch" | stats n = count(*) by kubernetes.audit.sourceIPs`
	f(by, first10, "3: id-030@00:00 id-031@00:01 id-032@00:02")
	f(by+` | where n < 10`, "3: id-030@00:00 id-031@00:01 id-032@00:02")
	f(by+` | sort n asc`, "3: id-030@00:00 id-031@00:01 id-032@00:02", first10)
	f(by+` | sort n desc | limit 1`, first10)
	f(by+` | stats total = sum(n)`, "28: id-030@00:00 id-031@00:01 id-032@00:02 id-025@01:16 id-024@01:17 id-023@01:18 id-022@01:19 id-021@01:20 id-020@01:21 id-019@01:22")
	// Without STATS every row is its event.
	f(`from x | where kubernetes.audit.verb == "get" | sort kubernetes.audit.auditID desc`, "1: id-032@00:02", "1: id-031@00:01", "1: id-030@00:00")
	f(`from x | where kubernetes.audit.verb == "get" | eval v = kubernetes.audit.verb | stats n = count(*) by v`, "3: id-030@00:00 id-031@00:01 id-032@00:02")
}

// TestEvidenceCountsAnEventOnce: an event whose rows fall in one group
// several times (MV_EXPAND before STATS) counts once in it, and once in
// each group its values fall in (a multi-valued BY).
func TestEvidenceCountsAnEventOnce(t *testing.T) {
	p := mustProgram(t, `from x | mv_expand kubernetes.audit.sourceIPs | eval k = "all" | stats n = count(*) by k`)
	ev := p.NewEvaluator(Env{})
	s := p.NewState()
	e := ecsEvent(t, p, `{"@timestamp":"2025-05-14T09:00:00Z","kubernetes":{"audit":{"auditID":"a","sourceIPs":["10.0.0.1","10.0.0.2"]}}}`)
	if err := s.AddEvent(ev, e); err != nil {
		t.Fatal(err)
	}
	tb, err := s.Result(Env{})
	if err != nil {
		t.Fatal(err)
	}
	if n := tb.Rows[0][0][0].I; n != 2 || tb.Evidence[0].Total != 1 || len(tb.Evidence[0].Events) != 1 {
		t.Fatalf("count %d, evidence %+v: the event counts once", n, tb.Evidence[0])
	}
	p = mustProgram(t, `from x | stats n = count(*) by kubernetes.audit.sourceIPs`)
	s = p.NewState()
	if err := s.AddEvent(p.NewEvaluator(Env{}), ecsEvent(t, p, `{"kubernetes":{"audit":{"auditID":"a","sourceIPs":["10.0.0.1","10.0.0.2"]}}}`)); err != nil {
		t.Fatal(err)
	}
	tb, _ = s.Result(Env{})
	if len(tb.Evidence) != 2 || tb.Evidence[0].Total != 1 || tb.Evidence[1].Total != 1 || !tb.Evidence[0].Events[0].Time.IsZero() {
		t.Fatalf("evidence %+v %+v", tb.Evidence[0], tb.Evidence[1])
	}
	// The zero time survives the round trip.
	n := p.NewState()
	if err := n.Import(s.Export()); err != nil {
		t.Fatal(err)
	}
	if tb, _ := n.Result(Env{}); !tb.Evidence[0].Events[0].Time.IsZero() {
		t.Fatalf("imported time %v", tb.Evidence[0].Events[0].Time)
	}
}

// TestEvidenceImportsVersion1: a state exported before evidence existed
// (version 1) is imported, with none.
func TestEvidenceImportsVersion1(t *testing.T) {
	p := mustProgram(t, `from x | stats n = count(*)`)
	s := p.NewState()
	if err := s.Add(Env{}, []Row{{}, {}}); err != nil {
		t.Fatal(err)
	}
	v2 := s.Export()
	// Version 1: the other magic, and no evidence (a zero total and no
	// events: the last two bytes of the only group).
	if !bytes.HasSuffix(v2, []byte{0, 0}) {
		t.Fatalf("export %x does not end with an empty evidence", v2)
	}
	v1 := append([]byte(exportMagicV1), v2[len(exportMagic):len(v2)-2]...)
	n := p.NewState()
	if err := n.Import(v1); err != nil {
		t.Fatal(err)
	}
	tb, err := n.Result(Env{})
	if err != nil || tb.Rows[0][0][0].I != 2 || tb.Evidence[0].Total != 0 {
		t.Fatalf("version 1: %v %v %+v", err, tb.Rows, tb.Evidence)
	}
	if err := n.Import(v1[:len(v1)-1]); err == nil {
		t.Fatal("a truncated version 1 state imports")
	}
}

// TestEvidenceRefusesCorrupt: evidence naming more events than its total,
// more than EvidenceLimit, or out of order is refused.
func TestEvidenceRefusesCorrupt(t *testing.T) {
	enc := func(total uint64, refs ...EventRef) []byte {
		b := binary.AppendUvarint(nil, total)
		b = binary.AppendUvarint(b, uint64(len(refs)))
		for i := range refs {
			b = appendRef(b, &refs[i])
		}
		return b
	}
	at := func(sec int) EventRef {
		return EventRef{Time: time.Unix(int64(sec), 0).UTC(), AuditID: "a", Origin: "o"}
	}
	var many []EventRef
	for i := range EvidenceLimit + 1 {
		many = append(many, at(i))
	}
	for name, b := range map[string][]byte{
		"more events than the total": enc(1, at(1), at(2)),
		"over the limit":             enc(100, many...),
		"out of order":               enc(5, at(2), at(1)),
		"twice the same":             enc(5, at(1), at(1)),
	} {
		var ev evidence
		if _, _, err := ev.decode(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	var ev evidence
	if rest, _, err := ev.decode(enc(7, at(1), at(2))); err != nil || len(rest) != 0 || ev.total != 7 || len(ev.refs) != 2 {
		t.Fatalf("good evidence: %v %+v", err, ev)
	}
}
