package redis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

func TestParseURL(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("from-file\nignored\n"), 0o600)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, []byte("not a certificate"), 0o600)
	env := func(k string) string {
		if k == redis.PasswordEnv {
			return "from-env"
		}
		return ""
	}
	ok := func(raw string, want redis.Options, tls bool) {
		t.Helper()
		got, err := redis.ParseURL(raw, env)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", raw, err)
		}
		if (got.TLS != nil) != tls {
			t.Fatalf("ParseURL(%q): TLS %v, want %t", raw, got.TLS, tls)
		}
		got.TLS = nil
		if got != want {
			t.Fatalf("ParseURL(%q) = %+v, want %+v", raw, got, want)
		}
	}
	ok("redis://localhost", redis.Options{Addr: "localhost:6379", Password: "from-env"}, false)
	ok("redis://10.0.0.1:6380/3?prefix=prod", redis.Options{Addr: "10.0.0.1:6380", DB: 3, Prefix: "prod", Password: "from-env"}, false)
	ok("redis://kanon@[::1]:7000/0?password_file="+pwFile, redis.Options{Addr: "[::1]:7000", Username: "kanon", Password: "from-file"}, false)
	ok("rediss://cache.example:6380/0?server_name=other", redis.Options{Addr: "cache.example:6380", Password: "from-env"}, true)
	got, _ := redis.ParseURL("rediss://cache.example?server_name=other", nil)
	if got.TLS == nil || got.TLS.ServerName != "other" || got.Password != "" {
		t.Fatalf("rediss with server_name and no env: %+v", got)
	}

	bad := func(raw, want string) {
		t.Helper()
		_, err := redis.ParseURL(raw, env)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("ParseURL(%q) = %v, want an error containing %q", raw, err, want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("ParseURL(%q) error shows the password: %v", raw, err)
		}
	}
	bad("http://h", "scheme")
	bad("redis://", "no host")
	bad("redis://h:0", "port")
	bad("redis://h:99999", "port")
	bad("redis://h/x", "database")
	bad("redis://h/-1", "database")
	bad("redis://h?db=1", "unknown parameter")
	bad("redis://h?ca=x", "need rediss")
	bad("redis://u:hunter2@h/1", "a password in the URL")
	bad("redis://u:hunter2@h?password_file="+pwFile, "a password in the URL")
	bad("redis://h?password_file="+filepath.Join(dir, "none"), "password file")
	bad("rediss://h?ca="+caFile, "no PEM")
	bad("redis://h?prefix=a{b}", "brace")
	bad("redis://u:hunter2@h:bad", "parse")

	if r := redis.Redact("redis://u:hunter2@h:1/0"); strings.Contains(r, "hunter2") {
		t.Fatalf("Redact kept the password: %s", r)
	}
}

// TestTLS connects to a redis-server that accepts TLS only, through a
// rediss:// URL with the server's CA and a password from a file.
func TestTLS(t *testing.T) {
	srv := redistest.StartTLS(t, "--requirepass", "tls-pw")
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("tls-pw\n"), 0o600)
	opts, err := redis.ParseURL("rediss://"+srv.Addr+"/0?prefix=tls&ca="+srv.CAFile+"&password_file="+pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, opts)
	if err := state.Put(ctx, s, []byte("k"), []byte("over TLS"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, []byte("k"), t0); err != nil || string(v) != "over TLS" {
		t.Fatalf("get over TLS = %q, %v", v, err)
	}
	// Without the CA the server's certificate is not trusted.
	opts, _ = redis.ParseURL("rediss://"+srv.Addr+"/0?password_file="+pw, nil)
	if s, err := redis.Open(ctx, opts); err == nil {
		s.Close()
		t.Fatal("a TLS connection without the server's CA succeeded")
	}
	// Plain connections are refused.
	if s, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Password: "tls-pw"}); err == nil {
		s.Close()
		t.Fatal("a plain connection to a TLS-only server succeeded")
	}
}
