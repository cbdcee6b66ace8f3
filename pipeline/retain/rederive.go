package retain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// Re-deriving published files that carry no form of the subject (partner
// outputs). Runs are deterministic, so a published file is a function of
// its input, the run's now, the policy and the key; the manifest records
// all four. A file whose input changed since publication (retain rewrote
// it: rows expired or erased) is derived again from the cleaned input with
// the recorded now, by the pipeline itself, restricted to those inputs; a
// file whose input is gone (all its rows removed) is deleted with its
// manifest entry. The manifest then records the new inputs, so a second
// retain run finds nothing stale. A file published under another policy
// (its hash differs) is not re-derived: a warning says so. Rows of erased
// subjects inside the legal minimum are isolated out of their input, which
// so changes too: they leave the re-derived files at once.

// rederiveRunID is the run id of a retain run's i-th re-derivation of one
// dataset's files in an output. An output is re-derived once per dataset it
// holds, so the dataset is part of the id: two commits under one id would
// overwrite each other's report and chain the second to itself.
func rederiveRunID(runID, dataset string, i int) string {
	return fmt.Sprintf("%s-rederive-%s-%d", runID, dataset, i)
}

func rederiveOutputs(ctx context.Context, dst *rules.Destination, dd *report.RetainDestinationDataset, dr *report.RetainDestination, rep *report.Retain, retainLk *retainLock, opt *Options) error {
	st := opt.Store
	if opt.DryRun {
		if opt.predict == nil {
			return nil
		}
		st = opt.predict // the lake as the run would leave it
	}
	dd.Method = "re-derived from lineage"
	m, err := output.ReadManifest(ctx, st, dst.Output)
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	pol := opt.Outputs.Policy
	byNow := map[time.Time]map[string]bool{} // now -> stale input locations
	var gone []*output.ManifestFile
	rowsBefore := map[string]int64{}
	for _, f := range m.Files {
		if f.Dataset != dd.Dataset {
			continue
		}
		dd.FilesScanned++
		a, err := st.Stat(ctx, f.Input.Location)
		switch {
		case errors.Is(err, storage.ErrNotExist):
			gone = append(gone, f)
			continue
		case err != nil:
			return err
		case a.Size == f.Input.Size && a.ModTime.Equal(f.Input.ModTime) && a.Generation == f.Input.Generation:
			continue // the input is as it was: the file is current
		}
		if f.PolicySHA256 != pol.SHA256 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("destination %q: %s was published under another policy (SHA-256 %s): "+
				"it cannot be re-derived exactly; run deid run for this destination to replace it", dst.Name, f.Path, f.PolicySHA256))
			continue
		}
		if byNow[f.Now] == nil {
			byNow[f.Now] = map[string]bool{}
		}
		byNow[f.Now][f.Input.Location] = true
		rowsBefore[f.Path] = f.Rows
	}
	for _, f := range gone {
		rowsBefore[f.Path] = f.Rows
	}
	stale := len(rowsBefore)
	dd.FilesRewritten = stale
	if stale == 0 {
		return nil
	}
	var before int64
	for _, n := range rowsBefore {
		before += n
	}
	nows := make([]time.Time, 0, len(byNow))
	for t := range byNow {
		nows = append(nows, t)
	}
	sort.Slice(nows, func(i, j int) bool { return nows[i].Before(nows[j]) })
	var predicted int64 // a dry run's rows of the re-derived files
	for i, now := range nows {
		plan, err := rules.Compile(pol, rules.CompileOptions{Now: now, Lookup: os.LookupEnv, Destinations: []string{dst.Name}})
		if err != nil {
			return err
		}
		inputs := byNow[now]
		popt := pipeline.Options{Store: st, Mem: opt.Mem, Logger: opt.Logger, Critical: opt.Critical, Clock: opt.Clock,
			RunID: rederiveRunID(opt.RunID, dd.Dataset, i), Inputs: func(loc string) bool { return inputs[loc] },
			// erasure only removes: a re-derived file holding a row its
			// published version did not fails the run, nothing committed
			BeforePublish: subsetCheck(opt)}
		if opt.DryRun {
			// what the run's re-derivation would publish, counted by the
			// pipeline's own dry run on the lake as the run would leave it
			prep, err := pipeline.Plan(ctx, plan, popt)
			if err != nil {
				return err
			}
			for _, d := range prep.Destinations {
				predicted += d.RowsOut
			}
			continue
		}
		if _, err = pipeline.Run(ctx, plan, popt); err != nil {
			return err
		}
	}
	if opt.DryRun {
		return erasedRows(dst, dd, dr, before, predicted)
	}
	// the files of vanished inputs go, with their manifest entries, under
	// the publish lock from reading the manifest to swapping it
	release, err := output.HoldOutput(ctx, st, dst.Output, 0, opt.Logger)
	if err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			release()
		}
	}()
	if err := recoverCommits(ctx, dst, rep, opt); err != nil {
		return err
	}
	if m, err = output.ReadManifest(ctx, st, dst.Output); err != nil {
		return err
	}
	if len(gone) > 0 {
		drop := map[string]bool{}
		var actions []action
		for _, f := range gone {
			drop[f.Path] = true
			actions = append(actions, action{File: storage.Join(dst.Output, f.Path), Delete: true})
		}
		kept := m.Files[:0]
		for _, f := range m.Files {
			if !drop[f.Path] {
				kept = append(kept, f)
			}
		}
		m.Files = kept
		var deleted []string
		for _, f := range gone {
			deleted = append(deleted, f.Path)
		}
		chain := pipeline.RetainCommit{RunID: rederiveRunID(opt.RunID, dd.Dataset, len(nows)), Destination: dst, Clock: opt.Clock, Deleted: deleted,
			Note: fmt.Sprintf("deid retain run %s removed %d published files of dataset %q whose every input row it removed; this report records them as deleted", opt.RunID, len(deleted), dd.Dataset)}
		end := opt.critical()
		err := retainLk.confirm(ctx)
		if err == nil {
			err = commitWithManifest(ctx, st, dst.Output, m, actions, "destination "+dst.Name, chain, opt)
		}
		release() // before the commit ends, as every commit's locks
		held = false
		end()
		if err != nil {
			return err
		}
	}
	var after int64
	for _, f := range m.Files {
		if _, ok := rowsBefore[f.Path]; ok {
			after += f.Rows
		}
	}
	return erasedRows(dst, dd, dr, before, after)
}

// erasedRows records the rows re-deriving removed from the destination's
// files: before minus after, never negative (the subset check refuses a
// file that gains a row; this refuses any count that says otherwise).
func erasedRows(dst *rules.Destination, dd *report.RetainDestinationDataset, dr *report.RetainDestination, before, after int64) error {
	if after > before {
		return fmt.Errorf("destination %q, dataset %q: %w: the re-derived files hold %d rows, %d before", dst.Name, dd.Dataset, ErrNewRows, after, before)
	}
	dd.RowsErased = before - after
	dr.RowsErased += before - after
	return nil
}
