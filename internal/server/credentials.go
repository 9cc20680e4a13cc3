package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
)

// TokenSet holds the bearer tokens the webhook accepts, each read from a
// file of its own, and reads them again on demand (SIGHUP, or a change of
// the files seen by Watch). A set that does not load keeps the tokens
// loaded before. Its methods are safe for concurrent use.
type TokenSet struct {
	files []string
	mu    sync.RWMutex
	sums  [][sha256.Size]byte
	names []string // the client identity of each token
	raw   [][]byte // the files' bytes loaded last
}

// NewTokenSet returns a set of fixed tokens (no files), named token-1,
// token-2, ... as clients.
func NewTokenSet(tokens []string) (*TokenSet, error) {
	s := &TokenSet{}
	for i, t := range tokens {
		if t == "" {
			return nil, errors.New("server: empty bearer token")
		}
		s.sums = append(s.sums, sha256.Sum256([]byte(t)))
		s.names = append(s.names, fmt.Sprintf("token-%d", i+1))
	}
	return s, nil
}

// LoadTokens reads one token from each file; a token's client identity is
// its file's path.
func LoadTokens(files []string) (*TokenSet, error) {
	s := &TokenSet{files: files}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the token files again and reports whether any changed. If
// a file cannot be read or does not hold one token, every token stays as
// it was and the error says which file.
func (s *TokenSet) Reload() (changed bool, err error) {
	if len(s.files) == 0 {
		return false, nil
	}
	raw := make([][]byte, len(s.files))
	sums := make([][sha256.Size]byte, len(s.files))
	for i, f := range s.files {
		b, err := os.ReadFile(f)
		if err != nil {
			return false, fmt.Errorf("token_files: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false, fmt.Errorf("token_files: %s must hold one token (no spaces or line breaks)", f)
		}
		raw[i], sums[i] = b, sha256.Sum256([]byte(t))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw != nil {
		same := true
		for i := range raw {
			same = same && bytes.Equal(raw[i], s.raw[i])
		}
		if same {
			return false, nil
		}
	}
	s.raw, s.sums, s.names = raw, sums, append([]string(nil), s.files...)
	return true, nil
}

// Len returns the number of tokens.
func (s *TokenSet) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sums)
}

// match compares tok with every token in constant time and returns the
// name of the one it is.
func (s *TokenSet) match(tok string) (string, bool) {
	if s == nil {
		return "", false
	}
	sum := sha256.Sum256([]byte(tok))
	s.mu.RLock()
	defer s.mu.RUnlock()
	found := -1
	for i, t := range s.sums {
		if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return s.names[found], true
}

// Credential kinds, as kanon_credential_reloads_total labels them.
const (
	kindCert     = "certificate"
	kindClientCA = "client_ca"
	kindTokens   = "tokens"
)

// watchDebounce is how long Watch waits after a change of a watched
// directory before reading the files: a writer replacing several files
// (cert-manager's Secret: certificate, key and CA together) is done by
// then.
const watchDebounce = 200 * time.Millisecond

// Credentials are what the webhook authenticates with: its certificate and
// client CA (either may be nil) and its bearer tokens. Reload reads every
// file again; Watch does it whenever one changes.
type Credentials struct {
	Cert   *Certificate
	Tokens *TokenSet
	// Log receives a line per reload (nil: slog.Default()).
	Log *slog.Logger

	once    sync.Once
	reloads *prometheus.CounterVec // kind, result
}

// Register adds kanon_credential_reloads_total to reg (once): reloads by
// kind (certificate, client_ca, tokens) and result (ok: a change loaded;
// failed: a change refused, the old credential kept), at zero for the
// kinds configured.
func (c *Credentials) Register(reg *prometheus.Registry) {
	c.once.Do(func() {
		c.reloads = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_credential_reloads_total",
			Help: "Reloads of the webhook's certificate, client CA and bearer tokens after their files changed or SIGHUP: ok (loaded) or failed (refused, the old one kept)."},
			[]string{"kind", "result"}))
		for _, k := range c.kinds() {
			for _, r := range []string{"ok", "failed"} {
				c.reloads.WithLabelValues(k, r)
			}
		}
	})
}

func (c *Credentials) kinds() []string {
	var ks []string
	if c.Cert != nil {
		ks = append(ks, kindCert)
		if c.Cert.files.ClientCAFile != "" {
			ks = append(ks, kindClientCA)
		}
	}
	if c.Tokens != nil && len(c.Tokens.files) > 0 {
		ks = append(ks, kindTokens)
	}
	return ks
}

func (c *Credentials) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Reload reads every credential file again and loads what changed; what
// does not load is refused with a log line saying why, and the old
// credential stays. It returns the errors of the refused ones.
func (c *Credentials) Reload() error {
	var errs []error
	one := func(kind string, fn func() (bool, error)) {
		changed, err := fn()
		switch {
		case err != nil:
			c.count(kind, "failed")
			c.log().Error("credential not reloaded: the old one stays", "kind", kind, "err", err)
			errs = append(errs, err)
		case changed:
			c.count(kind, "ok")
			c.log().Info("credential reloaded", "kind", kind)
		}
	}
	for _, k := range c.kinds() {
		switch k {
		case kindCert:
			one(k, c.Cert.ReloadCert)
		case kindClientCA:
			one(k, c.Cert.ReloadClientCA)
		case kindTokens:
			one(k, c.Tokens.Reload)
		}
	}
	return errors.Join(errs...)
}

func (c *Credentials) count(kind, result string) {
	if c.reloads != nil {
		c.reloads.WithLabelValues(kind, result).Inc()
	}
}

// files are the credential files.
func (c *Credentials) files() []string {
	var fs []string
	if c.Cert != nil {
		fs = append(fs, c.Cert.files.CertFile, c.Cert.files.KeyFile)
		if c.Cert.files.ClientCAFile != "" {
			fs = append(fs, c.Cert.files.ClientCAFile)
		}
	}
	if c.Tokens != nil {
		fs = append(fs, c.Tokens.files...)
	}
	return fs
}

// Watch reloads the credentials (Reload) whenever a file in a directory
// that holds one of them is created, written, renamed or removed, until
// ctx ends. It watches directories, not files, so that a file replaced by
// a rename, or a Kubernetes Secret volume whose files are symbolic links
// into a "..data" directory that the kubelet swaps at once, is seen; the
// files are read again watchDebounce after the last change, and only
// those whose bytes changed are loaded. It returns once the directories
// are watched.
func (c *Credentials) Watch(ctx context.Context) error {
	dirs := map[string]bool{}
	for _, f := range c.files() {
		dirs[filepath.Dir(f)] = true
	}
	if len(dirs) == 0 {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("cannot watch the credential files: %w", err)
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return fmt.Errorf("cannot watch the credential files in %s: %w", d, err)
		}
	}
	go func() {
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op == fsnotify.Chmod {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(watchDebounce)
					fire = timer.C
				} else {
					timer.Reset(watchDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				c.log().Warn("watching the credential files", "err", err)
			case <-fire:
				timer, fire = nil, nil
				c.Reload()
			}
		}
	}()
	return nil
}
