package schedule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ErrLocked is matched (errors.Is) when another process holds a job's lock
// and its lease has not expired.
var ErrLocked = errors.New("job is locked by another run")

// LockDir is the folder, inside a job's first destination output, that
// holds its lock file.
const LockDir = ".deid-lock"

// lockRecord is the content of a lock file.
type lockRecord struct {
	Job     string    `json:"job"`
	Owner   string    `json:"owner"` // host, pid and a random suffix
	Expires time.Time `json:"expires"`
}

// FileLock is a job lock held in a local file, created exclusively (a
// hard link, which like O_EXCL fails when the file exists) so that
// exactly one process can hold it, with a lease: the holder renews it while
// the job runs, and a lock whose lease expired (its holder died) is taken
// over. Until deid's storage has a lock primitive for every backend (local
// and GCS with preconditions), job locks on gs:// outputs are refused.
type FileLock struct {
	// Path is the lock file.
	Path string
	// Job and Owner are recorded in the file for people and for takeover.
	Job, Owner string
	// TTL is the lease: how long the lock stays valid without renewal.
	TTL time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	mu   sync.Mutex
	held *lockRecord
}

func (l *FileLock) now() time.Time {
	if l.Clock != nil {
		return l.Clock()
	}
	return time.Now()
}

// LockPath returns where the lock of job lives when its first destination
// writes to output, or an error when output is not a local folder.
func LockPath(output, job string) (string, error) {
	if strings.Contains(output, "://") {
		return "", fmt.Errorf("job %s: locks on %s need the storage's lock primitive, not in this build: run the job from one scheduler only", job, output)
	}
	return filepath.Join(output, LockDir, "job-"+job+".json"), nil
}

// Acquire takes the lock, or returns an error matching ErrLocked naming the
// holder and when its lease expires. An expired lock is taken over.
func (l *FileLock) Acquire() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.Path), 0o755); err != nil {
		return fmt.Errorf("lock %s: %w", l.Path, err)
	}
	for attempt := 0; attempt < 3; attempt++ {
		rec := &lockRecord{Job: l.Job, Owner: l.Owner, Expires: l.now().Add(l.TTL).UTC()}
		err := createExclusive(l.Path, rec)
		if err == nil {
			l.held = rec
			return nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("lock %s: %w", l.Path, err)
		}
		old, raw, err := readLock(l.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("lock %s: %w", l.Path, err)
		}
		if old != nil && l.now().Before(old.Expires) {
			return fmt.Errorf("lock %s: %w: held by %s until %s", l.Path, ErrLocked, old.Owner, old.Expires.Format(time.RFC3339))
		}
		// stale: move it aside (one process wins the rename); if what we
		// moved is not what we read, someone took it over meanwhile: put
		// it back and report the lock as held
		aside := fmt.Sprintf("%s.stale-%s", l.Path, sanitize(l.Owner))
		if err := os.Rename(l.Path, aside); err != nil {
			continue
		}
		moved, _ := os.ReadFile(aside)
		if !bytes.Equal(moved, raw) {
			if os.Link(aside, l.Path) == nil {
				os.Remove(aside)
			}
			return fmt.Errorf("lock %s: %w: taken over by another process", l.Path, ErrLocked)
		}
		os.Remove(aside)
	}
	return fmt.Errorf("lock %s: %w: contended", l.Path, ErrLocked)
}

// Renew extends the lease; it fails if the lock is no longer ours.
func (l *FileLock) Renew() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		return fmt.Errorf("lock %s: not held", l.Path)
	}
	cur, _, err := readLock(l.Path)
	if err != nil || cur == nil || *cur != *l.held {
		return fmt.Errorf("lock %s: lost (it expired and another process took it over)", l.Path)
	}
	rec := &lockRecord{Job: l.Job, Owner: l.Owner, Expires: l.now().Add(l.TTL).UTC()}
	tmp := l.Path + ".renew-" + sanitize(l.Owner)
	b, _ := json.Marshal(rec)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("lock %s: %w", l.Path, err)
	}
	if err := os.Rename(tmp, l.Path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("lock %s: %w", l.Path, err)
	}
	l.held = rec
	return nil
}

// Release removes the lock if it is still ours, and the lock folder when
// empty.
func (l *FileLock) Release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		return nil
	}
	held := l.held
	l.held = nil
	cur, _, err := readLock(l.Path)
	if err != nil || cur == nil || *cur != *held {
		return nil // expired and taken over: not ours to remove
	}
	if err := os.Remove(l.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unlock %s: %w", l.Path, err)
	}
	os.Remove(filepath.Dir(l.Path)) // fails, harmlessly, when another job's lock is there
	return nil
}

// createExclusive creates path holding rec, failing with fs.ErrExist when
// it exists: the record is written to a temporary file first and hard-linked
// into place, so a lock file is never seen half written.
func createExclusive(path string, rec *lockRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".new-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

// readLock returns the lock's record (nil when unreadable: treated as
// expired) and raw bytes.
func readLock(path string) (*lockRecord, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var rec lockRecord
	if json.Unmarshal(b, &rec) != nil {
		return nil, b, nil
	}
	return &rec, b, nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, s)
}
