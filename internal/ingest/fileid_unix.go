//go:build unix

package ingest

import (
	"fmt"
	"os"
	"syscall"
)

// dirID identifies a directory, for loop detection: its device and inode.
func dirID(path string, st os.FileInfo) string {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", s.Dev, s.Ino)
	}
	return realPath(path)
}
