package run

import (
	"sync"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/prefilter"
)

// Decoding. A batch is decoded into a decoded result — its events, copied
// out of the reader's scratch space (event.CopyTo), and its bad records, in
// the order of the input — either by one of Config.Decoders goroutines,
// while the driver's goroutine evaluates the batches before it, or in the
// driver's goroutine itself (Decoders 0). Either way the same code decodes
// and the driver then evaluates the result in input order, so the alerts,
// their order and the reports are the same whatever the number of
// decoders. What depends on the order of events — the redelivery dedup,
// the engine, the watermark — runs only in the driver's goroutine.
//
// The prefilter (internal/prefilter) is tested on each event as it is
// decoded: an event that fails it is never evaluated — no rule can match
// it — though it still moves the watermark, counts, and goes through the
// redelivery dedup. Every record is still decoded with every field the
// rules read, so a record is bad, or read with a warning, exactly as
// without the prefilter.

// itemKind says what one item of a decoded batch is.
type itemKind uint8

const (
	itemEvent  itemKind = iota // an event: decoded.evs[ev]
	itemBad                    // a bad record
	itemSkip                   // a record skipped on purpose (ErrSkipped)
	itemWarn                   // a record read with a warning
	itemStrict                 // a strict run's first bad record: decoding stopped
)

type item struct {
	kind itemKind
	ev   int
	cand bool // the event may match a rule (the prefilter's verdict)
	bad  ingest.BadRecord
	err  error
}

// decoded is a batch after decoding.
type decoded struct {
	gen   uint64 // the fields generation it was decoded with
	evs   []event.Event
	items []item
	arena []byte
	stats ingest.Stats // what its reader counted for it
	done  chan struct{}
}

// decodeConfig is what decoders decode with; a reload makes a new one.
type decodeConfig struct {
	gen    uint64
	fields event.FieldSet       // what the rules and observers read
	pf     *prefilter.Prefilter // nil: every event is evaluated
}

// newDecodeConfig is the decoding configuration for the rules of eng.
func (d *Driver) newDecodeConfig(gen uint64, eng *engine.Engine) *decodeConfig {
	c := &decodeConfig{gen: gen, fields: eng.Fields()}
	var obs event.FieldSet
	for _, o := range d.cfg.Observers {
		obs.Union(o.Fields())
	}
	c.fields.Union(obs)
	if !d.cfg.NoPrefilter {
		c.pf = prefilter.New(eng.Rules())
	}
	return c
}

// decoder decodes batches: one per decoding goroutine, and one in the
// driver's goroutine. It is not safe for concurrent use.
type decoder struct {
	d   *Driver
	gen uint64
	rd  *ingest.Reader
	chk *prefilter.Checker // nil without a prefilter
	cur *decoded
	n   int // events in cur
}

// ensure builds the reader for cfg.
func (dc *decoder) ensure(cfg *decodeConfig) {
	if dc.rd != nil && dc.gen == cfg.gen {
		return
	}
	dc.rd, dc.chk = dc.newReader(cfg.fields), nil
	if cfg.pf != nil {
		dc.chk = cfg.pf.NewChecker()
	}
	dc.gen = cfg.gen
}

func (dc *decoder) newReader(fields event.FieldSet) *ingest.Reader {
	rd, err := ingest.NewReader(dc.d.cfg.Registry, ingest.Options{
		Format: dc.d.cfg.Format, Fields: fields, MaxRecordBytes: dc.d.cfg.MaxRecordBytes, Strict: dc.d.cfg.Strict,
		OnBad:  func(b ingest.BadRecord) { dc.cur.items = append(dc.cur.items, item{kind: itemBad, bad: b}) },
		OnSkip: func(b ingest.BadRecord) { dc.cur.items = append(dc.cur.items, item{kind: itemSkip, bad: b}) },
		OnWarn: func(b ingest.BadRecord) { dc.cur.items = append(dc.cur.items, item{kind: itemWarn, bad: b}) },
	})
	if err != nil {
		panic("BUG: the format was validated when the driver was built: " + err.Error())
	}
	return rd
}

// decode decodes b into res.
func (dc *decoder) decode(b *Batch, res *decoded, cfg *decodeConfig) {
	dc.ensure(cfg)
	res.gen = cfg.gen
	res.items, res.arena = res.items[:0], res.arena[:0]
	dc.cur, dc.n = res, 0
	var stable []byte
	// keep copies an event into res, with the prefilter's verdict.
	keep := func(e *event.Event) error {
		cand := true
		if dc.chk != nil {
			cand = dc.chk.Candidate(e) || e.Alt != nil && dc.chk.Candidate(e.Alt)
		}
		dc.add(e, stable, cand)
		return nil
	}
	for i := range b.Records {
		rec := &b.Records[i]
		stable = rec.Data
		var err error
		if rec.Validated && rec.Err == nil {
			err = dc.rd.RecordValidated(rec.Origin, rec.Data, keep)
		} else {
			err = dc.rd.Frame(*rec, keep)
		}
		if err != nil {
			// Only a strict run's bad record stops a batch: keep never
			// fails.
			res.items = append(res.items, item{kind: itemStrict, err: err})
			break
		}
	}
	res.evs = res.evs[:dc.n]
	res.stats = ingest.Stats{}
	for _, it := range res.items {
		switch it.kind {
		case itemEvent:
			res.stats.Events++
		case itemBad:
			res.stats.Bad++
		case itemSkip:
			res.stats.Skipped++
		case itemWarn:
			res.stats.Warnings++
		}
	}
	res.stats.Records = int64(len(b.Records))
	dc.cur = nil
}

// add copies e into the current result.
func (dc *decoder) add(e *event.Event, stable []byte, cand bool) {
	res := dc.cur
	switch {
	case dc.n < len(res.evs):
	case dc.n < cap(res.evs):
		// An event of a recycled result (putDecoded): its slices'
		// storage is reused.
		res.evs = res.evs[:dc.n+1]
	default:
		res.evs = append(res.evs, event.Event{})
	}
	e.CopyTo(&res.evs[dc.n], stable, &res.arena)
	res.items = append(res.items, item{kind: itemEvent, ev: dc.n, cand: cand})
	dc.n++
}

// decodedPool recycles results, with their events' and arena's storage.
var decodedPool = sync.Pool{New: func() any { return &decoded{} }}

func getDecoded() *decoded {
	res := decodedPool.Get().(*decoded)
	res.done = make(chan struct{})
	return res
}

// putDecoded gives res back once nothing refers to its events any more.
func putDecoded(res *decoded) {
	if cap(res.evs) > 1<<16 || cap(res.arena) > 64<<20 {
		return // an outsized batch: let it go
	}
	res.evs = res.evs[:cap(res.evs)]
	for i := range res.evs {
		// Keep the slices' storage (CopyTo reuses it), drop the rest.
		res.evs[i].Reset()
		res.evs[i].Alt = nil
	}
	res.evs, res.items = res.evs[:0], res.items[:0]
	decodedPool.Put(res)
}

// decodeLoop is one decoding goroutine.
func (d *Driver) decodeLoop() {
	dc := &decoder{d: d}
	for j := range d.decodeQ {
		dc.decode(j.b, j.dec, d.decodeCfg.Load())
		close(j.dec.done)
	}
}
