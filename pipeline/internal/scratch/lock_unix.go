//go:build unix

package scratch

import (
	"errors"
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on f without waiting, and reports
// whether it got it. The lock belongs to f's open file (flock(2), not a
// process-wide POSIX lock), so two jobs of one process exclude each other
// too; the system drops it when the process ends.
func lock(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// locks reports whether this system has the locks stale folders are told
// by.
const locks = true
