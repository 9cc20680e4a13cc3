package redis

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// PasswordEnv is the environment variable ParseURL takes the password from
// when the URL names no password file.
const PasswordEnv = "KANON_REDIS_PASSWORD"

// ParseURL returns the options a store URL describes:
//
//	redis://[USER@]HOST[:PORT][/DB][?prefix=NAME&password_file=FILE]
//	rediss://[USER@]HOST[:PORT][/DB][?prefix=NAME&password_file=FILE&ca=FILE&server_name=NAME]
//
// rediss:// connects with TLS, verifying the server's certificate against
// the system's roots, or against the PEM file ca= names. The port defaults
// to 6379 and the database to 0. The password is read from the file
// password_file= names (its first line), else taken from the environment
// variable KANON_REDIS_PASSWORD (through getenv) when it is set. A
// password in the URL itself (USER:PASS@) is refused: it would show in
// process listings, shell histories and configuration dumps.
func ParseURL(raw string, getenv func(string) string) (Options, error) {
	var o Options
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, password included: keep only why.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return o, fmt.Errorf("cannot parse redis store URL: %w", err)
	}
	bad := func(format string, args ...any) (Options, error) {
		return Options{}, fmt.Errorf("invalid redis store URL %s: %s", Redact(raw), fmt.Sprintf(format, args...))
	}
	switch u.Scheme {
	case "redis", "rediss":
	default:
		return bad("scheme %q is not redis or rediss", u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("no host")
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "6379"
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return bad("port %q is not a number between 1 and 65535", port)
	}
	o.Addr = net.JoinHostPort(host, port)
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if o.DB, err = strconv.Atoi(db); err != nil || o.DB < 0 {
			return bad("database %q is not a non-negative number", db)
		}
	}
	if u.User != nil {
		o.Username = u.User.Username()
		if _, has := u.User.Password(); has {
			return bad("a password in the URL: put it in the file ?password_file= names, or in $%s", PasswordEnv)
		}
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "prefix", "password_file", "ca", "server_name":
		default:
			return bad("unknown parameter %q (prefix, password_file, ca, server_name)", k)
		}
	}
	o.Prefix = q.Get("prefix")
	if f := q.Get("password_file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return bad("cannot read the password file: %v", err)
		}
		o.Password, _, _ = strings.Cut(string(b), "\n")
		o.Password = strings.TrimRight(o.Password, "\r")
	} else if getenv != nil {
		o.Password = getenv(PasswordEnv)
	}
	if u.Scheme == "rediss" {
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
		if n := q.Get("server_name"); n != "" {
			o.TLS.ServerName = n
		}
		if f := q.Get("ca"); f != "" {
			pem, err := os.ReadFile(f)
			if err != nil {
				return bad("cannot read the CA file: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return bad("CA file %s holds no PEM certificate", f)
			}
			o.TLS.RootCAs = pool
		}
	} else if q.Has("ca") || q.Has("server_name") {
		return bad("ca and server_name need rediss://")
	}
	return o, o.Validate()
}

// Redact returns the URL with any password in it replaced by "xxxxx", for
// messages and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a malformed URL)"
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); !has {
		return raw
	}
	return u.Redacted()
}
