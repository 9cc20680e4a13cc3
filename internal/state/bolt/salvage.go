package bolt

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"

	"github.com/kanon-dev/kanon/internal/state"
)

// Where a salvaged entry was read, best first. An entry read through the
// tree of the current meta page is the store as last committed; the tree of
// the other meta page is the store one commit earlier, whose pages bbolt
// does not reuse before the next commit; a leaf page that no tree reaches
// any more may hold an entry that was since rewritten or deleted.
const (
	fromCurrent = iota
	fromPrevious
	fromOrphan
)

// salvager reads what it can of a damaged bbolt file of kanon's and hands
// every entry that decodes to keep, once per key, best source first: an
// entry of a better source replaces one of a worse, and of two orphan
// versions of a key the one that expires last is kept (kanon rewrites an
// entry with a later expiry).
type salvager struct {
	f        *boltFile
	keep     func(key, raw []byte) error
	kept     map[string]keptEntry
	dropped  map[string]bool // keys read through a tree that did not decode
	problems []error
	lost     int    // tree pages that could not be read
	counted  int64  // the entry counter of the store, -1 if unread
	seen     bitmap // pages a tree walk reached
	limit    uint64 // pages at and beyond it were never committed
}

type keptEntry struct {
	from int
	exp  int64
}

// salvage reads the file r of the given size.
func salvage(r io.ReaderAt, size int64, keep func(key, raw []byte) error) (*salvager, error) {
	sv := &salvager{keep: keep, kept: map[string]keptEntry{}, dropped: map[string]bool{}, counted: -1}
	f, err := readBoltFile(r, size)
	sv.f = f
	switch {
	case err == errEmpty:
		return sv, nil
	case err != nil:
		sv.problems = append(sv.problems, err)
		if f.ps = guessPageSize(r, size); f.ps == 0 {
			return sv, nil
		}
		f.pages = uint64(size) / uint64(f.ps)
		sv.seen, sv.limit = newBitmap(f.pages), f.pages
		return sv, sv.orphans(newBitmap(f.pages))
	}
	// Pages beyond the current high-water mark may hold the writes of a
	// commit that never completed.
	sv.seen, sv.limit = newBitmap(f.pages), min(f.pages, f.metas[f.cur].hwm)
	cur := f.cur
	free, complete, err := sv.tree(cur, fromCurrent)
	if err != nil || complete {
		return sv, err
	}
	if other := 1 - cur; f.errs[other] == nil {
		if _, _, err := sv.tree(other, fromPrevious); err != nil {
			return sv, err
		}
	}
	return sv, sv.orphans(free)
}

// tree walks, tolerantly, the tree of meta page i, and reports the pages its
// freelist lists and whether it read every page of the tree.
func (sv *salvager) tree(i, from int) (free bitmap, complete bool, err error) {
	m := sv.f.metas[i]
	w := newWalker(sv.f, min(m.hwm, sv.f.pages), true)
	w.seen.set(0)
	w.seen.set(1)
	if m.freelist != noFreelist {
		w.tolerant = false
		if err := w.freelist(m.freelist); err != nil {
			sv.problems = append(sv.problems, err)
			w.free = newBitmap(w.hwm) // a damaged freelist says nothing
		}
		w.tolerant = true
	}
	foundData := false
	err = w.tree(m.root, nil, nil, 0, func(flags uint32, key, value []byte, depth int) error {
		if flags != flagBucket {
			return nil
		}
		switch {
		case bytes.Equal(key, bucketData):
			foundData = true
			return w.bucket(key, value, depth, func(flags uint32, k, raw []byte, _ int) error {
				if flags == flagBucket {
					sv.dropped[string(k)] = true
					return nil
				}
				return sv.offer(k, raw, from)
			})
		case bytes.Equal(key, bucketMeta):
			return w.bucket(key, value, depth, func(flags uint32, k, v []byte, _ int) error {
				if flags == 0 && bytes.Equal(k, metaEntries) && len(v) == 8 && sv.counted < 0 {
					sv.counted = int64(binary.BigEndian.Uint64(v))
				}
				return nil
			})
		}
		return nil
	})
	sv.problems = append(sv.problems, w.problems...)
	if from == fromCurrent {
		sv.lost = w.lostPage
	}
	for id := range w.hwm {
		if w.seen.get(id) {
			sv.seen.set(id)
		}
	}
	return w.free, err == nil && foundData && w.lostPage == 0 && len(w.problems) == 0, err
}

// orphans reads every leaf page below the limit that no tree walked and
// that is not free, and offers its entries.
func (sv *salvager) orphans(free bitmap) error {
	var buf []byte
	for id := uint64(2); id < sv.limit; id++ {
		if sv.seen.get(id) || free.get(id) {
			continue
		}
		p, err := sv.f.readPage(id, sv.limit, &buf)
		if err != nil || p.flags != flagLeaf || p.elemsFit() != nil {
			continue
		}
		for i := range p.count {
			if flags, k, raw, err := p.leaf(i); err == nil && flags == 0 {
				if err := sv.offer(k, raw, fromOrphan); err != nil {
					return err
				}
			}
		}
		id += uint64(p.overflow)
	}
	return nil
}

// offer keeps the entry key, raw (expiry header and value) read from the
// given source if it decodes and is the best version of key so far.
func (sv *salvager) offer(key, raw []byte, from int) error {
	exp, v, err := state.DecodeEntry(raw)
	if err == nil {
		err = state.ValidateKey(key)
	}
	if err == nil {
		err = state.ValidateValue(v)
	}
	if err == nil {
		err = state.CheckEntry(key, v)
	}
	if err != nil {
		if from != fromOrphan {
			sv.dropped[string(key)] = true
		}
		return nil
	}
	if old, ok := sv.kept[string(key)]; ok && (old.from < from || old.from == from && (from != fromOrphan || old.exp >= exp)) {
		return nil
	}
	sv.kept[string(key)] = keptEntry{from: from, exp: exp}
	return sv.keep(key, raw)
}

// guessPageSize returns the page size at which most pages of a file
// without a valid meta page identify themselves as tree pages, or 0.
func guessPageSize(r io.ReaderAt, size int64) int {
	best, bestN := 0, 0
	hdr := make([]byte, pageHeaderSize)
	for _, ps := range []int{os.Getpagesize(), 4096, 8192, 16384, 32768, 65536, 1024, 2048} {
		n := 0
		for id := int64(2); (id+1)*int64(ps) <= size; id++ {
			if _, err := r.ReadAt(hdr, id*int64(ps)); err != nil {
				break
			}
			if fl := native.Uint16(hdr[8:]); native.Uint64(hdr) == uint64(id) && (fl == flagLeaf || fl == flagBranch) {
				n++
			}
		}
		if n > bestN {
			best, bestN = ps, n
		}
	}
	return best
}
