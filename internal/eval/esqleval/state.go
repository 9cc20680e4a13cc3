package esqleval

import (
	"encoding/binary"
	"fmt"
	"runtime/debug"

	"github.com/kanon-dev/kanon/internal/event"
)

// Table is the output of a program: named columns and rows of cells.
type Table struct {
	Columns []string
	Rows    []Row
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
	s.rows, s.size = nil, 0
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
func (s *State) Add(env Env, rows []Row) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = bugError(r)
		}
	}()
	if s.table != nil {
		s.c.env = &env
		for _, row := range rows {
			s.c.cols = row
			if err := s.table.add(&s.c); err != nil {
				return err
			}
		}
		return nil
	}
	for _, row := range rows {
		r := row.Clone()
		s.rows = append(s.rows, r)
		s.size += rowSize(r)
		if s.size > s.p.opts.budget {
			return s.p.budgetErr(s.size)
		}
	}
	return nil
}

// AddEvent runs the per-event prefix of the program on e with ev and adds
// the rows to the state.
func (s *State) AddEvent(ev *Evaluator, e *event.Event) error {
	rows, err := ev.Eval(e)
	if err != nil || len(rows) == 0 {
		return err
	}
	return s.Add(ev.Env, rows)
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
	if s.table != nil {
		rows = s.table.rows()
	} else {
		rows = append(rows, s.rows...)
		for i, r := range rows {
			rows[i] = append(Row(nil), r...)
		}
	}
	c := &ctx{env: &env, tmp: make([][]event.Value, p.ntmp)}
	for _, op := range p.rest {
		if rows, err = op(c, rows); err != nil {
			return nil, err
		}
	}
	if !p.lastLimit && p.opts.limit > 0 && len(rows) > p.opts.limit {
		rows = rows[:p.opts.limit]
	}
	return &Table{Columns: p.columns, Rows: rows}, nil
}

// Export state format: magic, version, program hash, then either the groups
// (sorted by key; each key and its aggregation states) or the rows.
const exportMagic = "KES\x01"

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
		}
		return b
	}
	b = append(b, 'R')
	b = binary.AppendUvarint(b, uint64(len(s.rows)))
	for _, r := range s.rows {
		b = binary.AppendUvarint(b, uint64(len(r)))
		for _, cell := range r {
			b = binary.AppendUvarint(b, uint64(len(cell)))
			for _, v := range cell {
				b = appendValue(b, v)
			}
		}
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
	if len(b) < len(exportMagic)+9 || string(b[:len(exportMagic)]) != exportMagic {
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
			s.rows = append(s.rows, r)
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
	for _, r := range o.rows {
		s.rows = append(s.rows, r.Clone())
		s.size += rowSize(r)
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
