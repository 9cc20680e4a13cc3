package alert

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fastWebhook(url, dir string) WebhookConfig {
	return WebhookConfig{
		URL: url, SpoolDir: dir,
		Timeout:    300 * time.Millisecond,
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		QueueSize: 8, SegmentSize: 2048, SyncInterval: 20 * time.Millisecond,
		Headers: map[string]string{"Authorization": "Bearer s3cret"},
	}
}

func shutdown(t *testing.T, s Shutdowner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// The receiver fails in every way for a while, then recovers: every alert
// arrives, in order, once per distinct id.
func TestWebhookDeliversInOrderThroughOutages(t *testing.T) {
	r := newReceiver(t)
	s, err := NewWebhookSink(fastWebhook(r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	next := 0
	write := func(n int) {
		for end := next + n; next < end; next++ {
			if err := s.Write(ctx, testAlert(next)); err != nil {
				t.Fatalf("write %d: %v", next, err)
			}
		}
	}
	write(40)
	r.waitFor(40, 10*time.Second)

	r.setMode("500")
	write(40)
	time.Sleep(100 * time.Millisecond) // let the sender meet the 500s

	r.stop() // connection refused
	write(40)
	time.Sleep(100 * time.Millisecond)
	if st := s.Stats(); st.SpoolDepth == 0 || st.Retried == 0 {
		t.Fatalf("receiver down, yet nothing spooled or retried: %+v", st)
	}

	r.mu.Lock()
	r.slow = 500 * time.Millisecond // above the 300ms timeout
	r.mu.Unlock()
	r.setMode("slow")
	r.restart()
	write(40)
	time.Sleep(200 * time.Millisecond)

	r.setMode("ok")
	write(40)
	got := r.waitFor(next, 20*time.Second)
	equalIDs(t, "delivered", got, testIDs(0, next))
	r.checkBodies(got)
	if h := r.header.Get("Authorization"); h != "Bearer s3cret" {
		t.Errorf("Authorization header: %q", h)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: %q", ct)
	}
	st := s.Stats()
	if st.Delivered != uint64(next) || st.Failed != 0 || st.Dropped != 0 || st.Spooled == 0 || st.Retried == 0 {
		t.Errorf("stats: %+v", st)
	}
	// Delivered alerts leave the spool; consumed segments are removed.
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().SpoolDepth != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.SpoolDepth != 0 || st.SpoolBytes != 0 {
		t.Errorf("spool not empty after delivery: %+v", st)
	}
	segs, _ := filepath.Glob(filepath.Join(s.cfg.spoolDir, "*.seg"))
	if len(segs) != 1 {
		t.Errorf("%d segments left, want 1 (the tail): %v", len(segs), segs)
	}
}

// Alerts spooled while the receiver is down survive a restart of the sink
// and are delivered once, in order, before the new ones.
func TestWebhookSpoolSurvivesRestart(t *testing.T) {
	r := newReceiver(t)
	r.stop()
	dir := t.TempDir()
	cfg := fastWebhook(r.url(), dir)
	s1, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if err := s1.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s1.Stats(); st.SpoolDepth != 100 || st.QueueDepth != 0 {
		t.Fatalf("after Flush: %+v", st)
	}
	// A second sink cannot use the spool while the first holds it.
	if _, err := NewWebhookSink(cfg); err == nil {
		t.Fatal("two sinks opened the same spool")
	}
	shutdown(t, s1)
	if err := s1.Write(ctx, testAlert(100)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after shutdown: %v", err)
	}

	r.restart()
	s2, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.SpoolDepth == 0 {
		t.Fatalf("reopened spool is empty: %+v", st)
	}
	// Re-delivered alerts (90..99 are still spooled) are skipped.
	for i := 90; i < 150; i++ {
		if err := s2.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := r.waitFor(150, 20*time.Second)
	equalIDs(t, "delivered", got, testIDs(0, 150))
	if _, dups := r.unique(); dups != 0 {
		t.Errorf("%d alerts accepted twice", dups)
	}
	if st := s2.Stats(); st.Duplicates != 10 {
		t.Errorf("duplicates: %+v", st)
	}
	shutdown(t, s2)

	s3, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if st := s3.Stats(); st.SpoolDepth != 0 {
		t.Fatalf("spool not empty after delivering everything: %+v", st)
	}
}

// Shutdown mid-way through a stream with the receiver failing: the rest
// is spooled, and the next sink delivers it (nothing lost, nothing twice).
func TestWebhookShutdownMidStream(t *testing.T) {
	r := newReceiver(t)
	dir := t.TempDir()
	cfg := fastWebhook(r.url(), dir)
	s1, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		if i == 30 {
			r.setMode("500")
		}
		if err := s1.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_ = s1.Shutdown(sctx) // cut short or not: the rest must be in the spool
	cancel()
	r.setMode("ok")
	s2, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := 60; i < 80; i++ {
		if err := s2.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	got := r.waitFor(80, 20*time.Second)
	equalIDs(t, "delivered", got, testIDs(0, 80))
	if _, dups := r.unique(); dups != 0 {
		t.Errorf("%d alerts accepted twice", dups)
	}
}

// Shutdown delivers what is queued and spooled when the receiver is up.
func TestWebhookShutdownDrains(t *testing.T) {
	r := newReceiver(t)
	s, err := NewWebhookSink(fastWebhook(r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if err := s.Write(context.Background(), testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	shutdown(t, s)
	got, _ := r.unique()
	equalIDs(t, "delivered by shutdown", got, testIDs(0, 50))
}

// A 4xx other than 408/425/429 is not retried: the alert is counted as
// failed and the next one is delivered.
func TestWebhookPermanentError(t *testing.T) {
	r := newReceiver(t)
	r.setMode("400")
	var reported []error
	cfg := fastWebhook(r.url(), t.TempDir())
	errc := make(chan error, 10)
	cfg.OnError = func(err error) { errc <- err }
	s, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Write(context.Background(), testAlert(0)); err != nil {
		t.Fatal(err)
	}
	reported = append(reported, <-errc)
	if !strings.Contains(reported[0].Error(), "400 Bad Request: bad alert") {
		t.Errorf("reported: %v", reported[0])
	}
	r.setMode("ok")
	if err := s.Write(context.Background(), testAlert(1)); err != nil {
		t.Fatal(err)
	}
	got := r.waitFor(1, 5*time.Second)
	equalIDs(t, "delivered", got, testIDs(1, 2))
	if st := s.Stats(); st.Failed != 1 || st.Delivered != 1 || st.Retried != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// A full spool drops alerts with ErrSpoolFull and counts them.
func TestWebhookSpoolFull(t *testing.T) {
	r := newReceiver(t)
	r.stop()
	cfg := fastWebhook(r.url(), t.TempDir())
	cfg.QueueSize = 1
	cfg.SpoolMaxSize = 4096
	s, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var full int
	for i := 0; i < 50; i++ {
		err := s.Write(context.Background(), testAlert(i))
		if errors.Is(err, ErrSpoolFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if full == 0 || st.Dropped < uint64(full) || st.SpoolBytes > 4096 || !strings.Contains(st.LastError, "spool is full") {
		t.Fatalf("full=%d stats=%+v", full, st)
	}
}

// TLS: the receiver's CA in ca_file is trusted; without it the
// certificate is refused; insecure_skip_verify accepts it.
func TestWebhookTLS(t *testing.T) {
	r := newReceiverTLS(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := r.srv.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := fastWebhook(r.url(), t.TempDir())
	cfg.CAFile = caFile
	s, err := NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testAlert(0)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(1, 5*time.Second)
	shutdown(t, s)

	cfg = fastWebhook(r.url(), t.TempDir())
	errc := make(chan error, 100)
	cfg.OnError = func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	s, err = NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testAlert(1)); err != nil {
		t.Fatal(err)
	}
	// The first attempts may time out on a loaded machine; one must
	// report the certificate.
	for deadline := time.After(10 * time.Second); ; {
		var err error
		select {
		case err = <-errc:
		case <-deadline:
			t.Fatal("no certificate error reported")
		}
		if strings.Contains(err.Error(), "certificate") {
			break
		}
	}
	_ = s.Shutdown(context.Background())

	cfg = fastWebhook(r.url(), t.TempDir())
	cfg.InsecureSkipVerify = true
	s, err = NewWebhookSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), testAlert(2)); err != nil {
		t.Fatal(err)
	}
	r.waitFor(2, 5*time.Second)
	shutdown(t, s)

	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	cfg.CAFile = bad
	if _, err := NewWebhookSink(cfg); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad ca_file: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0},
		{"Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second},
		{"Sun, 01 Mar 2026 11:00:00 GMT", 0},
	} {
		if got := retryAfter(c.h, now); got != c.want {
			t.Errorf("retryAfter(%q) = %s, want %s", c.h, got, c.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for attempt := 0; attempt < 70; attempt++ {
		d := min(hi, lo<<min(attempt, 10))
		for range 20 {
			got := backoff(attempt, lo, hi)
			if got < d/2 || got > d {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", attempt, got, d/2, d)
			}
		}
	}
}

// A group update (same alert id, a new count) is a new delivery, not a
// repeat: it is sent, and only a repeat of the same count is dropped.
func TestWebhookGroupUpdates(t *testing.T) {
	r := newReceiver(t)
	s, err := NewWebhookSink(fastWebhook(r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	a := testAlert(1)
	a.Group = &Group{Key: "k", Count: 1}
	b := *a
	b.Group = &Group{Key: "k", Count: 5}
	for _, x := range []*Alert{a, &b, &b, a} {
		if err := s.Write(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	shutdown(t, s)
	r.mu.Lock()
	defer r.mu.Unlock()
	if got := strings.Join(r.accepted, " "); got != a.ID+"#1 "+a.ID+"#5" {
		t.Fatalf("delivered %q", got)
	}
}
