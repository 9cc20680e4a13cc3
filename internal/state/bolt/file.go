package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
)

// The bbolt file format, as far as this package reads it without bbolt (the
// layout of go.etcd.io/bbolt v1.5, internal/common). Integers are in the
// machine's byte order. A file is an array of pages of one size. Pages 0 and
// 1 are meta pages; bbolt uses the valid one with the higher transaction id.
// Every page starts with a 16-byte header: id uint64, flags uint16, count
// uint16, overflow uint32 (the number of pages that follow it as one page).
// A meta page's header is followed by magic, version, page size, flags
// (uint32 each), the root bucket (root page, sequence: uint64 each), the
// freelist page, the high-water mark (the number of pages in use or free)
// and the transaction id (uint64 each), and an FNV-64a checksum of all that.
// A branch page's header is followed by count elements of pos, ksize
// (uint32) and child page (uint64); a leaf page's by count elements of
// flags, pos, ksize, vsize (uint32); pos is relative to the element, and a
// leaf's value follows its key. A leaf element with flag 1 is a bucket: its
// value is root page and sequence, and, when the root page is 0, the
// bucket's only (leaf) page inline. A freelist page holds count page ids,
// or, when count is 0xFFFF, the number of ids as the first uint64.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderSize = 16
	elemSize       = 16 // branch and leaf elements alike
	metaSize       = 64
	metaSumOffset  = 56 // the checksum covers the meta before it
	bucketHeader   = 16

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	flagBucket   = 0x01 // leaf element flag

	noFreelist  = ^uint64(0)
	minPageSize = 1 << 10
	maxPageSize = 1 << 24
	// boltMaxKey is bbolt's limit on the length of a key.
	boltMaxKey = 32768
	// maxDepth bounds the nesting of pages and buckets a walk follows; a
	// sound tree of 4 KiB pages holding a petabyte is less than 20 deep.
	maxDepth = 64
)

var native = binary.NativeEndian

// Errors of the file reader, wrapped with details. errEmpty and errNotBolt
// say the file is no bbolt file at all (so not damaged, but not kanon's);
// every other error of the reader means damage.
var (
	errEmpty   = errors.New("the file is empty (0 bytes)")
	errNotBolt = errors.New("the file is not a bbolt database (no bbolt meta page)")
	errNoMagic = errors.New("no bbolt magic number")
)

// meta is a decoded meta page.
type meta struct {
	pageSize uint32
	root     uint64 // the root bucket's root page
	freelist uint64 // noFreelist when the freelist is not stored
	hwm      uint64 // pages [0, hwm) are in use or free
	txid     uint64
}

// parseMeta decodes the meta of the page b starts with, as bbolt validates
// it: magic number, format version, checksum.
func parseMeta(b []byte) (meta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return meta{}, errNoMagic
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	if native.Uint32(m[0:]) != boltMagic {
		return meta{}, errNoMagic
	}
	if v := native.Uint32(m[4:]); v != boltVersion {
		return meta{}, fmt.Errorf("bbolt format version %d, not %d", v, boltVersion)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumOffset])
	if h.Sum64() != native.Uint64(m[metaSumOffset:]) {
		return meta{}, errors.New("checksum mismatch")
	}
	return meta{
		pageSize: native.Uint32(m[8:]),
		root:     native.Uint64(m[16:]),
		freelist: native.Uint64(m[32:]),
		hwm:      native.Uint64(m[40:]),
		txid:     native.Uint64(m[48:]),
	}, nil
}

// boltFile is a bbolt file read with ReadAt, never mapped: a damaged page
// costs an error, never a fault.
type boltFile struct {
	r     io.ReaderAt
	size  int64
	ps    int     // page size
	pages uint64  // whole pages in the file
	metas [2]meta // metas[i] is valid when metaErr[i] is nil
	errs  [2]error
	cur   int // the meta bbolt uses (the valid one of higher txid), -1 if none
}

// readBoltFile reads the meta pages of the file r of the given size and
// picks the page size and the current meta as bbolt does: from meta page 0,
// or else from a meta page 1 found at one of the page sizes bbolt tries.
// It fails only when neither meta page is valid.
func readBoltFile(r io.ReaderAt, size int64) (*boltFile, error) {
	f := &boltFile{r: r, size: size, cur: -1}
	if size == 0 {
		return f, errEmpty
	}
	buf := make([]byte, pageHeaderSize+metaSize)
	readMeta := func(off int64) (meta, error) {
		if off+int64(len(buf)) > size {
			return meta{}, errors.New("beyond the end of the file")
		}
		if _, err := r.ReadAt(buf, off); err != nil {
			return meta{}, fmt.Errorf("cannot read: %w", err)
		}
		return parseMeta(buf)
	}
	m0, err0 := readMeta(0)
	found := err0 == nil
	if found {
		f.ps = int(m0.pageSize)
	} else {
		for ps := int64(minPageSize); ps <= maxPageSize && ps < size; ps <<= 1 {
			if m, err := readMeta(ps); err == nil && int64(m.pageSize) == ps {
				f.ps, found = int(ps), true
				break
			}
		}
	}
	if !found {
		if errors.Is(err0, errNoMagic) {
			return f, errNotBolt
		}
		return f, fmt.Errorf("both meta pages are damaged (meta page 0: %v)", err0)
	}
	if f.ps < minPageSize || f.ps > maxPageSize || f.ps&(f.ps-1) != 0 {
		return f, fmt.Errorf("meta page gives an impossible page size %d", f.ps)
	}
	f.pages = uint64(size) / uint64(f.ps)
	for i := range 2 {
		f.metas[i], f.errs[i] = readMeta(int64(i) * int64(f.ps))
		if f.errs[i] == nil && int(f.metas[i].pageSize) != f.ps {
			f.errs[i] = fmt.Errorf("page size %d, not the file's %d", f.metas[i].pageSize, f.ps)
		}
	}
	a, b := 0, 1
	if f.metas[1].txid > f.metas[0].txid {
		a, b = 1, 0
	}
	switch {
	case f.errs[a] == nil:
		f.cur = a
	case f.errs[b] == nil:
		f.cur = b
	default:
		return f, fmt.Errorf("both meta pages are damaged (meta page 0: %v; meta page 1: %v)", f.errs[0], f.errs[1])
	}
	return f, nil
}

// checkMeta checks the current meta against the file: its size is whole
// pages, holds every page below the high-water mark, and the root and
// freelist pages are below it.
func (f *boltFile) checkMeta() error {
	m := f.metas[f.cur]
	if f.size%int64(f.ps) != 0 {
		return fmt.Errorf("the file size %d is not a multiple of the page size %d", f.size, f.ps)
	}
	if m.hwm > f.pages || m.hwm < 3 {
		return fmt.Errorf("the file has %d bytes, but its meta page %d says %d pages of %d bytes (%d bytes) are in use: it was truncated", f.size, f.cur, m.hwm, f.ps, m.hwm*uint64(f.ps))
	}
	if m.root < 2 || m.root >= m.hwm {
		return fmt.Errorf("meta page %d gives root page %d, outside the %d pages in use", f.cur, m.root, m.hwm)
	}
	if m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm) {
		return fmt.Errorf("meta page %d gives freelist page %d, outside the %d pages in use", f.cur, m.freelist, m.hwm)
	}
	return nil
}

// page is one page (with its overflow) as read from the file.
type page struct {
	id       uint64
	flags    uint16
	count    int
	overflow uint32
	b        []byte // the whole page, header included
}

// readPage reads page id, with its overflow pages, into buf (grown as
// needed). The page must lie below hwm and identify itself as id.
func (f *boltFile) readPage(id, hwm uint64, buf *[]byte) (page, error) {
	if id >= hwm {
		return page{}, fmt.Errorf("page %d is beyond the %d pages in use", id, hwm)
	}
	ps := uint64(f.ps)
	if cap(*buf) < f.ps {
		*buf = make([]byte, f.ps)
	}
	b := (*buf)[:f.ps]
	if _, err := f.r.ReadAt(b, int64(id*ps)); err != nil {
		return page{}, fmt.Errorf("cannot read page %d: %w", id, err)
	}
	p := page{id: native.Uint64(b), flags: native.Uint16(b[8:]), count: int(native.Uint16(b[10:])), overflow: native.Uint32(b[12:])}
	if p.id != id {
		return page{}, fmt.Errorf("page %d identifies itself as page %d", id, p.id)
	}
	if uint64(p.overflow) >= hwm-id {
		return page{}, fmt.Errorf("page %d has %d overflow pages, beyond the %d pages in use", id, p.overflow, hwm)
	}
	if p.overflow > 0 {
		n := int((uint64(p.overflow) + 1) * ps)
		if cap(*buf) < n {
			*buf = append((*buf)[:cap(*buf)], make([]byte, n-cap(*buf))...)
		}
		b = (*buf)[:n]
		if _, err := f.r.ReadAt(b[f.ps:], int64((id+1)*ps)); err != nil {
			return page{}, fmt.Errorf("cannot read the overflow of page %d: %w", id, err)
		}
	}
	p.b = b
	return p, nil
}

// elemsFit reports an error unless the count elements of p fit in it.
func (p *page) elemsFit() error {
	if pageHeaderSize+p.count*elemSize > len(p.b) {
		return fmt.Errorf("page %d has %d elements, more than fit in its %d bytes", p.id, p.count, len(p.b))
	}
	return nil
}

// span returns p.b[at+pos : at+pos+n] if it lies after the element array
// and inside the page.
func (p *page) span(at int, pos, n uint32) ([]byte, bool) {
	start := uint64(at) + uint64(pos)
	end := start + uint64(n)
	if start < uint64(pageHeaderSize+p.count*elemSize) || end > uint64(len(p.b)) {
		return nil, false
	}
	return p.b[start:end], true
}

// branch returns the key and child page of element i of a branch page.
func (p *page) branch(i int) (key []byte, child uint64, err error) {
	at := pageHeaderSize + i*elemSize
	e := p.b[at : at+elemSize]
	key, ok := p.span(at, native.Uint32(e), native.Uint32(e[4:]))
	if !ok || len(key) == 0 || len(key) > boltMaxKey {
		return nil, 0, fmt.Errorf("page %d: element %d has a key outside the page or of an impossible length", p.id, i)
	}
	return key, native.Uint64(e[8:]), nil
}

// leaf returns the flags, key and value of element i of a leaf page.
func (p *page) leaf(i int) (flags uint32, key, value []byte, err error) {
	at := pageHeaderSize + i*elemSize
	e := p.b[at : at+elemSize]
	flags, pos, ks, vs := native.Uint32(e), native.Uint32(e[4:]), native.Uint32(e[8:]), native.Uint32(e[12:])
	var kv []byte
	ok := uint64(ks)+uint64(vs) <= uint64(len(p.b))
	if ok {
		kv, ok = p.span(at, pos, ks+vs)
	}
	switch {
	case !ok:
		return 0, nil, nil, fmt.Errorf("page %d: element %d lies outside the page", p.id, i)
	case ks == 0 || ks > boltMaxKey:
		return 0, nil, nil, fmt.Errorf("page %d: element %d has a key of %d bytes", p.id, i, ks)
	case flags&^flagBucket != 0:
		return 0, nil, nil, fmt.Errorf("page %d: element %d has unknown flags %#x", p.id, i, flags)
	case flags == flagBucket && vs < bucketHeader:
		return 0, nil, nil, fmt.Errorf("page %d: bucket %q has a header of %d bytes", p.id, kv[:ks], vs)
	}
	return flags, kv[:ks:ks], kv[ks:], nil
}

// inlinePage returns the page held in the value of an inline bucket.
func inlinePage(v []byte) (page, error) {
	b := v[bucketHeader:]
	if len(b) < pageHeaderSize {
		return page{}, fmt.Errorf("inline bucket of %d bytes is too short for a page", len(v))
	}
	p := page{flags: native.Uint16(b[8:]), count: int(native.Uint16(b[10:])), b: b}
	if p.flags != flagLeaf {
		return page{}, fmt.Errorf("inline bucket page has flags %#x, not a leaf's", p.flags)
	}
	return p, p.elemsFit()
}
