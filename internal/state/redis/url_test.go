package redis_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/state/redis"
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
	ok("redis://u:inline@h/1", redis.Options{Addr: "h:6379", DB: 1, Username: "u", Password: "inline"}, false)
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
	bad("redis://u:hunter2@h?password_file="+pwFile, "both")
	bad("redis://h?password_file="+filepath.Join(dir, "none"), "password file")
	bad("rediss://h?ca="+caFile, "no PEM")
	bad("redis://h?prefix=a{b}", "brace")
	bad("redis://u:hunter2@h:bad", "parse")

	if r := redis.Redact("redis://u:hunter2@h:1/0"); strings.Contains(r, "hunter2") {
		t.Fatalf("Redact kept the password: %s", r)
	}
}
