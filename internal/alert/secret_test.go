package alert

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResolveSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("KANON_TEST_SECRET", "from-env")
	t.Setenv("KANON_TEST_EMPTY", "")
	f := func(ref, want, wantErr string) {
		t.Helper()
		got, err := ResolveSecret(ref)
		if wantErr != "" {
			if err == nil || !errors.Is(err, ErrSecret) || !strings.Contains(err.Error(), wantErr) {
				t.Errorf("ResolveSecret(%q) = %q, %v; want an ErrSecret saying %q", ref, got, err, wantErr)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("ResolveSecret(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	f("plain value", "plain value", "")
	f("env:KANON_TEST_SECRET", "from-env", "")
	f("env:KANON_TEST_UNSET_VARIABLE", "", "environment variable KANON_TEST_UNSET_VARIABLE is not set")
	f("env:KANON_TEST_EMPTY", "", "environment variable KANON_TEST_EMPTY is empty")
	f("env:", "", "names no environment variable")
	f("file:"+write("a", "s3cret\n"), "s3cret", "")
	f("file:"+write("b", "s3cret\r\n"), "s3cret", "")
	f("file:"+write("c", "two\nlines\n"), "two\nlines", "")
	f("file:"+write("d", "\n"), "", "is empty")
	f("file:"+filepath.Join(dir, "missing"), "", "no such file")
	f("file:", "", "names no file")
	if IsSecretRef("Bearer x") || !IsSecretRef("env:X") || !IsSecretRef("file:/x") {
		t.Error("IsSecretRef")
	}
}

// A secret file is read again when it changes; a file that becomes
// unreadable keeps the value read last.
func TestSecretValueRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := newSecretValue("file:" + p)
	if err != nil {
		t.Fatal(err)
	}
	get := func(want string) {
		t.Helper()
		if v, err := s.get(); err != nil || v != want {
			t.Fatalf("get = %q, %v; want %q", v, err, want)
		}
	}
	get("one")
	// Kubernetes swaps a Secret's files by renaming a new one into place.
	tmp := p + ".new"
	if err := os.WriteFile(tmp, []byte("two-rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	get("two-rotated")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	get("two-rotated")
	if _, err := newSecretValue("file:" + p); err == nil {
		t.Fatal("a missing file opened")
	}
}

// Opening an output resolves its secrets: a missing variable is an error
// that names the field and the variable, never a value.
func TestOutputSecretsResolvedAtOpen(t *testing.T) {
	t.Setenv("KANON_TEST_HOOK", "https://hooks.slack.example/T0/B0/very-secret")
	f := func(c OutputConfig, want string) {
		t.Helper()
		_, err := NewOutputs([]OutputConfig{c}, Options{SpoolRoot: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", c.Type, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "very-secret") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	f(OutputConfig{Type: TypeSplunk, URL: "http://127.0.0.1:1", Token: "env:KANON_TEST_NO_TOKEN"}, "token: cannot resolve secret: environment variable KANON_TEST_NO_TOKEN is not set")
	f(OutputConfig{Type: TypeWebhook, URL: "http://127.0.0.1:1", Headers: map[string]string{"X-Key": "file:/nonexistent/key"}}, "headers: X-Key: cannot resolve secret")
	f(OutputConfig{Type: TypeSlack, URL: "env:KANON_TEST_NO_HOOK"}, "url: cannot resolve secret: environment variable KANON_TEST_NO_HOOK is not set")
	f(OutputConfig{Type: TypeNATS, URL: "nats://127.0.0.1:1", Subject: "a", Username: "u", Password: "env:KANON_TEST_NO_PW"}, "password: cannot resolve secret")
	f(OutputConfig{Type: TypeKafka, Brokers: []string{"127.0.0.1:1"}, Topic: "a", SASL: "plain", Username: "u", Password: "env:KANON_TEST_NO_PW"}, "password: cannot resolve secret")
	t.Setenv("KANON_TEST_BAD_HOOK", "ftp://very-secret")
	f(OutputConfig{Type: TypeSlack, URL: "env:KANON_TEST_BAD_HOOK"}, "url: not an http or https URL with a host")
	o, err := NewOutputs([]OutputConfig{{Type: TypeSlack, URL: "env:KANON_TEST_HOOK"}}, Options{SpoolRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
}
