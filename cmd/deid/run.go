package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// runFlags are the flags of run and plan.
type runFlags struct {
	policyFlags
	workers   int
	batchSize int
	progress  string
	scratch   string
	codec     string
	level     int
	rgRows    int64
	memLimit  string
	json      bool
	job       string
	force     bool
	shard     string
	runID     string
	shardWait time.Duration
}

func (f *runFlags) register(fs *flag.FlagSet) {
	f.policyFlags.register(fs, true)
	fs.IntVar(&f.workers, "workers", 0, "concurrent row-group tasks (default: the number of CPUs); does not change the output")
	fs.IntVar(&f.batchSize, "batch-size", 0, "rows decoded at a time (default 65536)")
	fs.StringVar(&f.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always or never")
	fs.StringVar(&f.scratch, "scratch-dir", "", "folder for encoded parts waiting to be assembled once 32 MiB of them wait in memory, and for min_k's class counts past 524,288 classes (default: the system's temporary folder)")
	fs.StringVar(&f.codec, "compression", "zstd", "output page compression: zstd, snappy, gzip, lz4 or none")
	fs.IntVar(&f.level, "compression-level", 0, "compression level (default: 1 for zstd, else the codec's)")
	fs.Int64Var(&f.rgRows, "row-group-rows", 0, "rows per output row group at most (default 131072)")
	fs.StringVar(&f.memLimit, "memory-limit", "auto", "soft limit for the Go heap, e.g. 512MiB or 2GiB; auto: 128MiB + 160MiB per worker, unless GOMEMLIMIT is set; off: none")
	fs.BoolVar(&f.json, "json", false, "print the run's report as JSON on stdout instead of a summary")
}

// options builds pipeline options from the flags.
func (f *runFlags) options(stderr io.Writer) (pipeline.Options, func(), error) {
	log, err := f.logger(stderr)
	if err != nil {
		return pipeline.Options{}, nil, err
	}
	opt := pipeline.Options{Workers: f.workers, BatchSize: f.batchSize, Logger: log, ScratchDir: f.scratch}
	if err := setMemoryLimit(f.memLimit, f.workers); err != nil {
		return opt, nil, err
	}
	opt.Writer.Codec, opt.Writer.CompressionLevel, opt.Writer.MaxRowGroupRows = f.codec, f.level, f.rgRows
	done := func() {}
	switch f.progress {
	case "always", "auto":
		if f.progress == "always" || isTerminal(stderr) {
			bar := newProgressBar(stderr)
			opt.Progress, done = bar.update, bar.finish
		}
	case "never":
	default:
		return opt, nil, usageError("--progress %q: use auto, always or never", f.progress)
	}
	return opt, done, nil
}

// setup parses the flags of run or plan, compiles the policy and builds the
// pipeline options; done ends the progress bar.
func (f *runFlags) setup(name string, args []string, stderr io.Writer) (plan *rules.Plan, opt pipeline.Options, done func(), err error) {
	fs := flag.NewFlagSet("deid "+name, flag.ContinueOnError)
	f.register(fs)
	if name == "run" {
		fs.StringVar(&f.job, "job", "", "run the policy's job NAME (its destinations, under its lock) once, now; incremental unless --force")
		fs.BoolVar(&f.force, "force", false, "with --job: reprocess every input, also those whose outputs are committed and unchanged")
		fs.StringVar(&f.shard, "shard", "", "run shard INDEX/COUNT of a sharded run (default: from CLOUD_RUN_TASK_INDEX/CLOUD_RUN_TASK_COUNT when set); commit with deid report merge")
		fs.StringVar(&f.runID, "run-id", "", "with --shard: the id every shard of the run shares (default: CLOUD_RUN_EXECUTION)")
		fs.DurationVar(&f.shardWait, "shard-wait", pipeline.DefaultShardWait, "with --shard and a policy enforcing min_k: how long to wait for every shard's class counts (the shards must run at the same time)")
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return nil, opt, nil, err
	}
	opt, done, err = f.options(stderr)
	if err != nil || f.job != "" {
		return nil, opt, done, err
	}
	now, err := f.reference(time.Now)
	if err != nil {
		return nil, opt, nil, err
	}
	plan, err = f.compile(opt.Logger, now)
	return plan, opt, done, err
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f runFlags
	plan, opt, done, err := f.setup("run", args, stderr)
	if err != nil {
		return err
	}
	opt.Critical = criticalOf(ctx) // a signal does not cut the publish short
	if f.job != "" {
		err := runJob(ctx, &f, opt, stdout)
		done()
		return err
	}
	if index, count, sharded, err := shardSpec(f.shard, os.Getenv); err != nil || sharded {
		if err != nil {
			return err
		}
		runID, err := shardRunID(f.runID, os.Getenv)
		if err != nil {
			return err
		}
		err = runShard(ctx, &f, plan, opt, index, count, runID, stdout)
		done()
		return err
	}
	rep, err := pipeline.Run(ctx, plan, opt)
	done()
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(stdout, rep)
	}
	printSummary(stdout, rep)
	return nil
}

func printJSON(w io.Writer, rep *report.Run) error {
	b, err := rep.JSON()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// printSummary writes a few lines a person reads after a run or a plan.
func printSummary(w io.Writer, rep *report.Run) {
	verb := "run"
	if rep.Command == "plan" {
		verb = "plan (dry run, nothing written)"
	}
	fmt.Fprintf(w, "%s %s %s in %.1fs (now %s)\n", verb, rep.RunID, rep.Outcome, rep.Seconds, rep.Now.Format(time.RFC3339))
	for _, d := range rep.Datasets {
		fmt.Fprintf(w, "  dataset %s: %s, %d rows in, %d kept; removed: retention %d, erasure %d, null time %d, future time %d; future times kept %d\n",
			d.Name, plural(int64(len(d.Files)), "file", "files"), d.RowsIn, d.RowsKept,
			d.Removed["retention"], d.Removed["erasure"], d.Removed["null_time"], d.Removed["future_time"], d.FutureTimeKept)
		printLocalTimes(w, d.NonexistentLocalTime, d.AmbiguousLocalTime)
		if rep.Command != "plan" {
			continue
		}
		for _, in := range d.Files {
			fmt.Fprintf(w, "    read %s: %d rows, %d kept (retention %d, erasure %d, null time %d)\n", in.Location, in.RowsIn,
				in.RowsKept, in.Removed["retention"], in.Removed["erasure"], in.Removed["null_time"])
		}
	}
	for _, d := range rep.Destinations {
		if rep.Command == "plan" {
			fmt.Fprintf(w, "  destination %s (%s) would receive %d rows in %s%s:\n", d.Name, d.Purpose, d.RowsOut, d.Output, destinationRemovals(d))
			for _, f := range d.Files {
				var dropped, emptied []string
				for _, c := range f.Columns {
					switch {
					case c.Result != "removed":
					case c.Transform == "drop":
						dropped = append(dropped, c.Name)
					default: // the column stays, its values do not (null, redact)
						emptied = append(emptied, c.Name+" ("+c.Transform+")")
					}
				}
				fmt.Fprintf(w, "    write %s: %d rows", f.Path, f.Rows)
				if len(dropped) > 0 {
					fmt.Fprintf(w, " (columns dropped: %s)", strings.Join(dropped, ", "))
				}
				if len(emptied) > 0 {
					fmt.Fprintf(w, " (values removed: %s)", strings.Join(emptied, ", "))
				}
				fmt.Fprintln(w)
			}
			continue
		}
		fmt.Fprintf(w, "  destination %s (%s): %s, %d rows, %d bytes in %s%s\n", d.Name, d.Purpose,
			plural(int64(len(d.Files)), "file", "files"), d.RowsOut, d.Bytes, d.Output, destinationRemovals(d))
		if n := len(d.Unchanged) - len(d.Recomputed); n > 0 {
			fmt.Fprintf(w, "    incremental: %s kept as committed (input, policy, key and lists unchanged; --force reprocesses)\n",
				plural(int64(n), "file", "files"))
		}
		if len(d.Recomputed) > 0 {
			fmt.Fprintf(w, "    incremental: %s computed again and byte-identical to the committed ones: kept, not published again\n",
				plural(int64(len(d.Recomputed)), "file", "files"))
		}
		if d.NotCommitted != "" {
			fmt.Fprintf(w, "    not committed: %s\n", d.NotCommitted)
		}
	}
	if rep.StorageRetries > 0 {
		fmt.Fprintf(w, "  storage: %s retried after transient errors\n", plural(rep.StorageRetries, "request", "requests"))
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}

// printLocalTimes says how many wall-clock times fell in a daylight-saving
// gap or overlap of the dataset's time zone, when any did.
func printLocalTimes(w io.Writer, nonexistent, ambiguous int64) {
	if nonexistent+ambiguous > 0 {
		fmt.Fprintf(w, "    local times: %d nonexistent (in a spring-forward gap, moved forward by its length), %d ambiguous (in an autumn overlap, read as the earlier instant)\n",
			nonexistent, ambiguous)
	}
}

// destinationRemovals says which rows the destination's own row rules kept
// from it (consent withdrawals, children, classes below min_k) and how many rows a children rule
// kept because their age was unknown; empty when there are none.
func destinationRemovals(d *report.Destination) string {
	var parts []string
	for _, reason := range transforms.DestinationReasons() {
		if n := d.Removed[reason.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", reason, n))
		}
	}
	if n := d.Removed[transforms.ReasonSmallClass.String()]; n > 0 {
		parts = append(parts, fmt.Sprintf("in classes below min_k %d", n))
	}
	if d.AgeUnknown > 0 {
		parts = append(parts, fmt.Sprintf("kept with unknown age %d", d.AgeUnknown))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; removed for this destination: " + strings.Join(parts, ", ")
}
