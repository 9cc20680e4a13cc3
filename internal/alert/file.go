package alert

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// FileConfig configures a FileSink.
type FileConfig struct {
	// Path is the file alerts are appended to.
	Path string
	// MaxSize rotates the file before an alert would make it larger
	// (0: DefaultMaxFileSize; negative: never by size).
	MaxSize int64
	// MaxAge rotates the file when it was opened or created that long ago
	// (0: never by age).
	MaxAge time.Duration
	// MaxBackups is how many rotated files are kept (0: DefaultMaxBackups;
	// negative: none).
	MaxBackups int
	// SyncWrites makes Write return only once the alert is written to the
	// file and fsync'd, so that an alert counts as delivered only when it
	// is on disk (kanon scan --alerts-file). Without it Write buffers, and
	// Flush writes and fsyncs.
	SyncWrites bool
	// OnlyAlerts refuses to open a file with a complete line that is not
	// an alert: NewFileSink fails with "PATH:LINE: not an alert written by
	// kanon", an error wrapping ErrNotAlert, and leaves the file as it is.
	// Without it such lines are kept and ignored.
	OnlyAlerts bool
	// Mode is the permission of files the sink creates (0: 0o644).
	Mode os.FileMode
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// backupTimeFormat names rotated files; it sorts in time order.
const backupTimeFormat = "20060102T150405.000Z"

// FileSink appends alerts as NDJSON to a file, rotating it by size and age
// and keeping MaxBackups rotated files named <base>-<UTC time><ext>. An
// alert already in the current file (read when the sink opens it) or in
// the file rotated last is skipped, so re-delivered alerts are written
// once. An alert is known by its delivery key (Alert.DeliveryKey): its id,
// and for a grouped alert also its group count, so that the update of a
// dedup group (same id, larger count) is written while a re-delivery of
// either is not. A torn last line (a crash mid-write) is cut off when the
// file is opened. Flush writes buffered alerts and fsyncs the file.
//
// With SyncWrites, OnlyAlerts and no rotation (MaxSize negative, MaxAge
// zero) the sink is an exactly-once alerts file: every alert is on disk
// when Write returns, and the file holds the delivery keys of everything
// ever written to it, so a run killed at any point and run again over the
// same input appends no alert twice (kanon scan --alerts-file).
//
// A FileSink is safe for concurrent use.
type FileSink struct {
	cfg FileConfig

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	size   int64
	opened time.Time
	ids    map[string]struct{} // delivery keys in the current file
	prev   map[string]struct{} // delivery keys in the file rotated last
	closed bool
}

// NewFileSink opens (creating it and its directory if needed) the file and
// reads the ids of the alerts already in it.
func NewFileSink(cfg FileConfig) (*FileSink, error) {
	if cfg.Path == "" {
		return nil, errors.New("file output: no path")
	}
	if cfg.MaxSize == 0 {
		cfg.MaxSize = DefaultMaxFileSize
	}
	if cfg.MaxBackups == 0 {
		cfg.MaxBackups = DefaultMaxBackups
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Mode == 0 {
		cfg.Mode = 0o644
	}
	s := &FileSink{cfg: cfg}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, fmt.Errorf("file output %s: cannot create directory: %w", cfg.Path, err)
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.loadPrev(); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// loadPrev reads the delivery keys of the newest rotated file, so that
// an alert delivered again after a restart is known as it was before
// the restart: in the current file or the one rotated last.
func (s *FileSink) loadPrev() error {
	backups, err := s.Backups()
	if err != nil || len(backups) == 0 {
		return nil // no directory listing, no backups: nothing to know
	}
	last := backups[len(backups)-1]
	f, err := os.Open(last)
	if err != nil {
		return fmt.Errorf("file output %s: cannot read the rotated file %s: %w", s.cfg.Path, last, err)
	}
	defer f.Close()
	prev := map[string]struct{}{}
	if _, err := readKeys(f, prev, false); err != nil {
		return fmt.Errorf("file output %s: cannot read the rotated file %s: %w", s.cfg.Path, last, err)
	}
	s.prev = prev
	return nil
}

// open opens the file and loads its ids, cutting off a torn last line.
func (s *FileSink) open() error {
	f, err := os.OpenFile(s.cfg.Path, os.O_CREATE|os.O_RDWR|os.O_APPEND, s.cfg.Mode)
	if err != nil {
		return fmt.Errorf("file output: cannot open: %w", err)
	}
	ids := map[string]struct{}{}
	good, err := readKeys(f, ids, s.cfg.OnlyAlerts)
	if err != nil {
		f.Close()
		var na *notAlertError
		if errors.As(err, &na) {
			return fmt.Errorf("%s:%d: %w", s.cfg.Path, na.line, ErrNotAlert)
		}
		return fmt.Errorf("file output %s: cannot read alerts: %w", s.cfg.Path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file output %s: %w", s.cfg.Path, err)
	}
	if st.Size() > good {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return fmt.Errorf("file output %s: cannot cut off torn last line: %w", s.cfg.Path, err)
		}
	}
	s.f, s.size, s.ids, s.opened = f, good, ids, s.cfg.Now()
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, 64<<10)
	} else {
		s.w.Reset(f)
	}
	return nil
}

// readKeys adds the delivery key of every complete line of r to keys and
// returns the length of the complete lines. A line that is not an alert
// is skipped, or with onlyAlerts ends the read with a *notAlertError.
func readKeys(r io.Reader, keys map[string]struct{}, onlyAlerts bool) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var good int64
	var line []byte
	for n := 1; ; n++ {
		line = line[:0]
		for {
			chunk, err := br.ReadSlice('\n')
			line = append(line, chunk...)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err == io.EOF {
				return good, nil
			}
			if err != nil {
				return 0, err
			}
			break
		}
		good += int64(len(line))
		t := bytes.TrimSpace(line)
		if len(t) == 0 {
			continue
		}
		key, err := LineDeliveryKey(t)
		if err != nil {
			if onlyAlerts {
				return 0, &notAlertError{line: n, err: err}
			}
			continue
		}
		keys[key] = struct{}{}
	}
}

// notAlertError is a line of an alerts file that is not an alert.
type notAlertError struct {
	line int
	err  error
}

func (e *notAlertError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

// Write appends the alert unless it was written before (same delivery
// key).
func (s *FileSink) Write(_ context.Context, a *Alert) error {
	b, err := Marshal(a)
	if err != nil {
		return fmt.Errorf("file output %s: cannot encode alert %s: %w", s.cfg.Path, a.ID, err)
	}
	_, err = s.writeRaw(a.DeliveryKey(), append(b, '\n'))
	return err
}

// writeRaw appends one NDJSON line (ending in a newline) of the alert
// whose delivery key is key; written is false for a duplicate (a delivery
// key already written).
func (s *FileSink) writeRaw(key string, line []byte) (written bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, fmt.Errorf("file output %s: %w", s.cfg.Path, ErrClosed)
	}
	if _, ok := s.ids[key]; ok {
		return false, nil
	}
	if _, ok := s.prev[key]; ok {
		return false, nil
	}
	if s.size > 0 && (s.cfg.MaxSize > 0 && s.size+int64(len(line)) > s.cfg.MaxSize ||
		s.cfg.MaxAge > 0 && s.cfg.Now().Sub(s.opened) >= s.cfg.MaxAge) {
		if err := s.rotate(); err != nil {
			return false, err
		}
	}
	if _, err := s.w.Write(line); err != nil {
		return false, fmt.Errorf("file output %s: cannot write: %w", s.cfg.Path, err)
	}
	s.size += int64(len(line))
	if s.cfg.SyncWrites {
		if err := s.syncLocked(); err != nil {
			// The line may be in the file or not: the key is not taken
			// as written, and reopening the file reads what is there.
			return false, err
		}
	}
	s.ids[key] = struct{}{}
	return true, nil
}

// rotate renames the file to its backup name, opens a new one and removes
// the oldest backups.
func (s *FileSink) rotate() error {
	if err := s.syncLocked(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("file output %s: cannot close for rotation: %w", s.cfg.Path, err)
	}
	dir, base, ext := splitPath(s.cfg.Path)
	stamp := s.cfg.Now().UTC().Format(backupTimeFormat)
	name := filepath.Join(dir, base+"-"+stamp+ext)
	for i := 1; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			break
		}
		name = filepath.Join(dir, fmt.Sprintf("%s-%s.%d%s", base, stamp, i, ext))
	}
	if err := os.Rename(s.cfg.Path, name); err != nil {
		return fmt.Errorf("file output %s: cannot rotate: %w", s.cfg.Path, err)
	}
	s.prev = s.ids
	if err := s.open(); err != nil {
		return err
	}
	_ = syncDir(dir)
	return s.prune()
}

func splitPath(p string) (dir, base, ext string) {
	dir = filepath.Dir(p)
	name := filepath.Base(p)
	ext = filepath.Ext(name)
	return dir, strings.TrimSuffix(name, ext), ext
}

// Backups returns the rotated files of the sink, oldest first.
func (s *FileSink) Backups() ([]string, error) {
	dir, base, ext := splitPath(s.cfg.Path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, base+"-") || !strings.HasSuffix(n, ext) {
			continue
		}
		stamp := strings.TrimSuffix(strings.TrimPrefix(n, base+"-"), ext)
		if len(stamp) < len(backupTimeFormat) {
			continue
		}
		if _, err := time.Parse(backupTimeFormat, stamp[:len(backupTimeFormat)]); err != nil {
			continue
		}
		out = append(out, filepath.Join(dir, n))
	}
	slices.Sort(out)
	return out, nil
}

func (s *FileSink) prune() error {
	keep := max(s.cfg.MaxBackups, 0)
	old, err := s.Backups()
	if err != nil {
		return fmt.Errorf("file output %s: cannot list rotated files: %w", s.cfg.Path, err)
	}
	for len(old) > keep {
		if err := os.Remove(old[0]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("file output %s: cannot remove old rotated file: %w", s.cfg.Path, err)
		}
		old = old[1:]
	}
	return nil
}

func (s *FileSink) syncLocked() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("file output %s: cannot write: %w", s.cfg.Path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("file output %s: cannot sync: %w", s.cfg.Path, err)
	}
	return nil
}

// Flush writes the buffered alerts and fsyncs the file.
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.syncLocked()
}

// Close flushes and closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.syncLocked()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("file output %s: cannot close: %w", s.cfg.Path, cerr)
	}
	return err
}
