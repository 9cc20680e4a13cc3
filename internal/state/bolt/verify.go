package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// walker walks the B+trees of a bbolt file page by page with ReadAt, the
// way bbolt's Tx.Check does, but with every offset checked before it is
// used, so that a damaged file gives errors, never a fault or a panic.
// Strict, the first problem stops the walk; tolerant (for salvage), a page
// or element that cannot be read is recorded and skipped.
type walker struct {
	f        *boltFile
	hwm      uint64
	seen     bitmap // pages reached: meta, freelist, tree pages, overflow
	free     bitmap // pages in the freelist
	bufs     [maxDepth + 1][]byte
	tolerant bool
	problems []error // tolerant: what was skipped
	lostPage int     // tolerant: pages skipped
}

// leafFunc is called with each element of each leaf page walked; key and
// value are valid until it returns.
type leafFunc func(flags uint32, key, value []byte, depth int) error

func newWalker(f *boltFile, hwm uint64, tolerant bool) *walker {
	return &walker{f: f, hwm: hwm, seen: newBitmap(hwm), free: newBitmap(hwm), tolerant: tolerant}
}

// problem returns err when strict; when tolerant it keeps the first few
// and returns nil, so that the walk goes on.
func (w *walker) problem(err error) error {
	if !w.tolerant {
		return err
	}
	if len(w.problems) < 20 {
		w.problems = append(w.problems, err)
	}
	return nil
}

// claim marks the pages of p seen; they must be neither seen nor free.
func (w *walker) claim(p *page) error {
	for id := p.id; id <= p.id+uint64(p.overflow); id++ {
		switch {
		case w.seen.get(id):
			return fmt.Errorf("page %d is reached twice", id)
		case w.free.get(id):
			return fmt.Errorf("page %d is in use and in the freelist", id)
		}
	}
	for id := p.id; id <= p.id+uint64(p.overflow); id++ {
		w.seen.set(id)
	}
	return nil
}

// freelist reads the freelist page id and marks its pages free.
func (w *walker) freelist(id uint64) error {
	if id < 2 {
		return fmt.Errorf("freelist page %d is a meta page", id)
	}
	p, err := w.f.readPage(id, w.hwm, &w.bufs[0])
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if p.flags != flagFreelist {
		return fmt.Errorf("freelist page %d has flags %#x, not a freelist's", id, p.flags)
	}
	if err := w.claim(&p); err != nil {
		return err
	}
	at, n := pageHeaderSize, uint64(p.count)
	if p.count == 0xFFFF {
		if len(p.b) < at+8 {
			return fmt.Errorf("freelist page %d is too short for its count", id)
		}
		n, at = native.Uint64(p.b[at:]), at+8
	}
	if n > uint64(len(p.b)-at)/8 {
		return fmt.Errorf("freelist page %d lists %d pages, more than fit in it", id, n)
	}
	for i := range int(n) {
		fid := native.Uint64(p.b[at+8*i:])
		switch {
		case fid < 2 || fid >= w.hwm:
			return fmt.Errorf("freelist page %d lists page %d, outside pages 2 to %d", id, fid, w.hwm-1)
		case w.free.get(fid):
			return fmt.Errorf("freelist page %d lists page %d twice", id, fid)
		case w.seen.get(fid):
			return fmt.Errorf("page %d is in use and in the freelist", fid)
		}
		w.free.set(fid)
	}
	return nil
}

// tree walks the tree rooted at page id, whose keys must lie in [lo, hi)
// (nil bounds are open), calling fn for every leaf element.
func (w *walker) tree(id uint64, lo, hi []byte, depth int, fn leafFunc) error {
	if depth >= maxDepth {
		return w.problem(fmt.Errorf("page %d: pages and buckets nested more than %d deep", id, maxDepth))
	}
	if id < 2 {
		return w.problem(fmt.Errorf("page %d is a meta page but is reached as a tree page", id))
	}
	p, err := w.f.readPage(id, w.hwm, &w.bufs[depth])
	if err == nil && p.flags != flagBranch && p.flags != flagLeaf {
		err = fmt.Errorf("page %d has flags %#x, neither a branch's nor a leaf's", id, p.flags)
	}
	if err == nil {
		err = w.claim(&p)
	}
	if err == nil {
		err = p.elemsFit()
	}
	if err == nil && p.flags == flagBranch && p.count == 0 {
		err = fmt.Errorf("branch page %d is empty", id)
	}
	if err != nil {
		w.lostPage++
		return w.problem(err)
	}
	if p.flags == flagLeaf {
		return w.leaves(&p, lo, hi, depth, false, fn)
	}
	var prev []byte
	for i := range p.count {
		key, child, err := p.branch(i)
		if err != nil {
			if err := w.problem(err); err != nil {
				return err
			}
			continue
		}
		if err := w.order(&p, i, key, prev, lo, hi); err != nil {
			return err
		}
		next := hi
		if i+1 < p.count {
			if k, _, err := p.branch(i + 1); err == nil {
				next = k
			}
		}
		if err := w.tree(child, key, next, depth+1, fn); err != nil {
			return err
		}
		prev = key
	}
	return nil
}

// order checks that key, element i of p, follows prev and lies in [lo, hi).
func (w *walker) order(p *page, i int, key, prev, lo, hi []byte) error {
	if w.tolerant {
		return nil
	}
	switch {
	case prev != nil && bytes.Compare(prev, key) >= 0:
		return fmt.Errorf("page %d: key %d %q does not follow key %q", p.id, i, key, prev)
	case lo != nil && bytes.Compare(key, lo) < 0:
		return fmt.Errorf("page %d: key %d %q is before %q, where its parent puts the page", p.id, i, key, lo)
	case hi != nil && bytes.Compare(key, hi) >= 0:
		return fmt.Errorf("page %d: key %d %q is not before %q, where its parent ends the page", p.id, i, key, hi)
	}
	return nil
}

// leaves calls fn for the elements of the leaf page p.
func (w *walker) leaves(p *page, lo, hi []byte, depth int, inline bool, fn leafFunc) error {
	var prev []byte
	for i := range p.count {
		flags, key, value, err := p.leaf(i)
		if err == nil && inline && flags == flagBucket {
			err = fmt.Errorf("inline bucket holds bucket %q", key)
		}
		if err != nil {
			if err := w.problem(err); err != nil {
				return err
			}
			continue
		}
		if err := w.order(p, i, key, prev, lo, hi); err != nil {
			return err
		}
		if err := fn(flags, key, value, depth); err != nil {
			return err
		}
		prev = key
	}
	return nil
}

// bucket walks the bucket whose header (a bucket element's value) is v.
func (w *walker) bucket(name, v []byte, depth int, fn leafFunc) error {
	root := native.Uint64(v)
	if root != 0 {
		return w.tree(root, nil, nil, depth+1, fn)
	}
	p, err := inlinePage(v)
	if err != nil {
		return w.problem(fmt.Errorf("bucket %q: %w", name, err))
	}
	return w.leaves(&p, nil, nil, depth, true, fn)
}

// check walks, strictly, everything bbolt reads of the file from its
// current meta page: the freelist, and every page of every bucket.
func (w *walker) check() error {
	m := w.f.metas[w.f.cur]
	w.seen.set(0)
	w.seen.set(1)
	if m.freelist != noFreelist {
		if err := w.freelist(m.freelist); err != nil {
			return err
		}
	}
	var visit leafFunc
	visit = func(flags uint32, key, value []byte, depth int) error {
		if flags == flagBucket {
			return w.bucket(key, value, depth, visit)
		}
		return nil
	}
	return w.tree(m.root, nil, nil, 0, visit)
}

// report is what verify finds that does not stop bbolt from reading the
// file safely, and that Store.Check reports.
type report struct {
	leaked    uint64 // pages neither reachable nor free
	firstLeak uint64
	otherMeta error // the meta page bbolt does not use is not valid
}

// verify checks the bbolt file r of the given size as Open needs it: the
// meta pages (at least one valid, as bbolt requires; the current one
// consistent with the file's size), the freelist (every id in range and
// listed once), and every page of every bucket reached from the current
// meta (in range, of the right type, reached once and not free, every
// element inside its page, keys in order within pages and between a page
// and its parent). It reads every page in use once. An error describes the
// first damage found; errEmpty and errNotBolt mean no bbolt file at all.
func verify(r io.ReaderAt, size int64) (report, error) {
	var rep report
	f, err := readBoltFile(r, size)
	if err != nil {
		return rep, err
	}
	if err := f.checkMeta(); err != nil {
		return rep, err
	}
	rep.otherMeta = f.errs[1-f.cur]
	w := newWalker(f, f.metas[f.cur].hwm, false)
	if err := w.check(); err != nil {
		return rep, err
	}
	if f.metas[f.cur].freelist != noFreelist {
		for id := uint64(2); id < w.hwm; id++ {
			if !w.seen.get(id) && !w.free.get(id) {
				if rep.leaked == 0 {
					rep.firstLeak = id
				}
				rep.leaked++
			}
		}
	}
	return rep, nil
}

// err describes what the report holds, or is nil.
func (r report) err() error {
	var errs []error
	if r.otherMeta != nil {
		errs = append(errs, fmt.Errorf("the meta page bbolt does not use is damaged: %w", r.otherMeta))
	}
	if r.leaked > 0 {
		errs = append(errs, fmt.Errorf("%d pages are neither in use nor free (the first is page %d)", r.leaked, r.firstLeak))
	}
	return errors.Join(errs...)
}

// bitmap is a set of page ids below a bound; ids beyond it are never set.
type bitmap []uint64

func newBitmap(n uint64) bitmap { return make(bitmap, (n+63)/64) }

func (b bitmap) get(i uint64) bool {
	return i/64 < uint64(len(b)) && b[i/64]&(1<<(i%64)) != 0
}

func (b bitmap) set(i uint64) {
	if i/64 < uint64(len(b)) {
		b[i/64] |= 1 << (i % 64)
	}
}
