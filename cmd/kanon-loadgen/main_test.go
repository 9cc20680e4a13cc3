package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRunWritesGeneratedLog(t *testing.T) {
	start := "2025-03-04T05:06:07Z"
	opts := loadgen.DefaultOptions(300, 11)
	opts.Start, _ = time.Parse(time.RFC3339, start)
	opts.Rate = 50
	var want bytes.Buffer
	if _, err := loadgen.Generate(&want, opts); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "300", "-seed", "11", "-start", start, "-rate", "50"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Error("stdout differs from loadgen.Generate with the same options")
	}
	if !strings.Contains(stderr.String(), "wrote 300 events") {
		t.Errorf("summary: %q", stderr.String())
	}

	path := filepath.Join(t.TempDir(), "audit.log.gz")
	stdout.Reset()
	if code := run([]string{"-n", "300", "-seed", "11", "-start", start, "-rate", "50", "-gzip", "-o", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Error("wrote to stdout with -o")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Error("gzipped file differs from loadgen.Generate with the same options")
	}
}

func TestRunEventList(t *testing.T) {
	batches, _, err := loadgen.GenerateEventList(loadgen.DefaultOptions(250, 3), 100)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "250", "-seed", "3", "-eventlist", "100"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), bytes.Join(batches, nil)) {
		t.Error("-eventlist output differs from loadgen.GenerateEventList")
	}
	if n := bytes.Count(stdout.Bytes(), []byte("\n")); n != 3 {
		t.Errorf("%d lines, want 3 EventList bodies", n)
	}
}

func TestRunBursts(t *testing.T) {
	opts := loadgen.DefaultOptions(2000, 5)
	opts.Rate, opts.Bursts = 5, 20
	var want bytes.Buffer
	if _, err := loadgen.Generate(&want, opts); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "2000", "-seed", "5", "-rate", "5", "-bursts", "20"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Error("-bursts output differs from loadgen.Generate with Bursts")
	}
	bursts := 0
	for _, l := range bytes.Split(want.Bytes(), []byte("\n")) {
		if bytes.Contains(l, []byte(`"level":"Request"`)) && bytes.Contains(l, []byte(`"username":"system:anonymous"`)) {
			bursts++
		}
	}
	if bursts == 0 {
		t.Error("no anonymous Request-level event: no burst")
	}
}

func TestRunErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "-1"},
		{"-start", "yesterday"},
		{"-anonymous", "2"},
		{"-eventlist", "-3"},
		{"-bursts", "-1"},
		{"-nosuchflag"},
		{"extra"},
		{"-o", filepath.Join(t.TempDir(), "missing", "dir", "x.log")},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 1 and a message", args, code, stderr.String())
		}
	}
}

// -nats publishes the log to a JetStream subject (a real nats-server),
// -per-message lines a message, in order: the messages are the log, in
// the stream -nats-stream created.
func TestRunNATS(t *testing.T) {
	srv := natstest.StartNATS(t)
	opts := loadgen.DefaultOptions(1050, 6)
	opts.Bursts = 100
	var want bytes.Buffer
	if _, err := loadgen.Generate(&want, opts); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "1050", "-seed", "6", "-bursts", "100", "-nats", srv.URL() + "/audit.lab", "-nats-stream", "AUDIT", "-per-message", "100"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "published 1050 events") {
		t.Errorf("stdout %d bytes, summary %q", stdout.Len(), stderr.String())
	}
	stored := func(stream string) ([]byte, int) {
		var got bytes.Buffer
		msgs := 0
		srv.JetStream(t, func(ctx context.Context, js jetstream.JetStream) {
			s, err := js.Stream(ctx, stream)
			if err != nil {
				t.Fatal(err)
			}
			for seq := uint64(1); ; seq++ {
				m, err := s.GetMsg(ctx, seq)
				if err != nil {
					break
				}
				if n := bytes.Count(m.Data, []byte("\n")); n > 100 || !bytes.HasSuffix(m.Data, []byte("\n")) {
					t.Fatalf("message %d of %s: %d lines, not ending a line", seq, stream, n)
				}
				got.Write(m.Data)
				msgs++
			}
		})
		return got.Bytes(), msgs
	}
	if got, msgs := stored("AUDIT"); msgs != 11 || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("%d messages holding %d bytes; want 11 holding the %d bytes of the log", msgs, len(got), want.Len())
	}
	// -from publishes a file's lines.
	path := filepath.Join(t.TempDir(), "audit.log")
	os.WriteFile(path, want.Bytes(), 0o600)
	if code := run([]string{"-nats", srv.URL() + "/file.lab", "-nats-stream", "FILE", "-from", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("-from: exit %d: %s", code, stderr.String())
	}
	if got, msgs := stored("FILE"); msgs != 11 || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("-from: %d messages holding %d bytes; want 11 holding the %d bytes of the file", msgs, len(got), want.Len())
	}
	for _, args := range [][]string{
		{"-nats", "http://127.0.0.1:4222/audit"},
		{"-nats", "nats://127.0.0.1:4222/"},
		{"-nats", srv.URL() + "/audit.lab", "-gzip"},
		{"-nats", srv.URL() + "/audit.lab", "-per-message", "0"},
		{"-from", path},
		{"-nats", srv.URL() + "/audit.lab", "-from", path + ".missing"},
	} {
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
	}
}
