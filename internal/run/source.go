package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/kanon-dev/kanon/internal/ingest"
)

// Source is an input of a driver: it reads its input and hands the driver
// batches (Driver.Submit) until the input ends, ctx ends, or the driver
// refuses a batch. Run returns nil when the input ended or ctx ended.
type Source interface {
	Run(ctx context.Context, d *Driver) error
}

// Run runs the sources at once and waits until all have returned. It
// returns their errors, joined.
func (d *Driver) Run(ctx context.Context, srcs ...Source) error {
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Run(ctx, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// DefaultBuffers is how many blocks of a stream are in flight at once.
const DefaultBuffers = 4

// Files is the source of kanon scan: files (plain or gzip), directories
// (every file under them, recursively, in name order) and "-" (standard
// input), read in the order given, each in blocks of whole lines framed
// into records (ingest.Stream). With FS set, Paths are names in FS (the
// bundled example logs).
type Files struct {
	// Paths are the inputs, in order.
	Paths []string
	// Stdin is what "-" reads.
	Stdin io.Reader
	// FS, if set, holds the files named by Paths; Prefix is put before
	// their names in origins.
	FS     fs.FS
	Prefix string
	// Input names the input ("file" if empty; "-" is always "stdin").
	Input string
	// Live reads standard input as it is written (ingest.StreamOptions).
	Live bool
	// MaxRecordBytes limits one record (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
	// BlockBytes is the size of a block (0: ingest.DefaultBlockBytes), and
	// Buffers the blocks in flight (0: DefaultBuffers): the memory a scan
	// holds is about their product, whatever the input's length.
	BlockBytes int
	Buffers    int
	// OnProgress is called with the input bytes consumed (compressed bytes
	// for gzip files), as they are consumed.
	OnProgress func(n int64)

	// Skipped lists what the directories held that was not read, and why
	// (ingest.ListFiles), once List or Run has listed them.
	Skipped []ingest.SkippedPath

	listed [][]string // the files of each path, by List
}

// Size returns the size of the listed files (what a progress bar counts
// down), once List has run; standard input counts 0.
func (s *Files) Size() int64 {
	var n int64
	for _, files := range s.listed {
		for _, f := range files {
			if f == "-" || s.FS != nil {
				continue
			}
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

// List finds the files of every path before any is read, so that a path
// that does not exist is an error before anything is scanned. Run calls
// it if it was not called.
func (s *Files) List() error {
	if s.listed != nil {
		return nil
	}
	listed := make([][]string, len(s.Paths))
	for i, p := range s.Paths {
		if p == "-" || s.FS != nil {
			listed[i] = []string{p}
			continue
		}
		files, skipped, err := ingest.ListFiles(p)
		if err != nil {
			return err
		}
		listed[i] = files
		s.Skipped = append(s.Skipped, skipped...)
	}
	s.listed = listed
	return nil
}

// block is one buffer of a stream and the records that alias it.
type block struct {
	buf  []byte
	recs []ingest.Record
}

// Run implements Source.
func (s *Files) Run(ctx context.Context, d *Driver) error {
	n := s.Buffers
	if n <= 0 {
		n = DefaultBuffers
	}
	free := make(chan *block, n)
	for range n {
		free <- &block{}
	}
	if err := s.List(); err != nil {
		return err
	}
	for i, p := range s.Paths {
		var err error
		switch {
		case p == "-":
			err = s.stream(ctx, d, "stdin", "-", s.Stdin, free, s.Live)
		case s.FS != nil:
			err = s.fsFile(ctx, d, p, free)
		default:
			err = s.osFiles(ctx, d, s.listed[i], free)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

func (s *Files) input() string {
	if s.Input == "" {
		return "file"
	}
	return s.Input
}

func (s *Files) fsFile(ctx context.Context, d *Driver, name string, free chan *block) error {
	f, err := s.FS.Open(name)
	if err != nil {
		return fmt.Errorf("cannot read input: %w", err)
	}
	defer f.Close()
	return s.stream(ctx, d, s.input(), s.Prefix+name, f, free, false)
}

func (s *Files) osFiles(ctx context.Context, d *Driver, files []string, free chan *block) error {
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("cannot read input: %w", err)
		}
		err = s.stream(ctx, d, s.input(), name, f, free, false)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// stream reads one input in blocks and submits each as a batch; a block's
// buffer is reused once the driver has released it.
func (s *Files) stream(ctx context.Context, d *Driver, input, name string, r io.Reader, free chan *block, live bool) error {
	st, err := ingest.NewStream(name, r, ingest.StreamOptions{
		MaxRecordBytes: s.MaxRecordBytes, BlockBytes: s.BlockBytes, Live: live, OnProgress: s.OnProgress,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	files := 1 // standard input counts as an input too
	var consumed int64
	for {
		var blk *block
		select {
		case blk = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		var rerr error
		blk.buf, blk.recs, rerr = st.Read(blk.buf, blk.recs[:0])
		b := &Batch{Input: input, Records: blk.recs, Bytes: st.Bytes() - consumed, Files: files,
			Release: func() { free <- blk }}
		consumed, files = st.Bytes(), 0
		if err := d.Submit(ctx, b); err != nil {
			return err
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}
