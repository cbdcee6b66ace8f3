package rules

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxPolicyBytes is the largest policy file Load reads.
const MaxPolicyBytes = 16 << 20

// readRegularFile reads the file at path, which must be a regular file (once
// links are followed) of at most max bytes. It opens without blocking, so a
// FIFO cannot hang it, and checks the opened file, so the file cannot be
// swapped between the check and the read.
func readRegularFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%q%s is %s, not a regular file", path, linkNote(path), fileKind(fi.Mode()))
		}
		return nil, unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, unwrapPath(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%q%s is %s, not a regular file", path, linkNote(path), fileKind(fi.Mode()))
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%q: %d bytes, more than the %d a policy may have", path, fi.Size(), max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%q: more than the %d bytes a policy may have", path, max)
	}
	return b, nil
}
