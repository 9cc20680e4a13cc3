package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Stats describes a generated log.
type Stats struct {
	// Events is the number of events written.
	Events int
	// Bytes is the size of the output, newlines included (for EventList
	// batches, the size of the batches).
	Bytes int64
	// EventBytes is the size of the event lines alone, newlines included;
	// it equals Bytes for Generate.
	EventBytes int64
	// Anonymous counts events from system:anonymous.
	Anonymous int
	// WithBody counts events with a requestObject or a responseObject.
	WithBody int
}

// MeanSize is the mean size of an event line in bytes, newline included.
func (s Stats) MeanSize() float64 { return ratio(float64(s.EventBytes), s.Events) }

// AnonymousRatio is the fraction of anonymous events.
func (s Stats) AnonymousRatio() float64 { return ratio(float64(s.Anonymous), s.Events) }

// BodyRatio is the fraction of events with bodies.
func (s Stats) BodyRatio() float64 { return ratio(float64(s.WithBody), s.Events) }

func ratio(x float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return x / float64(n)
}

// Generator produces the events of one log, one at a time. It is not safe
// for concurrent use; independent Generators share nothing.
type Generator struct {
	r        *rand.Rand
	opts     Options
	clusters []*cluster
	clock    time.Time // arrival time of the last or next event, before jitter
	n        int       // events generated, bursts aside
	// due says clock is the arrival of the next event, drawn already
	// because bursts are merged by arrival time.
	due    bool
	bursts *burstPlan // nil without bursts
	normal personaTable
	bodies personaTable
	anon   personaTable
	// bodyCut is the probability that an authenticated event has a body.
	bodyCut float64
	buf     bytes.Buffer
	enc     *json.Encoder
	stats   Stats
}

// personaTable picks personas by cumulative weight.
type personaTable struct {
	cum   []int
	build []func(x *call, body bool)
}

func newTable(ps []persona, body bool) personaTable {
	var t personaTable
	total := 0
	for _, p := range ps {
		w := p.weight
		if body {
			w = p.bodyWeight
		}
		if w == 0 {
			continue
		}
		total += w
		t.cum = append(t.cum, total)
		t.build = append(t.build, p.build)
	}
	return t
}

func (t *personaTable) pick(r *rand.Rand) func(x *call, body bool) {
	n := r.IntN(t.cum[len(t.cum)-1])
	for i, c := range t.cum {
		if n < c {
			return t.build[i]
		}
	}
	panic("BUG: persona weight out of range")
}

// NewGenerator validates opts and returns a Generator for them; opts.Events
// is ignored (the caller decides when to stop).
func NewGenerator(opts Options) (*Generator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	seed := uint64(opts.Seed)
	g := &Generator{
		r:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		opts:   opts,
		clock:  opts.Start,
		normal: newTable(personas, false),
		bodies: newTable(personas, true),
		anon:   newTable(anonymousPersonas, false),
	}
	if opts.AnonymousRatio < 1 {
		g.bodyCut = opts.BodyRatio / (1 - opts.AnonymousRatio)
	}
	for i := range opts.Clusters {
		g.clusters = append(g.clusters, newCluster(g.r, i, opts.NodesPerCluster))
	}
	if opts.Bursts > 0 {
		g.bursts = newBurstPlan(seed, opts.Bursts, opts.Start)
	}
	g.enc = json.NewEncoder(&g.buf)
	return g, nil
}

// next builds the next event: the traffic's next arrival, or the next
// request of a burst when that comes first. Bursts draw from a random
// source of their own, so the traffic between them is the same bytes
// with and without bursts.
func (g *Generator) next() *auditv1.Event {
	if !g.due && g.n > 0 {
		g.clock = g.clock.Add(time.Duration(g.r.ExpFloat64() / g.opts.Rate * float64(time.Second)))
	}
	g.due = true
	if g.bursts != nil && g.bursts.peek(g.clusters).Before(g.clock) {
		e, x := g.bursts.pop()
		e.StageTimestamp = metav1.NewMicroTime(x.now)
		e.RequestReceivedTimestamp = metav1.NewMicroTime(x.now.Add(-x.latency))
		return e
	}
	g.due = false
	g.n++
	// Up to 2 ms of jitter: neighbours may be out of order by that much,
	// as in a real log, where requests finish in a different order than
	// they are written.
	now := g.clock.Add(time.Duration(g.r.IntN(2000)) * time.Microsecond)
	e := &auditv1.Event{
		TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		Level:    auditv1.LevelMetadata,
		AuditID:  types.UID(newUUID(g.r)),
		Stage:    auditv1.StageResponseComplete,
	}
	x := call{r: g.r, c: g.clusters[g.r.IntN(len(g.clusters))], e: e, now: now}
	switch u := g.r.Float64(); {
	case u < g.opts.AnonymousRatio:
		g.anon.pick(g.r)(&x, false)
	case g.r.Float64() < g.bodyCut:
		g.bodies.pick(g.r)(&x, true)
	default:
		g.normal.pick(g.r)(&x, false)
		if e.Stage == auditv1.StageResponseComplete && e.Verb != "watch" && g.r.IntN(100) < 2 {
			// The RequestReceived stage is written before authorization.
			e.Stage = auditv1.StageRequestReceived
			e.Annotations = nil
			e.ResponseStatus = nil
			x.latency = time.Duration(g.r.IntN(50)) * time.Microsecond
		}
	}
	e.StageTimestamp = metav1.NewMicroTime(now)
	e.RequestReceivedTimestamp = metav1.NewMicroTime(now.Add(-x.latency))
	return e
}

// AppendEvent appends the next event to dst as one JSON line, exactly as
// kube-apiserver's log backend writes it, and returns the extended slice.
func (g *Generator) AppendEvent(dst []byte) []byte {
	e := g.next()
	g.buf.Reset()
	if err := g.enc.Encode(e); err != nil {
		panic(fmt.Sprintf("BUG: cannot marshal generated audit event: %v", err))
	}
	g.count(e, g.buf.Len())
	return append(dst, g.buf.Bytes()...)
}

func (g *Generator) count(e *auditv1.Event, size int) {
	g.stats.Events++
	g.stats.EventBytes += int64(size)
	g.stats.Bytes += int64(size)
	if e.User.Username == "system:anonymous" {
		g.stats.Anonymous++
	}
	if e.RequestObject != nil || e.ResponseObject != nil {
		g.stats.WithBody++
	}
}

// Stats returns the statistics of the events generated so far.
func (g *Generator) Stats() Stats { return g.stats }

// Generate writes opts.Events audit events to w as JSON lines, one
// audit.k8s.io/v1 Event per line, and returns their statistics. The output
// depends only on opts. Errors are invalid options (ErrInvalidOptions) and
// write errors.
func Generate(w io.Writer, opts Options) (Stats, error) {
	g, err := NewGenerator(opts)
	if err != nil {
		return Stats{}, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var line []byte
	for range opts.Events {
		line = g.AppendEvent(line[:0])
		if _, err := bw.Write(line); err != nil {
			return g.stats, fmt.Errorf("cannot write generated audit log: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return g.stats, fmt.Errorf("cannot write generated audit log: %w", err)
	}
	return g.stats, nil
}

// GenerateEventList returns the events of Generate(opts) as webhook
// request bodies: audit.k8s.io/v1 EventList objects of at most batchSize
// items each, as kube-apiserver's webhook backend sends them (one JSON
// value and a newline). The caller owns the returned slices. Stats.Bytes is
// the total size of the bodies. Errors are invalid options or batch size
// (ErrInvalidOptions).
func GenerateEventList(opts Options, batchSize int) ([][]byte, Stats, error) {
	var out [][]byte
	st, err := eachEventList(opts, batchSize, func(body []byte) error {
		out = append(out, bytes.Clone(body))
		return nil
	})
	if err != nil {
		return nil, st, err
	}
	return out, st, nil
}

// WriteEventLists writes the bodies of GenerateEventList to w one after
// the other (each is one line), without holding them all in memory.
func WriteEventLists(w io.Writer, opts Options, batchSize int) (Stats, error) {
	return eachEventList(opts, batchSize, func(body []byte) error {
		if _, err := w.Write(body); err != nil {
			return fmt.Errorf("cannot write generated audit event list: %w", err)
		}
		return nil
	})
}

// eachEventList calls fn with each EventList body; the slice is only valid
// during the call.
func eachEventList(opts Options, batchSize int, fn func(body []byte) error) (Stats, error) {
	if batchSize <= 0 {
		return Stats{}, fmt.Errorf("%w: event list batch size must be positive, got %d", ErrInvalidOptions, batchSize)
	}
	g, err := NewGenerator(opts)
	if err != nil {
		return Stats{}, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	list := auditv1.EventList{TypeMeta: metav1.TypeMeta{Kind: "EventList", APIVersion: "audit.k8s.io/v1"}}
	var batchBytes int64
	for done := 0; done < opts.Events; {
		n := min(batchSize, opts.Events-done)
		list.Items = list.Items[:0]
		for range n {
			e := g.next()
			// Size of the event as a line, for the per-event statistics.
			g.buf.Reset()
			if err := g.enc.Encode(e); err != nil {
				panic(fmt.Sprintf("BUG: cannot marshal generated audit event: %v", err))
			}
			g.count(e, g.buf.Len())
			list.Items = append(list.Items, *e)
		}
		buf.Reset()
		if err := enc.Encode(&list); err != nil {
			panic(fmt.Sprintf("BUG: cannot marshal generated audit event list: %v", err))
		}
		done += n
		if err := fn(buf.Bytes()); err != nil {
			g.stats.Bytes = batchBytes
			return g.stats, err
		}
		batchBytes += int64(buf.Len())
	}
	g.stats.Bytes = batchBytes
	return g.stats, nil
}

// rawUnknown wraps JSON the generator built itself.
func rawUnknown(b []byte) *runtime.Unknown {
	return &runtime.Unknown{Raw: b, ContentType: runtime.ContentTypeJSON}
}
