// Package retain enforces retention and erasure on the stored source data
// itself (`deid retain`), where the pipeline only keeps such rows out of its
// outputs.
//
// Per dataset it takes a lock, completes or rolls back an interrupted run
// (see journal.go), reads the erasure and legal hold lists, and decides per
// file with as little work as possible:
//
//   - a row group whose time statistics put every row inside retention, and
//     whose subjects cannot be on an erasure list (the subject statistics
//     exclude them, or only the subject column was decoded to check), is
//     copied byte for byte without being decoded;
//   - a row group whose every row is past retention is dropped without
//     being decoded (unless legal holds or anonymization need its rows);
//   - any other row group has its rule columns (time, fallback time,
//     subject) decoded to decide row by row, and is decoded whole and
//     re-encoded only when some of its rows go and some stay.
//
// A file with nothing to remove is not rewritten; a file whose rows all go
// is deleted. A rewritten file is written beside the original (in the
// dataset root's .deid-retain folder), verified (readable, row count =
// original minus removed, schema equal), and swapped in by a journaled
// atomic move.
//
// Anonymize instead of delete (then: anonymize) moves the rows, with only
// the policy's anonymize columns and their treatments, to
// <root>/_anonymized/<path of the file>/<run id>.parquet: a part of the
// dataset with its own schema, outside the source glob (folders starting
// with '_' are hidden from globs), so the next run does not find them
// expired again and retain stays idempotent. Anonymized rows are not
// personal data and are kept until deleted by hand.
//
// Rows of an erased subject still inside the dataset's legal minimum are
// isolated (PIPL art. 47: stored, processed no more), counted as
// "restricted: legal minimum": they move, whole, out of the source file to
// <root>/_restricted/<path of the file>/<run id>.parquet, in the same
// journaled swap, out of the source glob and so out of every deid run. Each
// run also decides the isolated part's files, where every row counts as
// erased (whatever the lists say now): rows still inside the minimum stay,
// rows of subjects on a legal hold stay, the others are deleted or
// anonymized per the dataset's then:, and a file emptied is deleted.
package retain

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/lists"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// Run applies the plan's retention, erasure and holds to every dataset and
// returns the report, also when it fails (Outcome "failed").
func Run(ctx context.Context, plan *rules.RetainPlan, opt Options) (*report.Retain, error) {
	if opt.Store == nil {
		opt.Store = storage.NewRouter()
	}
	if opt.Mem == nil {
		opt.Mem = memory.NewGoAllocator()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 32768
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	opt.hashSlots = make(chan struct{}, opt.Workers)
	if opt.LockStale <= 0 {
		opt.LockStale = time.Hour
	}
	if opt.Clock == nil {
		opt.Clock = time.Now
	}
	if opt.RunID == "" {
		opt.RunID = output.NewRunID(opt.Clock())
	}
	rep := &report.Retain{Format: report.RetainFormatV1, Deid: report.BuildPtr(), RunID: opt.RunID, DryRun: opt.DryRun, Now: plan.Now,
		StartedAt: opt.Clock().UTC(), Warnings: []string{},
		Policy: report.Policy{File: plan.Policy.File, Name: plan.Policy.Name, SHA256: plan.Policy.SHA256}}
	if opt.Outputs != nil {
		// writes below an output never follow links (each dataset root is
		// added in runDataset)
		for _, dst := range opt.Outputs.Destinations {
			ctx = storage.WithRoots(ctx, dst.Output)
		}
	}
	folder, err := scratch.NewFolder(opt.ScratchDir, "retain-"+opt.RunID, opt.Logger)
	if err != nil {
		rep.FinishedAt, rep.Outcome, rep.Error = opt.Clock().UTC(), "failed", err.Error()
		return rep, err
	}
	defer folder.Remove()
	opt.scratch, opt.partMem = folder.Path, &scratch.Budget{Limit: scratch.DefaultMemory}
	if opt.DryRun && needsPrediction(opt.Outputs) {
		p, err := newPrediction(opt.Store, opt.ScratchDir, opt.Logger)
		if err != nil {
			return rep, fmt.Errorf("a dry run's scratch folder: %w", err)
		}
		defer p.close()
		opt.predict = p
	}
	warns, err := checkSources(ctx, plan, &opt)
	rep.Warnings = append(rep.Warnings, warns...)
	sets := erasedSets{}
	for _, ds := range plan.Datasets {
		if err != nil {
			break
		}
		dsr := newDatasetReport(ds)
		rep.Datasets = append(rep.Datasets, dsr)
		if err = runDataset(ctx, plan, ds, dsr, sets, &opt); err != nil {
			break
		}
		if !ds.Ended && dsr.RowsIn > 0 && dsr.RowsKept == 0 && dsr.Removed[report.RemovedRetention]+dsr.Removed[report.RemovedNullTime]+
			dsr.Removed[report.RemovedFutureTime]+dsr.Removed[report.RemovedErasure] > 0 {
			// a retention of minutes where months were meant, an erasure list of everyone
			rep.Warnings = append(rep.Warnings, pipeline.EmptiedWarning("dataset", ds.Name, dsr.Removed, dsr.RowsIn, pipeline.RuleNames(ds.DatasetDecl)))
		}
		if dsr.Files.Deleted+dsr.Files.Rewritten+dsr.Isolation.Files.Deleted+dsr.Isolation.Files.Rewritten > 0 && !opt.DryRun {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"dataset %q: deleted rows may survive outside %s: in backups and snapshots, and in object versions or soft-deleted objects "+
					"of a bucket with versioning or soft delete; isolate them and purge them on the backups' schedule", ds.Name, dsr.Root))
			if w := protectionWarning(ctx, opt.Store, ds.Name, dsr.Root); w != "" {
				rep.Warnings = append(rep.Warnings, w)
			}
		}
	}
	rep.Destinations = []*report.RetainDestination{}
	if err == nil && opt.Outputs != nil {
		err = runOutputs(ctx, opt.Outputs, sets, rep, &opt)
	}
	if errors.Is(err, storage.ErrLink) && !errors.Is(err, dataerr.ErrData) {
		err = &dataerr.Error{Err: err} // a link where retain writes: the lake's owner must remove it
	}
	rep.FinishedAt = opt.Clock().UTC()
	rep.Outcome = "succeeded"
	if err != nil {
		rep.Outcome, rep.Error = "failed", err.Error()
	}
	return rep, err
}

func newDatasetReport(ds *rules.RetainDataset) *report.RetainDataset {
	dsr := &report.RetainDataset{Name: ds.Name, Source: ds.Source, Then: rules.ThenDelete,
		Removed:     map[string]int64{report.RemovedRetention: 0, report.RemovedNullTime: 0, report.RemovedFutureTime: 0, report.RemovedErasure: 0},
		Held:        map[string]int64{report.HeldLegalHold: 0, report.HeldLegalMinimum: 0},
		FileDetails: []*report.RetainFile{}, Subjects: report.ErasedSubjects{Fingerprints: []string{}}}
	if r := ds.Retention; r != nil {
		dsr.Then = r.Then
		dsr.Retention = pipeline.RetentionReport(ds.DatasetDecl, ds.Cutoff, ds.FallbackCutoff, ds.Latest)
		dsr.Anonymize = pipeline.AnonymizeReport(ds)
	}
	if m := ds.LegalMinimum; m != nil {
		dsr.LegalMinimum = &report.LegalMinimum{Keep: m.Keep.String(), Basis: m.Basis, Cutoff: ds.LegalCutoff}
	}
	if ds.Ended {
		dsr.Ended = &report.ServiceEnded{At: ds.DatasetDecl.Ended.At.UTC(), Stated: ds.DatasetDecl.Ended.Text}
		dsr.Removed[report.RemovedServiceEnded] = 0
	}
	return dsr
}

// dataset is the state of one dataset's run.
type dataset struct {
	ds    *rules.RetainDataset
	opt   *Options
	rep   *report.RetainDataset
	root  string
	work  string // <root>/.deid-retain: journal and staged files
	rule  transforms.RetainRule
	fpKey []byte // fingerprint key of erased subjects

	// mu guards what the files' concurrent tasks share: the report, and
	// erased and hashes
	mu     sync.Mutex
	erased map[any]bool   // subjects with rows erased in this run
	hashes []*bloomHashes // subject ids as bloom filters hash them, per set and column type
}

func runDataset(ctx context.Context, plan *rules.RetainPlan, ds *rules.RetainDataset, dsr *report.RetainDataset, sets erasedSets, opt *Options) error {
	st := opt.Store
	root, matches, err := storage.Glob(ctx, st, ds.Source)
	if err != nil {
		if errors.Is(err, storage.ErrNotExist) {
			return &dataerr.Error{Location: ds.Source, Err: fmt.Errorf("dataset %q: no such file", ds.Name)}
		}
		return pipeline.SourceError(ds.Name, ds.Source, err)
	}
	if ds.Root != "" {
		root = ds.Root
	}
	// links in the root's own path are the operator's; below it, retain's
	// writes (work folder, swaps, _restricted, _anonymized) refuse them
	ctx = storage.WithRoots(ctx, root)
	d := &dataset{ds: ds, opt: opt, rep: dsr, root: root, work: storage.Join(root, workDir), erased: map[any]bool{}}
	if p := opt.predict; p != nil {
		// a dry run stages its rewrites in the scratch folder, for the
		// outputs' re-derivation to read (predict.go)
		dir, err := os.MkdirTemp(p.scratch, "dataset-")
		if err != nil {
			return err
		}
		o := *opt
		o.Store = p
		d.opt, d.work = &o, dir
	}
	dsr.Root = root
	// the commit, once started, stays open until the lock is released too
	// (deferred first, so it ends last)
	endCommit := func() {}
	defer func() { endCommit() }()
	var held *retainLock
	if !opt.DryRun {
		var err error
		if held, err = acquireLock(ctx, st, root, opt); err != nil {
			return fmt.Errorf("dataset %q: %w", ds.Name, err)
		}
		defer held.release(ctx)
		recovered, err := recoverRun(ctx, st, d.work, datasetScope(root, ds), opt)
		if err != nil {
			return fmt.Errorf("dataset %q: recover an interrupted run: %w", ds.Name, err)
		}
		dsr.Recovered = recovered
		if recovered == recoveredForward {
			// the completed run changed the files: list them again
			if _, matches, err = storage.Glob(ctx, st, ds.Source); err != nil {
				return fmt.Errorf("dataset %q: list %q: %w", ds.Name, ds.Source, err)
			}
		}
	} else if _, err := st.Stat(ctx, storage.Join(d.work, journalName)); err == nil {
		return fmt.Errorf("dataset %q: an interrupted retain run awaits completion (%s): run deid retain without --dry-run first", ds.Name, storage.Join(d.work, journalName))
	}
	dsr.Isolation.Folder = storage.Join(root, isoFolder)
	// the isolated part, as the previous runs left it; listed after the
	// recovery, which may have moved files into it
	_, isolated, err := storage.Glob(ctx, st, storage.Join(root, isoFolder, "**", "*.parquet"))
	if err != nil && !errors.Is(err, storage.ErrNotExist) {
		return fmt.Errorf("dataset %q: list its isolated part %s: %w", ds.Name, dsr.Isolation.Folder, err)
	}
	if len(matches)+len(isolated) == 0 {
		return nil
	}
	d.rule = transforms.RetainRule{Retention: ds.Retention != nil, Cutoff: ds.Cutoff, Latest: ds.Latest, FallbackCutoff: ds.FallbackCutoff,
		LegalMinimum: ds.LegalMinimum != nil, LegalCutoff: ds.LegalCutoff, Ended: ds.Ended}
	if r := ds.Retention; r != nil {
		d.rule.OnNullRemove = r.OnNullRemove
		d.rule.Fallback = r.OnNullFallback != nil
	}
	first := append(slices.Clip(matches), isolated...)[0].Location
	if err := d.loadLists(ctx, first); err != nil {
		return err
	}
	if e := d.rule.Erasure; e != nil && e.Len() > 0 {
		sets[ds.Name] = minus(e, d.rule.Hold)
	}
	var actions []action
	if !opt.DryRun {
		// until the journal is written, a failure leaves nothing staged
		defer func() {
			if _, jerr := st.Stat(ctx, storage.Join(d.work, journalName)); errors.Is(jerr, storage.ErrNotExist) {
				storage.RemoveAll(context.WithoutCancel(ctx), st, d.work)
			}
		}()
	}
	if actions, err = d.stageFiles(ctx, matches, isolated); err != nil {
		return err
	}
	for id := range d.erased {
		dsr.Subjects.Fingerprints = append(dsr.Subjects.Fingerprints, d.fingerprint(id))
	}
	sort.Strings(dsr.Subjects.Fingerprints)
	dsr.Subjects.Erased = int64(len(d.erased))
	if opt.DryRun || len(actions) == 0 {
		if !opt.DryRun {
			return storage.RemoveAll(ctx, st, d.work)
		}
		return nil
	}
	if err := held.confirm(ctx); err != nil {
		return fmt.Errorf("dataset %q: %w", ds.Name, err)
	}
	endCommit = opt.critical()
	return commit(ctx, st, d.work, journal{Format: journalFormat, RunID: opt.RunID, Dataset: ds.Name, Actions: actions}, opt)
}

// stageFiles decides every file of the dataset (its source files, then
// those of its isolated part) and stages their new versions, on the
// engine's workers, and returns the journal's actions in the files' order.
func (d *dataset) stageFiles(ctx context.Context, matches, isolated []storage.Match) ([]action, error) {
	var jobs []*job
	for i, m := range matches {
		jobs = append(jobs, d.newJob(m, i, false))
	}
	for i, m := range isolated {
		jobs = append(jobs, d.newJob(m, len(matches)+i, true))
	}
	defer func() {
		for _, j := range jobs {
			j.close() // a failed run's files
		}
	}()
	files := make([]*engine.File, len(jobs))
	for i, j := range jobs {
		files[i] = j.openStage()
	}
	pool := engine.Pool{Workers: d.opt.Workers}
	err := pool.Run(ctx, files)
	for _, j := range jobs {
		if j.fr.RowGroups > 0 || j.fr.Action != "" {
			d.rep.FileDetails = append(d.rep.FileDetails, j.fr) // the files opened, also of a failed run
		}
	}
	if err != nil {
		return nil, err
	}
	var actions []action
	for _, j := range jobs {
		if j.action != nil {
			actions = append(actions, *j.action)
			d.opt.failpoint("staged")
		}
	}
	return actions, nil
}

// loadLists reads the erasure and hold lists with the subject column's kind
// taken from the first file.
func (d *dataset) loadLists(ctx context.Context, first string) error {
	ds := d.ds
	if len(ds.Erasure) == 0 && len(ds.Holds) == 0 {
		return nil
	}
	f, _, err := pqstore.Open(ctx, d.opt.Store, first, d.opt.Mem)
	if err != nil {
		return &dataerr.Error{Err: err}
	}
	if err := dataerr.CheckColumnNames(first, f.Schema()); err != nil {
		f.Close()
		return err
	}
	idx := f.Schema().FieldIndices(ds.Subject)
	if idx == nil {
		f.Close()
		return &dataerr.Error{Location: first, Column: ds.Subject, Err: errors.New("the subject column is missing")}
	}
	kind, ok := transforms.KindOf(f.Schema().Field(idx[0]).Type)
	f.Close()
	if !ok || kind != transforms.KindInteger && kind != transforms.KindString {
		return &dataerr.Error{Location: first, Column: ds.Subject, Err: errors.New("subject ids must be integers or strings")}
	}
	fp := sha256.New()
	fp.Write([]byte("deid subject fingerprint v1"))
	load := func(what string, list, column string, pos rules.Pos, into *[]report.ErasureList) (*transforms.SubjectSet, error) {
		var ints []int64
		var strs []string
		sum, attrs, err := lists.HashFile(ctx, d.opt.Store, list)
		if errors.Is(err, storage.ErrNotExist) {
			return nil, &dataerr.Error{Location: list, Err: fmt.Errorf("%s of dataset %q (%s) does not exist", what, ds.Name, pos)}
		}
		if err != nil {
			return nil, err
		}
		fp.Write([]byte(sum))
		if err := lists.ReadSubjectList(ctx, d.opt.Store, d.opt.Mem, lists.SubjectList{What: what, Location: list, Column: column, Pos: pos,
			Against: first, Subject: ds.Subject}, kind, &ints, &strs); err != nil {
			return nil, err
		}
		if err := lists.CheckUnchanged(ctx, d.opt.Store, what, list, attrs); err != nil {
			return nil, err
		}
		var set *transforms.SubjectSet
		if kind == transforms.KindInteger {
			set = transforms.NewIntSubjectSet(ints)
		} else {
			set = transforms.NewStringSubjectSet(strs)
		}
		*into = append(*into, report.ErasureList{Location: list, Column: column, Size: attrs.Size, Generation: attrs.Generation, SHA256: sum, Entries: int64(len(ints) + len(strs)), Subjects: int64(set.Len())})
		return set, nil
	}
	var eIDs, hIDs []*transforms.SubjectSet
	for _, e := range ds.Erasure {
		s, err := load("erasure list", e.List, e.Column, e.Pos, &d.rep.Erasure)
		if err != nil {
			return err
		}
		eIDs = append(eIDs, s)
	}
	for _, h := range ds.Holds {
		s, err := load("legal hold list", h.List, h.Column, h.Pos, &d.rep.Holds)
		if err != nil {
			return err
		}
		hIDs = append(hIDs, s)
	}
	d.rule.Erasure = union(eIDs, kind)
	d.rule.Hold = union(hIDs, kind)
	if d.rule.Erasure != nil {
		d.rep.Subjects.Listed = int64(d.rule.Erasure.Len())
	}
	d.fpKey = fp.Sum(nil)
	return nil
}

// union merges subject sets of one kind; nil for none.
func union(sets []*transforms.SubjectSet, kind transforms.Kind) *transforms.SubjectSet {
	if len(sets) == 0 {
		return nil
	}
	var ints []int64
	var strs []string
	for _, s := range sets {
		i, st := s.Values()
		ints, strs = append(ints, i...), append(strs, st...)
	}
	if kind == transforms.KindInteger {
		return transforms.NewIntSubjectSet(ints)
	}
	return transforms.NewStringSubjectSet(strs)
}

// fingerprint is the report's fingerprint of an erased subject id.
func (d *dataset) fingerprint(id any) string {
	m := hmac.New(sha256.New, d.fpKey)
	fmt.Fprint(m, id)
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// minus returns the subjects of a not in b (b may be nil).
func minus(a, b *transforms.SubjectSet) *transforms.SubjectSet {
	if b == nil || b.Len() == 0 {
		return a
	}
	ints, strs := a.Values()
	var ki []int64
	var ks []string
	for _, v := range ints {
		if !b.ContainsInt(v) {
			ki = append(ki, v)
		}
	}
	for _, v := range strs {
		if !b.ContainsString(v) {
			ks = append(ks, v)
		}
	}
	if a.IsInteger() {
		return transforms.NewIntSubjectSet(ki)
	}
	return transforms.NewStringSubjectSet(ks)
}
