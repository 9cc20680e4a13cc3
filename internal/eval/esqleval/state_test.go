package esqleval

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

func mustProgram(t testing.TB, query string, opts ...Option) *Program {
	t.Helper()
	p, err := Compile(esql.MustParse(query), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// uriEvent reads an event with a request URI and a verb for p.
func uriEvent(t testing.TB, p *Program, uri, verb string) *event.Event {
	t.Helper()
	return ecsEvent(t, p, `{"kubernetes":{"audit":{"requestURI":`+quoteJSON(uri)+`,"verb":"`+verb+`"}}}`)
}

func resultCell(t *testing.T, s *State, col int) []event.Value {
	t.Helper()
	tb, err := s.Result(Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tb.Rows) != 1 {
		t.Fatalf("%d rows", len(tb.Rows))
	}
	return tb.Rows[0][col]
}

// TestCountDistinctApproximate checks that COUNT_DISTINCT switches to a
// HyperLogLog sketch beyond its precision threshold, stays within the
// sketch's error bound, and merges sketches with exact sets.
func TestCountDistinctApproximate(t *testing.T) {
	p := mustProgram(t, `from x | stats d = count_distinct(kubernetes.audit.requestURI, 100)`)
	ev := p.NewEvaluator(Env{})
	a, b := p.NewState(), p.NewState()
	const n = 20000
	for i := range n {
		s := a
		if i%3 == 0 {
			s = b
		}
		if err := s.AddEvent(ev, uriEvent(t, p, fmt.Sprintf("/api/v1/x/%d", i), "get")); err != nil {
			t.Fatal(err)
		}
	}
	// precision_threshold 100 gives p = 10 in Elasticsearch's formula:
	// relative standard error 1.04/sqrt(1024), about 3.3%; allow 4 sigma.
	if got := precisionFromThreshold(100); got != 10 {
		t.Fatalf("precisionFromThreshold(100) = %d, want 10", got)
	}
	if got := precisionFromThreshold(DefaultPrecisionThreshold); got != 14 {
		t.Fatalf("precisionFromThreshold(3000) = %d, want 14", got)
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	got := resultCell(t, a, 0)[0].I
	if rel := math.Abs(float64(got)-n) / n; rel > 4*1.04/32 {
		t.Fatalf("estimate %d for %d distinct values (error %.1f%%)", got, n, 100*rel)
	}
	// Below the threshold the count is exact.
	c := p.NewState()
	for i := range 100 {
		if err := c.AddEvent(ev, uriEvent(t, p, fmt.Sprintf("/u/%d", i%100), "get")); err != nil {
			t.Fatal(err)
		}
	}
	if got := resultCell(t, c, 0)[0].I; got != 100 {
		t.Fatalf("exact count %d, want 100", got)
	}
	// Exported sketches import and keep their estimate.
	d := p.NewState()
	if err := d.Import(a.Export()); err != nil {
		t.Fatal(err)
	}
	if got2 := resultCell(t, d, 0)[0].I; got2 != got {
		t.Fatalf("imported estimate %d, want %d", got2, got)
	}
}

func TestHLLSmallAndLargeRanges(t *testing.T) {
	for _, n := range []int{0, 1, 10, 1000, 100000} {
		h := newHLL(14)
		for i := range n {
			h.add(murmur3([]byte(fmt.Sprint(i))))
		}
		got := h.estimate()
		if n == 0 && got != 0 || n > 0 && math.Abs(float64(got)-float64(n))/float64(n) > 0.05 {
			t.Errorf("n=%d: estimate %d", n, got)
		}
	}
}

// TestMurmur3Verification runs SMHasher's verification of
// MurmurHash3_x64_128 (expected value 0x6384BA69).
func TestMurmur3Verification(t *testing.T) {
	key := make([]byte, 256)
	hashes := make([]byte, 0, 256*16)
	for i := range 256 {
		key[i] = byte(i)
		h1, h2 := murmur3x64(key[:i], uint32(256-i))
		hashes = binary.LittleEndian.AppendUint64(hashes, h1)
		hashes = binary.LittleEndian.AppendUint64(hashes, h2)
	}
	h1, _ := murmur3x64(hashes, 0)
	if got := uint32(h1); got != 0x6384BA69 {
		t.Fatalf("verification value %#x, want 0x6384ba69", got)
	}
	if got := murmur3([]byte("hello")); got != 0xcbd8a7b341bd9b02 {
		t.Fatalf("murmur3(hello) = %#x, want 0xcbd8a7b341bd9b02", got)
	}
}

func TestMemoryBudget(t *testing.T) {
	p := mustProgram(t, `from x | stats n = count(*) by kubernetes.audit.requestURI`, WithMemoryBudget(4096), WithName("burst"))
	ev := p.NewEvaluator(Env{})
	s := p.NewState()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = s.AddEvent(ev, uriEvent(t, p, fmt.Sprintf("/u/%d", i), "get"))
	}
	if !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("got %v, want ErrBudgetExceeded", err)
	}
	if !strings.Contains(err.Error(), `rule "burst"`) || !strings.Contains(err.Error(), "memory budget of 4096 bytes") {
		t.Fatalf("error does not name the rule and budget: %v", err)
	}
	// Collected rows are bounded too.
	p = mustProgram(t, `from x | where kubernetes.audit.verb == "get" | sort kubernetes.audit.requestURI`, WithMemoryBudget(2048))
	ev, s, err = p.NewEvaluator(Env{}), p.NewState(), nil
	for i := 0; i < 1000 && err == nil; i++ {
		err = s.AddEvent(ev, uriEvent(t, p, fmt.Sprintf("/u/%d", i), "get"))
	}
	if !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("rows: got %v, want ErrBudgetExceeded", err)
	}
	if _, err := Compile(esql.MustParse("from x"), WithMemoryBudget(0)); err == nil {
		t.Fatal("a zero budget is accepted")
	}
}

func TestImportRejectsForeignAndCorruptState(t *testing.T) {
	p := mustProgram(t, `from x | stats n = count(*), v = values(kubernetes.audit.verb) by kubernetes.audit.requestURI`)
	other := mustProgram(t, `from x | stats n = count(*) by kubernetes.audit.verb`)
	ev := p.NewEvaluator(Env{})
	s := p.NewState()
	for i := range 5 {
		if err := s.AddEvent(ev, uriEvent(t, p, fmt.Sprintf("/u/%d", i), "get")); err != nil {
			t.Fatal(err)
		}
	}
	b := s.Export()
	if err := other.NewState().Import(b); !errors.Is(err, ErrBadState) {
		t.Fatalf("foreign state: %v", err)
	}
	if err := other.NewState().Merge(s); !errors.Is(err, ErrBadState) {
		t.Fatalf("foreign merge: %v", err)
	}
	// Every truncation is rejected, and never panics.
	for i := range len(b) {
		if err := p.NewState().Import(b[:i]); !errors.Is(err, ErrBadState) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	// A failed import leaves the state unchanged.
	before := s.Len()
	if err := s.Import(b[:len(b)-1]); err == nil || s.Len() != before {
		t.Fatalf("failed import changed the state: %v, %d groups", err, s.Len())
	}
}

func TestEvaluatorRowsAndPrefixColumns(t *testing.T) {
	p := mustProgram(t, `from x | where kubernetes.audit.verb == "get" | eval u = to_upper(kubernetes.audit.verb) | stats n = count(*) by u`)
	if p.PerEvent() || !p.Aggregates() {
		t.Fatal("STATS program is not aggregating")
	}
	ev := p.NewEvaluator(Env{})
	rows, err := ev.Eval(uriEvent(t, p, "/a", "get"))
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %v, err %v", rows, err)
	}
	// Only the column STATS reads is materialised.
	filled := 0
	for i, c := range rows[0] {
		if len(c) > 0 {
			filled++
			if p.PrefixColumns()[i] != "u" {
				t.Errorf("unexpected column %s carried", p.PrefixColumns()[i])
			}
		}
	}
	if filled != 1 {
		t.Fatalf("%d columns carried, want 1", filled)
	}
	if rows, _ := ev.Eval(uriEvent(t, p, "/a", "list")); len(rows) != 0 {
		t.Fatal("WHERE did not drop the event")
	}
}

func FuzzImport(f *testing.F) {
	p := mustProgram(f, `from x | stats n = count(*), d = count_distinct(kubernetes.audit.verb, 2), v = values(kubernetes.audit.verb), m = max(kubernetes.audit.verb), s = sum(kubernetes.audit.responseStatus.code), a = avg(kubernetes.audit.responseStatus.code) by kubernetes.audit.requestURI`)
	ev := p.NewEvaluator(Env{})
	s := p.NewState()
	for i := range 4 {
		if err := s.AddEvent(ev, uriEvent(f, p, fmt.Sprintf("/u/%d", i%2), fmt.Sprint("v", i))); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(s.Export())
	f.Fuzz(func(t *testing.T, b []byte) {
		n := p.NewState()
		if err := n.Import(b); err != nil {
			return
		}
		if _, err := n.Result(Env{}); err != nil {
			t.Fatalf("imported state does not evaluate: %v", err)
		}
	})
}
