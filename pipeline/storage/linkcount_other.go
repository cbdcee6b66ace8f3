//go:build !unix

package storage

import "io/fs"

// linkCount returns 0: this system's file information gives no link count,
// so hard links are not detected.
func linkCount(fs.FileInfo) uint64 { return 0 }
