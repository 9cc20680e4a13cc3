package alert

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// ErrSecret is the category of a value that names a secret kanon cannot
// read: an environment variable that is not set, a file that cannot be
// read.
var ErrSecret = errors.New("cannot resolve secret")

// Prefixes of values that say where a secret is kept.
const (
	secretEnvPrefix  = "env:"
	secretFilePrefix = "file:"
)

// IsSecretRef reports whether v names where a value is kept (env:NAME or
// file:PATH) rather than being the value itself.
func IsSecretRef(v string) bool {
	return strings.HasPrefix(v, secretEnvPrefix) || strings.HasPrefix(v, secretFilePrefix)
}

// ResolveSecret returns the value that v stands for. Every output reads
// its credentials, header values and secret URLs through it, so that no
// secret has to sit in a configuration file or on a command line:
//
//   - env:NAME is the value of the environment variable NAME, which must
//     be set and not empty;
//   - file:PATH is the content of the file PATH (a mounted Kubernetes
//     Secret, say) with one trailing newline (\n or \r\n) removed; it
//     must not be empty;
//   - anything else is the value itself.
//
// Errors wrap ErrSecret and name the variable or file, never the value.
func ResolveSecret(v string) (string, error) {
	switch {
	case strings.HasPrefix(v, secretEnvPrefix):
		name := strings.TrimPrefix(v, secretEnvPrefix)
		if name == "" {
			return "", fmt.Errorf("%w: %q names no environment variable", ErrSecret, v)
		}
		x, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("%w: environment variable %s is not set", ErrSecret, name)
		}
		if x == "" {
			return "", fmt.Errorf("%w: environment variable %s is empty", ErrSecret, name)
		}
		return x, nil
	case strings.HasPrefix(v, secretFilePrefix):
		path := strings.TrimPrefix(v, secretFilePrefix)
		x, _, err := readSecretFile(path)
		return x, err
	}
	return v, nil
}

func readSecretFile(path string) (string, os.FileInfo, error) {
	if path == "" {
		return "", nil, fmt.Errorf("%w: %q names no file", ErrSecret, secretFilePrefix)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrSecret, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrSecret, err)
	}
	if st.Size() > 1<<20 {
		return "", nil, fmt.Errorf("%w: file %s is over 1MiB", ErrSecret, path)
	}
	b := make([]byte, st.Size()+1)
	n, _ := f.Read(b)
	x := strings.TrimSuffix(strings.TrimSuffix(string(b[:n]), "\n"), "\r")
	if x == "" {
		return "", nil, fmt.Errorf("%w: file %s is empty", ErrSecret, path)
	}
	return x, st, nil
}

// secretValue is a configured value read through ResolveSecret whose
// file, if it names one, is read again when it changes (a rotated
// Kubernetes Secret), so that a rotated credential is used without a
// restart. It is safe for concurrent use.
type secretValue struct {
	ref string

	mu    sync.Mutex
	val   string
	mtime time.Time
	size  int64
}

// newSecretValue resolves ref once, so that a bad reference is an error
// when the output opens.
func newSecretValue(ref string) (*secretValue, error) {
	s := &secretValue{ref: ref}
	if _, err := s.get(); err != nil {
		return nil, err
	}
	return s, nil
}

// get returns the current value. A file that changed and cannot be read
// now keeps the value read last.
func (s *secretValue) get() (string, error) {
	if !strings.HasPrefix(s.ref, secretFilePrefix) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.val == "" {
			v, err := ResolveSecret(s.ref)
			if err != nil {
				return "", err
			}
			s.val = v
		}
		return s.val, nil
	}
	path := strings.TrimPrefix(s.ref, secretFilePrefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.val != "" {
		if st, err := os.Stat(path); err != nil || st.ModTime().Equal(s.mtime) && st.Size() == s.size {
			return s.val, nil
		}
	}
	v, st, err := readSecretFile(path)
	if err != nil {
		if s.val != "" {
			return s.val, nil
		}
		return "", err
	}
	s.val, s.mtime, s.size = v, st.ModTime(), st.Size()
	return s.val, nil
}
