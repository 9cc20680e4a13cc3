package run

import (
	"sync"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
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
	fields event.FieldSet
}

// decoder decodes batches: one per decoding goroutine, and one in the
// driver's goroutine. It is not safe for concurrent use.
type decoder struct {
	d   *Driver
	gen uint64
	rd  *ingest.Reader
	cur *decoded
	n   int // events in cur
}

// ensure builds the reader for cfg.
func (dc *decoder) ensure(cfg *decodeConfig) {
	if dc.rd != nil && dc.gen == cfg.gen {
		return
	}
	rd, err := ingest.NewReader(dc.d.cfg.Registry, ingest.Options{
		Format: dc.d.cfg.Format, Fields: cfg.fields, MaxRecordBytes: dc.d.cfg.MaxRecordBytes, Strict: dc.d.cfg.Strict,
		OnBad:  func(b ingest.BadRecord) { dc.cur.items = append(dc.cur.items, item{kind: itemBad, bad: b}) },
		OnSkip: func(b ingest.BadRecord) { dc.cur.items = append(dc.cur.items, item{kind: itemSkip, bad: b}) },
		OnWarn: func(b ingest.BadRecord) { dc.cur.items = append(dc.cur.items, item{kind: itemWarn, bad: b}) },
	})
	if err != nil {
		panic("BUG: the format was validated when the driver was built: " + err.Error())
	}
	dc.rd, dc.gen = rd, cfg.gen
}

// decode decodes b into res.
func (dc *decoder) decode(b *Batch, res *decoded, cfg *decodeConfig) {
	dc.ensure(cfg)
	res.gen = cfg.gen
	res.items, res.arena = res.items[:0], res.arena[:0]
	dc.cur, dc.n = res, 0
	before := dc.rd.Stats()
	var stable []byte
	keep := func(e *event.Event) error {
		if dc.n == len(res.evs) {
			res.evs = append(res.evs, event.Event{})
		}
		e.CopyTo(&res.evs[dc.n], stable, &res.arena)
		res.items = append(res.items, item{kind: itemEvent, ev: dc.n})
		dc.n++
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
	after := dc.rd.Stats()
	res.stats = ingest.Stats{Records: after.Records - before.Records, Events: after.Events - before.Events,
		Bad: after.Bad - before.Bad, Skipped: after.Skipped - before.Skipped, Warnings: after.Warnings - before.Warnings}
	dc.cur = nil
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
