package rules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxPolicyBytes is the largest policy file Load reads.
const MaxPolicyBytes = 16 << 20

// readRegularFile reads a policy file: regular (once links are followed) and
// of at most max bytes.
func readRegularFile(path string, max int64) ([]byte, error) {
	b, _, err := readRegular(path, max)
	var nr *notRegularError
	var tl *tooLargeError
	switch {
	case errors.As(err, &nr):
		return nil, fmt.Errorf("%q%s is %s, not a regular file", path, linkNote(path), fileKind(nr.mode))
	case errors.As(err, &tl) && tl.size >= 0:
		return nil, fmt.Errorf("%q: %d bytes, more than the %d a policy may have", path, tl.size, max)
	case errors.As(err, &tl):
		return nil, fmt.Errorf("%q: more than the %d bytes a policy may have", path, max)
	case err != nil:
		return nil, err
	}
	return b, nil
}

// notRegularError is readRegular's refusal of a path that is not a regular
// file once links are followed.
type notRegularError struct{ mode fs.FileMode }

func (e *notRegularError) Error() string { return "not a regular file: " + fileKind(e.mode) }

// tooLargeError is readRegular's refusal of a file over its cap; size is -1
// when the file grew past the cap while it was read.
type tooLargeError struct{ size int64 }

func (e *tooLargeError) Error() string { return fmt.Sprintf("file too large (%d bytes)", e.size) }

// readRegular reads the file at path, which must be a regular file (once
// links are followed) of at most max bytes, and returns its bytes and mode.
// It opens without blocking, so a FIFO cannot hang it, and checks the opened
// file, so the file cannot be swapped between the check and the read.
// Refusals are a *notRegularError or a *tooLargeError, for the caller to
// phrase; other errors are the system's, without the path.
func readRegular(path string, max int64) ([]byte, fs.FileMode, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		// a socket cannot be opened at all: say what it is
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
			return nil, 0, &notRegularError{fi.Mode()}
		}
		return nil, 0, unwrapPath(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, &notRegularError{fi.Mode()}
	}
	if fi.Size() > max {
		return nil, 0, &tooLargeError{fi.Size()}
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, 0, unwrapPath(err)
	}
	if int64(len(b)) > max {
		return nil, 0, &tooLargeError{-1}
	}
	return b, fi.Mode(), nil
}
