package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/storage"
)

// Staging leases. A run holds, for each destination output, a lease on its
// staging folder (lock.StagingPath) from before it stages its first file
// until it has committed or given up. A staging folder whose lease is free
// belongs to a run that was killed: the next run removes it at once (no
// commit record: nothing of it was made visible) or completes its commit
// (a commit record: see commit.go).

// stagingLeaseTTL is the lease of a staging folder; its holder renews it
// every third of it, so a holder that died on another host (whose process
// cannot be checked) keeps its folder this long.
const stagingLeaseTTL = time.Minute

// holdStaging takes the staging lease of every destination output and
// returns its release.
func (r *runner) holdStaging(ctx context.Context) (release func(), err error) {
	var stops []func()
	release = func() {
		for _, stop := range stops {
			stop()
		}
	}
	owner := lock.NewOwner()
	for _, dst := range r.plan.Destinations {
		l, err := lock.At(r.opt.Store, lock.StagingPath(dst.Output, r.opt.RunID), "staging", owner, stagingLeaseTTL, nil)
		if err == nil {
			err = l.Acquire(ctx)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("destination %q: the staging lease of run %s: %w", dst.Name, r.opt.RunID, err)
		}
		r.stagingLeases.Store(dst.Output, l)
		stop := lock.Renewing(ctx, l, stagingLeaseTTL, func(err error) {
			r.opt.Logger.Warn("staging lease could not be renewed", "output", dst.Output, "error", err)
		})
		stops = append(stops, func() {
			stop()
			if err := l.Release(context.WithoutCancel(ctx)); err != nil {
				r.opt.Logger.Warn("staging lease could not be released: it expires with its lease", "output", dst.Output, "error", err)
			}
		})
	}
	return release, nil
}

// cleanStaging, as a run starts, settles in every destination output what
// killed runs left: a commit past its commit point is completed (under the
// publish lock), a staging folder whose lease is free is removed, and so
// is a free lease without a folder. A problem is logged, never fatal: the
// commit completes interrupted commits again under the publish lock.
func (r *runner) cleanStaging(ctx context.Context) {
	if r.opt.StaleStaging < 0 {
		return
	}
	for _, dst := range r.plan.Destinations {
		if err := r.cleanOutputStaging(ctx, dst.Name, dst.Output); err != nil {
			r.opt.Logger.Warn("could not settle the staging folder", "output", dst.Output, "error", err)
		}
	}
}

func (r *runner) cleanOutputStaging(ctx context.Context, name, output string) error {
	return SettleStaging(ctx, r.opt.Store, output, r.opt.RunID, r.opt.PublishWait, r.opt.Logger, func(msg string) {
		r.rep.Warn(fmt.Sprintf("destination %q: %s", name, msg))
	})
}

// SettleStaging settles what killed runs left in output's staging folder
// (see cleanStaging), other than run own's: commits past their commit
// point are completed under the output's publish lock (waiting at most
// wait for it), staging folders and leases whose lease is free are
// removed. warn is told what was done.
func SettleStaging(ctx context.Context, st storage.Store, output, own string, wait time.Duration, log *slog.Logger, warn func(string)) error {
	ids, err := stagingRuns(ctx, st, output)
	if err != nil {
		return err
	}
	committing := false
	for _, id := range ids {
		if id == own {
			continue
		}
		if _, ok, err := readCommitRecord(ctx, st, commitStagingDir(output, id), id); err != nil {
			return err
		} else if ok {
			committing = true
			continue
		}
		free, err := lock.Free(ctx, st, lock.StagingPath(output, id), time.Now())
		if err != nil || !free {
			continue // a run still stages there
		}
		if err := removeTree(ctx, st, commitStagingDir(output, id)); err != nil {
			return err
		}
		deleteIfFree(ctx, st, lock.StagingPath(output, id), time.Now())
		warn(fmt.Sprintf("removed the staging folder of run %s, stopped before it committed", id))
	}
	if committing {
		release, err := HoldOutput(ctx, st, output, wait, log)
		if err != nil {
			return err
		}
		done, err := RecoverCommits(ctx, st, output, own)
		release()
		for _, id := range done {
			warn(fmt.Sprintf("completed the commit of run %s, stopped after its commit point", id))
		}
		if err != nil {
			return err
		}
	}
	return removeFreeLeases(ctx, st, output, own)
}

// removeFreeLeases removes the staging leases that killed runs left in
// output once their folders are gone, and the lock folder if that empties
// it.
func removeFreeLeases(ctx context.Context, st storage.Store, output, own string) error {
	dir := storage.Join(output, lock.Dir)
	var leases []string
	err := st.List(ctx, strings.TrimSuffix(dir, "/")+"/", func(a storage.Attrs) error {
		if base := storage.Base(a.Location); strings.HasPrefix(base, "staging-") && strings.HasSuffix(base, ".json") {
			leases = append(leases, a.Location)
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return err
	}
	for _, l := range leases {
		id := strings.TrimSuffix(strings.TrimPrefix(storage.Base(l), "staging-"), ".json")
		if _, serr := st.Stat(ctx, storage.Join(commitStagingDir(output, id), commitRecordName)); id == own || serr == nil {
			continue
		}
		deleteIfFree(ctx, st, l, time.Now())
	}
	if !storage.IsURI(dir) {
		storage.RemoveOrphanTemps(ctx, dir)
		storage.RemoveOrphanTemps(ctx, output) // beside a retain lock (.deid-retain.lock)
		// a run killed while it removed its staging folder leaves the
		// parent empty (fails, harmlessly, when a run stages there)
		storage.Local{}.Delete(ctx, storage.Join(output, StagingDir))
		storage.Local{}.Delete(ctx, dir) // fails, harmlessly, when a lock is there
	}
	return nil
}

// deleteIfFree deletes the lock at loc if it is free (lock.Free).
func deleteIfFree(ctx context.Context, st storage.Store, loc string, now time.Time) {
	if free, err := lock.Free(ctx, st, loc, now); err == nil && free {
		st.Delete(ctx, loc)
	}
}
