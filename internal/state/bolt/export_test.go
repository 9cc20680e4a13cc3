package bolt

import "io"

// Salvage runs the salvage reader over the file r of the given size,
// calling keep with every entry it keeps (key, then expiry header and
// value), and returns how many keys it kept.
func Salvage(r io.ReaderAt, size int64, keep func(key, raw []byte) error) (int, error) {
	sv, err := salvage(r, size, keep)
	return len(sv.kept), err
}
