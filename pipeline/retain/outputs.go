package retain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// Erasure in published outputs. Where a destination carries the subject as
// a pseudonym, retain recomputes the erased subjects' pseudonyms with that
// destination's key (the bound transform of the compiled plan) and removes
// the matching rows from the files its manifest lists; where it carries the
// raw id, it matches the ids. The rewritten files and the updated manifest
// (rows, bytes, SHA-256 of each changed file) are staged, verified and
// swapped under the same journal and lock as source files, the manifest
// last. Subjects on a legal hold are not erased from outputs either.
//
// A destination that carries no form of the subject (partner outputs) has
// its files re-derived from the cleaned sources with the lineage the
// manifest records (rederive.go). Either way a new version of a published
// file holds a subset of its rows, checked before anything is committed
// (subset.go).

// erasedSets are, per dataset, the subjects to erase from outputs.
type erasedSets map[string]*transforms.SubjectSet

func runOutputs(ctx context.Context, plan *rules.Plan, sets erasedSets, rep *report.Retain, opt *Options) error {
	for _, d := range rep.Datasets {
		if d.Ended != nil && d.Ended.Recipients == nil {
			d.Ended.Recipients = []*report.Recipient{} // outputs are looked at: none yet
		}
	}
	for _, dst := range plan.Destinations {
		if !opt.DryRun {
			// what runs (re-derivations of an earlier retain too) left when killed
			err := output.SettleStaging(ctx, opt.Store, dst.Output, "", 0, opt.Logger, func(msg string) {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("destination %q: %s", dst.Name, msg))
			})
			if err != nil {
				return fmt.Errorf("destination %q: %w", dst.Name, err)
			}
		}
		dr := &report.RetainDestination{Name: dst.Name, Output: dst.Output, Datasets: []*report.RetainDestinationDataset{}}
		touched := false
		for _, b := range dst.Bindings {
			touched = touched || sets[b.Dataset.Name] != nil || endedDataset(rep, b.Dataset.Name) != nil
		}
		if !touched {
			// still complete an interrupted erasure of this output
			if !opt.DryRun && pendingJournal(ctx, opt.Store, dst.Output) {
				if err := eraseDestination(ctx, dst, erasedSets{}, dr, rep, opt); err != nil {
					return fmt.Errorf("destination %q: %w", dst.Name, err)
				}
				rep.Destinations = append(rep.Destinations, dr)
			}
			continue
		}
		rep.Destinations = append(rep.Destinations, dr)
		if err := eraseDestination(ctx, dst, sets, dr, rep, opt); err != nil {
			return fmt.Errorf("destination %q: %w", dst.Name, err)
		}
	}
	return nil
}

func eraseDestination(ctx context.Context, dst *rules.Destination, sets erasedSets, dr *report.RetainDestination, rep *report.Retain, opt *Options) error {
	st := opt.Store
	work := storage.Join(dst.Output, workDir)
	var releasePublish func()
	// the commit, once started, stays open until the locks are released
	// too, or until re-deriving starts (deferred first, so it ends last)
	endCommit := func() {}
	defer func() { endCommit() }()
	var held *retainLock
	if !opt.DryRun {
		if _, err := st.Stat(ctx, storage.Join(dst.Output, output.ManifestName)); errors.Is(err, storage.ErrNotExist) {
			return nil // nothing published
		}
		var err error
		if held, err = acquireLock(ctx, st, dst.Output, opt); err != nil {
			return err
		}
		defer held.release(ctx)
		// the output's publish lock, from reading the manifest to swapping
		// the updated one in, so that no run commits to it in between;
		// released before re-deriving, whose runs commit under it themselves
		releasePublish, err = output.HoldOutput(ctx, st, dst.Output, 0, opt.Logger)
		if err != nil {
			return err
		}
		defer func() {
			if releasePublish != nil {
				releasePublish()
			}
		}()
		// a run killed past its commit point since the staging was settled:
		// its commit completes before this one reads the manifest, or its
		// later replay would put back what this erases
		if err := recoverCommits(ctx, dst, rep, opt); err != nil {
			return err
		}
		if dr.Recovered, err = recoverRun(ctx, st, work, outputScope(dst), opt); err != nil {
			return fmt.Errorf("recover an interrupted run: %w", err)
		}
		defer func() {
			if _, jerr := st.Stat(ctx, storage.Join(work, journalName)); errors.Is(jerr, storage.ErrNotExist) {
				storage.RemoveAll(context.WithoutCancel(ctx), st, work)
			}
		}()
	}
	m, err := output.ReadManifest(ctx, st, dst.Output)
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var actions []action
	var rewritten []*report.OutputFile
	var deleted []string
	var jobs []*outputJob // the published files to erase subjects from
	var rederive []*report.RetainDestinationDataset
	d := &dataset{opt: opt, work: work}
	for _, b := range dst.Bindings {
		if ended := endedDataset(rep, b.Dataset.Name); ended != nil {
			gone, err := deleteEnded(dst, b, m, ended, dr)
			if err != nil {
				return err
			}
			for _, mf := range gone {
				actions = append(actions, action{File: storage.Join(dst.Output, mf.Path), Delete: true})
				deleted = append(deleted, mf.Path)
			}
			continue
		}
		set := sets[b.Dataset.Name]
		if set == nil {
			continue
		}
		dd := &report.RetainDestinationDataset{Dataset: b.Dataset.Name}
		dr.Datasets = append(dr.Datasets, dd)
		match, method, err := outputMatcher(b, set, opt)
		if err != nil {
			return err
		}
		dd.Method = method
		if match == nil {
			rederive = append(rederive, dd)
			continue
		}
		for _, mf := range m.Files {
			if mf.Dataset != b.Dataset.Name {
				continue
			}
			dd.FilesScanned++
			jobs = append(jobs, d.newOutputJob(dst.Name, storage.Join(dst.Output, mf.Path), mf, dd, b.Dataset.Subject, match, len(jobs)))
		}
	}
	// the published files lose their erased subjects' rows on the
	// engine's workers; then, in the manifest's order, their fates
	if err := d.eraseOutputs(ctx, jobs); err != nil {
		return err
	}
	for _, j := range jobs {
		if j.erasedRows == 0 {
			continue
		}
		// a link here would keep the erased rows (checked before the
		// output changes, in a dry run too)
		if err := outputLink(dst.Name, j.loc); err != nil {
			return err
		}
		j.dd.FilesRewritten++
		j.dd.RowsErased += j.erasedRows
		dr.RowsErased += j.erasedRows
		j.mf.Rows -= j.erasedRows
		if a := j.staged; a != nil {
			j.mf.Bytes, j.mf.SHA256 = a.size, a.sum
			actions = append(actions, a.action)
			rewritten = append(rewritten, &j.mf.OutputFile)
		}
	}
	if !opt.DryRun && len(actions) > 0 {
		if err := held.confirm(ctx); err != nil {
			return fmt.Errorf("destination %q: %w", dst.Name, err)
		}
		endCommit = opt.critical()
		m.Files = slices.DeleteFunc(m.Files, func(f *output.ManifestFile) bool { return slices.Contains(deleted, f.Path) })
		chain := pipeline.RetainCommit{RunID: opt.RunID + "-erase", Destination: dst, Clock: opt.Clock, Files: rewritten, Deleted: deleted,
			Note: fmt.Sprintf("deid retain run %s removed %d rows from this destination: it rewrote %d published files without erased subjects' rows "+
				"and deleted %d files of datasets whose service ended; this report records them", opt.RunID, dr.RowsErased, len(rewritten), len(deleted))}
		if err := commitWithManifest(ctx, st, dst.Output, m, actions, "destination "+dst.Name, chain, opt); err != nil {
			return err
		}
	}
	if releasePublish != nil {
		releasePublish()
		releasePublish = nil
	}
	if len(rederive) > 0 { // its runs open their own commits
		endCommit()
		endCommit = func() {}
	}
	for _, dd := range rederive {
		if err := rederiveOutputs(ctx, dst, dd, dr, rep, held, opt); err != nil {
			return fmt.Errorf("dataset %q: re-derive the published files: %w", dd.Dataset, err)
		}
	}
	return nil
}

// recoverCommits completes, under the output's publish lock, the commits
// that killed runs left past their commit point, and says so.
func recoverCommits(ctx context.Context, dst *rules.Destination, rep *report.Retain, opt *Options) error {
	done, err := output.RecoverCommits(ctx, opt.Store, dst.Output, "")
	for _, id := range done {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("destination %q: completed the commit of run %s, stopped after its commit point", dst.Name, id))
	}
	if err != nil {
		return fmt.Errorf("destination %q: %w", dst.Name, err)
	}
	return nil
}

// endedDataset returns the report of dataset name if its service ended.
func endedDataset(rep *report.Retain, name string) *report.RetainDataset {
	for _, d := range rep.Datasets {
		if d.Name == name && d.Ended != nil {
			return d
		}
	}
	return nil
}

// deleteEnded returns the files of the manifest m that binding b of dst
// published from a dataset whose service ended: all of them go, whatever
// their form of the subject (a hold keeps rows in the lake, not in what was
// shared). It counts them in the destination's report and names the
// destination among the dataset's recipients.
func deleteEnded(dst *rules.Destination, b *rules.Binding, m *output.Manifest, ended *report.RetainDataset, dr *report.RetainDestination) ([]*output.ManifestFile, error) {
	dd := &report.RetainDestinationDataset{Dataset: b.Dataset.Name, Method: "service ended",
		Note: "the dataset's service ended: every published file of it is deleted"}
	dr.Datasets = append(dr.Datasets, dd)
	rcp := &report.Recipient{Destination: dst.Name, Purpose: dst.Purpose, Output: dst.Output}
	var gone []*output.ManifestFile
	for _, mf := range m.Files {
		if mf.Dataset != b.Dataset.Name {
			continue
		}
		loc := storage.Join(dst.Output, mf.Path)
		if err := outputLink(dst.Name, loc); err != nil {
			return nil, err
		}
		dd.FilesScanned++
		dd.FilesDeleted++
		dd.RowsErased += mf.Rows
		dr.RowsErased += mf.Rows
		rcp.Files++
		rcp.Rows += mf.Rows
		gone = append(gone, mf)
	}
	if rcp.Files > 0 {
		ended.Ended.Recipients = append(ended.Ended.Recipients, rcp)
	}
	return gone, nil
}

// commitWithManifest stages the report that records chain in the output's
// report chain and the updated manifest m, and carries out the actions,
// the report's moves and the manifest's swap, last, under a journal.
func commitWithManifest(ctx context.Context, st storage.Store, outDir string, m *output.Manifest, actions []action, what string, chain pipeline.RetainCommit, opt *Options) error {
	work := storage.Join(outDir, workDir)
	moves, err := pipeline.StageRetainReport(ctx, st, opt.Outputs, chain, storage.Join(work, opt.RunID), m)
	if err != nil {
		return err
	}
	for _, mv := range moves {
		actions = append(actions, action{File: mv[1], Staged: mv[0]})
	}
	b, err := m.JSON()
	if err != nil {
		return err
	}
	staged := storage.Join(work, opt.RunID, output.ManifestName)
	w, err := st.Create(ctx, staged)
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
	actions = append(actions, action{File: storage.Join(outDir, output.ManifestName), Staged: staged})
	return commit(ctx, st, work, journal{Format: journalFormat, RunID: opt.RunID, Dataset: what, Actions: actions}, opt)
}

// outputMatcher returns the set of subject values as the destination's
// outputs hold them, and the method; nil when they hold none.
func outputMatcher(b *rules.Binding, set *transforms.SubjectSet, opt *Options) (*transforms.SubjectSet, string, error) {
	bc := b.Columns[b.Dataset.Subject]
	switch {
	case bc == nil || bc.Spec.Drops || bc.Transform == nil:
		return nil, "none", nil
	case bc.Spec.Name == "keep":
		return set, "raw id", nil
	case bc.Spec.Name != "pseudonymize":
		return nil, "none", nil
	}
	ints, strs := set.Values()
	var ids arrow.Array
	if set.IsInteger() {
		bld := array.NewInt64Builder(opt.Mem)
		bld.AppendValues(ints, nil)
		ids = bld.NewArray()
		bld.Release()
	} else {
		bld := array.NewStringBuilder(opt.Mem)
		bld.AppendValues(strs, nil)
		ids = bld.NewArray()
		bld.Release()
	}
	defer ids.Release()
	out, err := bc.Transform.Apply(opt.Mem, ids)
	if err != nil {
		return nil, "", fmt.Errorf("pseudonymize the erased subjects: %w", err)
	}
	defer out.Release()
	ps, ok := out.(*array.String)
	if !ok {
		return nil, "", fmt.Errorf("pseudonyms are %s, want strings", out.DataType())
	}
	vals := make([]string, ps.Len())
	for i := range vals {
		vals[i] = strings.Clone(ps.Value(i))
	}
	return transforms.NewStringSubjectSet(vals), "pseudonym", nil
}

// stagedOutput is a staged output file with its size and hash, for the
// manifest.
type stagedOutput struct {
	action action
	size   int64
	sum    string
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// pendingJournal reports whether an interrupted retain run left a journal
// in folder.
func pendingJournal(ctx context.Context, st storage.Store, folder string) bool {
	_, err := st.Stat(ctx, storage.Join(folder, workDir, journalName))
	return err == nil
}
