package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/kanon-dev/kanon/internal/event"
)

// DefaultBlockBytes is how much a Stream reads at once.
const DefaultBlockBytes = 1 << 20

// StreamOptions configure a Stream.
type StreamOptions struct {
	// MaxRecordBytes limits one record (0: DefaultMaxRecordBytes).
	MaxRecordBytes int
	// BlockBytes is the size of the blocks read (0: DefaultBlockBytes).
	BlockBytes int
	// Live makes Read return as soon as it has a complete line, rather
	// than when its block is full: for inputs read as they are written
	// (standard input of kanon serve), where waiting for a full block
	// would delay alerts.
	Live bool
	// OnProgress is called with the number of input bytes consumed, as
	// they are consumed (compressed bytes for gzip input).
	OnProgress func(n int64)
}

// Stream reads one input — plain or gzip, detected by content — in blocks
// of whole lines and frames each block into records (see Framer). It
// is how files, directories, standard input and bundled logs are read. A
// Stream is not safe for concurrent use.
type Stream struct {
	name  string
	opts  StreamOptions
	src   io.Reader
	gz    *gzip.Reader
	fr    *Framer
	carry []byte // the start of a line that the last block cut
	line  int64  // lines framed so far
	bytes int64  // uncompressed bytes consumed
	done  bool
	bad   *Record // a damaged compressed stream, reported once at the end
}

// NewStream returns a stream over src, named name in records' origins.
func NewStream(name string, src io.Reader, opts StreamOptions) (*Stream, error) {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if opts.BlockBytes <= 0 {
		opts.BlockBytes = DefaultBlockBytes
	}
	if opts.OnProgress != nil {
		src = progressReader{src, opts.OnProgress}
	}
	br := bufio.NewReaderSize(src, 64<<10)
	s := &Stream{name: name, opts: opts, src: br, fr: NewFramer(name, opts.MaxRecordBytes)}
	// gzip's magic (1f 8b), its one compression method (8, deflate) and
	// the reserved flag bits clear: anything else is read as plain text.
	if h, _ := br.Peek(4); len(h) == 4 && h[0] == 0x1f && h[1] == 0x8b && h[2] == 8 && h[3]&0xe0 == 0 {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", name, err)
		}
		s.gz, s.src = zr, zr
	}
	if err := s.skipBOM(); err != nil {
		return nil, err
	}
	return s, nil
}

// ErrEncoding is the category of an input in an encoding kanon does not
// read (UTF-16, UTF-32): it must be converted to UTF-8.
var ErrEncoding = errors.New("unsupported text encoding")

// skipBOM drops a UTF-8 byte order mark, which would otherwise cost the
// first record, and refuses UTF-16 and UTF-32 text (by its mark, or by the
// zero bytes around the first characters of JSON text without one).
func (s *Stream) skipBOM() error {
	br, ok := s.src.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(s.src, 64<<10)
		s.src = br
	}
	h, _ := br.Peek(4)
	switch {
	case len(h) >= 3 && h[0] == 0xef && h[1] == 0xbb && h[2] == 0xbf:
		br.Discard(3)
		s.bytes += 3
		return nil
	case len(h) >= 2 && (h[0] == 0xff && h[1] == 0xfe || h[0] == 0xfe && h[1] == 0xff),
		len(h) == 4 && (h[0] == 0 && h[1] == 0 && h[2] == 0xfe && h[3] == 0xff),
		len(h) >= 2 && (h[0] != 0 && h[1] == 0 || h[0] == 0 && h[1] != 0):
		return fmt.Errorf("cannot read %s: %w: the text is UTF-16 or UTF-32; convert it to UTF-8 (iconv -f UTF-16 -t UTF-8)", s.name, ErrEncoding)
	}
	return nil
}

type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}

// Name returns the input's name.
func (s *Stream) Name() string { return s.name }

// Bytes returns the input bytes consumed so far (uncompressed).
func (s *Stream) Bytes() int64 { return s.bytes }

// Close releases the gzip reader, if any; it does not close the source.
func (s *Stream) Close() error {
	if s.gz != nil {
		return s.gz.Close()
	}
	return nil
}

// Read reads the next block of the input into buf (reusing its memory:
// pass a buffer no record refers to any more, or nil) and frames it,
// appending its records to recs. Records of one line alias the returned
// buffer; records assembled from several lines are slices of their own.
// At the end of the input Read returns io.EOF, with the last records. An
// error reading the source is returned as is; a damaged or cut gzip stream
// is not an error: what was read stands, and a record reporting the damage
// (ErrTruncated) ends the input.
func (s *Stream) Read(buf []byte, recs []Record) ([]byte, []Record, error) {
	if s.done {
		return buf[:0], recs, io.EOF
	}
	buf = append(buf[:0], s.carry...)
	s.carry = s.carry[:0]
	buf = slices.Grow(buf, s.opts.BlockBytes)
	var rerr error
	for {
		if len(buf) == cap(buf) {
			if bytes.IndexByte(buf, '\n') < 0 && len(buf) > s.opts.MaxRecordBytes {
				// One line over the limit: skip it to its end.
				var err error
				if recs, err = s.skipLong(buf, recs); err != nil {
					rerr = err
					buf = buf[:0]
					break
				}
				buf = append(buf[:0], s.carry...)
				s.carry = s.carry[:0]
				continue
			}
			if bytes.IndexByte(buf, '\n') >= 0 {
				break
			}
			buf = slices.Grow(buf, len(buf))
		}
		n, err := s.src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			rerr = err
			break
		}
		if s.opts.Live && n > 0 && bytes.IndexByte(buf[len(buf)-n:], '\n') >= 0 {
			break
		}
	}
	end := len(buf)
	if rerr == nil {
		// Cut after the last complete line; the rest starts the next block.
		end = bytes.LastIndexByte(buf, '\n') + 1
		s.carry = append(s.carry, buf[end:]...)
	}
	recs = s.frame(buf[:end], recs)
	if rerr == nil {
		return buf[:end], recs, nil
	}
	s.done = true
	if rerr != io.EOF {
		if !errors.Is(rerr, gzip.ErrChecksum) && !errors.Is(rerr, gzip.ErrHeader) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return buf[:end], recs, fmt.Errorf("cannot read %s: %w", s.name, rerr)
		}
		// A damaged or cut gzip stream: what was read stands.
		recs = s.fr.End(recs)
		recs = append(recs, Record{Origin: event.Origin{Name: s.name, Line: s.line + 1}, Err: fmt.Errorf("%w: compressed stream damaged: %v", ErrTruncated, rerr)})
		return buf[:end], recs, io.EOF
	}
	return buf[:end], s.fr.End(recs), io.EOF
}

// frame frames the lines of data; the last one may lack its line break
// only at the end of the input.
func (s *Stream) frame(data []byte, recs []Record) []Record {
	s.bytes += int64(len(data))
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		s.line++
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > s.opts.MaxRecordBytes {
			recs = s.fr.TooLong(s.line, recs)
			continue
		}
		recs = s.fr.Line(s.line, line, recs)
	}
	return recs
}

// skipLong reads past the end of a line longer than the record limit,
// whose first bytes are in buf, and reports it.
func (s *Stream) skipLong(buf []byte, recs []Record) ([]Record, error) {
	s.bytes += int64(len(buf))
	for {
		n, err := s.src.Read(buf[:cap(buf)])
		chunk := buf[:n]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			s.bytes += int64(i + 1)
			s.carry = append(s.carry, chunk[i+1:]...)
			s.line++
			return s.fr.TooLong(s.line, recs), nil
		}
		s.bytes += int64(n)
		if err != nil {
			s.line++
			return s.fr.TooLong(s.line, recs), err
		}
	}
}

// FrameMessage frames data, one broker message, as kanon scan frames a
// file of the same bytes: gzip is read, a UTF-8 byte order mark skipped,
// UTF-16 and UTF-32 refused (a record of ErrEncoding). A message of plain
// UTF-8 text, the usual case, is framed in place (FrameBytes): its records
// alias data and nothing is copied, so that a message in flight is held
// once, by its consumer. Others go through a Stream whose blocks are of
// the message's size, not a file's.
func FrameMessage(name string, data []byte, maxBytes int, out []Record) []Record {
	if len(data) >= 2 && data[0] != 0 && data[1] != 0 && data[0] < 0x80 && !(data[0] == 0x1f && data[1] == 0x8b) {
		return FrameBytes(name, data, maxBytes, out)
	}
	st, err := NewStream(name, bytes.NewReader(data), StreamOptions{MaxRecordBytes: maxBytes, BlockBytes: len(data) + 1})
	if err != nil {
		return append(out, Record{Origin: event.Origin{Name: name}, Err: err})
	}
	defer st.Close()
	for {
		var rerr error
		_, out, rerr = st.Read(nil, out)
		if rerr == io.EOF {
			return out
		}
		if rerr != nil {
			return append(out, Record{Origin: event.Origin{Name: name}, Err: rerr})
		}
	}
}

// FrameBytes frames data, one whole input held in memory (a broker's
// message), as a Stream frames a file: line by line, a value spanning
// lines or a top-level array followed across them, a value cut by the end
// of data reported in its place. The records alias data; their origins
// are name and the line within data. maxBytes limits one record
// (0: DefaultMaxRecordBytes).
func FrameBytes(name string, data []byte, maxBytes int, out []Record) []Record {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRecordBytes
	}
	s := Stream{name: name, opts: StreamOptions{MaxRecordBytes: maxBytes}, fr: NewFramer(name, maxBytes)}
	out = s.frame(data, out)
	return s.fr.End(out)
}
