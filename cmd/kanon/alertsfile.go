package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/kanon-dev/kanon/internal/alert"
)

// alertsFile is the durable alert output of --alerts-file: JSON lines
// appended to a file, each synced to disk before Write returns, so that the
// engine marks an alert raised in the state store only once it is on disk.
// When it opens, it reads the file: a last line cut short by a crash is cut
// off, and the delivery key of every alert in the file (its id, and for a
// group its count) is kept. An alert a re-run writes again, because the
// crash came between writing it and marking it, is therefore not appended
// twice: with the same state directory and alerts file, a scan killed at
// any point and run again over the same input leaves in the file exactly
// the alerts of one uninterrupted scan, each once.
type alertsFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	have map[string]bool
}

func openAlertsFile(path string) (*alertsFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open alerts file: %w", err)
	}
	s := &alertsFile{path: path, f: f, have: map[string]bool{}}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load indexes the complete lines of the file and cuts off a partial last
// line.
func (s *alertsFile) load() error {
	data, err := io.ReadAll(s.f)
	if err != nil {
		return fmt.Errorf("cannot read alerts file: %w", err)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	for i, line := range bytes.Split(data[:end], []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var a struct {
			ID    string       `json:"id"`
			Group *alert.Group `json:"group"`
		}
		if err := json.Unmarshal(line, &a); err != nil || a.ID == "" {
			return fmt.Errorf("%s:%d: not an alert written by kanon (use another --alerts-file)", s.path, i+1)
		}
		s.have[deliveryKey(a.ID, a.Group)] = true
	}
	if end < len(data) {
		if err := s.f.Truncate(int64(end)); err != nil {
			return fmt.Errorf("cannot cut the partial last line of %s: %w", s.path, err)
		}
	}
	if _, err := s.f.Seek(int64(end), io.SeekStart); err != nil {
		return fmt.Errorf("cannot append to %s: %w", s.path, err)
	}
	return nil
}

// deliveryKey identifies one delivery of an alert: its id, and for a group
// the count it was delivered with (a group is delivered again when it grows).
func deliveryKey(id string, g *alert.Group) string {
	if g == nil {
		return id
	}
	return id + "#" + strconv.FormatInt(g.Count, 10)
}

// Write implements alert.Sink: it appends the alert unless the file holds
// it, and returns once it is synced to disk.
func (s *alertsFile) Write(_ context.Context, a *alert.Alert) error {
	key := deliveryKey(a.ID, a.Group)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have[key] {
		return nil
	}
	b, err := alert.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("cannot write alerts file: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("cannot sync alerts file: %w", err)
	}
	s.have[key] = true
	return nil
}

// Close implements alert.Sink.
func (s *alertsFile) Close() error { return s.f.Close() }
