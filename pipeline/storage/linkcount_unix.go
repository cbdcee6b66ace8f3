//go:build unix

package storage

import (
	"io/fs"
	"syscall"
)

// linkCount returns the number of names (hard links) of the file info
// describes, 0 when the system does not say.
func linkCount(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}
