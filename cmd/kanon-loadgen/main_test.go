package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/loadgen"
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
