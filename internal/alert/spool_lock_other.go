//go:build !unix

package alert

import "os"

// lockFile is a no-op where flock is not available: one process per spool
// directory is then up to the operator.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) {}
