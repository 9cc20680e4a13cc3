package alert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ErrSpoolFull is returned (wrapped) when a record does not fit in a
// spool's size bound.
var ErrSpoolFull = errors.New("spool is full")

// ErrClosed is returned (wrapped) by writes to a closed sink or spool.
var ErrClosed = errors.New("closed")

// Spool is a durable FIFO of records on disk: segment files named
// <sequence>.seg holding framed records, and a cursor file with the read
// position. Appends go to the last segment; Peek and Ack read and consume
// from the first; consumed segments are removed. Sync makes appends and
// acks durable (fsync); after a crash a torn record at the end of the last
// segment is cut off, and a torn cursor restarts at its segment's start
// (records are then delivered again, at least once).
//
// A record is a 4-byte little-endian length, a 4-byte CRC-32C of the
// payload and the payload: a 1-byte id length, the id, the body. The
// webhook and Slack outputs spool each alert under its delivery key
// (Alert.DeliveryKey), which OpenSpool reports back for every pending
// record, so that a restart does not take a pending alert again.
//
// A Spool is safe for concurrent use; one process at a time may open a
// directory (it is locked).
type Spool struct {
	dir      string
	maxBytes int64
	segSize  int64

	mu       sync.Mutex
	lock     *os.File
	cursorF  *os.File
	segs     []uint64 // ascending; the last one is the tail
	tail     *os.File
	tailSize int64
	head     *os.File       // read handle on segs[0]
	headSize int64          // size of segs[0] when it is not the tail
	hoff     int64          // read offset in segs[0]
	peeked   []*spoolRecord // records read ahead from hoff, in order
	count    int
	bytes    int64
	dirty    bool
	closed   bool
	// Corrupt counts records lost to corruption found when opening.
	corrupt int
}

type spoolRecord struct {
	id   string
	body []byte
	size int64 // framed size on disk
}

const spoolHeader = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// OpenSpool opens (creating it if needed) the spool in dir, bounded to
// maxBytes of pending records (0: DefaultSpoolMaxSize) in segments of
// about segSize bytes (0: DefaultSegmentSize). each is called, in order,
// with the id of every pending record (it may be nil).
func OpenSpool(dir string, maxBytes, segSize int64, each func(id string)) (*Spool, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultSpoolMaxSize
	}
	if segSize <= 0 {
		segSize = DefaultSegmentSize
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create spool directory: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segSize: segSize}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool lock: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("cannot lock spool %s (is another kanon using it?): %w", dir, err)
	}
	s.lock = lock
	if err := s.load(each); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("cannot open spool %s: %w", dir, err)
	}
	return s, nil
}

func segName(seq uint64) string { return fmt.Sprintf("%020d.seg", seq) }

func (s *Spool) segPath(seq uint64) string { return filepath.Join(s.dir, segName(seq)) }

func (s *Spool) load(each func(id string)) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".seg") {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 10, 64)
		if err != nil {
			continue
		}
		s.segs = append(s.segs, seq)
	}
	slices.Sort(s.segs)

	s.cursorF, err = os.OpenFile(filepath.Join(s.dir, "cursor"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	var cur [20]byte
	if n, _ := s.cursorF.ReadAt(cur[:], 0); n == len(cur) &&
		crc32.Checksum(cur[:16], castagnoli) == binary.LittleEndian.Uint32(cur[16:]) {
		seq, off := binary.LittleEndian.Uint64(cur[:8]), int64(binary.LittleEndian.Uint64(cur[8:16]))
		// Segments before the cursor's are consumed.
		for len(s.segs) > 0 && s.segs[0] < seq {
			if err := os.Remove(s.segPath(s.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			s.segs = s.segs[1:]
		}
		if len(s.segs) > 0 && s.segs[0] == seq {
			s.hoff = off
		}
	}

	// Scan the pending records: count them, report their ids and cut off
	// what cannot be read (a torn write at the end of a segment).
	for i, seq := range s.segs {
		start := int64(0)
		if i == 0 {
			start = s.hoff
		}
		end, n, bytes, err := s.scanSegment(seq, start, each)
		if err != nil {
			return err
		}
		s.count += n
		s.bytes += bytes
		if i == 0 && end < start {
			s.hoff = 0
		}
	}
	if len(s.segs) == 0 {
		s.segs = []uint64{1}
		s.hoff = 0
	}
	seq := s.segs[len(s.segs)-1]
	s.tail, err = os.OpenFile(s.segPath(seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	st, err := s.tail.Stat()
	if err != nil {
		return err
	}
	s.tailSize = st.Size()
	if err := s.statHead(); err != nil {
		return err
	}
	return syncDir(s.dir)
}

// scanSegment reads the records of segment seq from start, truncating the
// segment at the first record that is torn or corrupt.
func (s *Spool) scanSegment(seq uint64, start int64, each func(string)) (end int64, n int, bytes int64, err error) {
	f, err := os.OpenFile(s.segPath(seq), os.O_RDWR, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	size := st.Size()
	if start > size {
		// The cursor is past the end: trust the file, start over.
		start = 0
		end = -1
	}
	off := start
	for off < size {
		rec, err := readRecord(f, off, size)
		if err != nil {
			if err := f.Truncate(off); err != nil {
				return 0, 0, 0, err
			}
			if err := f.Sync(); err != nil {
				return 0, 0, 0, err
			}
			s.corrupt++
			break
		}
		if each != nil {
			each(rec.id)
		}
		n++
		bytes += rec.size
		off += rec.size
	}
	if end == 0 {
		end = off
	}
	return end, n, bytes, nil
}

var errBadRecord = errors.New("torn or corrupt spool record")

func readRecord(f *os.File, off, size int64) (*spoolRecord, error) {
	var h [spoolHeader]byte
	if size-off < spoolHeader {
		return nil, errBadRecord
	}
	if _, err := f.ReadAt(h[:], off); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	n := int64(binary.LittleEndian.Uint32(h[:4]))
	if n < 1 || size-off-spoolHeader < n {
		return nil, errBadRecord
	}
	p := make([]byte, n)
	if _, err := f.ReadAt(p, off+spoolHeader); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", errBadRecord, err)
	}
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return nil, errBadRecord
	}
	idLen := int(p[0])
	if 1+idLen > len(p) {
		return nil, errBadRecord
	}
	return &spoolRecord{id: string(p[1 : 1+idLen]), body: p[1+idLen:], size: spoolHeader + n}, nil
}

func appendRecord(dst []byte, id string, body []byte) []byte {
	n := 1 + len(id) + len(body)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, byte(len(id)))
	dst = append(dst, id...)
	dst = append(dst, body...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+spoolHeader:], castagnoli))
	return dst
}

// Append adds records (ids[i], bodies[i]) at the end, in order. It
// appends the longest prefix that fits in the size bound and returns its
// length; if some did not fit, the error wraps ErrSpoolFull. Ids longer
// than 255 bytes are refused. Append does not fsync: call Sync.
func (s *Spool) Append(ids []string, bodies [][]byte) (int, error) {
	return s.append(ids, bodies, false)
}

// AppendAll adds every record or, when they do not all fit, none (the
// error wraps ErrSpoolFull).
func (s *Spool) AppendAll(ids []string, bodies [][]byte) error {
	_, err := s.append(ids, bodies, true)
	return err
}

func (s *Spool) append(ids []string, bodies [][]byte, all bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("cannot append to spool %s: %w", s.dir, ErrClosed)
	}
	var buf []byte
	var full error
	n := 0
	for i, id := range ids {
		if len(id) > 255 {
			full = fmt.Errorf("cannot spool alert: id %q is longer than 255 bytes", id)
			break
		}
		size := int64(spoolHeader + 1 + len(id) + len(bodies[i]))
		if s.bytes+int64(len(buf))+size > s.maxBytes {
			full = fmt.Errorf("cannot spool alert %s in %s (%d bytes pending, bound %d): %w", id, s.dir, s.bytes, s.maxBytes, ErrSpoolFull)
			break
		}
		buf = appendRecord(buf, id, bodies[i])
		n++
	}
	if n == 0 || all && full != nil {
		return 0, full
	}
	if s.tailSize >= s.segSize {
		if err := s.roll(); err != nil {
			return 0, err
		}
	}
	if _, err := s.tail.Write(buf); err != nil {
		// Cut off what was partly written so the segment stays readable.
		_ = s.tail.Truncate(s.tailSize)
		return 0, fmt.Errorf("cannot append to spool %s: %w", s.dir, err)
	}
	s.tailSize += int64(len(buf))
	s.count += n
	s.bytes += int64(len(buf))
	s.dirty = true
	return n, full
}

// roll starts a new tail segment.
func (s *Spool) roll() error {
	if err := s.tail.Sync(); err != nil {
		return fmt.Errorf("cannot sync spool segment: %w", err)
	}
	seq := s.segs[len(s.segs)-1] + 1
	f, err := os.OpenFile(s.segPath(seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create spool segment: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync spool directory: %w", err)
	}
	old := s.tail
	if len(s.segs) == 1 {
		s.headSize = s.tailSize
	}
	s.tail, s.tailSize = f, 0
	s.segs = append(s.segs, seq)
	return old.Close()
}

// Peek returns the id and body of the first pending record without
// consuming it; ok is false when the spool is empty. The body is owned by
// the caller.
func (s *Spool) Peek() (id string, body []byte, ok bool, err error) {
	ids, bodies, err := s.PeekN(1, 0)
	if len(ids) == 0 || err != nil {
		return "", nil, false, err
	}
	return ids[0], bodies[0], true, nil
}

// PeekN returns up to n of the first pending records, in order, without
// consuming them: as many as the first segment holds, while their bodies
// add up to at most maxBytes (0: no bound; the first record is returned
// whatever its size). It returns none when the spool is empty. The bodies
// are owned by the caller.
func (s *Spool) PeekN(n int, maxBytes int64) (ids []string, bodies [][]byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, err := s.peekLocked(n, maxBytes)
	for _, r := range recs {
		ids = append(ids, r.id)
		bodies = append(bodies, r.body)
	}
	return ids, bodies, err
}

// peekLocked reads ahead up to n records of the first segment (see
// PeekN). On a read error it returns the records read before it, if any.
func (s *Spool) peekLocked(n int, maxBytes int64) ([]*spoolRecord, error) {
	if s.closed {
		return nil, fmt.Errorf("cannot read spool %s: %w", s.dir, ErrClosed)
	}
	if n <= 0 {
		n = 1
	}
	for len(s.peeked) == 0 && s.count > 0 {
		if s.hoff < s.segEnd() {
			break
		}
		if len(s.segs) == 1 {
			return nil, fmt.Errorf("BUG: spool %s counts %d records past its end", s.dir, s.count)
		}
		if err := s.dropHead(); err != nil {
			return nil, err
		}
	}
	off := s.hoff
	var bytes int64
	for i, r := range s.peeked {
		if i == n || i > 0 && maxBytes > 0 && bytes+int64(len(r.body)) > maxBytes {
			return s.peeked[:i], nil
		}
		off += r.size
		bytes += int64(len(r.body))
	}
	size := s.segEnd()
	for len(s.peeked) < n && len(s.peeked) < s.count && off < size {
		if s.head == nil {
			f, err := os.Open(s.segPath(s.segs[0]))
			if err != nil {
				return s.peeked, fmt.Errorf("cannot read spool: %w", err)
			}
			s.head = f
		}
		r, err := readRecord(s.head, off, size)
		if err != nil {
			if len(s.peeked) > 0 {
				return s.peeked, nil
			}
			return nil, fmt.Errorf("cannot read spool %s at %s:%d: %w", s.dir, segName(s.segs[0]), off, err)
		}
		if len(s.peeked) > 0 && maxBytes > 0 && bytes+int64(len(r.body)) > maxBytes {
			break
		}
		s.peeked = append(s.peeked, r)
		off += r.size
		bytes += int64(len(r.body))
	}
	return s.peeked, nil
}

// segEnd is the size of the first segment.
func (s *Spool) segEnd() int64 {
	if len(s.segs) > 1 {
		return s.headSize
	}
	return s.tailSize
}

// dropHead removes the consumed first segment.
func (s *Spool) dropHead() error {
	if s.head != nil {
		s.head.Close()
		s.head = nil
	}
	if err := os.Remove(s.segPath(s.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove spool segment: %w", err)
	}
	s.segs = s.segs[1:]
	s.hoff = 0
	if err := s.statHead(); err != nil {
		return err
	}
	return s.writeCursor()
}

// statHead sets headSize when the first segment is not the tail (whose
// size is tailSize).
func (s *Spool) statHead() error {
	s.headSize = 0
	if len(s.segs) < 2 {
		return nil
	}
	st, err := os.Stat(s.segPath(s.segs[0]))
	if err != nil {
		return fmt.Errorf("cannot read spool segment: %w", err)
	}
	s.headSize = st.Size()
	return nil
}

func (s *Spool) writeCursor() error {
	var cur [20]byte
	binary.LittleEndian.PutUint64(cur[:8], s.segs[0])
	binary.LittleEndian.PutUint64(cur[8:16], uint64(s.hoff))
	binary.LittleEndian.PutUint32(cur[16:], crc32.Checksum(cur[:16], castagnoli))
	s.dirty = true
	if _, err := s.cursorF.WriteAt(cur[:], 0); err != nil {
		return fmt.Errorf("cannot write spool cursor: %w", err)
	}
	return nil
}

// Ack consumes the first pending record (the one Peek returns).
func (s *Spool) Ack() error { return s.AckN(1) }

// AckN consumes the first n pending records (those PeekN returned).
func (s *Spool) AckN(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for n > 0 {
		recs, err := s.peekLocked(n, 0)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return fmt.Errorf("BUG: ack of %d records more than spool %s holds", n, s.dir)
		}
		k := min(n, len(recs))
		for _, r := range recs[:k] {
			s.hoff += r.size
			s.count--
			s.bytes -= r.size
		}
		clear(s.peeked[:k])
		s.peeked = s.peeked[k:]
		if len(s.peeked) == 0 {
			s.peeked = nil
		}
		n -= k
		if len(s.segs) > 1 && s.hoff >= s.headSize {
			if err := s.dropHead(); err != nil {
				return err
			}
			continue
		}
		if err := s.writeCursor(); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of pending records.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Size returns the bytes of pending records (framing included).
func (s *Spool) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Sync makes the appends and acks so far durable.
func (s *Spool) Sync() error {
	s.mu.Lock()
	if s.closed || !s.dirty {
		s.mu.Unlock()
		return nil
	}
	tail, cur := s.tail, s.cursorF
	s.dirty = false
	s.mu.Unlock()
	// fsync outside the lock so appends go on meanwhile; a concurrent
	// roll syncs the old tail itself before closing it.
	if err := tail.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		s.markDirty()
		return fmt.Errorf("cannot sync spool %s: %w", s.dir, err)
	}
	if err := cur.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		s.markDirty()
		return fmt.Errorf("cannot sync spool cursor %s: %w", s.dir, err)
	}
	return nil
}

func (s *Spool) markDirty() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}

// Close syncs and closes the spool; it may be opened again.
func (s *Spool) Close() error {
	err := s.Sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (s *Spool) closeFiles() error {
	var first error
	for _, f := range []*os.File{s.head, s.tail, s.cursorF} {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	if s.lock != nil {
		unlockFile(s.lock)
		s.lock.Close()
	}
	return first
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
