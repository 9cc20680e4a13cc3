//go:build !unix

package ingest

import "os"

// dirID identifies a directory, for loop detection: its path with every
// link resolved, where the platform has no inodes.
func dirID(path string, _ os.FileInfo) string { return realPath(path) }
