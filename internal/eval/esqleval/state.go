package esqleval

import (
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/kanon-dev/kanon/internal/event"
)

// Table is the output of a program: named columns and rows of cells.
type Table struct {
	Columns []string
	Rows    []Row
	// Evidence holds, for each row of a program with a rest (not
	// PerEvent), the events it counts: those of its STATS group (through
	// every later command: a second STATS adds up the evidence of the
	// rows it aggregates), or for a program without STATS the event the
	// row came from. Events fed with State.Add instead of AddFrom or
	// AddEvent are counted in no evidence.
	Evidence []*Evidence
}

// State is the state of one program over one window: the aggregation
// groups when the program aggregates (Program.Aggregates), otherwise the
// rows collected so far. It can be exported, imported and merged, so that
// replicas can share it through a store. A State is not safe for concurrent
// use.
type State struct {
	p     *Program
	table *aggTable
	rows  []Row
	rowEv []evidence // the event of each row kept (rows mode)
	seq   uint64     // AddFrom calls
	size  int64
	c     ctx
}

// NewState returns an empty state for p.
func (p *Program) NewState() *State {
	s := &State{p: p}
	s.Reset()
	return s
}

// Reset empties the state.
func (s *State) Reset() {
	s.rows, s.rowEv, s.size = nil, nil, 0
	s.c = ctx{tmp: make([][]event.Value, s.p.ntmp)}
	if s.p.stats != nil {
		s.table = newAggTable(s.p.stats, s.p)
	}
}

// Len returns the number of groups (aggregating programs) or rows kept.
func (s *State) Len() int {
	if s.table != nil {
		return len(s.table.groups)
	}
	return len(s.rows)
}

// Size estimates the memory the state uses, in bytes; it is what the
// memory budget bounds.
func (s *State) Size() int64 {
	if s.table != nil {
		return s.table.size
	}
	return s.size
}

// Add feeds rows returned by Evaluator.Eval (with the program's
// PrefixColumns) into the state: an aggregating program aggregates them,
// others keep copies. env is the evaluation context of expressions in
// STATS. It returns an error wrapping ErrBudgetExceeded when the state
// outgrows the program's budget; the state is then incomplete and should be
// discarded.
func (s *State) Add(env Env, rows []Row) error {
	return s.add(env, rows, nil)
}

// AddFrom is Add for the rows that Evaluator.Eval returned for event e:
// each group the rows fall in (or each row kept) also counts e in its
// Evidence (once, however many of the rows fall in the group). Only the
// earliest EvidenceLimit events of a group are named, so the per-event
// cost beyond Add is a comparison, and for the events named a copy of the
// auditID and the origin.
func (s *State) AddFrom(env Env, rows []Row, e *event.Event) error {
	return s.add(env, rows, e)
}

func (s *State) add(env Env, rows []Row, e *event.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = bugError(r)
		}
	}()
	if s.table != nil {
		s.c.env = &env
		if e != nil {
			s.seq++
			s.table.cur, s.table.seq = e, s.seq
			defer func() { s.table.cur = nil }()
		}
		for _, row := range rows {
			s.c.cols = row
			if err := s.table.add(&s.c); err != nil {
				return err
			}
		}
		return nil
	}
	var ref evidence
	if e != nil && len(rows) > 0 {
		s.seq++
		ref.note(e, s.seq)
	}
	for _, row := range rows {
		r := row.Clone()
		s.rows = append(s.rows, r)
		s.rowEv = append(s.rowEv, evidence{total: ref.total, refs: ref.refs[:len(ref.refs):len(ref.refs)]})
		s.size += rowSize(r) + evidenceSize(&ref)
		if s.size > s.p.opts.budget {
			return s.p.budgetErr(s.size)
		}
	}
	return nil
}

// evidenceSize estimates the memory the references of ev take.
func evidenceSize(ev *evidence) int64 {
	var n int64
	for i := range ev.refs {
		n += refSize(&ev.refs[i])
	}
	return n
}

// AddEvent runs the per-event prefix of the program on e with ev and adds
// the rows to the state, counting e in their evidence (AddFrom).
func (s *State) AddEvent(ev *Evaluator, e *event.Event) error {
	rows, err := ev.Eval(e)
	if err != nil || len(rows) == 0 {
		return err
	}
	return s.AddFrom(ev.Env, rows, e)
}

func rowSize(r Row) int64 {
	n := int64(24 * len(r))
	for _, c := range r {
		for _, v := range c {
			n += valueSize(v)
		}
	}
	return n
}

// Result runs the rest of the program over the state and returns the output
// table. It does not change the state. Without a final LIMIT, the rows are
// cut to the program's result limit (ES|QL's implicit LIMIT 1000).
func (s *State) Result(env Env) (t *Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, bugError(r)
		}
	}()
	p := s.p
	var rows []Row
	var prov []*evidence
	if s.table != nil {
		rows, prov = s.table.rows()
	} else {
		rows = append(rows, s.rows...)
		prov = make([]*evidence, len(rows))
		for i, r := range rows {
			rows[i] = append(Row(nil), r...)
			prov[i] = &s.rowEv[i]
		}
	}
	c := &ctx{env: &env, tmp: make([][]event.Value, p.ntmp), prov: prov}
	for _, op := range p.rest {
		if rows, err = op(c, rows); err != nil {
			return nil, err
		}
	}
	if !p.lastLimit && p.opts.limit > 0 && len(rows) > p.opts.limit {
		rows = rows[:p.opts.limit]
		c.cutProv(len(rows))
	}
	t = &Table{Columns: p.columns, Rows: rows}
	if p.hasRest {
		t.Evidence = make([]*Evidence, len(c.prov))
		for i, ev := range c.prov {
			t.Evidence[i] = ev.export()
		}
	}
	return t, nil
}

// Export state format: magic with the version, program hash, then either
// the groups (sorted by key; each key, its aggregation states and, from
// version 2, its evidence) or the rows (each row's cells and, from version
// 2, its evidence). Import reads both versions; a state of version 1 has
// no evidence.
const (
	exportMagic   = "KES\x02"
	exportMagicV1 = "KES\x01"
)

// Export encodes the state deterministically: equal states give equal bytes.
func (s *State) Export() []byte {
	b := append([]byte(exportMagic), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint64(b[len(exportMagic):], s.p.hash)
	if s.table != nil {
		b = append(b, 'G')
		gs := s.table.sortedGroups()
		b = binary.AppendUvarint(b, uint64(len(gs)))
		var tmp []byte
		for _, g := range gs {
			b = appendBytes(b, []byte(g.key))
			for _, st := range g.states {
				tmp = st.appendTo(tmp[:0])
				b = appendBytes(b, tmp)
			}
			b = g.ev.appendTo(b)
		}
		return b
	}
	b = append(b, 'R')
	b = binary.AppendUvarint(b, uint64(len(s.rows)))
	for i, r := range s.rows {
		b = binary.AppendUvarint(b, uint64(len(r)))
		for _, cell := range r {
			b = binary.AppendUvarint(b, uint64(len(cell)))
			for _, v := range cell {
				b = appendValue(b, v)
			}
		}
		b = s.rowEv[i].appendTo(b)
	}
	return b
}

// Import replaces the state with one decoded from Export's output. It fails
// with an error wrapping ErrBadState when b is corrupt or was exported by a
// different program; the state is then unchanged.
func (s *State) Import(b []byte) error {
	n := s.p.NewState()
	if err := n.decode(b); err != nil {
		return fmt.Errorf("esqleval: cannot import state: %w: %v", ErrBadState, err)
	}
	*s = *n
	if s.Size() > s.p.opts.budget {
		return s.p.budgetErr(s.Size())
	}
	return nil
}

func (s *State) decode(b []byte) error {
	if len(b) < len(exportMagic)+9 {
		return errCorrupt
	}
	var withEv bool
	switch string(b[:len(exportMagic)]) {
	case exportMagic:
		withEv = true
	case exportMagicV1:
	default:
		return errCorrupt
	}
	if binary.BigEndian.Uint64(b[len(exportMagic):]) != s.p.hash {
		return fmt.Errorf("state of another program")
	}
	b = b[len(exportMagic)+8:]
	mode := b[0]
	b = b[1:]
	switch {
	case mode == 'G' && s.table != nil:
		n, rest, err := readUvarint(b)
		if err != nil || n > uint64(len(rest)) {
			return errCorrupt
		}
		b = rest
		for range n {
			key, rest, err := readBytes(b)
			if err != nil {
				return err
			}
			b = rest
			if !validKey(key, len(s.p.stats.by)) {
				return errCorrupt
			}
			g := s.table.newGroup(string(key))
			if _, dup := s.table.groups[g.key]; dup {
				return errCorrupt
			}
			for _, st := range g.states {
				enc, rest, err := readBytes(b)
				if err != nil {
					return err
				}
				b = rest
				left, err := st.decode(enc)
				if err != nil {
					return err
				}
				if len(left) != 0 {
					return errCorrupt
				}
				s.table.size += int64(len(enc))
			}
			if withEv {
				rest, n, err := g.ev.decode(b)
				if err != nil {
					return err
				}
				b = rest
				s.table.size += n
			}
			s.table.groups[g.key] = g
		}
	case mode == 'R' && s.table == nil:
		n, rest, err := readUvarint(b)
		if err != nil || n > uint64(len(rest)) {
			return errCorrupt
		}
		b = rest
		for range n {
			ncell, rest, err := readUvarint(b)
			if err != nil || ncell != uint64(len(s.p.prefixCols)) {
				return errCorrupt
			}
			b = rest
			r := make(Row, ncell)
			for i := range r {
				nv, rest, err := readUvarint(b)
				if err != nil || nv > uint64(len(rest)) {
					return errCorrupt
				}
				b = rest
				for range nv {
					v, rest, err := decodeValue(b)
					if err != nil {
						return err
					}
					b = rest
					r[i] = append(r[i], v)
				}
			}
			var ev evidence
			if withEv {
				rest, n, err := ev.decode(b)
				if err != nil {
					return err
				}
				b = rest
				s.size += n
			}
			s.rows = append(s.rows, r)
			s.rowEv = append(s.rowEv, ev)
			s.size += rowSize(r)
		}
	default:
		return errCorrupt
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// Merge folds o, a state of the same program, into s: groups are merged
// aggregation by aggregation; collected rows are appended.
func (s *State) Merge(o *State) error {
	if o.p.hash != s.p.hash || (o.table == nil) != (s.table == nil) {
		return fmt.Errorf("esqleval: cannot merge state of another program: %w", ErrBadState)
	}
	if s.table != nil {
		return s.table.merge(o.table)
	}
	for i, r := range o.rows {
		s.rows = append(s.rows, r.Clone())
		ev := o.rowEv[i]
		ev.refs = slices.Clone(ev.refs)
		s.rowEv = append(s.rowEv, ev)
		s.size += rowSize(r) + evidenceSize(&ev)
	}
	if s.size > s.p.opts.budget {
		return s.p.budgetErr(s.size)
	}
	return nil
}

// validKey reports whether key is the encoding of exactly n values.
func validKey(key []byte, n int) bool {
	for range n {
		_, rest, err := decodeValue(key)
		if err != nil {
			return false
		}
		key = rest
	}
	return len(key) == 0
}

func bugError(r any) error {
	return fmt.Errorf("esqleval: BUG: evaluation panic: %v\n%s", r, debug.Stack())
}
