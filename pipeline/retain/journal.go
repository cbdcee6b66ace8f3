package retain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
)

// The crash-safe replace. A run stages every new file (and every file of
// anonymized or isolated rows) in <root>/.deid-retain/<run id>/ and verifies it; only
// then does it write the journal, <root>/.deid-retain/journal.json, which
// lists the moves and deletes to make. Writing the journal is the commit
// point:
//
//   - killed before the journal exists, the run changed no data file; the
//     next run removes the work folder (roll back);
//   - killed after, the next run replays the journal (roll forward): a
//     staged file that is still there is moved into place (the move is
//     atomic, so a staged file that is gone was moved already), a file to
//     delete that is still there is deleted. Replaying is idempotent.
//
// On stores that keep generations (GCS) each action records the generation
// of the file it was computed from, and the swap replaces (or deletes) the
// file only if it is still that generation: a file another writer changed
// during the run is left as that writer made it, its action abandoned, and
// the run fails with ErrConcurrentChange naming it; the next run reads the
// new version. (The anonymized rows of a file move only after a check
// that the file is still that generation; a change in the instant between
// that check and the swap would leave them both there and in the file.)
//
// Then the journal is removed, then the work folder. The lock,
// <root>/.deid-retain.lock, is a lease of pipeline/lock taken before the
// run reads anything, renewed while it runs, confirmed before the journal
// is written and removed last; a lock whose lease ran out, or held by a
// process of this host that no longer runs, is taken over (see
// acquireLock).

const (
	workDir     = output.RetainDir
	journalName = output.RetainJournal
	lockName    = ".deid-retain.lock"
	// journalFormat is v2 since actions may move isolated rows: a v1
	// reader would ignore that move and lose them, so it must refuse
	journalFormat   = "deid-retain-journal/v2"
	journalFormatV1 = "deid-retain-journal/v1"

	recoveredForward = "rolled forward"
	recoveredBack    = "rolled back"
)

// ErrLocked is matched (errors.Is) when another retain run holds a
// dataset's or an output's retain lock: it is pipeline/lock's ErrLocked.
var ErrLocked = lock.ErrLocked

// ErrConcurrentChange is matched when a file changed between the moment
// retain read it and its swap: the change was kept, not overwritten.
var ErrConcurrentChange = errors.New("changed by another writer while retain ran: left as that writer made it; run deid retain again to apply retention to the new version")

// journal is the intent of a run, written before any data file changes.
type journal struct {
	Format  string   `json:"format"`
	RunID   string   `json:"run_id"`
	Dataset string   `json:"dataset"`
	Actions []action `json:"actions"`
}

// action is one file's change.
type action struct {
	// File is the source file.
	File string `json:"file"`
	// Staged, when set, replaces File.
	Staged string `json:"staged,omitempty"`
	// Delete removes File.
	Delete bool `json:"delete,omitempty"`
	// AnonStaged, when set, moves to AnonFinal (before File changes).
	AnonStaged string `json:"anonymized_staged,omitempty"`
	AnonFinal  string `json:"anonymized,omitempty"`
	// IsoStaged, when set, moves to IsoFinal, in the isolated part (before
	// File changes).
	IsoStaged string `json:"restricted_staged,omitempty"`
	IsoFinal  string `json:"restricted,omitempty"`
	// Generation is File's generation when it was read (0: the store
	// keeps none); the swap happens only if File is still that version.
	Generation int64 `json:"generation,omitempty"`
}

// retainLock is a run's hold on a retain lock.
type retainLock struct {
	l    lock.Lock
	stop func()
	loc  string
	log  *slog.Logger
}

// acquireLock takes the retain lock of a dataset root or an output: a lease
// of pipeline/lock (as jobs' and publish locks are), renewed every third of
// opt.LockStale while the run holds it, so a run however long keeps it and
// one that died loses it once its lease runs out (at once when it was a
// process of this host). The lease runs on real time, not opt.Clock: other
// processes judge it by theirs.
func acquireLock(ctx context.Context, st storage.Store, root string, opt *Options) (*retainLock, error) {
	loc := storage.Join(root, lockName)
	if err := legacyLock(ctx, st, loc, opt); err != nil {
		return nil, err
	}
	l, err := lock.At(st, loc, "retain", lock.NewOwner(), opt.LockStale, nil)
	if err != nil {
		return nil, err
	}
	if err := l.Acquire(ctx); err != nil {
		if errors.Is(err, lock.ErrLocked) {
			return nil, fmt.Errorf("a deid retain run holds the lock: %w; if none is active, remove the lock or wait until its lease runs out", err)
		}
		return nil, err
	}
	// a retain run killed while taking this lock left its temporary file
	// beside it
	if !storage.IsURI(root) {
		storage.RemoveOrphanTemps(ctx, root)
	}
	held := &retainLock{l: l, loc: loc, log: opt.Logger}
	held.stop = lock.Renewing(ctx, l, opt.LockStale, func(err error) {
		opt.Logger.Error("the retain lock's lease could not be renewed", "lock", loc, "error", err)
	})
	return held, nil
}

// confirm renews the lease before a commit: a run whose lock was taken
// over (its lease ran out unrenewed) must not swap files another run may
// be changing.
func (h *retainLock) confirm(ctx context.Context) error {
	if h == nil {
		return nil // a dry run, which commits nothing
	}
	if err := h.l.Renew(ctx); err != nil {
		return fmt.Errorf("the retain lock %s was lost before the commit, nothing was changed: %w", h.loc, err)
	}
	return nil
}

// release stops renewing the lease and removes the lock.
func (h *retainLock) release(ctx context.Context) {
	h.stop()
	if err := h.l.Release(context.WithoutCancel(ctx)); err != nil {
		h.log.Warn("release the retain lock: it expires with its lease", "lock", h.loc, "err", err)
	}
}

// legacyLock refuses a live retain lock written by an earlier deid, which
// held it without a lease (its file's age against opt.LockStale, or a
// process of this host that is gone, made it stale), and removes a stale
// one; a lock of pipeline/lock's format is left to lock.Acquire.
func legacyLock(ctx context.Context, st storage.Store, loc string, opt *Options) error {
	b, err := storage.ReadFile(ctx, st, loc)
	if err != nil {
		return nil // none (or unreadable: Acquire reports it)
	}
	var old struct {
		RunID   string    `json:"run_id"`
		Host    string    `json:"host"`
		PID     int       `json:"pid"`
		Created time.Time `json:"created"`
		Expires time.Time `json:"expires"`
	}
	if json.Unmarshal(b, &old) != nil || old.PID == 0 || !old.Expires.IsZero() {
		return nil
	}
	a, err := st.Stat(ctx, loc)
	if err != nil {
		return nil
	}
	dead := lock.Gone(old.Host, old.PID)
	if time.Since(a.ModTime) < opt.LockStale && !dead {
		return fmt.Errorf("%w: %s is held by deid retain run %s (process %d on %s, an earlier deid), since %s",
			ErrLocked, loc, old.RunID, old.PID, old.Host, a.ModTime.UTC().Format(time.RFC3339))
	}
	opt.Logger.Warn("taking over a stale retain lock of an earlier deid", "lock", loc, "run", old.RunID)
	if err := deleteIf(ctx, st, loc, a.Generation); err != nil && !errors.Is(err, storage.ErrPrecondition) {
		return fmt.Errorf("remove the stale lock %s: %w", loc, err)
	}
	return nil
}

// recoverRun completes or rolls back an interrupted run found in work; a
// journal with a location out of sc is refused (see scope.check).
func recoverRun(ctx context.Context, st storage.Store, work string, sc scope, opt *Options) (string, error) {
	jloc := storage.Join(work, journalName)
	// opened here, not with storage.ReadFile: only a journal that cannot
	// be opened means no commit point, never one that fails to read
	r, err := st.Open(ctx, jloc)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		// no commit point: whatever is staged goes
		found := false
		st.List(ctx, work+"/", func(storage.Attrs) error { found = true; return io.EOF })
		if err := storage.RemoveAll(ctx, st, work); err != nil {
			return "", err
		}
		if found {
			opt.Logger.Info("rolled back an interrupted retain run", "work", work)
			return recoveredBack, nil
		}
		return "", nil
	case err != nil:
		return "", err
	}
	b, err := io.ReadAll(io.NewSectionReader(r, 0, r.Size()))
	r.Close()
	if err != nil {
		return "", fmt.Errorf("read the journal %s: %w", jloc, err)
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return "", fmt.Errorf("journal %s is unreadable (%w): inspect the dataset by hand", jloc, err)
	}
	if j.Format != journalFormat && j.Format != journalFormatV1 {
		return "", fmt.Errorf("journal %s is of format %q, not %q: inspect the dataset by hand", jloc, j.Format, journalFormat)
	}
	if err := sc.check(jloc, j); err != nil {
		return "", err
	}
	opt.Logger.Info("completing an interrupted retain run", "run", j.RunID, "actions", len(j.Actions))
	changed, err := replay(ctx, st, j, nil)
	if err != nil {
		return "", err
	}
	if err := finish(ctx, st, work, nil); err != nil {
		return "", err
	}
	if err := changedError(changed); err != nil {
		return "", err
	}
	return recoveredForward, nil
}

// commit writes the journal and carries it out.
func commit(ctx context.Context, st storage.Store, work string, j journal, opt *Options) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	w, err := st.Create(ctx, storage.Join(work, journalName))
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(b); err != nil {
		return err
	}
	if _, err := w.Commit(); err != nil {
		return err
	}
	opt.failpoint("journal-written")
	// past the commit point, finish even if the context is cancelled
	ctx = context.WithoutCancel(ctx)
	changed, err := replay(ctx, st, j, opt)
	if err != nil {
		return err
	}
	if err := finish(ctx, st, work, opt); err != nil {
		return err
	}
	return changedError(changed)
}

// changedError names the files whose actions were abandoned.
func changedError(changed []string) error {
	if len(changed) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", strings.Join(changed, ", "), ErrConcurrentChange)
}

// replay carries out a journal's actions; it is idempotent. It returns the
// files whose actions it abandoned because they changed since they were
// read (each named with the generation read).
func replay(ctx context.Context, st storage.Store, j journal, opt *Options) (changed []string, err error) {
	for _, a := range j.Actions {
		pending := (a.AnonStaged != "" && exists(ctx, st, a.AnonStaged)) || (a.IsoStaged != "" && exists(ctx, st, a.IsoStaged))
		if a.Generation != 0 && pending {
			// anonymized or isolated rows leave the file only if it is
			// still the version they came from
			fa, err := st.Stat(ctx, a.File)
			if err != nil && !errors.Is(err, storage.ErrNotExist) {
				return nil, err
			}
			if err != nil || fa.Generation != a.Generation {
				changed = append(changed, fmt.Sprintf("%s (generation %d when read)", a.File, a.Generation))
				continue
			}
		}
		if a.AnonStaged != "" {
			if err := moveIfThere(ctx, st, a.AnonStaged, a.AnonFinal, 0); err != nil {
				return nil, err
			}
			opt.failpoint("anonymized-moved")
		}
		if a.IsoStaged != "" {
			if err := moveIfThere(ctx, st, a.IsoStaged, a.IsoFinal, 0); err != nil {
				return nil, err
			}
			opt.failpoint("isolated-moved")
		}
		var err error
		switch {
		case a.Staged != "":
			err = moveIfThere(ctx, st, a.Staged, a.File, a.Generation)
		case a.Delete:
			err = deleteIf(ctx, st, a.File, a.Generation)
			if err != nil && !errors.Is(err, storage.ErrPrecondition) {
				err = fmt.Errorf("delete %s: %w", a.File, err)
			}
		}
		if errors.Is(err, storage.ErrPrecondition) {
			changed = append(changed, fmt.Sprintf("%s (generation %d when read)", a.File, a.Generation))
			continue
		}
		if err != nil {
			return nil, err
		}
		opt.failpoint("swapped")
	}
	return changed, nil
}

func exists(ctx context.Context, st storage.Store, loc string) bool {
	_, err := st.Stat(ctx, loc)
	return err == nil
}

// moveIfThere moves src to dst unless src is gone (moved already); with a
// generation, only if dst is still that generation.
func moveIfThere(ctx context.Context, st storage.Store, src, dst string, generation int64) error {
	if _, err := st.Stat(ctx, src); errors.Is(err, storage.ErrNotExist) {
		return nil // moved already
	}
	err := storage.ErrUnsupported
	if generation != 0 {
		err = storage.MoveIf(ctx, st, src, dst, storage.Condition{GenerationMatch: generation})
	}
	if errors.Is(err, storage.ErrUnsupported) {
		err = storage.Move(ctx, st, src, dst)
	}
	if err != nil {
		return fmt.Errorf("move %s to %s: %w", src, dst, err)
	}
	return nil
}

// deleteIf deletes loc, only if it is still that generation when one is
// given and the store checks it; a missing file was deleted already.
func deleteIf(ctx context.Context, st storage.Store, loc string, generation int64) error {
	var err error
	if c, ok := st.(storage.Conditional); ok && generation != 0 {
		err = c.DeleteIf(ctx, loc, generation)
		if errors.Is(err, errors.ErrUnsupported) {
			err = st.Delete(ctx, loc)
		}
	} else {
		err = st.Delete(ctx, loc)
	}
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	return err
}

// finish removes the journal, then the work folder.
func finish(ctx context.Context, st storage.Store, work string, opt *Options) error {
	if err := st.Delete(ctx, storage.Join(work, journalName)); err != nil && !errors.Is(err, storage.ErrNotExist) {
		return err
	}
	opt.failpoint("journal-removed")
	if err := storage.RemoveAll(ctx, st, work); err != nil {
		return err
	}
	opt.failpoint("work-removed")
	return nil
}
