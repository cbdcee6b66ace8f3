// Package lock holds leased locks in a store: a job's lock, held while the
// job runs so that two processes never run it at once, and an output's
// publish lock, held while a run or a retention sweep commits files, the
// report chain and the manifest of a destination output, so that two of
// them never interleave their read-merge-write of the manifest. On local
// disk a lock is a file created exclusively; on object storage an object
// created with preconditions. A lock has a lease: a holder that died is
// taken over once the lease expires. A run's staging lease
// (StagingPath) is a lock of the same kind. The package imports only
// pipeline/storage (cmd/deid's TestLayoutRules checks it never imports
// pipeline).
package lock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
)

// ErrLocked is matched (errors.Is) when another process holds a lock and
// its lease has not expired.
var ErrLocked = errors.New("is locked by another run")

// Dir is the folder, inside an output, that holds its lock files.
const Dir = ".deid-lock"

// lockRecord is the content of a lock file.
type lockRecord struct {
	Job     string    `json:"job"`
	Owner   string    `json:"owner"` // host, pid and a random suffix
	Expires time.Time `json:"expires"`
}

// Lock is a job lock with a lease: Acquire takes it (or fails with
// ErrLocked), Renew extends the lease while the job runs, Release gives it
// up if it is still ours. FileLock serves local outputs, StoreLock object
// storage (gs://).
type Lock interface {
	// Acquire takes the lock, taking over one whose lease expired.
	Acquire(ctx context.Context) error
	// Renew extends the lease; it fails if the lock is no longer ours.
	Renew(ctx context.Context) error
	// Release removes the lock if it is still ours.
	Release(ctx context.Context) error
}

// FileLock is a job lock held in a local file, created exclusively (a
// hard link, which like O_EXCL fails when the file exists) so that
// exactly one process can hold it, with a lease: the holder renews it while
// the job runs, and a lock whose lease expired (its holder died) is taken
// over. Locks on object storage are StoreLocks.
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

// under returns ctx with the folder that holds the lock folder (the
// output) as the root of the lock's writes (storage.WithRoots): links in
// its path are the operator's; the lock folder and file must not be links.
func (l *FileLock) under(ctx context.Context) context.Context {
	return storage.WithRoots(ctx, filepath.Dir(filepath.Dir(l.Path)))
}

func (l *FileLock) now() time.Time {
	if l.Clock != nil {
		return l.Clock()
	}
	return time.Now()
}

// JobPath returns where the lock of job lives when its first destination
// writes to output (a local folder or a gs:// URI).
func JobPath(output, job string) string {
	return storage.Join(output, Dir, "job-"+job+".json")
}

// PublishPath returns where the publish lock of an output lives.
func PublishPath(output string) string {
	return storage.Join(output, Dir, "publish.json")
}

// StagingPath returns where the lease of run runID's staging folder in an
// output lives: held while the run stages files there, so that another run
// can tell a staging folder in use from one a killed run left.
func StagingPath(output, runID string) string {
	return storage.Join(output, Dir, "staging-"+runID+".json")
}

// Free reports whether the lock at path is free: there is no lock there,
// or its lease expired (an unreadable lock counts as expired), or its
// holder was a process of this host that no longer runs. Its holder, if
// any, is not disturbed.
func Free(ctx context.Context, st storage.Store, path string, now time.Time) (bool, error) {
	var rec *lockRecord
	var err error
	if storage.IsURI(path) {
		rec, _, err = (&StoreLock{Store: st, Location: path}).read(ctx)
	} else {
		rec, _, err = readLock(path)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, storage.ErrNotExist):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	return rec == nil || !now.Before(rec.Expires) || goneFromThisHost(rec.Owner), nil
}

// ForJob returns the lock of job for an output (see At).
func ForJob(st storage.Store, output, job, owner string, ttl time.Duration, clock func() time.Time) (Lock, error) {
	return At(st, JobPath(output, job), job, owner, ttl, clock)
}

// At returns the lock at path, naming what holds it (a job, "publish"): a
// FileLock for a local path, a StoreLock in st for object storage, which
// needs exclusive creates and preconditions (storage.ExclusiveCreator and
// storage.Conditional, as GCS has).
func At(st storage.Store, path, job, owner string, ttl time.Duration, clock func() time.Time) (Lock, error) {
	if !storage.IsURI(path) {
		return &FileLock{Path: path, Job: job, Owner: owner, TTL: ttl, Clock: clock}, nil
	}
	if st == nil {
		return nil, fmt.Errorf("lock %s: no store for object storage", path)
	}
	return &StoreLock{Store: st, Location: path, Job: job, Owner: owner, TTL: ttl, Clock: clock}, nil
}

// Acquire takes the lock, or returns an error matching ErrLocked naming the
// holder and when its lease expires. An expired lock is taken over.
//
// Like every local write, the lock's files and folder are written through
// storage.Local: a symbolic link at the lock file, the lock folder or a
// folder above it (below the output, see storage.WithRoots) is refused with
// an error matching storage.ErrLink.
func (l *FileLock) Acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx = l.under(ctx)
	local := storage.Local{}
	for attempt := 0; attempt < 3; attempt++ {
		rec := &lockRecord{Job: l.Job, Owner: l.Owner, Expires: l.now().Add(l.TTL).UTC()}
		err := createExclusive(ctx, l.Path, rec)
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
		if old != nil && l.now().Before(old.Expires) && !goneFromThisHost(old.Owner) {
			return fmt.Errorf("lock %s: %w: held by %s until %s", l.Path, ErrLocked, old.Owner, old.Expires.Format(time.RFC3339))
		}
		// stale: move it aside (one process wins the rename); if what we
		// moved is not what we read, someone took it over meanwhile: put
		// it back and report the lock as held
		aside := fmt.Sprintf("%s.stale-%s", l.Path, sanitize(l.Owner))
		if err := local.Move(ctx, l.Path, aside); err != nil {
			if errors.Is(err, storage.ErrLink) {
				return fmt.Errorf("lock %s: %w", l.Path, err)
			}
			continue
		}
		moved, _ := os.ReadFile(aside)
		if !bytes.Equal(moved, raw) {
			if _, err := local.CreateExclusive(ctx, l.Path, moved); err == nil {
				local.Delete(ctx, aside)
			}
			return fmt.Errorf("lock %s: %w: taken over by another process", l.Path, ErrLocked)
		}
		local.Delete(ctx, aside)
	}
	return fmt.Errorf("lock %s: %w: contended", l.Path, ErrLocked)
}

// Renew extends the lease; it fails if the lock is no longer ours.
func (l *FileLock) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx = l.under(ctx)
	if l.held == nil {
		return fmt.Errorf("lock %s: not held", l.Path)
	}
	cur, _, err := readLock(l.Path)
	if err != nil || cur == nil || *cur != *l.held {
		return fmt.Errorf("lock %s: lost (it expired and another process took it over)", l.Path)
	}
	rec := &lockRecord{Job: l.Job, Owner: l.Owner, Expires: l.now().Add(l.TTL).UTC()}
	b, _ := json.Marshal(rec)
	if err := storage.WriteFile(ctx, storage.Local{}, l.Path, b); err != nil {
		return fmt.Errorf("lock %s: %w", l.Path, err)
	}
	l.held = rec
	return nil
}

// Release removes the lock if it is still ours, and its folder when that
// is a lock folder (Dir) left empty; a lock elsewhere (deid retain's, in a
// dataset's root) leaves its folder alone.
func (l *FileLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx = l.under(ctx)
	if l.held == nil {
		return nil
	}
	held := l.held
	l.held = nil
	cur, _, err := readLock(l.Path)
	if err != nil || cur == nil || *cur != *held {
		return nil // expired and taken over: not ours to remove
	}
	if err := (storage.Local{}).Delete(ctx, l.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unlock %s: %w", l.Path, err)
	}
	if dir := filepath.Dir(l.Path); filepath.Base(dir) == Dir {
		storage.Local{}.Delete(ctx, dir) // fails, harmlessly, when another job's lock is there
	}
	return nil
}

// createExclusive creates path holding rec, failing with fs.ErrExist when
// it exists; the file is never seen half written (storage.Local links it
// into place).
func createExclusive(ctx context.Context, path string, rec *lockRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = storage.Local{}.CreateExclusive(ctx, path, b)
	return err
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

// StoreLock is a job lock held in an object of a store with exclusive
// creates and preconditions (Google Cloud Storage), with a lease:
//
//   - Acquire creates the object only where none exists (ifGenerationMatch=0),
//     so of two contenders exactly one gets it;
//   - Renew replaces it only if it is still the generation we wrote
//     (GenerationMatch), so a holder whose lease expired and was taken over
//     learns it instead of overwriting the new holder's lock;
//   - an expired lock is taken over by deleting exactly the generation read
//     (DeleteIf), then creating exclusively: two contenders taking over
//     the same stale lock cannot both succeed (the second one's delete or
//     create fails its precondition);
//   - Release deletes only the generation we wrote.
//
// The record holds the owner (host, process and a random suffix) and the
// lease's end, so its bytes are unique to the holder: a create whose answer
// was lost is recognised as ours.
type StoreLock struct {
	// Store holds the lock; it must implement storage.ExclusiveCreator and
	// storage.Conditional (a storage.Router routes them to GCS).
	Store storage.Store
	// Location is the lock object.
	Location string
	// Job and Owner are recorded in the object for people and for takeover.
	Job, Owner string
	// TTL is the lease: how long the lock stays valid without renewal.
	TTL time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	mu   sync.Mutex
	held *lockRecord
	gen  int64 // generation of the object we wrote
}

func (l *StoreLock) now() time.Time {
	if l.Clock != nil {
		return l.Clock()
	}
	return time.Now()
}

func (l *StoreLock) conditional() (storage.Conditional, error) {
	c, ok := l.Store.(storage.Conditional)
	if !ok {
		return nil, fmt.Errorf("lock %s: the store has no preconditions: %w", l.Location, storage.ErrUnsupported)
	}
	return c, nil
}

// Acquire implements Lock.
func (l *StoreLock) Acquire(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.conditional()
	if err != nil {
		return err
	}
	for attempt := 0; attempt < 3; attempt++ {
		rec := &lockRecord{Job: l.Job, Owner: l.Owner, Expires: l.now().Add(l.TTL).UTC()}
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		a, err := storage.CreateExclusive(ctx, l.Store, l.Location, b)
		if err == nil {
			l.held, l.gen = rec, a.Generation
			return nil
		}
		if !errors.Is(err, storage.ErrExist) {
			return fmt.Errorf("lock %s: %w", l.Location, err)
		}
		old, gen, err := l.read(ctx)
		if errors.Is(err, storage.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("lock %s: %w", l.Location, err)
		}
		if old != nil && l.now().Before(old.Expires) && !goneFromThisHost(old.Owner) {
			return fmt.Errorf("lock %s: %w: held by %s until %s", l.Location, ErrLocked, old.Owner, old.Expires.Format(time.RFC3339))
		}
		// stale: remove exactly the version read; if it changed (renewed,
		// or taken over by another contender), the delete is refused
		switch err := c.DeleteIf(ctx, l.Location, gen); {
		case errors.Is(err, storage.ErrPrecondition):
			return fmt.Errorf("lock %s: %w: taken over or renewed by another process meanwhile", l.Location, ErrLocked)
		case err != nil && !errors.Is(err, storage.ErrNotExist):
			return fmt.Errorf("lock %s: remove the expired lock: %w", l.Location, err)
		}
	}
	return fmt.Errorf("lock %s: %w: contended", l.Location, ErrLocked)
}

// read returns the lock's record (nil when unreadable: treated as expired)
// and the generation it was read from.
func (l *StoreLock) read(ctx context.Context) (*lockRecord, int64, error) {
	// the generation is the one of the bytes read: one Open, not ReadFile
	r, err := l.Store.Open(ctx, l.Location)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		return nil, 0, err
	}
	var rec lockRecord
	if json.Unmarshal(b, &rec) != nil {
		return nil, r.Attrs().Generation, nil
	}
	return &rec, r.Attrs().Generation, nil
}

// Renew implements Lock: the object is replaced only if it is still the
// generation this holder wrote.
func (l *StoreLock) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		return fmt.Errorf("lock %s: not held", l.Location)
	}
	c, err := l.conditional()
	if err != nil {
		return err
	}
	rec := &lockRecord{Job: l.Job, Owner: l.Owner, Expires: l.now().Add(l.TTL).UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	w, err := c.CreateIf(ctx, l.Location, storage.Condition{GenerationMatch: l.gen})
	if err != nil {
		return fmt.Errorf("lock %s: %w", l.Location, err)
	}
	defer w.Abort()
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("lock %s: %w", l.Location, err)
	}
	a, err := w.Commit()
	if errors.Is(err, storage.ErrPrecondition) || errors.Is(err, storage.ErrNotExist) {
		l.held = nil
		return fmt.Errorf("lock %s: lost (it expired and another process took it over): %w", l.Location, err)
	}
	if err != nil {
		return fmt.Errorf("lock %s: %w", l.Location, err)
	}
	l.held, l.gen = rec, a.Generation
	return nil
}

// Release implements Lock: only the generation this holder wrote is
// deleted; a lock taken over by another process is left alone.
func (l *StoreLock) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		return nil
	}
	l.held = nil
	c, err := l.conditional()
	if err != nil {
		return err
	}
	err = c.DeleteIf(ctx, l.Location, l.gen)
	if err != nil && !errors.Is(err, storage.ErrPrecondition) && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("unlock %s: %w", l.Location, err)
	}
	return nil
}

// NewOwner returns a name for a lock holder unique to this process and
// call: the host, the process id and a random suffix.
func NewOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// AcquireWait takes l, trying again every poll while another holder's
// lease stands, for at most wait; onWait, when set, is told the first time
// it waits and why. It gives up with the last ErrLocked error.
func AcquireWait(ctx context.Context, l Lock, wait, poll time.Duration, onWait func(error)) error {
	deadline := time.Now().Add(wait)
	for waited := false; ; waited = true {
		err := l.Acquire(ctx)
		if err == nil || !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return err
		}
		if !waited && onWait != nil {
			onWait(err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(poll):
		}
	}
}

// Renewing renews l's lease every ttl/3 until the returned stop is called;
// a renewal that fails is reported to onErr.
func Renewing(ctx context.Context, l Lock, ttl time.Duration, onErr func(error)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := l.Renew(context.WithoutCancel(ctx)); err != nil && onErr != nil {
					onErr(err)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// goneFromThisHost reports whether a lock's owner (NewOwner's host/pid/
// suffix) is a process of this host that no longer runs: its lock is
// stale though its lease has not run out, and is taken over at once
// rather than a lease later (a run killed while holding a publish lock
// does not hold up the next for a minute). Owners of other hosts, or not
// of that form, wait for their lease.
func goneFromThisHost(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	return err == nil && Gone(parts[0], pid)
}

// Gone reports whether process pid of host is a process of this host
// (not this one) that no longer runs. A process of another host, or one
// that cannot be told, is not gone.
func Gone(host string, pid int) bool {
	this, err := os.Hostname()
	if err != nil || pid <= 0 || host != this || pid == os.Getpid() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return true
	}
	err = p.Signal(syscall.Signal(0))
	return err != nil && !errors.Is(err, syscall.EPERM)
}
