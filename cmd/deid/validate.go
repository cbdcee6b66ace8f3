package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/rules"
)

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f policyFlags
	fs := flag.NewFlagSet("deid validate", flag.ContinueOnError)
	f.register(fs, false)
	noSources := fs.Bool("no-sources", false, "check the policy and keys only, not the sources' schemas")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	plan, err := f.compile(log, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "policy %s (%s): %d datasets, %d destinations\n", plan.Policy.Name, plan.Policy.File,
		len(plan.Datasets), len(plan.Destinations))
	for _, k := range plan.Keys {
		fmt.Fprintf(stdout, "  key %s: fingerprint %s\n", k.Name(), k.Fingerprint())
	}
	for _, j := range plan.Policy.Jobs {
		sched, _ := rules.ParseSchedule(j.Schedule) // Load accepted it
		fmt.Fprintf(stdout, "  job %s (%s): %s, next %s\n", j.Name, j.What, j.Schedule, sched.Next(time.Now()).UTC().Format(time.RFC3339))
	}
	// a dataset whose service ended (ended_at) is no longer published, and
	// a children rule taking ages from it removes rows: say so before a run
	_, warnings := plan.WithoutEnded()
	for _, w := range warnings {
		fmt.Fprintf(stdout, "  warning: %s\n", w)
	}
	if *noSources {
		return nil
	}
	files, err := pipeline.Validate(ctx, plan, pipeline.Options{Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  sources: %s checked against the policy\n", plural(int64(files), "file", "files"))
	return nil
}
