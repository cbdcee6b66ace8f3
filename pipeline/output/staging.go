package output

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

// StagingLeaseTTL is the lease of a staging folder; its holder renews it
// every third of it, so a holder that died on another host (whose process
// cannot be checked) keeps its folder this long.
const StagingLeaseTTL = time.Minute

// SettleStaging settles, as a run starts, what killed runs left in
// output's staging folder, other than run own's: commits past their commit
// point are completed under the output's publish lock (waiting at most
// wait for it), staging folders and leases whose lease is free are
// removed. warn is told what was done.
func SettleStaging(ctx context.Context, st storage.Store, output, own string, wait time.Duration, log *slog.Logger, warn func(string)) error {
	ids, err := StagingRuns(ctx, st, output)
	if err != nil {
		return err
	}
	committing := false
	for _, id := range ids {
		if id == own {
			continue
		}
		if _, ok, err := ReadCommitRecord(ctx, st, CommitStagingDir(output, id), id); err != nil {
			return err
		} else if ok {
			committing = true
			continue
		}
		free, err := lock.Free(ctx, st, lock.StagingPath(output, id), time.Now())
		if err != nil || !free {
			continue // a run still stages there
		}
		if err := RemoveTree(ctx, st, CommitStagingDir(output, id)); err != nil {
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
		if _, serr := st.Stat(ctx, storage.Join(CommitStagingDir(output, id), CommitRecordName)); id == own || serr == nil {
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
