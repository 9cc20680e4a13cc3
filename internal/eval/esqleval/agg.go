package esqleval

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
)

// aggState is the mergeable, serialisable state of one aggregation in one
// group. add and merge return the growth of the state in bytes (for the
// memory budget).
type aggState interface {
	// add aggregates the values of one row (nil for COUNT(*)).
	add(vs []event.Value) int64
	// merge folds another state of the same aggregation into this one.
	merge(o aggState) int64
	// result returns the aggregated values (nil for null).
	result() []event.Value
	// appendTo appends the state's encoding; decode reads it back into a
	// zero state and returns the rest of b.
	appendTo(dst []byte) []byte
	decode(b []byte) ([]byte, error)
}

func newAggState(a *aggPlan) aggState {
	switch a.kind {
	case aggCountStar:
		return &countState{star: true}
	case aggCount:
		return &countState{}
	case aggSum:
		return &sumState{}
	case aggMin:
		return &minMaxState{}
	case aggMax:
		return &minMaxState{max: true}
	case aggAvg:
		return &avgState{}
	case aggValues:
		return &valuesState{set: map[string]struct{}{}}
	case aggCountDistinct:
		return &distinctState{threshold: a.precision, set: map[string]struct{}{}}
	}
	panic("esqleval: BUG: unknown aggregation")
}

// countState counts rows (COUNT(*), COUNT()) or values (COUNT(x): each value
// of a multi-valued cell counts, nulls do not).
type countState struct {
	star bool
	n    int64
}

func (s *countState) add(vs []event.Value) int64 {
	if s.star {
		s.n++
	} else {
		s.n += int64(len(vs))
	}
	return 0
}
func (s *countState) merge(o aggState) int64     { s.n += o.(*countState).n; return 0 }
func (s *countState) result() []event.Value      { return []event.Value{event.Int(s.n)} }
func (s *countState) appendTo(dst []byte) []byte { return binary.AppendUvarint(dst, uint64(s.n)) }
func (s *countState) decode(b []byte) ([]byte, error) {
	n, b, err := readUvarint(b)
	s.n = int64(n)
	return b, err
}

// sumState sums numbers: integers to a long (null on overflow, as ES|QL),
// doubles (or a mix) to a double.
type sumState struct {
	kind     uint8 // 0 nothing yet, 1 long, 2 double
	overflow bool
	i        int64
	f        float64
}

func (s *sumState) addInt(x int64) {
	if s.kind == 2 {
		s.f += float64(x)
		return
	}
	s.kind = 1
	r := s.i + x
	if (r > s.i) != (x > 0) {
		s.overflow = true
	}
	s.i = r
}

func (s *sumState) addFloat(x float64) {
	if s.kind == 1 {
		s.f = float64(s.i)
	}
	s.kind = 2
	s.f += x
}

func (s *sumState) add(vs []event.Value) int64 {
	for _, v := range vs {
		switch v.Kind {
		case event.KindInt:
			s.addInt(v.I)
		case event.KindFloat:
			s.addFloat(v.F)
		}
	}
	return 0
}

func (s *sumState) merge(o aggState) int64 {
	os := o.(*sumState)
	s.overflow = s.overflow || os.overflow
	switch os.kind {
	case 1:
		s.addInt(os.i)
	case 2:
		s.addFloat(os.f)
	}
	return 0
}

func (s *sumState) result() []event.Value {
	switch {
	case s.kind == 1 && !s.overflow:
		return []event.Value{event.Int(s.i)}
	case s.kind == 2 && !math.IsInf(s.f, 0) && !math.IsNaN(s.f):
		return []event.Value{event.Float(s.f)}
	}
	return nil
}

func (s *sumState) appendTo(dst []byte) []byte {
	dst = append(dst, s.kind, byte(b2i(s.overflow)))
	if s.kind == 2 {
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(s.f))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(s.i))
}

func (s *sumState) decode(b []byte) ([]byte, error) {
	if len(b) < 10 || b[0] > 2 || b[1] > 1 {
		return nil, errCorrupt
	}
	s.kind, s.overflow = b[0], b[1] == 1
	u := binary.BigEndian.Uint64(b[2:])
	if s.kind == 2 {
		s.f = math.Float64frombits(u)
	} else {
		s.i = int64(u)
	}
	return b[10:], nil
}

// minMaxState keeps the smallest or largest value (numbers, dates, strings,
// booleans).
type minMaxState struct {
	max bool
	has bool
	v   event.Value
}

func (s *minMaxState) offer(v event.Value) int64 {
	if v.Kind == event.KindNull {
		return 0
	}
	if s.has {
		n, ok := compareValues(v, s.v)
		if !ok {
			n = totalOrder(v, s.v)
		}
		if (n < 0) == s.max || n == 0 {
			return 0
		}
	}
	old := len(s.v.S)
	if v.Kind == event.KindString {
		v.S = strings.Clone(v.S)
	}
	s.v, s.has = v, true
	return int64(len(v.S) - old)
}

func (s *minMaxState) add(vs []event.Value) int64 {
	var d int64
	for _, v := range vs {
		d += s.offer(v)
	}
	return d
}

func (s *minMaxState) merge(o aggState) int64 {
	if os := o.(*minMaxState); os.has {
		return s.offer(os.v)
	}
	return 0
}

func (s *minMaxState) result() []event.Value {
	if !s.has {
		return nil
	}
	return []event.Value{s.v}
}

func (s *minMaxState) appendTo(dst []byte) []byte {
	if !s.has {
		return append(dst, 0)
	}
	return appendValue(append(dst, 1), s.v)
}

func (s *minMaxState) decode(b []byte) ([]byte, error) {
	if len(b) < 1 || b[0] > 1 {
		return nil, errCorrupt
	}
	if b[0] == 0 {
		return b[1:], nil
	}
	v, rest, err := decodeValue(b[1:])
	s.v, s.has = v, true
	return rest, err
}

// avgState averages numbers as a double.
type avgState struct {
	sum float64
	n   int64
}

func (s *avgState) add(vs []event.Value) int64 {
	for _, v := range vs {
		if isNumeric(v.Kind) {
			s.sum += asFloat(v)
			s.n++
		}
	}
	return 0
}

func (s *avgState) merge(o aggState) int64 {
	os := o.(*avgState)
	s.sum += os.sum
	s.n += os.n
	return 0
}

func (s *avgState) result() []event.Value {
	if s.n == 0 {
		return nil
	}
	return []event.Value{event.Float(s.sum / float64(s.n))}
}

func (s *avgState) appendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(s.sum))
	return binary.AppendUvarint(dst, uint64(s.n))
}

func (s *avgState) decode(b []byte) ([]byte, error) {
	if len(b) < 8 {
		return nil, errCorrupt
	}
	s.sum = math.Float64frombits(binary.BigEndian.Uint64(b))
	n, b, err := readUvarint(b[8:])
	s.n = int64(n)
	return b, err
}

// valuesState collects the distinct values. Elasticsearch does not
// guarantee their order; kanon returns them sorted (numbers, dates, then
// strings byte-wise) for stable output.
type valuesState struct {
	set    map[string]struct{}
	keyBuf []byte
}

func (s *valuesState) insert(k []byte) int64 {
	if _, ok := s.set[string(k)]; ok {
		return 0
	}
	s.set[string(k)] = struct{}{}
	return int64(len(k)) + 48
}

func (s *valuesState) add(vs []event.Value) int64 {
	var d int64
	for _, v := range vs {
		s.keyBuf = appendValue(s.keyBuf[:0], v)
		d += s.insert(s.keyBuf)
	}
	return d
}

func (s *valuesState) merge(o aggState) int64 {
	var d int64
	for k := range o.(*valuesState).set {
		d += s.insert([]byte(k))
	}
	return d
}

func (s *valuesState) result() []event.Value {
	if len(s.set) == 0 {
		return nil
	}
	out := make([]event.Value, 0, len(s.set))
	for k := range s.set {
		v, _, err := decodeValue([]byte(k))
		if err == nil {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, totalOrder)
	return out
}

func (s *valuesState) appendTo(dst []byte) []byte { return appendSet(dst, s.set) }

func (s *valuesState) decode(b []byte) ([]byte, error) { return decodeSet(b, s.set) }

// appendSet encodes a set of byte strings in sorted order, so that equal
// states export equal bytes.
func appendSet(dst []byte, set map[string]struct{}) []byte {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = binary.AppendUvarint(dst, uint64(len(keys)))
	for _, k := range keys {
		dst = appendBytes(dst, []byte(k))
	}
	return dst
}

func decodeSet(b []byte, set map[string]struct{}) ([]byte, error) {
	n, b, err := readUvarint(b)
	if err != nil || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	for range n {
		var k []byte
		if k, b, err = readBytes(b); err != nil {
			return nil, err
		}
		set[string(k)] = struct{}{}
	}
	return b, nil
}

// distinctState is COUNT_DISTINCT: an exact set of values while it holds at
// most threshold values, then a HyperLogLog sketch with the precision
// Elasticsearch derives from the threshold.
type distinctState struct {
	threshold int
	set       map[string]struct{}
	sketch    *hll
	keyBuf    []byte
}

func (s *distinctState) insert(k []byte) int64 {
	if s.sketch != nil {
		s.sketch.add(murmur3(k))
		return 0
	}
	if _, ok := s.set[string(k)]; ok {
		return 0
	}
	s.set[string(k)] = struct{}{}
	d := int64(len(k)) + 48
	if len(s.set) > s.threshold {
		s.sketch = newHLL(precisionFromThreshold(s.threshold))
		for k := range s.set {
			s.sketch.add(murmur3([]byte(k)))
		}
		d = int64(len(s.sketch.reg)) - s.setSize()
		s.set = nil
	}
	return d
}

func (s *distinctState) setSize() int64 {
	var n int64
	for k := range s.set {
		n += int64(len(k)) + 48
	}
	return n
}

func (s *distinctState) add(vs []event.Value) int64 {
	var d int64
	for _, v := range vs {
		s.keyBuf = appendValue(s.keyBuf[:0], v)
		d += s.insert(s.keyBuf)
	}
	return d
}

func (s *distinctState) merge(o aggState) int64 {
	os := o.(*distinctState)
	var d int64
	if os.sketch != nil {
		if s.sketch == nil {
			s.sketch = newHLL(precisionFromThreshold(s.threshold))
			for k := range s.set {
				s.sketch.add(murmur3([]byte(k)))
			}
			d = int64(len(s.sketch.reg)) - s.setSize()
			s.set = nil
		}
		s.sketch.merge(os.sketch)
		return d
	}
	for k := range os.set {
		d += s.insert([]byte(k))
	}
	return d
}

func (s *distinctState) result() []event.Value {
	if s.sketch != nil {
		return []event.Value{event.Int(s.sketch.estimate())}
	}
	return []event.Value{event.Int(int64(len(s.set)))}
}

func (s *distinctState) appendTo(dst []byte) []byte {
	if s.sketch != nil {
		dst = append(dst, 1, s.sketch.p)
		return append(dst, s.sketch.reg...)
	}
	return appendSet(append(dst, 0), s.set)
}

func (s *distinctState) decode(b []byte) ([]byte, error) {
	if len(b) < 1 {
		return nil, errCorrupt
	}
	if b[0] == 0 {
		return decodeSet(b[1:], s.set)
	}
	if b[0] != 1 || len(b) < 2 || b[1] != precisionFromThreshold(s.threshold) {
		return nil, errCorrupt
	}
	s.sketch = newHLL(b[1])
	if len(b)-2 < len(s.sketch.reg) {
		return nil, errCorrupt
	}
	copy(s.sketch.reg, b[2:])
	s.set = nil
	return b[2+len(s.sketch.reg):], nil
}
