package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"time"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// Scale-out by sharding: N processes (pods of a Kubernetes Indexed Job,
// tasks of a Cloud Run job) run one plan, each the inputs of its shard.
//
//   - The input list is frozen once, before any shard reads data
//     (FrozenInputs, written by the first shard to arrive): shards that
//     list at different moments cannot disagree, and they share its Now.
//   - Shard i of N processes the frozen list's files whose position p has
//     p mod N = i; outputs are per input file, so shards write disjoint
//     files. Each shard publishes its files but no manifest and writes its
//     report under ShardsDir.
//   - MergeShards, once every shard succeeded, combines their reports into
//     the run's report and writes each destination's manifest: the commit
//     point, as for a single run. Until then the run is not committed.

// FrozenInputsFormat identifies version 1 of the frozen input list.
const FrozenInputsFormat = "deid-inputs/v1"

// FrozenInputs is a sharded run's input list, fixed before its shards
// start.
type FrozenInputs struct {
	Format       string        `json:"format"`
	RunID        string        `json:"run_id"`
	Now          time.Time     `json:"now"`
	PolicySHA256 string        `json:"policy_sha256"`
	Files        []FrozenInput `json:"files"`
}

// FrozenInput is one input file as listed.
type FrozenInput struct {
	Dataset    string    `json:"dataset"`
	Location   string    `json:"location"`
	Size       int64     `json:"size"`
	ModTime    time.Time `json:"mod_time"`
	Generation int64     `json:"generation,omitempty"`
}

// Shard selects the inputs one shard of a sharded run processes.
type Shard struct {
	// Index is this shard's number, 0 to Count-1.
	Index, Count int
	// Inputs is the frozen list every shard of the run shares.
	Inputs *FrozenInputs
}

// ListInputs lists the inputs of every dataset of the plan, for freezing.
func ListInputs(ctx context.Context, plan *rules.Plan, opt Options, runID string) (*FrozenInputs, error) {
	opt.defaults()
	plan, _ = plan.WithoutEnded() // an ended dataset's files are no shard's input
	fi := &FrozenInputs{Format: FrozenInputsFormat, RunID: runID, Now: plan.Now, PolicySHA256: plan.Policy.SHA256, Files: []FrozenInput{}}
	for _, ds := range plan.Datasets {
		matches, err := globDataset(ctx, opt.Store, ds)
		if err != nil {
			return nil, err
		}
		if err := checkNotEmpty(ds, matches); err != nil {
			return nil, err // before the list is frozen: no shard starts on it
		}
		for _, m := range matches {
			fi.Files = append(fi.Files, FrozenInput{Dataset: ds.Name, Location: m.Location, Size: m.Size, ModTime: m.ModTime.UTC(), Generation: m.Generation})
		}
	}
	return fi, nil
}

// FrozenInputsLocation is where a sharded run's input list lives: in the
// first destination's output.
func FrozenInputsLocation(plan *rules.Plan, runID string) string {
	return storage.Join(plan.Destinations[0].Output, output.ShardsDir, runID, "inputs.json")
}

// JSON returns the list as indented JSON.
func (fi *FrozenInputs) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(fi, "", "  ")
	return append(b, '\n'), err
}

// select_ returns the current matches of dataset ds that belong to the
// shard, checking that each is still as frozen. Files that appeared after
// the list was frozen wait for the next run.
func (s *Shard) select_(ds *rules.Dataset, matches []storage.Match) ([]storage.Match, error) {
	byLoc := map[string]storage.Match{}
	for _, m := range matches {
		byLoc[m.Location] = m
	}
	var out []storage.Match
	for i, f := range s.Inputs.Files {
		if f.Dataset != ds.Name || i%s.Count != s.Index {
			continue
		}
		m, ok := byLoc[f.Location]
		if !ok {
			return nil, dataerr.Errorf(f.Location, "", "in the run's frozen input list but no longer there")
		}
		if m.Size != f.Size || !m.ModTime.Equal(f.ModTime) || m.Generation != f.Generation {
			return nil, dataerr.Errorf(f.Location, "", "changed since the run's input list was frozen (%d bytes, then %d)", f.Size, m.Size)
		}
		out = append(out, m)
	}
	return out, nil
}

// shardReportLocation is where shard index of count writes its report for
// destination output.
func shardReportLocation(outDir, runID string, index, count int) string {
	return storage.Join(outDir, output.ShardsDir, runID, fmt.Sprintf("shard-%d-of-%d.json", index, count))
}

// publishShard moves a shard's staged files into place and writes its
// report beside the frozen list, without touching the manifest.
func (r *runner) publishShard(ctx context.Context) error {
	for _, dst := range r.rep.Destinations {
		if err := r.publishShardDestination(ctx, dst); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) publishShardDestination(ctx context.Context, dst *report.Destination) error {
	s := r.opt.Shard
	release, err := r.holdOutput(ctx, dst.Output)
	if err != nil {
		return err
	}
	defer release()
	staging := r.stagingRoot(dst.Output)
	moves, err := r.stagedMoves(ctx, dst)
	if err != nil {
		return err
	}
	// a shard's files are visible before the merge commits them, as the
	// scheduling guide (docs/guide/scheduling.md) says: no commit record
	for _, m := range moves {
		if err := storage.Move(ctx, r.opt.Store, storage.Join(staging, m.Staged), storage.Join(dst.Output, m.Final)); err != nil {
			return fmt.Errorf("publish %s: %w", storage.Join(dst.Output, m.Final), err)
		}
	}
	loc := shardReportLocation(dst.Output, s.Inputs.RunID, s.Index, s.Count)
	if err := r.writeJSON(ctx, loc, r.rep.ForDestination(dst.Name)); err != nil {
		return err
	}
	if err := output.RemoveTree(ctx, r.opt.Store, staging); err != nil {
		r.opt.Logger.Warn("could not remove the staging folder", "folder", staging, "error", err)
	}
	r.opt.Logger.Info("shard published, not committed", "destination", dst.Name, "shard", s.Index, "of", s.Count, "files", len(dst.Files))
	return nil
}

// MergeShards combines the reports of the count shards of run runID and,
// only if every shard succeeded under the same policy, now and lists,
// writes each destination's report and manifest (the commit point) and
// removes the shards' folder. plan must be compiled with the run's Now.
func MergeShards(ctx context.Context, plan *rules.Plan, opt Options, runID string, count int) (*report.Run, error) {
	ctx = underOutputs(ctx, plan) // writes below an output never follow links
	opt.defaults()
	opt.RunID = runID
	r := newRunner(plan, opt, "run")
	merged := r.rep
	merged.StartedAt = time.Time{}
	provider := map[string]int{}
	done := make([]bool, len(plan.Destinations))
	for di, dst := range plan.Destinations {
		// a merge killed after it committed some destinations: those are
		// done (their shard reports may be gone), the others are merged
		if done[di] = mergeCommitted(ctx, opt.Store, dst.Output, runID); done[di] {
			continue
		}
		var shards []*report.Run
		for i := 0; i < count; i++ {
			loc := shardReportLocation(dst.Output, runID, i, count)
			rep, err := readReport(ctx, opt.Store, loc)
			if err != nil {
				return nil, fmt.Errorf("shard %d of %d, destination %q: %w (has it run?)", i, count, dst.Name, err)
			}
			// its file paths go into the manifest and the signed report
			if err := output.CheckReportPaths(loc, rep); err != nil {
				return nil, fmt.Errorf("shard %d of %d, destination %q: %w", i, count, dst.Name, err)
			}
			if rep.Outcome != "succeeded" {
				return nil, fmt.Errorf("shard %d of %d, destination %q: %s: %s; rerun it, then merge", i, count, dst.Name, rep.Outcome, rep.Error)
			}
			if rep.Policy.SHA256 != plan.Policy.SHA256 || !rep.Now.Equal(plan.Now) {
				return nil, fmt.Errorf("shard %d of %d ran with policy %.12s and now %s; the merge has policy %.12s and now %s",
					i, count, rep.Policy.SHA256, rep.Now.Format(time.RFC3339), plan.Policy.SHA256, plan.Now.Format(time.RFC3339))
			}
			shards = append(shards, rep)
		}
		md := merged.Destinations[di]
		for _, sr := range shards {
			if merged.StartedAt.IsZero() || sr.StartedAt.Before(merged.StartedAt) {
				merged.StartedAt = sr.StartedAt
			}
			if sr.FinishedAt.After(merged.FinishedAt) {
				merged.FinishedAt = sr.FinishedAt
			}
			merged.Settings = sr.Settings
			for _, w := range sr.Warnings {
				if !contains(merged.Warnings, w) {
					merged.Warnings = append(merged.Warnings, w)
				}
			}
			sd := sr.Destinations[0]
			md.Files = append(md.Files, sd.Files...)
			md.RowsOut += sd.RowsOut
			md.Bytes += sd.Bytes
			md.AgeUnknown += sd.AgeUnknown
			report.AddRemoved(md.Removed, sd.Removed)
			for _, sds := range sr.Datasets {
				// a dataset is counted once, from the first destination that reads it
				if p, ok := provider[sds.Name]; ok && p != di {
					continue
				}
				provider[sds.Name] = di
				var mds *report.Dataset
				for _, d := range merged.Datasets {
					if d.Name == sds.Name {
						mds = d
					}
				}
				if mds == nil {
					continue
				}
				if err := mergeLists(mds, sds); err != nil {
					return nil, fmt.Errorf("shards of run %s: %w", runID, err)
				}
				mds.Files = append(mds.Files, sds.Files...)
				mds.RowsIn += sds.RowsIn
				mds.RowsKept += sds.RowsKept
				report.AddRemoved(mds.Removed, sds.Removed)
				mds.FutureTimeKept += sds.FutureTimeKept
				mds.NonexistentLocalTime += sds.NonexistentLocalTime
				mds.AmbiguousLocalTime += sds.AmbiguousLocalTime
				mds.DroppedColumns = sds.DroppedColumns
			}
		}
		sortedOutputs(md.Files)
	}
	for _, d := range merged.Datasets {
		sort.Slice(d.Files, func(i, j int) bool { return d.Files[i].Location < d.Files[j].Location })
	}
	merged.Outcome = "succeeded"
	merged.Seconds = merged.FinishedAt.Sub(merged.StartedAt).Seconds()
	// commit: each destination's report, then its manifest; as a run's
	// publish, neither a cancellation nor a signal's forced exit cuts it
	end := r.opt.critical()
	defer end()
	ctx = context.WithoutCancel(ctx)
	releaseStaging, err := r.holdStaging(ctx)
	if err != nil {
		return merged, err
	}
	defer releaseStaging()
	for _, dst := range merged.Destinations {
		// what killed runs and merges left (a merge killed before has this
		// run id: its staging is ours now, its commit record is completed)
		err := output.SettleStaging(ctx, opt.Store, dst.Output, "", r.opt.PublishWait, r.opt.Logger, func(msg string) {
			r.rep.Warn(fmt.Sprintf("destination %q: %s", dst.Name, msg))
		})
		if err != nil {
			return merged, err
		}
	}
	for di, dst := range merged.Destinations {
		release, err := r.holdOutput(ctx, dst.Output)
		if err != nil {
			return merged, err
		}
		// the merge killed past its commit point had this run id: its
		// record is completed here, not skipped as this run's own
		var recovered []string
		recovered, err = output.RecoverCommits(ctx, opt.Store, dst.Output, "")
		for _, id := range recovered {
			r.rep.Warn(fmt.Sprintf("destination %q: completed the commit of run %s, stopped after its commit point", dst.Name, id))
		}
		switch {
		case err != nil:
		case !done[di] && !mergeCommitted(ctx, opt.Store, dst.Output, runID):
			err = r.commit(ctx, merged, dst, nil)
		default:
			// committed by a merge killed before it removed its staging
			// (this run's id, so no settling removed it)
			err = output.RemoveTree(ctx, opt.Store, output.CommitStagingDir(dst.Output, runID))
		}
		release()
		if err != nil {
			return merged, err
		}
		r.opt.Logger.Info("merged and committed", "destination", dst.Name, "shards", count, "files", len(dst.Files), "rows", dst.RowsOut)
	}
	// the shards' folders go once every destination is committed, the
	// first destination's (the frozen input list) last: a merge killed
	// before the end is merged again, a merge done is recognized
	for _, err := range RemoveShards(ctx, opt.Store, plan, runID) {
		r.opt.Logger.Warn("could not remove the shards folder", "error", err)
	}
	return merged, nil
}

// FinishMerge completes the end of sharded run runID's merge, which a
// killed merge may have left undone after its last commit: what killed
// runs left in each output's staging is settled (free leases removed) and
// the shards' folders are removed. Call it when Merged reports true.
func FinishMerge(ctx context.Context, st storage.Store, plan *rules.Plan, runID string, log *slog.Logger) error {
	for _, dst := range plan.Destinations {
		err := output.SettleStaging(ctx, st, dst.Output, "", output.DefaultPublishWait, log, func(msg string) {
			log.Warn(msg, "destination", dst.Name)
		})
		if err != nil {
			return fmt.Errorf("destination %q: %w", dst.Name, err)
		}
	}
	return errors.Join(RemoveShards(ctx, st, plan, runID)...)
}

// RemoveShards removes the shards' folders of run runID from every
// destination of plan, the first destination's (the frozen input list)
// last, and returns what it could not remove.
func RemoveShards(ctx context.Context, st storage.Store, plan *rules.Plan, runID string) []error {
	var errs []error
	for i := len(plan.Destinations) - 1; i >= 0; i-- {
		dir := storage.Join(plan.Destinations[i].Output, output.ShardsDir, runID)
		if err := output.RemoveTree(ctx, st, dir); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
		}
	}
	return errs
}

// mergeCommitted reports whether sharded run runID is committed to output:
// its report is in the output's report chain, or its commit record waits
// to be completed.
func mergeCommitted(ctx context.Context, st storage.Store, outDir, runID string) bool {
	if output.Exists(ctx, st, storage.Join(outDir, output.ReportRel(runID, "report.json"))) {
		return true
	}
	_, ok, err := output.ReadCommitRecord(ctx, st, output.CommitStagingDir(outDir, runID), runID)
	return err == nil && ok
}

// Merged reports whether sharded run runID is committed to every
// destination of plan: a merge that already finished (or was killed while
// removing the shards' folders, after every commit).
func Merged(ctx context.Context, st storage.Store, plan *rules.Plan, runID string) bool {
	for _, dst := range plan.Destinations {
		if !mergeCommitted(ctx, st, dst.Output, runID) {
			return false
		}
	}
	return len(plan.Destinations) > 0
}

// mergeLists takes a shard's erasure and consent lists into the merged
// dataset, refusing lists that differ between shards.
func mergeLists(into, from *report.Dataset) error {
	if len(from.Erasure) > 0 {
		if len(into.Erasure) > 0 && !sameLists(into.Erasure, from.Erasure) {
			return fmt.Errorf("dataset %q: the shards read different erasure lists (one changed while they ran): rerun the shards", into.Name)
		}
		into.Erasure = from.Erasure
	}
	if len(from.Consent) > 0 {
		if len(into.Consent) > 0 && fmt.Sprint(into.Consent) != fmt.Sprint(from.Consent) {
			return fmt.Errorf("dataset %q: the shards read different consent lists (one changed while they ran): rerun the shards", into.Name)
		}
		into.Consent = from.Consent
	}
	return nil
}

func sameLists(a, b []report.ErasureList) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].SHA256 != b[i].SHA256 || a[i].Location != b[i].Location {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readReport reads a report.json.
func readReport(ctx context.Context, s storage.Store, loc string) (*report.Run, error) {
	b, err := storage.ReadFile(ctx, s, loc)
	if err != nil {
		return nil, err
	}
	var rep report.Run
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return &rep, nil
}

// FreezeInputs returns the frozen input list of sharded run runID: the one
// a shard already wrote, or, for the first shard to arrive, the list of
// the inputs now, written exclusively so that every shard gets the same:
// on disk by a hard link of a complete temporary file (which, like O_EXCL,
// fails when the list exists), on GCS by an upload conditional on
// DoesNotExist (storage.CreateExclusive), which appears only complete.
func FreezeInputs(ctx context.Context, plan *rules.Plan, opt Options, runID string) (*FrozenInputs, error) {
	ctx = underOutputs(ctx, plan) // writes below an output never follow links
	opt.defaults()
	loc := FrozenInputsLocation(plan, runID)
	if fi, err := readFrozen(ctx, opt.Store, loc); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return fi, err
	}
	fi, err := ListInputs(ctx, plan, opt, runID)
	if err != nil {
		return nil, err
	}
	b, err := fi.JSON()
	if err != nil {
		return nil, err
	}
	if storage.IsURI(loc) {
		_, err = storage.CreateExclusive(ctx, opt.Store, loc, b)
	} else {
		_, err = storage.Local{}.CreateExclusive(ctx, loc, b)
	}
	if errors.Is(err, fs.ErrExist) { // another shard froze it first: use theirs
		return readFrozen(ctx, opt.Store, loc)
	}
	if err != nil {
		return nil, linkError(fmt.Errorf("freeze inputs: %w", err))
	}
	opt.Logger.Info("input list frozen", "location", loc, "files", len(fi.Files))
	return fi, nil
}

// ReadFrozenInputs reads the frozen input list of run runID from st (nil
// means a storage.Router).
func ReadFrozenInputs(ctx context.Context, st storage.Store, plan *rules.Plan, runID string) (*FrozenInputs, error) {
	if st == nil {
		st = storage.NewRouter()
	}
	return readFrozen(ctx, st, FrozenInputsLocation(plan, runID))
}

func readFrozen(ctx context.Context, st storage.Store, loc string) (*FrozenInputs, error) {
	b, err := storage.ReadFile(ctx, st, loc)
	if err != nil {
		return nil, err
	}
	var fi FrozenInputs
	if err := json.Unmarshal(b, &fi); err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if fi.Format != FrozenInputsFormat {
		return nil, fmt.Errorf("%s: format %q, this deid reads %q", loc, fi.Format, FrozenInputsFormat)
	}
	return &fi, nil
}
