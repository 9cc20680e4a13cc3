package run

import (
	"bytes"
	"context"
	"fmt"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/tail"
)

// Tail is the source of a followed audit log file (kanon serve --input
// PATH): it reads the file as it is written, through rotations
// (internal/tail), frames its lines into records as a scan does, and
// stores its position with the state of each batch, in the same commit,
// so that a restart resumes after the last committed batch — neither
// skipping nor repeating a line.
type Tail struct {
	// Path is the followed file.
	Path string
	// Input names the input in metrics and positions ("tail" if empty).
	Input string
	// Options configure the follower.
	Options tail.Options
	// MaxRecordBytes limits one record (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
}

// Run implements Source.
func (t *Tail) Run(ctx context.Context, d *Driver) error {
	input := t.Input
	if input == "" {
		input = "tail"
	}
	pos, err := state.NewPositions(d.Store(), input)
	if err != nil {
		return err
	}
	var start *tail.Position
	if sp, ok, err := pos.Get(ctx, t.Path); err != nil {
		return err
	} else if ok {
		start = &tail.Position{Dev: sp.Dev, Ino: sp.Ino, Offset: sp.Offset, Line: sp.Line}
	}
	opts := t.Options
	if opts.MaxLineBytes == 0 {
		opts.MaxLineBytes = t.MaxRecordBytes
	}
	var tooLong []ingest.Record
	rot := opts.OnRotate
	opts.OnRotate = func(path string, r tail.Rotation) {
		d.m.rotations.WithLabelValues(validLabel(path), r.String()).Inc()
		d.log.Info("followed file rotated", "path", path, "rotation", r.String())
		if rot != nil {
			rot(path, r)
		}
	}
	long := opts.OnTooLong
	opts.OnTooLong = func(file string, line int64) {
		tooLong = append(tooLong, ingest.Record{Origin: event.Origin{Name: file, Line: line},
			Err: fmt.Errorf("%w (%d bytes)", ingest.ErrTooLarge, opts.MaxLineBytes)})
		if long != nil {
			long(file, line)
		}
	}
	fr := ingest.NewFramer(t.Path, t.MaxRecordBytes)
	var last *state.Position // the position stored with the last batch
	f := tail.New(t.Path, start, opts)
	return f.Run(ctx, func(c tail.Chunk) error {
		var recs []ingest.Record
		if c.File != fr.Name() {
			// The rest of a rotated file, or back to the path after it.
			recs = fr.End(recs)
			fr = ingest.NewFramer(c.File, t.MaxRecordBytes)
		}
		recs = append(recs, tooLong...)
		tooLong = tooLong[:0]
		chunkStart := c.End.Offset - int64(len(c.Data))
		var pendingAt int64 = -1 // offset of the line a value in progress started on
		data, line, off := c.Data, c.FirstLine, chunkStart
		for len(data) > 0 {
			l := data
			next := len(data)
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				l, next = data[:i], i+1
			}
			l = bytes.TrimSuffix(l, []byte{'\r'})
			recs = fr.Line(line, l, recs)
			if s, ok := fr.Pending(); ok && s == line {
				pendingAt = off
			}
			data, line, off = data[next:], line+1, off+int64(next)
		}
		p := state.Position{Dev: c.End.Dev, Ino: c.End.Ino, Offset: c.End.Offset, Line: c.End.Line}
		if s, ok := fr.Pending(); ok {
			// Resume where the value in progress started: its lines are
			// read again after a restart, and nothing before them is.
			switch {
			case s >= c.FirstLine && pendingAt >= 0:
				p.Offset, p.Line = pendingAt, s-1
			case last != nil:
				p = *last
			default:
				p.Offset, p.Line = chunkStart, c.FirstLine-1
			}
		}
		last = &p
		released := make(chan struct{})
		b := &Batch{Input: input, Records: recs, Bytes: int64(len(c.Data)),
			Commit:  func(tx state.Tx) error { return pos.PutTx(tx, t.Path, p) },
			Release: func() { close(released) }}
		if err := d.Submit(ctx, b); err != nil {
			return err
		}
		// The chunk's data is the follower's buffer: wait until the driver
		// has read it.
		select {
		case <-released:
		case <-d.done:
		}
		return nil
	})
}
