package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/retain"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// retainCmd applies retention, erasure and legal holds to the stored source
// datasets themselves (pipeline/retain).
func retainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := policyFlags{requireConfig: true}
	fs := flag.NewFlagSet("deid retain", flag.ContinueOnError)
	f.register(fs, true)
	dry := fs.Bool("dry-run", false, "report per file what would be removed, without changing anything")
	asJSON := fs.Bool("json", false, "print the report as JSON on stdout instead of a summary")
	reportPath := fs.String("report", "", "also write the JSON report to this file, signed with the policy's audit_key as run reports are (deid report render FILE shows it as a page, deid report check FILE verifies it)")
	stale := fs.Duration("lock-stale", time.Hour, "the lease of retain's locks, renewed every third of it while a run holds them: a lock not renewed for this long is taken over (one of a dead process of this host at once)")
	batch := fs.Int64("batch-size", 0, "rows decoded at a time (default 32768)")
	workers := fs.Int("workers", 0, "concurrent row-group tasks (default: the number of CPUs); does not change the output")
	memLimit := fs.String("memory-limit", "auto", "soft limit for the Go heap, e.g. 512MiB or 2GiB; auto: 128MiB + 160MiB per worker, unless GOMEMLIMIT is set; off: none")
	scratchDir := fs.String("scratch-dir", "", "folder for re-encoded row groups waiting to be assembled once 32 MiB of them wait in memory (default: the system's temporary folder)")
	outputs := fs.Bool("outputs", true, "also erase the erased subjects from the destinations' published outputs (loads the destinations' keys)")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := setMemoryLimit(*memLimit, *workers); err != nil {
		return err
	}
	if f.config == "" {
		return usageError("retain changes stored data: name the policy with -c (there is no built-in default for retain)")
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	now, err := f.reference(time.Now)
	if err != nil {
		return err
	}
	pol, err := f.load(log)
	if err != nil {
		return err
	}
	if *reportPath != "" {
		if err := checkOutFile("--report", *reportPath, pol); err != nil {
			return err
		}
	}
	// the report file is signed as run reports are: load the audit key
	// before anything is changed
	var auditKey *rules.Key
	if *reportPath != "" && pol.AuditKey != nil {
		if auditKey, err = rules.LoadAuditKey(pol, os.LookupEnv); err != nil {
			return &rules.Error{File: pol.AuditKey.Pos.File, Line: pol.AuditKey.Pos.Line, Column: pol.AuditKey.Pos.Column, Path: "audit_key", Msg: err.Error()}
		}
	}
	plan, err := rules.CompileRetain(pol, now)
	if errors.Is(err, rules.ErrNothingToRetain) {
		return usageError("%s: %v: retain has nothing to do", pol.File, err)
	}
	if err != nil {
		return err
	}
	st := storage.NewRouter() // local paths and gs://
	defer st.Close()
	opt := retain.Options{Store: st, Logger: log, DryRun: *dry, LockStale: *stale, BatchSize: *batch, Workers: *workers, ScratchDir: *scratchDir, Critical: criticalOf(ctx)}
	if *outputs {
		if opt.Outputs, err = rules.Compile(pol, rules.CompileOptions{Now: now, Lookup: os.LookupEnv}); err != nil {
			return err
		}
	}
	rep, err := retain.Run(ctx, plan, opt)
	if rep != nil && *reportPath != "" {
		var b []byte
		var jerr error
		if auditKey != nil {
			b, jerr = rep.Signed(auditKey.Secret(), auditKey.Fingerprint())
		} else {
			b, jerr = rep.JSON()
		}
		if jerr == nil {
			jerr = writeOutFile(ctx, "--report", *reportPath, b)
		}
		if jerr != nil && err == nil {
			err = fmt.Errorf("write the report: %w", jerr)
		}
	}
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := rep.JSON()
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	}
	printRetainSummary(stdout, rep)
	return nil
}

// printRetainSummary writes a few lines per dataset and file.
func printRetainSummary(w io.Writer, rep *report.Retain) {
	verb := "retain"
	if rep.DryRun {
		verb = "retain --dry-run (nothing changed)"
	}
	fmt.Fprintf(w, "%s: policy %s, now %s\n", verb, rep.Policy.Name, rep.Now.Format(time.RFC3339))
	for _, ds := range rep.Datasets {
		fmt.Fprintf(w, "dataset %s: %d files scanned, %d untouched, %d rewritten, %d deleted; row groups: %d copied, %d dropped undecoded (%d of them settled by bloom filters), %d decided on rule columns, %d rewritten\n",
			ds.Name, ds.Files.Scanned, ds.Files.Untouched, ds.Files.Rewritten, ds.Files.Deleted,
			ds.RowGroups.Copied, ds.RowGroups.Dropped, ds.RowGroups.BloomSkipped, ds.RowGroups.RuleColumnsOnly, ds.RowGroups.Rewritten)
		fmt.Fprintf(w, "  rows: %d in, %d kept; removed: retention %d, null_time %d, future_time %d, erasure %d; anonymized %d; held: legal_hold %d, restricted (legal minimum) %d; NULL times kept %d; future times kept %d\n",
			ds.RowsIn, ds.RowsKept, ds.Removed[report.RemovedRetention], ds.Removed[report.RemovedNullTime], ds.Removed[report.RemovedFutureTime], ds.Removed[report.RemovedErasure],
			ds.Anonymized, ds.Held[report.HeldLegalHold], ds.Held[report.HeldLegalMinimum], ds.NullTimeKept, ds.FutureTimeKept)
		printLocalTimes(w, ds.NonexistentLocalTime, ds.AmbiguousLocalTime)
		printEnded(w, ds)
		if iso := ds.Isolation; iso.Isolated+iso.Released+iso.Remaining > 0 {
			fmt.Fprintf(w, "  isolated part %s: %d rows isolated now, %d released (deleted or anonymized), %d remain; files: %d scanned, %d rewritten, %d deleted\n",
				iso.Folder, iso.Isolated, iso.Released, iso.Remaining, iso.Files.Scanned, iso.Files.Rewritten, iso.Files.Deleted)
		}
		if ds.Subjects.Listed > 0 {
			fmt.Fprintf(w, "  subjects: %d listed for erasure, %d erased now\n", ds.Subjects.Listed, ds.Subjects.Erased)
		}
		if ds.Recovered != "" {
			fmt.Fprintf(w, "  an interrupted earlier run was %s\n", ds.Recovered)
		}
		for _, f := range ds.FileDetails {
			if f.RowsKept != f.RowsIn {
				fmt.Fprintf(w, "  %s: %s, %d of %d rows kept\n", f.Location, f.Action, f.RowsKept, f.RowsIn)
			}
		}
	}
	for _, d := range rep.Destinations {
		fmt.Fprintf(w, "destination %s: %d published rows of erased subjects removed\n", d.Name, d.RowsErased)
		for _, dd := range d.Datasets {
			if dd.FilesDeleted > 0 {
				fmt.Fprintf(w, "  %s: its service ended: %d files deleted, %d rows\n", dd.Dataset, dd.FilesDeleted, dd.RowsErased)
				continue
			}
			fmt.Fprintf(w, "  %s: found by %s, %d files scanned, %d rewritten, %d rows\n", dd.Dataset, dd.Method, dd.FilesScanned, dd.FilesRewritten, dd.RowsErased)
		}
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
}

// printEnded says that a dataset's service ended, how many rows that
// removed, and which recipients had received it, to be told to delete it.
func printEnded(w io.Writer, ds *report.RetainDataset) {
	e := ds.Ended
	if e == nil {
		return
	}
	fmt.Fprintf(w, "  service ended %s (ended_at: %s): %d rows removed for it\n", e.At.Format(time.RFC3339), e.Stated, ds.Removed[report.RemovedServiceEnded])
	switch {
	case e.Recipients == nil:
		fmt.Fprintln(w, "  recipients: not looked at (--outputs=false)")
	case len(e.Recipients) == 0:
		fmt.Fprintln(w, "  recipients: no published file of it remained")
	}
	for _, r := range e.Recipients {
		fmt.Fprintf(w, "  recipient %s (%s, %s): %d files, %d rows deleted; tell it to delete its copies\n", r.Destination, r.Purpose, r.Output, r.Files, r.Rows)
	}
}
