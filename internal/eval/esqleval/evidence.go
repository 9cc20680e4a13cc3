package esqleval

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
)

// EvidenceLimit is how many events the Evidence of an output row names at
// most; the total counts them all.
const EvidenceLimit = 10

// EventRef names one event that an output row counts.
type EventRef struct {
	Time    time.Time // the event's time (zero when it has none)
	AuditID string    // kubernetes.audit.auditID ("" when the event has none)
	Origin  string    // where the event was read (file:line)
}

// Evidence is what an output row counts: Total events, of which Events
// are the earliest EvidenceLimit in the order of (Time, AuditID, Origin).
// It is the same whatever order the events came in and however the states
// that counted them were split, exported, imported and merged.
type Evidence struct {
	Total  int64
	Events []EventRef
}

// compareRef orders event references by time, then auditID, then origin.
func compareRef(a, b *EventRef) int {
	if n := a.Time.Compare(b.Time); n != 0 {
		return n
	}
	if n := strings.Compare(a.AuditID, b.AuditID); n != 0 {
		return n
	}
	return strings.Compare(a.Origin, b.Origin)
}

// evidence is the evidence kept for one group or row: the total and the
// earliest EvidenceLimit references, sorted. seq is the AddFrom call that
// last counted an event here, so that an event that gives a group several
// rows counts once.
type evidence struct {
	total int64
	refs  []EventRef
	seq   uint64
}

// refSize estimates the memory one kept reference takes.
func refSize(r *EventRef) int64 { return int64(64 + len(r.AuditID) + len(r.Origin)) }

// wants reports whether a reference at t with auditID would be kept: there
// is room, or it sorts before the last one kept. Ties on both need the
// origin, which the caller formats only then.
func (ev *evidence) wants(t time.Time, auditID string) bool {
	if len(ev.refs) < EvidenceLimit {
		return true
	}
	last := &ev.refs[len(ev.refs)-1]
	if n := t.Compare(last.Time); n != 0 {
		return n < 0
	}
	return auditID <= last.AuditID
}

// insert keeps r (which owns its strings) if it is among the earliest, and
// returns the change in bytes. An identical reference is kept once.
func (ev *evidence) insert(r EventRef) int64 {
	i, found := slices.BinarySearchFunc(ev.refs, &r, func(a EventRef, b *EventRef) int { return compareRef(&a, b) })
	if found || i >= EvidenceLimit {
		return 0
	}
	var d int64
	if len(ev.refs) == EvidenceLimit {
		d -= refSize(&ev.refs[len(ev.refs)-1])
		ev.refs = ev.refs[:len(ev.refs)-1]
	}
	ev.refs = slices.Insert(ev.refs, i, r)
	return d + refSize(&r)
}

// note counts event e once per call seq and returns the change in bytes.
// It copies e's auditID and origin only when e is kept and not kept
// already (an event read twice).
func (ev *evidence) note(e *event.Event, seq uint64) int64 {
	if ev.seq == seq {
		return 0
	}
	ev.seq = seq
	ev.total++
	t := e.Time()
	if !ev.wants(t, e.AuditID) {
		return 0
	}
	var buf [128]byte
	origin := appendOrigin(buf[:0], e.Origin)
	i, found := slices.BinarySearchFunc(ev.refs, 0, func(r EventRef, _ int) int { return compareKey(&r, t, e.AuditID, origin) })
	if found || i >= EvidenceLimit {
		return 0
	}
	return ev.insert(EventRef{Time: t, AuditID: strings.Clone(e.AuditID), Origin: string(origin)})
}

// appendOrigin appends o as event.Origin.String formats it.
func appendOrigin(dst []byte, o event.Origin) []byte {
	dst = append(dst, o.Name...)
	if o.Line == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, ':'), o.Line, 10)
}

// compareKey is compareRef against a reference given by its parts.
func compareKey(r *EventRef, t time.Time, auditID string, origin []byte) int {
	if n := r.Time.Compare(t); n != 0 {
		return n
	}
	if n := strings.Compare(r.AuditID, auditID); n != 0 {
		return n
	}
	return bytes.Compare([]byte(r.Origin), origin)
}

// merge folds o into ev and returns the change in bytes.
func (ev *evidence) merge(o *evidence) int64 {
	ev.total += o.total
	var d int64
	for _, r := range o.refs {
		if ev.wants(r.Time, r.AuditID) {
			d += ev.insert(r)
		}
	}
	return d
}

// export returns the evidence in the form of Table.Evidence.
func (ev *evidence) export() *Evidence {
	return &Evidence{Total: ev.total, Events: slices.Clone(ev.refs)}
}

// noTime encodes the zero time.
const noTime = math.MinInt64

func appendRefTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(dst, noTime)
	}
	return binary.AppendVarint(dst, t.UnixNano())
}

// appendTo appends the evidence's encoding: the total, then the kept
// references in order.
func (ev *evidence) appendTo(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(ev.total))
	dst = binary.AppendUvarint(dst, uint64(len(ev.refs)))
	for i := range ev.refs {
		dst = appendRef(dst, &ev.refs[i])
	}
	return dst
}

func appendRef(dst []byte, r *EventRef) []byte {
	dst = appendRefTime(dst, r.Time)
	dst = appendBytes(dst, []byte(r.AuditID))
	return appendBytes(dst, []byte(r.Origin))
}

// decode reads appendTo's encoding into a zero evidence and returns the
// rest of b and the bytes the evidence takes.
func (ev *evidence) decode(b []byte) ([]byte, int64, error) {
	total, b, err := readUvarint(b)
	if err != nil || total > math.MaxInt64 {
		return nil, 0, errCorrupt
	}
	n, b, err := readUvarint(b)
	if err != nil || n > EvidenceLimit || n > total {
		return nil, 0, errCorrupt
	}
	ev.total = int64(total)
	var size int64
	for range n {
		var r EventRef
		if r, b, err = decodeRef(b); err != nil {
			return nil, 0, err
		}
		if k := len(ev.refs); k > 0 && compareRef(&ev.refs[k-1], &r) >= 0 {
			return nil, 0, errCorrupt // not in order: not Export's output
		}
		ev.refs = append(ev.refs, r)
		size += refSize(&r)
	}
	return b, size, nil
}

func decodeRef(b []byte) (EventRef, []byte, error) {
	ns, k := binary.Varint(b)
	if k <= 0 {
		return EventRef{}, nil, errCorrupt
	}
	b = b[k:]
	var r EventRef
	if ns != noTime {
		r.Time = time.Unix(0, ns).UTC()
	}
	id, b, err := readBytes(b)
	if err != nil {
		return EventRef{}, nil, err
	}
	origin, b, err := readBytes(b)
	if err != nil {
		return EventRef{}, nil, err
	}
	r.AuditID, r.Origin = string(id), string(origin)
	return r, b, nil
}
