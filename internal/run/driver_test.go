package run_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/tail"
	"github.com/kanon-dev/kanon/rules"
)

func builtinRules(t testing.TB) []*rule.Compiled {
	t.Helper()
	c, err := rule.Load(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func exampleLog(t testing.TB) []byte {
	t.Helper()
	b, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ids(as []*alert.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
		if a.Group != nil {
			out[i] += fmt.Sprintf("#%d", a.Group.Count)
		}
	}
	sort.Strings(out)
	return out
}

func newDriver(t testing.TB, cfg run.Config) (*run.Driver, *alert.Collector) {
	t.Helper()
	col := &alert.Collector{}
	if cfg.Rules == nil {
		cfg.Rules = builtinRules(t)
	}
	cfg.Registry = formats.Registry()
	if cfg.Sink == nil {
		cfg.Sink = col
	}
	d, err := run.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d, col
}

// scan runs the Files source over data as kanon scan does.
func scan(t testing.TB, data []byte, cfg run.Config) ([]*alert.Alert, run.Stats) {
	t.Helper()
	d, col := newDriver(t, cfg)
	src := &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(data), BlockBytes: 4096}
	ctx := context.Background()
	if err := d.Run(ctx, src); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return col.Alerts, d.Stats()
}

// The reference: the readers and the engine without the driver, over the
// whole log at once.
func reference(t testing.TB, data []byte) []string {
	t.Helper()
	d, col := newDriver(t, run.Config{Policy: run.TestPolicy()})
	var recs []ingest.Record
	fr := ingest.NewFramer("-", 0)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	n := int64(0)
	for sc.Scan() {
		n++
		recs = fr.Line(n, bytes.Clone(sc.Bytes()), recs)
	}
	ctx := context.Background()
	if _, err := d.SubmitWait(ctx, &run.Batch{Input: "file", Records: recs}, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return ids(col.Alerts)
}

// Small blocks, many batches: the same alerts as one batch of everything,
// and the same counts as the input holds.
func TestFilesSourceMatchesOneBatch(t *testing.T) {
	data := exampleLog(t)
	got, st := scan(t, data, run.Config{Policy: run.TestPolicy()})
	want := reference(t, data)
	if len(want) == 0 || strings.Join(ids(got), " ") != strings.Join(want, " ") {
		t.Fatalf("alerts differ:\n got %v\nwant %v", ids(got), want)
	}
	lines := int64(bytes.Count(data, []byte{'\n'}))
	if st.Events != lines || st.Bytes != int64(len(data)) || st.Bad != 0 {
		t.Fatalf("stats %+v, want %d events of %d bytes", st, lines, len(data))
	}
}

// Every input goes through the redelivery dedup: a log read twice (as
// CloudWatch redelivers) raises what it raises once.
func TestDedupForEveryInput(t *testing.T) {
	data := exampleLog(t)
	twice := append(append([]byte{}, data...), data...)
	got, st := scan(t, twice, run.Config{Policy: run.TestPolicy(), Dedup: run.DefaultDedup})
	want := reference(t, data)
	if strings.Join(ids(got), " ") != strings.Join(want, " ") {
		t.Fatalf("alerts of a log read twice differ from once:\n got %v\nwant %v", ids(got), want)
	}
	if lines := int64(bytes.Count(data, []byte{'\n'})); st.Duplicates != lines || st.Events != lines {
		t.Fatalf("duplicates %d events %d, want %d each", st.Duplicates, st.Events, lines)
	}
}

// A strict run stops at the first bad record: its error comes back from
// the source and from Close, and no later record is evaluated.
func TestStrict(t *testing.T) {
	data := append([]byte("not json\n"), exampleLog(t)...)
	d, col := newDriver(t, run.Config{Policy: run.TestPolicy(), Strict: true})
	ctx := context.Background()
	src := &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(data), BlockBytes: 1024, Buffers: 1}
	runErr := d.Run(ctx, src)
	closeErr := d.Close(ctx)
	if closeErr == nil || !errors.Is(closeErr, ingest.ErrSyntax) {
		t.Fatalf("Close: %v, want the bad record", closeErr)
	}
	if runErr != nil && !errors.Is(runErr, ingest.ErrSyntax) && !errors.Is(runErr, run.ErrClosed) {
		t.Fatalf("Run: %v", runErr)
	}
	if st := d.Stats(); st.Events != 0 || len(col.Alerts) != 0 {
		t.Fatalf("%d events evaluated, %d alerts after the bad first record", st.Events, len(col.Alerts))
	}
}

// Batches are acknowledged only once their state is committed: when Done
// runs, a second store opened on the same file sees the alert ids the
// batch raised.
func TestDoneAfterCommit(t *testing.T) {
	dir := t.TempDir()
	store, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	d, col := newDriver(t, run.Config{Store: store, Policy: run.LivePolicy(time.Second)})
	lines := bytes.Split(bytes.TrimSpace(exampleLog(t)), []byte{'\n'})
	fr := ingest.NewFramer("webhook", 0)
	var recs []ingest.Record
	for i, l := range lines {
		recs = fr.Line(int64(i+1), l, recs)
	}
	ctx := context.Background()
	res, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: recs}, true)
	if err != nil || res.Err != nil || res.Events != len(lines) {
		t.Fatalf("result %+v, %v", res, err)
	}
	if len(col.Alerts) == 0 {
		t.Fatal("no alert")
	}
	pending := 0
	if err := store.Scan(ctx, nil, time.Time{}, func(e state.Entry) error { pending++; return nil }); err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("the batch was acknowledged before its state reached the store")
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// The tail source follows a growing file, stores its position with the
// state, and a second driver on the same store resumes after it: the two
// runs together raise what one scan of the whole file raises.
func TestTailResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	data := exampleLog(t)
	half := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 1
	if err := os.WriteFile(path, data[:half], 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(filepath.Join(dir, "state"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	follow := func(until int64) []*alert.Alert {
		d, col := newDriver(t, run.Config{Store: store, Policy: run.LivePolicy(time.Hour)})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- d.Run(ctx, &run.Tail{Path: path, Options: tail.Options{Poll: 10 * time.Millisecond}})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for d.Stats().Events < until && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := d.Stats().Events; got != until {
			t.Fatalf("followed %d events, want %d", got, until)
		}
		return col.Alerts
	}
	first := int64(bytes.Count(data[:half], []byte{'\n'}))
	a := follow(first)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data[half:])
	f.Close()
	b := follow(int64(bytes.Count(data[half:], []byte{'\n'})))
	// The first run closed its open runs at Close (the end of its input),
	// so compare the per-event alerts: those with an event.
	perEvent := func(as []*alert.Alert) []string {
		var out []string
		for _, x := range as {
			if x.Event != nil {
				out = append(out, x.ID)
			}
		}
		sort.Strings(out)
		return out
	}
	whole, _ := scan(t, data, run.Config{Policy: run.TestPolicy()})
	got := perEvent(append(a, b...))
	want := perEvent(whole)
	if len(want) == 0 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("followed in two runs: %d per-event alerts, one scan: %d\n%v\n%v", len(got), len(want), got, want)
	}
}

// The bundled example logs read from an fs.FS carry their names.
func TestFilesFromFS(t *testing.T) {
	names, err := fs.Glob(examples.FS, "logs/*")
	if err != nil || len(names) == 0 {
		t.Fatal(names, err)
	}
	d, col := newDriver(t, run.Config{Policy: run.TestPolicy()})
	ctx := context.Background()
	if err := d.Run(ctx, &run.Files{FS: examples.FS, Paths: names, Prefix: "examples/"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(col.Alerts) == 0 {
		t.Fatal("no alerts from the bundled logs")
	}
	for _, a := range col.Alerts {
		if a.Event != nil && !strings.HasPrefix(a.Origin, "examples/logs/") {
			t.Fatalf("origin %q", a.Origin)
		}
	}
	if st := d.Stats(); st.Files != int64(len(names)) {
		t.Fatalf("%d files, want %d", st.Files, len(names))
	}
}

// countNames counts the events it sees by objectRef.name, a field no
// built-in rule reads.
type countNames struct {
	f     event.Field
	names map[string]int
	n     int
}

func (c *countNames) Fields() event.FieldSet {
	var fs event.FieldSet
	fs.Add(c.f)
	return fs
}

func (c *countNames) Observe(e *event.Event) {
	c.n++
	var buf [1]event.Value
	for _, v := range e.Get(c.f, buf[:0]) {
		c.names[v.String()]++
	}
}

// Observers see every event evaluated, with the fields they ask for
// filled although no rule reads them.
func TestObservers(t *testing.T) {
	obs := &countNames{f: event.Lookup("kubernetes.audit.objectRef.name"), names: map[string]int{}}
	data := exampleLog(t)
	_, st := scan(t, data, run.Config{Policy: run.TestPolicy(), Observers: []run.Observer{obs}})
	if obs.n != int(st.Events) || obs.n == 0 || len(obs.names) == 0 {
		t.Fatalf("observer saw %d events (%d names), the driver evaluated %d", obs.n, len(obs.names), st.Events)
	}
}

// failingStore fails every Update while failing is set: a full disk.
type failingStore struct {
	state.Store
	failing atomic.Bool
}

func (f *failingStore) Update(ctx context.Context, now time.Time, fn func(state.Tx) error) error {
	if f.failing.Load() {
		return errors.New("no space left on device")
	}
	return f.Store.Update(ctx, now, fn)
}

// While the state store cannot be written, the driver is not healthy and
// its batches are answered with the error; once the store takes writes
// again, the driver commits what was pending at its next tick and is
// healthy, without a new batch.
func TestHealthFollowsTheStore(t *testing.T) {
	fs := &failingStore{Store: mem.New()}
	pol := run.LivePolicy(time.Second)
	pol.IdleCheck = 10 * time.Millisecond
	d, _ := newDriver(t, run.Config{Store: fs, Policy: pol, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	defer d.Close(ctx)
	fr := ingest.NewFramer("webhook", 0)
	var recs []ingest.Record
	for i, l := range bytes.Split(bytes.TrimSpace(exampleLog(t)), []byte{'\n'}) {
		recs = fr.Line(int64(i+1), l, recs)
	}
	fs.failing.Store(true)
	res, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: recs[:50]}, true)
	if err != nil || res.Err == nil || d.Health() == nil || d.Ready() {
		t.Fatalf("a batch whose commit failed: %+v, %v; health %v", res, err, d.Health())
	}
	fs.failing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for d.Health() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still unhealthy after the store recovered: %v", d.Health())
		}
		time.Sleep(5 * time.Millisecond)
	}
	n := 0
	fs.Scan(ctx, nil, time.Time{}, func(state.Entry) error { n++; return nil })
	if n == 0 {
		t.Fatal("the pending writes were not committed once the store recovered")
	}
}

// An event with no time of its own is a bad record in a scan (reported,
// not evaluated: no alert dated the year 1); in rule tests it is judged at
// the time the test runs.
func TestUntimedEvents(t *testing.T) {
	rec := []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"u1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/secrets","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.1"],"userAgent":"curl/8","annotations":{"authorization.k8s.io/decision":"allow"},"objectRef":{"resource":"secrets"}}` + "\n")
	var bad []ingest.BadRecord
	pol := run.BatchPolicy()
	pol.Windows = engine.WindowsInMemory
	as, st := scan(t, rec, run.Config{Policy: pol, OnBad: func(_ string, b ingest.BadRecord) { bad = append(bad, b) }})
	if len(as) != 0 || st.Bad != 1 || len(bad) != 1 || !errors.Is(bad[0].Err, ingest.ErrNoTime) {
		t.Fatalf("scan: %d alerts, %d bad (%v)", len(as), st.Bad, bad)
	}
	as, st = scan(t, rec, run.Config{Policy: run.TestPolicy()})
	if len(as) == 0 || st.Bad != 0 {
		t.Fatalf("rule test policy: %d alerts, %d bad", len(as), st.Bad)
	}
	for _, a := range as {
		if a.Timestamp.Year() < 2000 {
			t.Fatalf("alert %s dated %s", a.ID, a.Timestamp)
		}
	}
}

// The bytes counted are the bytes read, a sparse file's hole (one line of
// zero bytes longer than the record limit) included.
func TestBytesOfSparseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sparse.log")
	log := exampleLog(t)
	if err := os.WriteFile(path, log, 0o600); err != nil {
		t.Fatal(err)
	}
	size := int64(len(log)) + 40<<20
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append([]byte("\n"), log...))
	f.Close()
	size += int64(len(log)) + 1
	d, _ := newDriver(t, run.Config{Policy: run.TestPolicy()})
	ctx := context.Background()
	if err := d.Run(ctx, &run.Files{Paths: []string{path}}); err != nil {
		t.Fatal(err)
	}
	d.Close(ctx)
	st := d.Stats()
	lines := int64(bytes.Count(log, []byte{'\n'}))
	if st.Bytes != size || st.Events != 2*lines || st.Bad != 1 {
		t.Fatalf("read %d bytes (%d events, %d bad), want %d bytes, %d events and the hole as 1 bad record", st.Bytes, st.Events, st.Bad, size, 2*lines)
	}
}
