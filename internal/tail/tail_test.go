package tail

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector gathers the lines handed on, in order, with their numbers.
type collector struct {
	mu    sync.Mutex
	lines []string
	nums  []int64
	last  Position
	rot   []Rotation
}

func (c *collector) add(ch Chunk) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ch.Data) == 0 {
		return fmt.Errorf("empty chunk")
	}
	data := strings.TrimSuffix(string(ch.Data), "\n")
	for i, l := range strings.Split(data, "\n") {
		c.lines = append(c.lines, l)
		c.nums = append(c.nums, ch.FirstLine+int64(i))
	}
	c.last = ch.End
	return nil
}

func (c *collector) snapshot() ([]string, Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...), c.last
}

// waitLines waits until n lines were handed on.
func (c *collector) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := c.snapshot()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d lines, want %d: %q", len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// follow runs a follower of path in the background until the test ends.
func follow(t *testing.T, path string, start *Position, opts Options) (*collector, func()) {
	t.Helper()
	c := &collector{}
	if opts.Poll == 0 {
		opts.Poll = 5 * time.Millisecond
	}
	opts.OnRotate = func(_ string, r Rotation) { c.mu.Lock(); c.rot = append(c.rot, r); c.mu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(path, start, opts).Run(ctx, c.add) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() { cancel() })
	return c, stop
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"n\":%d}\n", i)
	}
	return b.String()
}

func want(from, to int) []string {
	return strings.Split(strings.TrimSuffix(lines(from, to), "\n"), "\n")
}

func eq(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines:\n got %q\nwant %q", got, want)
	}
}

// Only complete lines are handed on: a half-written line waits for its end.
func TestPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, "{\"n\":0}\n{\"n\":")
	c, stop := follow(t, path, nil, Options{})
	c.waitLines(t, 1)
	time.Sleep(30 * time.Millisecond)
	if got, _ := c.snapshot(); len(got) != 1 {
		t.Fatalf("a partial line was handed on: %q", got)
	}
	appendTo(t, path, "1}\n")
	eq(t, c.waitLines(t, 2), want(0, 2))
	stop()
	if c.nums[1] != 2 {
		t.Fatalf("line numbers %v", c.nums)
	}
	if _, p := c.snapshot(); p.Offset != int64(len(lines(0, 2))) || p.Line != 2 {
		t.Fatalf("end position %+v", p)
	}
}

// Rotation by rename: the rest of the old file is read, then the new file
// from its start.
func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	appendTo(t, path, lines(0, 100))
	c, stop := follow(t, path, nil, Options{})
	c.waitLines(t, 100)
	// The writer adds lines, then the file is renamed; lines written to
	// the old file after our last read must not be lost.
	appendTo(t, path, lines(100, 150))
	if err := os.Rename(path, filepath.Join(dir, "audit-1.log")); err != nil {
		t.Fatal(err)
	}
	appendTo(t, filepath.Join(dir, "audit-1.log"), lines(150, 160))
	appendTo(t, path, lines(160, 200))
	eq(t, c.waitLines(t, 200), want(0, 200))
	stop()
	if len(c.rot) != 1 || c.rot[0] != Renamed {
		t.Fatalf("rotations %v", c.rot)
	}
	if c.nums[199] != 40 {
		t.Fatalf("line number in the new file = %d, want 40", c.nums[199])
	}
}

// Rotation by copy-truncate: the file shrinks and is read again from its
// start; a truncation refilled past the old offset between polls is
// noticed by the file's first bytes.
func TestCopyTruncateRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	appendTo(t, path, lines(0, 50))
	c, stop := follow(t, path, nil, Options{})
	c.waitLines(t, 50)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	appendTo(t, path, lines(50, 60))
	eq(t, c.waitLines(t, 60), want(0, 60))
	stop()
	if len(c.rot) != 1 || c.rot[0] != Truncated {
		t.Fatalf("rotations %v", c.rot)
	}

	// Refilled before the poll: longer than before, different head.
	path2 := filepath.Join(dir, "audit2.log")
	appendTo(t, path2, lines(0, 10))
	c2, stop2 := follow(t, path2, nil, Options{})
	c2.waitLines(t, 10)
	if err := os.WriteFile(path2, []byte(lines(1000, 1030)), 0o600); err != nil {
		t.Fatal(err)
	}
	got := c2.waitLines(t, 40)
	stop2()
	eq(t, got, append(want(0, 10), want(1000, 1030)...))
}

// A restart resumes at the stored position; when the file was rotated
// meanwhile, the rest of the old file is read first.
func TestResume(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	appendTo(t, path, lines(0, 20))
	c, stop := follow(t, path, nil, Options{})
	c.waitLines(t, 20)
	stop()
	_, p := c.snapshot()

	// Same file, grown.
	appendTo(t, path, lines(20, 30))
	c, stop = follow(t, path, &p, Options{})
	eq(t, c.waitLines(t, 10), want(20, 30))
	stop()
	if c.nums[0] != 21 {
		t.Fatalf("first line number after resume = %d, want 21", c.nums[0])
	}
	_, p = c.snapshot()

	// Rotated while down: old file renamed with more lines, new file.
	appendTo(t, path, lines(30, 35))
	if err := os.Rename(path, filepath.Join(dir, "audit.log.1")); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, lines(35, 40))
	c, stop = follow(t, path, &p, Options{})
	eq(t, c.waitLines(t, 10), want(30, 40))
	stop()

	// Truncated while down: read from the start.
	_, p = c.snapshot()
	if err := os.WriteFile(path, []byte(lines(40, 42)), 0o600); err != nil {
		t.Fatal(err)
	}
	c, stop = follow(t, path, &p, Options{})
	eq(t, c.waitLines(t, 2), want(40, 42))
	stop()
}

// Over-long lines are skipped and reported; the next line is read.
func TestTooLong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, "short\n"+strings.Repeat("x", 5000)+"\nafter\n")
	var long []int64
	c, stop := follow(t, path, nil, Options{MaxLineBytes: 1000, ChunkBytes: 512, OnTooLong: func(_ string, l int64) { long = append(long, l) }})
	got := c.waitLines(t, 2)
	stop()
	eq(t, got, []string{"short", "after"})
	if len(long) != 1 || long[0] != 2 || c.nums[1] != 3 {
		t.Fatalf("too long lines %v, numbers %v", long, c.nums)
	}
}

// FromEnd skips what is in the file when there is no stored position.
func TestFromEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	appendTo(t, path, lines(0, 5))
	c, stop := follow(t, path, nil, Options{FromEnd: true})
	time.Sleep(30 * time.Millisecond)
	appendTo(t, path, lines(5, 7))
	eq(t, c.waitLines(t, 2), want(5, 7))
	stop()
	if !bytes.Equal([]byte(c.lines[0]), []byte(`{"n":5}`)) {
		t.Fatal(c.lines)
	}
}
