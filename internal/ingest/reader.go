package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	// OnWarn is called for every record that was read, but with a
	// warning (ErrAmbiguous: its repeated keys read two ways), after
	// counting it in Stats.Warnings.
	OnWarn func(BadRecord)
}

// Stats counts what a Reader has read.
type Stats struct {
	Records int64 // records framed (lines or JSON values)
	Events  int64 // events handed to the consumer
	Bad     int64 // bad records and bad parts of records
	Skipped int64 // records and parts skipped on purpose (ErrSkipped)
	// Warnings are events read with a warning (ErrAmbiguous).
	Warnings int64
	// Repeated are records (or parts) that repeat an object key, read both
	// ways (Decoder.Readings), warned about or not.
	Repeated int64
	Bytes    int64 // input bytes read (uncompressed)
	Files    int64 // files opened
}

// Reader reads audit-log inputs into events. A Reader is not safe for
// concurrent use; use one per goroutine.
type Reader struct {
	opts  Options
	dec   Decoder
	stats Stats
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
	r.dec.warn = func(b BadRecord) {
		r.stats.Warnings++
		if r.opts.OnWarn != nil {
			r.opts.OnWarn(b)
		}
	}
	return r, nil
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats {
	s := r.stats
	s.Events = r.dec.emitted
	s.Repeated = r.dec.repeated
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
		files, _, err := ListFiles(p)
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

// SkippedPath is a path that ListFiles did not read, and why.
type SkippedPath struct {
	Path string
	Why  string
}

// ListFiles returns the files path names: itself if it is a file, or every
// file under it if it is a directory — recursively, in lexical order,
// following symbolic links to files and directories (the layout of
// /var/log/containers), each directory once (a link back to a directory
// above is a loop, skipped). It reads what the reader would; it skips, and
// returns in skipped with the reason, names that start with "." (hidden
// files, editors' and rotators' temporary files), files that are not
// regular (sockets, devices, pipes), broken links and loops. A path given
// by name is read whatever its name; an error means path itself cannot be
// read.
func ListFiles(path string) (files []string, skipped []SkippedPath, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read input: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil, nil
	}
	w := &walker{seen: map[string]bool{}}
	w.seen[dirID(path, st)] = true
	if err := w.dir(path); err != nil {
		return nil, nil, err
	}
	return w.files, w.skipped, nil
}

type walker struct {
	seen    map[string]bool // dirID of the directories read
	files   []string
	skipped []SkippedPath
}

func (w *walker) dir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot read input: %w", err)
	}
	for _, e := range entries { // ReadDir sorts by name
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			w.skipped = append(w.skipped, SkippedPath{p, "hidden (its name starts with a dot)"})
			continue
		}
		st, err := os.Stat(p) // follows links
		switch {
		case err != nil && e.Type()&fs.ModeSymlink != 0:
			w.skipped = append(w.skipped, SkippedPath{p, "a broken symbolic link"})
		case err != nil:
			w.skipped = append(w.skipped, SkippedPath{p, err.Error()})
		case st.IsDir():
			id := dirID(p, st)
			if w.seen[id] {
				w.skipped = append(w.skipped, SkippedPath{p, "a directory already read (a symbolic link loop)"})
				continue
			}
			w.seen[id] = true
			if err := w.dir(p); err != nil {
				w.skipped = append(w.skipped, SkippedPath{p, err.Error()})
			}
		case st.Mode().IsRegular():
			w.files = append(w.files, p)
		default:
			w.skipped = append(w.skipped, SkippedPath{p, "not a regular file (" + st.Mode().Type().String() + ")"})
		}
	}
	return nil
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

// ReadStream reads a stream of records named name (plain or gzip).
func (r *Reader) ReadStream(ctx context.Context, name string, src io.Reader, fn func(*event.Event) error) error {
	st, err := NewStream(name, src, StreamOptions{MaxRecordBytes: r.opts.MaxRecordBytes, OnProgress: r.opts.OnProgress})
	if err != nil {
		return err
	}
	defer func() {
		r.stats.Bytes += st.Bytes()
		st.Close()
	}()
	var buf []byte
	var recs []Record
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var rerr error
		buf, recs, rerr = st.Read(buf, recs[:0])
		for _, rec := range recs {
			if err := r.Frame(rec, fn); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// Frame decodes one framed record: a framing error is counted and
// reported as a bad record, anything else is decoded as Record does.
func (r *Reader) Frame(rec Record, fn func(*event.Event) error) error {
	if rec.Err == nil {
		return r.Record(rec.Origin, rec.Data, fn)
	}
	r.stats.Records++
	b := BadRecord{Origin: rec.Origin, Err: rec.Err}
	r.dec.bad(b)
	if r.opts.Strict && !errors.Is(rec.Err, ErrSkipped) {
		return errStrict{b}
	}
	return nil
}

// realPath is path with every symbolic link resolved, or path itself.
func realPath(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return path
}
