//go:build unix

package bolt

import (
	"errors"
	"os"
	"syscall"
)

// tryLock takes an exclusive advisory lock on f without waiting; it reports
// false if another open file holds it. bbolt locks the same way, so the
// lock excludes other kanon processes, and bbolt's own lock on the same
// descriptor then succeeds at once.
func tryLock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
