package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// underOutputs returns ctx with every destination's output as a root of
// the local store's writes (storage.WithRoots): links in an output's own
// path are the operator's and are followed; below it (staging, dataset
// folders, manifest, reports, locks) every write refuses a link.
func underOutputs(ctx context.Context, plan *rules.Plan) context.Context {
	return storage.WithRoots(ctx, plan.Outputs()...)
}

// checkOutputLinks refuses, before any work, a symbolic link where a write
// of this run would go below an output (storage.NoLinks): at deid's own
// names (manifest, reports, staging, locks...), at a dataset's folder, and
// at any folder or file of an output file of this run. The writes check
// again themselves; this makes the run fail before it reads a manifest or
// report through a link, and before it publishes any file. Plan and
// Validate check the same (it only reads names).
func (r *runner) checkOutputLinks(ctx context.Context) error {
	ctx = underOutputs(ctx, r.plan)
	for _, dst := range r.plan.Destinations {
		names := append([]string(nil), output.OwnNames...)
		for _, b := range dst.Bindings {
			names = append(names, b.Dataset.Name)
		}
		for _, n := range names {
			if err := storage.NoLinks(ctx, "write", storage.Join(dst.Output, n)); err != nil {
				return dataerr.Mark(fmt.Errorf("destination %q: %w", dst.Name, err))
			}
		}
	}
	for _, in := range r.inputs {
		for _, out := range in.outputs {
			if err := storage.NoLinks(ctx, "write", storage.Join(out.dst.Output, out.rel)); err != nil {
				return dataerr.Mark(fmt.Errorf("destination %q: %w", out.dst.Name, err))
			}
		}
	}
	return nil
}

// linkError marks a write refused because of a symbolic link
// (storage.ErrLink) as a data error: the output or lake holds a link where
// deid writes, and only its owner can remove it.
func linkError(err error) error {
	if errors.Is(err, storage.ErrLink) {
		return dataerr.Mark(err)
	}
	return err
}

func (r *runner) stagingRoot(dstOutput string) string {
	return storage.Join(dstOutput, output.StagingDir, r.opt.RunID)
}

// assembly is one staged output file being spliced from an input file's
// parts as its row groups finish, in row-group order, so that when the
// last one finishes only its part and the footer are left to write (not
// the whole file, on one core, while the other workers idle).
type assembly struct {
	dst string
	loc string
	w   storage.Writer
	h   hash.Hash
	cw  *countingWriter
	sp  *parquetio.Splicer
}

// startAssembly creates the staged output of in for out.
func (r *runner) startAssembly(ctx context.Context, out *fileOutput) (*assembly, error) {
	loc := storage.Join(r.stagingRoot(out.dst.Output), out.rel)
	w, err := r.opt.Store.Create(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", loc, err)
	}
	a := &assembly{dst: out.dst.Name, loc: loc, w: w, h: sha256.New()}
	a.cw = &countingWriter{w: io.MultiWriter(w, a.h)}
	a.sp = parquetio.NewSplicer(a.cw)
	return a, nil
}

// Splicer is where the output's parts go (engine.Output).
func (a *assembly) Splicer() *parquetio.Splicer { return a.sp }

// Abort discards the staged output.
func (a *assembly) Abort() { a.w.Abort() }

// Name names the output in errors.
func (a *assembly) Name() string { return "output for " + a.dst }

// finishAssembly writes the footer of a, in's output out (every part
// spliced; a nil when none was), commits it to the staging folder and
// records it in the report. On an error a is aborted.
func (r *runner) finishAssembly(ctx context.Context, in *inputFile, a *assembly, out *fileOutput) error {
	if a == nil {
		// no row survived: an empty file with the output schema
		p, err := r.emptyPart(out)
		if err != nil {
			return fmt.Errorf("%s: empty output for %s: %w", in.match.Location, out.dst.Name, err)
		}
		defer p.Discard()
		if a, err = r.startAssembly(ctx, out); err != nil {
			return err
		}
		if err := a.sp.Add(p); err != nil {
			a.Abort()
			return fmt.Errorf("%s: empty output for %s: %w", in.match.Location, out.dst.Name, err)
		}
	}
	rows, err := a.sp.Close()
	if err != nil {
		a.Abort()
		return fmt.Errorf("%s: assemble output for %s: %w", in.match.Location, out.dst.Name, err)
	}
	if _, err := a.w.Commit(); err != nil {
		a.w.Abort()
		return fmt.Errorf("stage %s: %w", a.loc, err)
	}
	of := &report.OutputFile{
		Path: out.rel, Dataset: in.ds.Name, Rows: rows, Bytes: a.cw.n, SHA256: hex.EncodeToString(a.h.Sum(nil)),
		Input:   inputOf(in),
		Columns: out.columns,
	}
	r.rep.Lock()
	out.rep.Files = append(out.rep.Files, of)
	out.rep.RowsOut += rows
	out.rep.Bytes += a.cw.n
	r.rep.Unlock()
	return nil
}

// emptyPart writes a part with the output's schema and no rows.
func (r *runner) emptyPart(out *fileOutput) (*scratch.Part, error) {
	p := scratch.NewPart(r.scratch, &r.partMem)
	pw, err := parquetio.NewPartEncoder(p, out.schema, nil, r.opt.Writer, r.opt.Mem)
	if err == nil {
		err = pw.Close()
	}
	if err == nil {
		err = p.Finish()
	}
	if err != nil {
		p.Discard()
		return nil, err
	}
	return p, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// holdOutput takes the publish lock of an output (output.HoldOutput).
func (r *runner) holdOutput(ctx context.Context, outDir string) (release func(), err error) {
	return output.HoldOutput(ctx, r.opt.Store, outDir, r.opt.PublishWait, r.opt.Logger)
}

// checkNoRetainJournal refuses an output where a deid retain run was
// interrupted while erasing: on completion it would put its files over
// this run's, so it must finish first.
func (r *runner) checkNoRetainJournal(ctx context.Context, dst, outDir string) error {
	if j := storage.Join(outDir, output.RetainDir, output.RetainJournal); r.statExists(ctx, j) {
		return fmt.Errorf("destination %q: an interrupted deid retain run awaits completion (%s): run deid retain with this policy first", dst, j)
	}
	return nil
}

// publish commits each destination (see pipeline/output): under the output's
// publish lock, its report and manifest are staged beside its files, the
// commit record is written (the commit point) and carried out.
func (r *runner) publish(ctx context.Context) error {
	for _, dst := range r.rep.Destinations {
		if err := r.publishDestination(ctx, dst); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) publishDestination(ctx context.Context, dst *report.Destination) error {
	release, err := r.holdOutput(ctx, dst.Output)
	if err != nil {
		return err
	}
	defer release()
	if err := r.recoverCommits(ctx, dst.Name, dst.Output); err != nil {
		return err
	}
	// (checked before the run too; a retain run that died since must finish first)
	if err := r.checkNoRetainJournal(ctx, dst.Name, dst.Output); err != nil {
		return err
	}
	if r.opt.Incremental {
		if err := r.dropUnchanged(ctx, dst); err != nil {
			return err
		}
	}
	if r.opt.Incremental && len(dst.Files) == 0 && r.statExists(ctx, storage.Join(dst.Output, output.ManifestName)) {
		// a scheduled run that found nothing new: a signed report each
		// time would grow the chain by one per tick, recording nothing
		r.rep.Lock()
		dst.NotCommitted = fmt.Sprintf("nothing new to publish (%d outputs unchanged): the output and its report chain are as the last commit left them", len(dst.Unchanged))
		r.rep.Unlock()
		r.opt.Logger.Info("nothing new to publish: nothing committed", "destination", dst.Name, "output", dst.Output, "unchanged", len(dst.Unchanged))
		return output.RemoveTree(ctx, r.opt.Store, r.stagingRoot(dst.Output))
	}
	if h := r.opt.BeforePublish; h != nil {
		if err := h(ctx, dst, r.stagingRoot(dst.Output)); err != nil {
			return fmt.Errorf("destination %q: %w", dst.Name, err)
		}
	}
	moves, err := r.stagedMoves(ctx, dst)
	if err != nil {
		return err
	}
	r.countRetries()
	if err := r.commit(ctx, r.rep, dst, moves); err != nil {
		return err
	}
	r.opt.Logger.Info("published", "destination", dst.Name, "output", dst.Output, "files", len(dst.Files), "rows", dst.RowsOut)
	return nil
}

// errStoppedAtCommitPoint is the error of a commit that a test stopped
// right after its commit point (Options.stopAtCommitPoint), as a kill would.
var errStoppedAtCommitPoint = errors.New("stopped at the commit point (test)")

// dropUnchanged takes out of an incremental run's commit the staged files
// that are byte for byte the committed ones, derived from the same input
// version under the same policy and key (a dataset whose children rule
// takes ages from another one is always processed again, and usually
// gives the same bytes): they stay as committed, listed as unchanged, so a
// job run that finds nothing new commits nothing.
func (r *runner) dropUnchanged(ctx context.Context, dst *report.Destination) error {
	m, err := output.ReadManifest(ctx, r.opt.Store, dst.Output)
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	committed := map[string]*output.ManifestFile{}
	for _, f := range m.Files {
		committed[f.Path] = f
	}
	r.rep.Lock()
	defer r.rep.Unlock()
	kept := dst.Files[:0]
	for _, f := range dst.Files {
		c := committed[f.Path]
		if c == nil || c.SHA256 != f.SHA256 || c.Rows != f.Rows || c.Input.Location != f.Input.Location || c.Input.Size != f.Input.Size ||
			!c.Input.ModTime.Equal(f.Input.ModTime) || c.Input.Generation != f.Input.Generation ||
			c.PolicySHA256 != r.plan.Policy.SHA256 || c.KeyFingerprint != dst.KeyFingerprint {
			kept = append(kept, f)
			continue
		}
		dst.Unchanged = append(dst.Unchanged, f.Path)
		dst.Recomputed = append(dst.Recomputed, f.Path)
		dst.RowsOut -= f.Rows
		dst.Bytes -= f.Bytes
	}
	dst.Files = kept
	sort.Strings(dst.Unchanged)
	sort.Strings(dst.Recomputed)
	return nil
}

// recoverCommits completes the commits to output that killed runs left
// past their commit point (the caller holds the publish lock), and says so
// in the report.
func (r *runner) recoverCommits(ctx context.Context, name, outDir string) error {
	done, err := output.RecoverCommits(ctx, r.opt.Store, outDir, r.opt.RunID)
	for _, id := range done {
		r.rep.Warn(fmt.Sprintf("destination %q: completed the commit of run %s, stopped after its commit point", name, id))
	}
	return err
}

// stagedMoves checks the destination's staged files and their targets and
// returns their moves, in path order; on object storage it records each
// staged object's checksum (a copy keeps it) in its report entry.
func (r *runner) stagedMoves(ctx context.Context, dst *report.Destination) ([]output.Move, error) {
	staging := r.stagingRoot(dst.Output)
	sortedOutputs(dst.Files)
	moves := make([]output.Move, 0, len(dst.Files)+3)
	for _, f := range dst.Files {
		// a link refused half way would leave some files replaced and the
		// manifest not: every target is checked before the commit point
		if err := storage.NoLinks(ctx, "publish", storage.Join(dst.Output, f.Path)); err != nil {
			return nil, dataerr.Mark(fmt.Errorf("destination %q: %w", dst.Name, err))
		}
		if err := r.noteStaged(ctx, f, storage.Join(staging, f.Path)); err != nil {
			return nil, err
		}
		moves = append(moves, output.Move{Staged: f.Path, Final: f.Path, SHA256: f.SHA256})
	}
	return moves, nil
}

// noteStaged records, on object storage, the staged object's checksum in
// its report entry. (Its generation once published is not known before the
// commit point, and is not recorded.)
func (r *runner) noteStaged(ctx context.Context, f *report.OutputFile, loc string) error {
	if !storage.IsURI(loc) {
		return nil
	}
	a, err := r.opt.Store.Stat(ctx, loc)
	if err != nil {
		return fmt.Errorf("publish %s: %w", loc, err)
	}
	r.rep.Lock()
	f.Generation, f.CRC32C = 0, crcHex(a)
	r.rep.Unlock()
	return nil
}

// commit stages the destination's report of run and its merged manifest,
// writes the commit record listing moves and them, and carries it out.
// The caller holds the output's publish lock.
func (r *runner) commit(ctx context.Context, run *report.Run, dst *report.Destination, moves []output.Move) error {
	staging := r.stagingRoot(dst.Output)
	own, err := r.stageReport(ctx, run, dst, staging)
	if err != nil {
		return err
	}
	m, err := r.manifest(ctx, dst)
	if err != nil {
		return err
	}
	if err := r.writeJSON(ctx, storage.Join(staging, output.CommitDir, output.ManifestName), m); err != nil {
		return err
	}
	moves = append(moves, own...)
	moves = append(moves, output.Move{Staged: output.CommitDir + "/" + output.ManifestName, Final: output.ManifestName})
	// a lease that lapsed and was taken: another run may have removed the
	// staging as a killed run's
	if l, ok := r.stagingLeases.Load(dst.Output); ok {
		if err := l.(lock.Lock).Renew(ctx); err != nil {
			return fmt.Errorf("destination %q: this run's staging lease was lost, so another run may have removed its staging; nothing was committed: run again: %w", dst.Name, err)
		}
	}
	// a replay takes a missing staged file for one moved already: every
	// one must be there before the record says to move it
	for i, mv := range moves {
		var err error
		if mv.SHA256 != "" {
			_, err = r.opt.Store.Stat(ctx, storage.Join(staging, mv.Staged))
		} else {
			moves[i].SHA256, _, err = output.HashObject(ctx, r.opt.Store, storage.Join(staging, mv.Staged))
		}
		if err != nil {
			return fmt.Errorf("destination %q: the staged %s is gone before the commit point (removed by another process: did this run's staging lease lapse?); nothing was committed: %w",
				dst.Name, mv.Staged, err)
		}
	}
	rec := &output.CommitRecord{Format: output.CommitFormat, RunID: r.opt.RunID, Moves: moves}
	if err := output.WriteCommitRecord(ctx, r.opt.Store, staging, rec); err != nil {
		return err
	}
	if r.opt.stopAtCommitPoint {
		return errStoppedAtCommitPoint
	}
	return output.ReplayCommit(ctx, r.opt.Store, dst.Output, staging, rec)
}

// abortStaging removes what a failed run staged, but never a staging
// folder past its commit point: the next run completes that commit.
func (r *runner) abortStaging(ctx context.Context) {
	for _, dst := range r.plan.Destinations {
		staging := r.stagingRoot(dst.Output)
		if r.statExists(ctx, storage.Join(staging, output.CommitRecordName)) {
			r.opt.Logger.Warn("the commit stopped after its commit point: the next run completes it", "output", dst.Output)
			continue
		}
		if err := output.RemoveTree(ctx, r.opt.Store, staging); err != nil {
			r.opt.Logger.Warn("could not remove the staging folder", "folder", staging, "error", err)
		}
	}
}

// stageReport writes, into the commit folder of staging, the destination's
// part of run (this run's report, or the merge of a sharded run's shard
// reports), chained to the report the output's manifest names and signed
// with the audit key when the policy has one, and beside it report.html,
// the page an auditor reads; it returns their moves.
func (r *runner) stageReport(ctx context.Context, run *report.Run, dst *report.Destination, staging string) ([]output.Move, error) {
	rep := run.ForDestination(dst.Name)
	chain, err := output.PreviousReport(ctx, r.opt.Store, dst.Output)
	if err != nil {
		return nil, err
	}
	rep.Chain = chain
	final := output.ReportLocation(dst.Output, r.opt.RunID)
	var b []byte
	if k := r.plan.AuditKey; k != nil {
		b, err = rep.Signed(k.Secret(), k.Fingerprint())
	} else {
		b, err = rep.JSON()
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", final, err)
	}
	if err := r.writeJSON(ctx, storage.Join(staging, output.CommitDir, "report.json"), rawJSON(b)); err != nil {
		return nil, err
	}
	// the HTML page renders the report as written, signature included
	written, _, err := report.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("read back %s: %w", final, err)
	}
	page, err := written.HTML()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", final, err)
	}
	if err := r.writeJSON(ctx, storage.Join(staging, output.CommitDir, "report.html"), rawJSON(page)); err != nil {
		return nil, err
	}
	return []output.Move{
		{Staged: output.CommitDir + "/report.json", Final: output.ReportRel(r.opt.RunID, "report.json")},
		{Staged: output.CommitDir + "/report.html", Final: output.ReportRel(r.opt.RunID, "report.html")},
	}, nil
}

// rawJSON is JSON (or another document) already encoded.
type rawJSON []byte

func (b rawJSON) JSON() ([]byte, error) { return b, nil }

// writeJSON writes v as indented JSON, atomically.
func (r *runner) writeJSON(ctx context.Context, loc string, v interface{ JSON() ([]byte, error) }) error {
	b, err := v.JSON()
	if err != nil {
		return fmt.Errorf("encode %s: %w", loc, err)
	}
	return storage.WriteFile(ctx, r.opt.Store, loc, b)
}

// denseSchema is the output schema with dictionary types replaced by their
// value types: what an empty output file declares.
func denseField(name string, t arrow.DataType) arrow.Field {
	if d, ok := t.(*arrow.DictionaryType); ok {
		t = d.ValueType
	}
	return arrow.Field{Name: name, Type: t, Nullable: true}
}
