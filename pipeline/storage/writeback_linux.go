package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing bytes [off, off+n) of f
// to disk without waiting for it. Durability still comes from the fsync at
// commit; this only spreads the disk writes over the run, so that the
// fsync of a large output does not write it all at the end. An error is
// ignored for the same reason.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
