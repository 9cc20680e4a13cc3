package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state/bolt"
)

// TestDamagedStateExits: kanon scan and kanon serve on a state directory
// whose file is damaged, empty or not a store exit 1 with the message that
// names the file and says what to do: no panic, no stack trace, and the
// file is left as it was.
func TestDamagedStateExits(t *testing.T) {
	bin := kanonBinary(t)
	work, _, log := scanState(t)
	sound, err := os.ReadFile(filepath.Join(work, "state", bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, content, want string
	}{
		{"cut to half", string(sound[:len(sound)/2]), "is damaged: "},
		{"empty", "", "is not a kanon state store: the file is empty"},
		{"text", strings.Repeat("hello\n", 2000), "is not a kanon state store: the file is not a bbolt database"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newServeEnv(t)
			os.MkdirAll(e.state, 0o700)
			path := filepath.Join(e.state, bolt.FileName)
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			run := func(args ...string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, args...)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				err := cmd.Run()
				code := cmd.ProcessState.ExitCode()
				msg := stderr.String()
				if code != 1 || err == nil {
					t.Fatalf("kanon %s exited %d (%v), want 1:\n%s", args[0], code, err, msg)
				}
				for _, w := range []string{"kanon: state store file " + path + " ", c.want, "kanon state repair --state-dir " + e.state} {
					if !strings.Contains(msg, w) {
						t.Errorf("kanon %s: stderr lacks %q:\n%s", args[0], w, msg)
					}
				}
				for _, w := range []string{"panic", "goroutine ", ".go:"} {
					if strings.Contains(msg, w) {
						t.Errorf("kanon %s: stderr has %q:\n%s", args[0], w, msg)
					}
				}
				if b, _ := os.ReadFile(path); string(b) != c.content {
					t.Fatalf("kanon %s changed the state file from %d to %d bytes", args[0], len(c.content), len(b))
				}
			}
			run("scan", "--state-dir", e.state, "--progress", "never", log)
			run(append([]string{"serve"}, e.tlsArgs()...)...)
		})
	}
}
