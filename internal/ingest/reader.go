package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
)

// DefaultMaxRecordBytes is the default size limit of one record.
const DefaultMaxRecordBytes = 16 << 20

// Options configure a Reader.
type Options struct {
	// Format forces one format for top-level records ("" or "auto" detects
	// each record).
	Format string
	// Fields is the set of fields to materialise (the union of the loaded
	// rules' sets); the zero set still yields events with their time.
	Fields event.FieldSet
	// MaxRecordBytes limits one record (a line, or a multi-line JSON value).
	MaxRecordBytes int
	// Strict makes the first bad record end the read with its error.
	Strict bool
	// OnBad is called for every bad record (after counting it).
	OnBad func(BadRecord)
	// OnSkip is called for every record (or part of one) that a format
	// skipped on purpose (an error wrapping ErrSkipped: an AKS category
	// that is not an audit log, a CloudWatch control message), after
	// counting it in Stats.Skipped. Skipped records are not bad: they are
	// not counted in Stats.Bad, not passed to OnBad and never end a Strict
	// read.
	OnSkip func(BadRecord)
	// OnProgress is called with the number of input bytes consumed, as
	// they are consumed (compressed bytes for gzip files).
	OnProgress func(n int64)
	// Dedup, if set, drops repeated deliveries of the same event.
	Dedup Deduper
}

// Stats counts what a Reader has read.
type Stats struct {
	Records int64 // records framed (lines or JSON values)
	Events  int64 // events handed to the consumer
	Bad     int64 // bad records and bad parts of records
	Skipped int64 // records and parts skipped on purpose (ErrSkipped)
	Bytes   int64 // input bytes read (uncompressed)
	Files   int64 // files opened
}

// Reader reads audit-log inputs into events. A Reader is not safe for
// concurrent use; use one per goroutine.
type Reader struct {
	opts  Options
	dec   Decoder
	stats Stats
	fr    framer
	line  []byte // long-line buffer
}

// NewReader returns a reader over the formats of reg.
func NewReader(reg *Registry, opts Options) (*Reader, error) {
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = DefaultMaxRecordBytes
	}
	r := &Reader{opts: opts}
	r.dec.reg = reg
	r.dec.Fields = opts.Fields
	r.dec.dedup = opts.Dedup
	r.dec.MaxBytes = opts.MaxRecordBytes
	if opts.Format != "" && opts.Format != "auto" {
		f, ok := reg.Lookup(opts.Format)
		if !ok {
			return nil, fmt.Errorf("%w: unknown format %q (known: auto, %s)", ErrBadOptions, opts.Format, strings.Join(reg.Names(), ", "))
		}
		r.dec.forced = f
	}
	r.dec.bad = func(b BadRecord) {
		if errors.Is(b.Err, ErrSkipped) {
			r.stats.Skipped++
			if r.opts.OnSkip != nil {
				r.opts.OnSkip(b)
			}
			return
		}
		r.stats.Bad++
		if r.opts.OnBad != nil {
			r.opts.OnBad(b)
		}
	}
	return r, nil
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.Events = r.dec.emitted
	return s
}

// errStrict wraps the first bad record when Options.Strict is set.
type errStrict struct{ BadRecord }

func (e errStrict) Unwrap() error { return e.BadRecord }

// Record decodes one complete record (a line, a webhook body) from origin.
// A bad record is counted and reported; Record returns an error only when
// the consumer fails or, with Strict, for the bad record.
func (r *Reader) Record(origin event.Origin, rec []byte, fn func(*event.Event) error) error {
	r.stats.Records++
	d := &r.dec
	d.Origin = origin
	d.emit = fn
	d.emitErr = nil
	d.Scratch = d.Scratch[:0]
	d.CloudProvider, d.ClusterName, d.Reader = "", "", ""
	var badInside int64 = r.stats.Bad
	err := d.Dispatch(rec)
	if d.emitErr != nil {
		return d.emitErr
	}
	if err != nil {
		b := BadRecord{Origin: origin, Err: err}
		d.bad(b)
		if r.opts.Strict && !errors.Is(err, ErrSkipped) {
			return errStrict{b}
		}
		return nil
	}
	if r.opts.Strict && r.stats.Bad > badInside {
		return errStrict{BadRecord{Origin: origin, Err: fmt.Errorf("%w: part of the record is bad", ErrShape)}}
	}
	return nil
}

// RecordValidated is Record for a record already validated in full by
// jsonx.Skip (e.g. by a webhook handler, in its own goroutine): the parts
// no rule reads are skipped without being checked again.
func (r *Reader) RecordValidated(origin event.Origin, rec []byte, fn func(*event.Event) error) error {
	r.dec.Validated = true
	defer func() { r.dec.Validated = false }()
	return r.Record(origin, rec, fn)
}

// ReadPaths reads files, directories (recursively, in name order) and "-"
// (standard input, from stdin) in the order given.
func (r *Reader) ReadPaths(ctx context.Context, paths []string, stdin io.Reader, fn func(*event.Event) error) error {
	for _, p := range paths {
		if p == "-" {
			if err := r.ReadStream(ctx, "-", stdin, fn); err != nil {
				return err
			}
			continue
		}
		files, err := ListFiles(p)
		if err != nil {
			return err
		}
		for _, f := range files {
			if err := r.ReadFile(ctx, f, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// ListFiles returns the regular files of path: itself if it is a file, or
// every file under it (recursively, in lexical order, skipping names that
// start with ".") if it is a directory.
func ListFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read input: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("cannot read input: %w", err)
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// ReadFile reads one file (plain or gzip, detected by content).
func (r *Reader) ReadFile(ctx context.Context, path string, fn func(*event.Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read input: %w", err)
	}
	defer f.Close()
	r.stats.Files++
	return r.ReadStream(ctx, path, f, fn)
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

// ReadStream reads a stream of records named name (plain or gzip).
func (r *Reader) ReadStream(ctx context.Context, name string, src io.Reader, fn func(*event.Event) error) error {
	if r.opts.OnProgress != nil {
		src = progressReader{src, r.opts.OnProgress}
	}
	br := bufio.NewReaderSize(src, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", name, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 1<<20)
	}
	return r.readLines(ctx, name, br, fn)
}

func (r *Reader) readLines(ctx context.Context, name string, br *bufio.Reader, fn func(*event.Event) error) error {
	var lineNo int64
	r.fr.reset()
	for {
		if lineNo&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		line, tooLong, err := r.readLine(br)
		if len(line) == 0 && err != nil {
			if err == io.EOF {
				return r.flushFramer(name, fn)
			}
			if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
				// A damaged or cut gzip stream: what was read stands.
				b := BadRecord{Origin: event.Origin{Name: name, Line: lineNo + 1}, Err: fmt.Errorf("%w: compressed stream damaged: %v", ErrTruncated, err)}
				r.dec.bad(b)
				if r.opts.Strict {
					return errStrict{b}
				}
				return r.flushFramer(name, fn)
			}
			return fmt.Errorf("cannot read %s: %w", name, err)
		}
		lineNo++
		r.stats.Bytes += int64(len(line)) + 1
		if tooLong {
			r.stats.Records++
			b := BadRecord{Origin: event.Origin{Name: name, Line: lineNo}, Err: fmt.Errorf("%w (%d bytes)", ErrTooLarge, r.opts.MaxRecordBytes)}
			r.dec.bad(b)
			if r.opts.Strict {
				return errStrict{b}
			}
			r.fr.reset()
			continue
		}
		if err := r.frameLine(name, lineNo, line, fn); err != nil {
			return err
		}
	}
}

// readLine returns the next line without its newline. The slice aliases
// the bufio buffer or r.line and is valid until the next call. A line over
// the record limit is consumed and reported with tooLong.
func (r *Reader) readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	line, err = br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.line = append(r.line[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = br.ReadSlice('\n')
			if len(r.line)+len(line) > r.opts.MaxRecordBytes+1 {
				tooLong = true
				r.line = r.line[:0]
			} else if !tooLong {
				r.line = append(r.line, line...)
			}
		}
		if tooLong {
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				err = nil
			}
			return nil, true, err
		}
		line = r.line
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) > r.opts.MaxRecordBytes {
		return nil, true, err
	}
	return line, false, err
}
