package tail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Defaults of Options.
const (
	DefaultPoll         = 250 * time.Millisecond
	DefaultMaxLineBytes = 16 << 20
	DefaultChunkBytes   = 1 << 20
)

// headSize is how many of a file's first bytes are kept to notice that a
// copy-truncate rotation refilled it past the read offset between polls.
const headSize = 256

// Position is how far a file has been read: its identity (device and
// inode; zero where the platform has none) and the offset after the last
// complete line handed on, with the number of lines up to it.
type Position struct {
	Dev, Ino uint64
	Offset   int64
	Line     int64
}

// Rotation is a kind of log rotation.
type Rotation int

// The rotations the follower notices.
const (
	// Renamed: the file was renamed away and a new file is at the path.
	Renamed Rotation = iota + 1
	// Truncated: the file was truncated in place (copytruncate).
	Truncated
)

func (r Rotation) String() string {
	switch r {
	case Renamed:
		return "renamed"
	case Truncated:
		return "truncated"
	}
	return fmt.Sprintf("rotation(%d)", int(r))
}

// Options configure a Follower. The zero value gives the defaults.
type Options struct {
	// Poll is how often the path is checked at the end of the file
	// (DefaultPoll if zero).
	Poll time.Duration
	// MaxLineBytes bounds one line; a longer line is skipped and reported
	// to OnTooLong (DefaultMaxLineBytes if zero).
	MaxLineBytes int
	// ChunkBytes is the size of reads, and so about the most bytes of one
	// Chunk unless a line is longer (DefaultChunkBytes if zero).
	ChunkBytes int
	// FromEnd starts at the end of the file when there is no stored
	// position (the default starts at its beginning).
	FromEnd bool
	// OnRotate is called when a rotation is noticed.
	OnRotate func(path string, r Rotation)
	// OnTooLong is called for a line over MaxLineBytes (skipped).
	OnTooLong func(file string, line int64)
}

// Chunk is one or more complete lines read from a file.
type Chunk struct {
	// File is the file read: the followed path, or the file it was
	// rotated to when the follower finishes it after a restart.
	File string
	// Data holds the lines, each ending in '\n' except, possibly, the last
	// line of a file rotated away. It is valid only during the call.
	Data []byte
	// FirstLine is the 1-based line number of the first line (counted
	// from where the follower started reading when it started at the end
	// of a file).
	FirstLine int64
	// End is the position after the chunk: store it to resume there.
	End Position
}

// Follower follows one path. It is not safe for concurrent use.
type Follower struct {
	path  string
	opts  Options
	start *Position

	f        *os.File
	name     string
	fi       os.FileInfo
	dev, ino uint64
	bufStart int64 // file offset of buf[0]
	buf      []byte
	line     int64 // lines before buf
	skipping bool  // discarding an over-long line up to its newline
	head     []byte
}

// New returns a follower of path that resumes at start (nil: no stored
// position).
func New(path string, start *Position, opts Options) *Follower {
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = DefaultChunkBytes
	}
	return &Follower{path: path, opts: opts, start: start}
}

// Run follows the file, calling fn with each chunk of complete lines, until
// ctx is done (it then returns nil) or fn or a read fails (it returns that
// error). fn runs in Run's goroutine; once it returns, the chunk's End is
// the position to resume from.
func (f *Follower) Run(ctx context.Context, fn func(Chunk) error) error {
	defer f.closeFile()
	if err := f.begin(ctx, fn); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	idle := false
	for {
		if ctx.Err() != nil {
			return nil
		}
		if idle {
			// New data after a pause: make sure the file was not
			// truncated and refilled past the offset meanwhile.
			if switched, err := f.checkHead(); err != nil {
				return err
			} else if switched {
				idle = false
				continue
			}
		}
		n, err := f.readSome(fn)
		if err != nil && err != io.EOF {
			return err
		}
		if n > 0 {
			idle = false
			continue
		}
		switched, err := f.check(fn)
		if err != nil {
			return err
		}
		if switched {
			idle = false
			continue
		}
		idle = true
		if !sleep(ctx, f.opts.Poll) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// begin opens the file where reading starts: the stored position, the
// rest of the rotated-away file it names, or the beginning (or end).
func (f *Follower) begin(ctx context.Context, fn func(Chunk) error) error {
	var st os.FileInfo
	for {
		var err error
		if st, err = os.Stat(f.path); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot follow %s: %w", f.path, err)
		}
		if !sleep(ctx, f.opts.Poll) {
			return ctx.Err()
		}
	}
	if f.start == nil {
		if f.opts.FromEnd {
			return f.open(f.path, st.Size(), 0)
		}
		return f.open(f.path, 0, 0)
	}
	p := *f.start
	dev, ino, ok := fileID(st)
	if !ok || dev == p.Dev && ino == p.Ino {
		if st.Size() >= p.Offset {
			return f.open(f.path, p.Offset, p.Line)
		}
		if f.opts.OnRotate != nil {
			f.opts.OnRotate(f.path, Truncated)
		}
		return f.open(f.path, 0, 0)
	}
	// The file at the path is another one: finish the file that was read
	// if it is still next to it (renamed by the rotation).
	if old := findFile(filepath.Dir(f.path), p.Dev, p.Ino); old != "" {
		if ost, err := os.Stat(old); err == nil && ost.Size() >= p.Offset {
			if err := f.open(old, p.Offset, p.Line); err != nil {
				return err
			}
			if err := f.drain(fn); err != nil {
				return err
			}
			f.closeFile()
		}
	}
	if f.opts.OnRotate != nil {
		f.opts.OnRotate(f.path, Renamed)
	}
	return f.open(f.path, 0, 0)
}

// findFile returns the regular file in dir with the given identity.
func findFile(dir string, dev, ino uint64) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if d, i, ok := fileID(fi); ok && d == dev && i == ino {
			return filepath.Join(dir, e.Name())
		}
	}
	return ""
}

func (f *Follower) open(name string, off, line int64) error {
	fd, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("cannot follow %s: %w", name, err)
	}
	fi, err := fd.Stat()
	if err != nil {
		fd.Close()
		return fmt.Errorf("cannot follow %s: %w", name, err)
	}
	if off > 0 {
		if _, err := fd.Seek(off, io.SeekStart); err != nil {
			fd.Close()
			return fmt.Errorf("cannot follow %s: %w", name, err)
		}
	}
	f.f, f.name, f.fi = fd, name, fi
	f.dev, f.ino, _ = fileID(fi)
	f.bufStart, f.line, f.skipping = off, line, false
	f.buf = f.buf[:0]
	f.head = f.readHead(nil)
	return nil
}

func (f *Follower) closeFile() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

// readHead returns up to headSize first bytes of the open file.
func (f *Follower) readHead(dst []byte) []byte {
	var b [headSize]byte
	n, _ := f.f.ReadAt(b[:], 0)
	return append(dst[:0], b[:n]...)
}

// readSome reads once and hands on the complete lines read.
func (f *Follower) readSome(fn func(Chunk) error) (int, error) {
	if cap(f.buf)-len(f.buf) < f.opts.ChunkBytes/2 {
		nb := make([]byte, len(f.buf), max(2*cap(f.buf), len(f.buf)+f.opts.ChunkBytes))
		copy(nb, f.buf)
		f.buf = nb
	}
	room := f.buf[len(f.buf):cap(f.buf)]
	if len(room) > f.opts.ChunkBytes {
		room = room[:f.opts.ChunkBytes]
	}
	n, err := f.f.Read(room)
	f.buf = f.buf[:len(f.buf)+n]
	if n > 0 {
		if err := f.emit(fn, false); err != nil {
			return n, err
		}
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("cannot read %s: %w", f.name, err)
	}
	return n, err
}

// emit hands on the complete lines in buf; final also hands on a last line
// without a newline (the end of a file rotated away).
func (f *Follower) emit(fn func(Chunk) error, final bool) error {
	if f.skipping {
		j := bytes.IndexByte(f.buf, '\n')
		if j < 0 {
			f.drop(len(f.buf))
			return nil
		}
		f.drop(j + 1)
		f.line++
		f.skipping = false
		if f.opts.OnTooLong != nil {
			f.opts.OnTooLong(f.name, f.line)
		}
	}
	end := bytes.LastIndexByte(f.buf, '\n') + 1
	if final && end < len(f.buf) {
		end = len(f.buf)
	}
	if end > 0 {
		data := f.buf[:end]
		lines := int64(bytes.Count(data, []byte{'\n'}))
		if data[len(data)-1] != '\n' {
			lines++
		}
		c := Chunk{File: f.name, Data: data, FirstLine: f.line + 1,
			End: Position{Dev: f.dev, Ino: f.ino, Offset: f.bufStart + int64(end), Line: f.line + lines}}
		if err := fn(c); err != nil {
			return err
		}
		f.line += lines
		f.drop(end)
	}
	if len(f.buf) > f.opts.MaxLineBytes {
		f.skipping = true
		f.drop(len(f.buf))
	}
	return nil
}

// drop removes the first n bytes of buf.
func (f *Follower) drop(n int) {
	f.bufStart += int64(n)
	f.buf = f.buf[:copy(f.buf, f.buf[n:])]
}

// drain reads the open file to its end and hands on everything.
func (f *Follower) drain(fn func(Chunk) error) error {
	for {
		n, err := f.readSome(fn)
		if err != nil && err != io.EOF {
			return err
		}
		if n == 0 {
			break
		}
	}
	return f.emit(fn, true)
}

// check looks at the path at the end of the file and switches files when
// it was rotated. It reports whether it switched.
func (f *Follower) check(fn func(Chunk) error) (bool, error) {
	st, err := os.Stat(f.path)
	if err != nil {
		return false, nil // between a rename and the new file: wait
	}
	if f.name != f.path || !os.SameFile(st, f.fi) {
		// Renamed: finish the old file, then read the new one.
		if err := f.drain(fn); err != nil {
			return false, err
		}
		f.closeFile()
		if f.opts.OnRotate != nil {
			f.opts.OnRotate(f.path, Renamed)
		}
		return true, f.open(f.path, 0, 0)
	}
	if st.Size() < f.bufStart+int64(len(f.buf)) {
		return true, f.restart()
	}
	return f.checkHead()
}

// checkHead restarts at the beginning of the file when its first bytes
// changed, and reports whether it did.
func (f *Follower) checkHead() (bool, error) {
	if !f.headChanged() {
		return false, nil
	}
	return true, f.restart()
}

// restart reads the file again from its beginning (copytruncate).
func (f *Follower) restart() error {
	if f.opts.OnRotate != nil {
		f.opts.OnRotate(f.path, Truncated)
	}
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("cannot follow %s: %w", f.path, err)
	}
	f.bufStart, f.line, f.skipping = 0, 0, false
	f.buf = f.buf[:0]
	f.head = f.readHead(f.head)
	return nil
}

// headChanged reports whether the file's first bytes differ from those
// seen before (a truncation refilled past the read offset); it extends the
// kept head when the file has grown.
func (f *Follower) headChanged() bool {
	var b [headSize]byte
	n, _ := f.f.ReadAt(b[:], 0)
	if n < len(f.head) || !bytes.Equal(b[:len(f.head)], f.head) {
		return true
	}
	f.head = append(f.head[:0], b[:n]...)
	return false
}

// Pos returns the position after the lines handed on so far. It is
// meant for the goroutine that runs Run (in fn, or after Run returns).
func (f *Follower) Pos() Position {
	return Position{Dev: f.dev, Ino: f.ino, Offset: f.bufStart, Line: f.line}
}
