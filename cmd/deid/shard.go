package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// shardSpec returns this process's shard: --shard INDEX/COUNT, or from the
// environment, CLOUD_RUN_TASK_INDEX and CLOUD_RUN_TASK_COUNT (Cloud Run
// jobs). A Kubernetes Indexed Job passes --shard $(JOB_COMPLETION_INDEX)/N.
// ok is false when the run is not sharded.
func shardSpec(flagValue string, getenv func(string) string) (index, count int, ok bool, err error) {
	spec := flagValue
	if spec == "" {
		i, n := getenv("CLOUD_RUN_TASK_INDEX"), getenv("CLOUD_RUN_TASK_COUNT")
		if i == "" || n == "" || n == "1" {
			return 0, 0, false, nil
		}
		spec = i + "/" + n
	}
	is, ns, found := strings.Cut(spec, "/")
	index, err1 := strconv.Atoi(is)
	count, err2 := strconv.Atoi(ns)
	if !found || err1 != nil || err2 != nil || count < 1 || index < 0 || index >= count {
		return 0, 0, false, usageError("--shard %q: use INDEX/COUNT with 0 <= INDEX < COUNT, e.g. --shard $(JOB_COMPLETION_INDEX)/4", spec)
	}
	return index, count, true, nil
}

// shardRunID returns the id every shard of the run shares: --run-id, or
// the Cloud Run execution's name.
func shardRunID(flagValue string, getenv func(string) string) (string, error) {
	id := flagValue
	if id == "" {
		id = getenv("CLOUD_RUN_EXECUTION")
	}
	if id == "" {
		return "", usageError("a sharded run needs --run-id ID, the same for every shard and the merge (e.g. the Job's controller uid)")
	}
	if err := output.CheckRunID(id); err != nil {
		return "", usageError("--run-id: %v", err)
	}
	return id, nil
}

// runShard runs this process's shard of a sharded run: the input list is
// frozen by the first shard (with its reference instant), and every shard
// processes its share of it.
func runShard(ctx context.Context, f *runFlags, plan *rules.Plan, opt pipeline.Options, index, count int, runID string, stdout io.Writer) error {
	frozen, err := pipeline.FreezeInputs(ctx, plan, opt, runID)
	if err != nil {
		return err
	}
	if !frozen.Now.Equal(plan.Now) { // a shard that froze the list earlier fixed now
		if plan, err = f.compile(opt.Logger, frozen.Now); err != nil {
			return err
		}
	}
	if frozen.PolicySHA256 != plan.Policy.SHA256 {
		return fmt.Errorf("the policy changed since shard run %s froze its inputs: start a new run id", runID)
	}
	opt.Shard = &pipeline.Shard{Index: index, Count: count, Inputs: frozen}
	opt.ShardWait = f.shardWait
	opt.RunID = fmt.Sprintf("%s-shard-%d-of-%d", runID, index, count)
	rep, err := pipeline.Run(ctx, plan, opt)
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(stdout, rep)
	}
	printSummary(stdout, rep)
	fmt.Fprintf(stdout, "  shard %d of %d published, not committed: run deid report merge --run-id %s --shards %d when every shard succeeded\n", index, count, runID, count)
	return nil
}

// reportMergeCmd is `deid report merge`; args follow "merge".
func reportMergeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f policyFlags
	fs := flag.NewFlagSet("deid report merge", flag.ContinueOnError)
	f.register(fs, false)
	runID := fs.String("run-id", "", "the sharded run's id, as given to its shards")
	shards := fs.Int("shards", 0, "the number of shards (COUNT of --shard INDEX/COUNT)")
	asJSON := fs.Bool("json", false, "print the merged report as JSON")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *runID == "" || *shards < 1 {
		return usageError("deid report merge needs --run-id and --shards")
	}
	if err := output.CheckRunID(*runID); err != nil { // it names folders in each output
		return usageError("--run-id: %v", err)
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	plan, err := f.compile(log, time.Now())
	if err != nil {
		return err
	}
	st := storage.NewRouter() // one GCS client for the list and the merge
	defer st.Close()
	frozen, err := pipeline.ReadFrozenInputs(ctx, st, plan, *runID)
	if errors.Is(err, storage.ErrNotExist) && pipeline.Merged(ctx, st, plan, *runID) {
		// a merge that finished, or was killed after its last commit
		if err := pipeline.FinishMerge(ctx, st, plan, *runID, log); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "run %s is merged and committed to every destination already\n", *runID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("run %s: its frozen input list: %w (did its shards run with this policy and --destination?)", *runID, err)
	}
	if plan, err = f.compile(log, frozen.Now); err != nil {
		return err
	}
	rep, err := pipeline.MergeShards(ctx, plan, pipeline.Options{Logger: log, Store: st, Critical: criticalOf(ctx)}, *runID, *shards)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	printSummary(stdout, rep)
	return nil
}
