package alert

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fileIDs returns the ids of the alerts in a file, checking every line is
// a JSON alert.
func fileIDs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var a Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("%s: line %d: %v", path, len(ids)+1, err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

func TestFileRotationBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.ndjson")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	line, _ := Marshal(testAlert(10)) // alerts 10..99 have lines of one length
	max := int64(len(line)+1)*10 + 5  // ten alerts per file
	s, err := NewFileSink(FileConfig{Path: path, MaxSize: max, MaxBackups: 2, Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 55; i++ {
		if err := s.Write(context.Background(), testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	backups, err := s.Backups()
	if err != nil || len(backups) != 2 {
		t.Fatalf("backups %v, %v", backups, err)
	}
	var all []string
	for _, f := range append(backups, path) {
		st, _ := os.Stat(f)
		if st.Size() > max {
			t.Errorf("%s is %d bytes, above %d", f, st.Size(), max)
		}
		all = append(all, fileIDs(t, f)...)
	}
	// Two backups of ten and the current five: alerts 30..54.
	equalIDs(t, "kept alerts", all, testIDs(30, 55))
}

func TestFileRotationByAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := NewFileSink(FileConfig{Path: path, MaxAge: time.Hour, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.Write(ctx, testAlert(0))
	clock = clock.Add(59 * time.Minute)
	s.Write(ctx, testAlert(1))
	clock = clock.Add(time.Minute)
	s.Write(ctx, testAlert(2))
	s.Flush()
	backups, _ := s.Backups()
	if len(backups) != 1 || filepath.Base(backups[0]) != "alerts-20260301T130000.000Z" {
		t.Fatalf("backups: %v", backups)
	}
	equalIDs(t, "rotated", fileIDs(t, backups[0]), testIDs(0, 2))
	equalIDs(t, "current", fileIDs(t, path), testIDs(2, 3))
}

// Reopening reads the ids in the file: re-delivered alerts are not written
// again, and a torn last line is cut off.
func TestFileDedupOnReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out", "alerts.ndjson")
	ctx := context.Background()
	s, err := NewFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		s.Write(ctx, testAlert(i))
	}
	s.Write(ctx, testAlert(3)) // same process: skipped too
	s.Close()
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"id":"` + testAlert(10).ID + `","@timestamp":`) // crash mid-line
	f.Close()

	s, err = NewFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 15; i++ {
		s.Write(ctx, testAlert(i))
	}
	s.Close()
	equalIDs(t, "file", fileIDs(t, path), testIDs(0, 15))
}

// The stdout sink is safe for concurrent use: lines never interleave.
func TestJSONSinkConcurrent(t *testing.T) {
	var buf bytes.Buffer
	s := NewJSONSink(&buf)
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				if err := s.Write(context.Background(), testAlert(g*100+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
	s.Close()
	path := filepath.Join(t.TempDir(), "out")
	os.WriteFile(path, buf.Bytes(), 0o600)
	got := fileIDs(t, path)
	slices.Sort(got)
	want := testIDs(0, 800)
	slices.Sort(want)
	equalIDs(t, "lines", got, want)
}

// A dedup group is delivered first with count 1 and later, under the same
// id, as an update with its final count: the file keeps both, and drops
// re-deliveries of either, in the same process and after reopening.
func TestFileGroupUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.ndjson")
	ctx := context.Background()
	grouped := func(count int64) *Alert {
		a := testAlert(1)
		a.Group = &Group{Key: "curl", Count: count, FirstSeen: a.Timestamp, LastSeen: a.Timestamp.Add(time.Duration(count) * time.Minute)}
		return a
	}
	plain := testAlert(2)
	// An ungrouped alert whose event holds a "group" object is still known
	// by its id alone.
	plain.Event = map[string]any{"group": map[string]any{"count": 7}}
	s, err := NewFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Alert{grouped(1), plain, grouped(1), grouped(4), plain, grouped(4)} {
		if err := s.Write(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s, err = NewFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Alert{grouped(4), grouped(1), plain, grouped(9)} {
		if err := s.Write(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var a Alert
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatal(err)
		}
		k := a.ID
		if a.Group != nil {
			k += fmt.Sprintf(" count %d", a.Group.Count)
		}
		got = append(got, k)
	}
	id1, id2 := testAlert(1).ID, testAlert(2).ID
	want := []string{id1 + " count 1", id2, id1 + " count 4", id1 + " count 9"}
	if !slices.Equal(got, want) {
		t.Fatalf("file holds\n%q\nwant\n%q", got, want)
	}
}

// exactlyOnce is the configuration of kanon scan --alerts-file.
func exactlyOnce(path string) FileConfig {
	return FileConfig{Path: path, MaxSize: -1, SyncWrites: true, OnlyAlerts: true, Mode: 0o600}
}

// With SyncWrites an alert is in the file when Write returns; without it,
// only after Flush.
func TestFileSyncWrites(t *testing.T) {
	ctx := context.Background()
	for _, sync := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "alerts.ndjson")
		s, err := NewFileSink(FileConfig{Path: path, SyncWrites: sync})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := s.Write(ctx, testAlert(i)); err != nil {
				t.Fatal(err)
			}
			n := len(fileIDs(t, path))
			if sync && n != i+1 || !sync && n != 0 {
				t.Fatalf("SyncWrites %v: %d alerts in the file after Write %d", sync, n, i+1)
			}
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		equalIDs(t, "after Flush", fileIDs(t, path), testIDs(0, 3))
		s.Close()
	}
}

// A negative MaxSize (and no MaxAge) never rotates, where a positive one
// of the same writes does.
func TestFileNoRotation(t *testing.T) {
	ctx := context.Background()
	line, _ := Marshal(testAlert(10))
	for _, max := range []int64{-1, int64(len(line)+1) * 10} {
		path := filepath.Join(t.TempDir(), "alerts.ndjson")
		clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		s, err := NewFileSink(FileConfig{Path: path, MaxSize: max, Now: func() time.Time {
			clock = clock.Add(time.Hour)
			return clock
		}})
		if err != nil {
			t.Fatal(err)
		}
		for i := 10; i < 60; i++ {
			if err := s.Write(ctx, testAlert(i)); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		backups, err := s.Backups()
		if err != nil {
			t.Fatal(err)
		}
		if max < 0 {
			if len(backups) != 0 {
				t.Fatalf("MaxSize %d rotated: %v", max, backups)
			}
			equalIDs(t, "file", fileIDs(t, path), testIDs(10, 60))
		} else if len(backups) == 0 {
			t.Fatalf("MaxSize %d did not rotate", max)
		}
	}
}

// With OnlyAlerts a file holding a line that is not an alert is refused,
// naming the line, and left as it is; a torn last line is not such a
// line (it is cut off). Without OnlyAlerts the line is kept.
func TestFileOnlyAlerts(t *testing.T) {
	ctx := context.Background()
	a0, _ := Marshal(testAlert(0))
	a1, _ := Marshal(testAlert(1))
	foreign := string(a0) + "\n\n" + string(a1) + "\n" + `{"kind":"Event","auditID":"x"}` + "\n" + `{"id":"` + testAlert(2).ID
	path := filepath.Join(t.TempDir(), "alerts.ndjson")
	if err := os.WriteFile(path, []byte(foreign), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewFileSink(exactlyOnce(path))
	if want := path + ":4: not an alert written by kanon"; err == nil || err.Error() != want || !errors.Is(err, ErrNotAlert) {
		t.Fatalf("NewFileSink = %v, want %q wrapping ErrNotAlert", err, want)
	}
	if b, _ := os.ReadFile(path); string(b) != foreign {
		t.Fatalf("the refused file changed:\n%s", b)
	}

	// Without OnlyAlerts: the foreign line stays, the torn one goes, and
	// the alerts in the file are not written again.
	s, err := NewFileSink(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.Write(ctx, testAlert(i))
	}
	s.Close()
	want := string(a0) + "\n\n" + string(a1) + "\n" + `{"kind":"Event","auditID":"x"}` + "\n"
	a2, _ := Marshal(testAlert(2))
	if b, _ := os.ReadFile(path); string(b) != want+string(a2)+"\n" {
		t.Fatalf("file holds\n%s", b)
	}

	// Alerts only, blank lines and a torn last line: accepted.
	clean := string(a0) + "\n\n" + string(a1) + "\n" + string(a2[:20])
	os.WriteFile(path, []byte(clean), 0o600)
	s, err = NewFileSink(exactlyOnce(path))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b, _ := os.ReadFile(path); string(b) != string(a0)+"\n\n"+string(a1)+"\n" {
		t.Fatalf("file holds\n%s", b)
	}
}

// The exactly-once alerts file: an engine writes alerts and commits that
// they are raised some writes after Write returned; it is killed (the
// file handle dropped, no Flush, no Close, half a line written) and run
// again from its last commit. In the end the file holds every delivery
// once, in order: plain alerts, dedup groups and their updates.
func TestFileExactlyOnceAfterKills(t *testing.T) {
	ctx := context.Background()
	var deliveries []*Alert
	for i := range 40 {
		a := testAlert(i)
		if i%5 == 4 {
			// A group delivered with count 1 and updated with count 3.
			g := testAlert(i % 10)
			g.Group = &Group{Key: "k", Count: 1, FirstSeen: g.Timestamp, LastSeen: g.Timestamp}
			u := *g
			u.Group = &Group{Key: "k", Count: 3, FirstSeen: g.Timestamp, LastSeen: g.Timestamp.Add(time.Minute)}
			deliveries = append(deliveries, g, &u)
			continue
		}
		deliveries = append(deliveries, a)
	}
	var want []string
	seen := map[string]bool{}
	for _, a := range deliveries {
		if k := a.DeliveryKey(); !seen[k] {
			seen[k] = true
			want = append(want, k)
		}
	}
	const lag = 4 // writes between a Write and the commit that covers it
	for _, kills := range [][]int{{1}, {len(deliveries) / 2}, {len(deliveries) - 1}, {3, 9, 20, 33}} {
		path := filepath.Join(t.TempDir(), "alerts.ndjson")
		committed := 0
		for _, k := range kills {
			s, err := NewFileSink(exactlyOnce(path))
			if err != nil {
				t.Fatal(err)
			}
			// Run from the last commit and be killed after write k.
			for i := committed; i < k; i++ {
				if err := s.Write(ctx, deliveries[i]); err != nil {
					t.Fatal(err)
				}
				committed = max(committed, i+1-lag)
			}
			s.f.Close()
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(`{"id":"` + deliveries[k].ID + `","@timestamp":"2026-`)
			f.Close()
		}
		s, err := NewFileSink(exactlyOnce(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range deliveries[committed:] {
			if err := s.Write(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		var got []string
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			k, err := LineDeliveryKey(l)
			if err != nil {
				t.Fatalf("kills %v: %v in\n%s", kills, err, l)
			}
			got = append(got, k)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("kills %v: file holds\n%q\nwant\n%q", kills, got, want)
		}
		if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
			t.Fatalf("file mode %v, want 0600", st.Mode().Perm())
		}
	}
}

// After a restart the sink knows the alerts of the current file and of
// the file rotated last, as the process before it did: an alert raised
// again is written once more only when it is older than both.
func TestFileDedupRotatedLastAfterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.ndjson")
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	line, _ := Marshal(testAlert(10))
	cfg := FileConfig{Path: path, MaxSize: int64(len(line)+1)*10 + 5, MaxBackups: 5, Now: func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}}
	ctx := context.Background()
	s, err := NewFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 35; i++ { // files of 10..19, 20..29 and the current 30..34
		if err := s.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = NewFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{12, 22, 32} { // raised again after the restart
		if err := s.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	backups, _ := s.Backups()
	var all []string
	for _, f := range append(backups, path) {
		all = append(all, fileIDs(t, f)...)
	}
	want := append(testIDs(10, 35), testAlert(12).ID)
	equalIDs(t, "written", all, want)
}
