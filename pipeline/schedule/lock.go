package schedule

import (
	"time"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/storage"
)

// The job locks live in package lock, beside the outputs' publish locks;
// these names keep the scheduler's API.

// Lock is a job lock with a lease (see lock.Lock).
type Lock = lock.Lock

// FileLock is a lock in a local file (see lock.FileLock).
type FileLock = lock.FileLock

// StoreLock is a lock in object storage (see lock.StoreLock).
type StoreLock = lock.StoreLock

// ErrLocked is matched when another process holds a job's lock.
var ErrLocked = lock.ErrLocked

// LockDir is the folder, inside a job's first destination output, that
// holds its lock file.
const LockDir = lock.Dir

// LockPath returns where the lock of job lives when its first destination
// writes to output.
func LockPath(output, job string) string { return lock.JobPath(output, job) }

// NewLock returns the lock of job for an output (see lock.ForJob).
func NewLock(st storage.Store, output, job, owner string, ttl time.Duration, clock func() time.Time) (Lock, error) {
	return lock.ForJob(st, output, job, owner, ttl, clock)
}
