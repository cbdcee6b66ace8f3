package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/verify"
)

// verifyCmd checks published outputs against the policy.
func verifyCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("deid verify", flag.ContinueOnError)
	var pf policyFlags
	pf.register(fs, true)
	run := fs.String("run", "", "check only the files this run wrote (default: every file the manifests list)")
	strict := fs.Bool("strict", false, "check every text column but pseudonyms with every validating detector, not only scrubbed columns with theirs")
	batch := fs.Int("batch-size", 0, "rows decoded at a time (default 65536)")
	workers := fs.Int("workers", 0, "row groups checked at once (default: the number of CPUs); does not change the result")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	log, err := pf.logger(stderr)
	if err != nil {
		return err
	}
	var now time.Time
	if pf.now != "" {
		if now, err = pf.reference(time.Now); err != nil {
			return err
		}
	}
	plan, err := pf.compile(log, time.Now())
	if err != nil {
		return err
	}
	res, err := verify.Outputs(ctx, plan, verify.Options{Logger: log, BatchSize: *batch, Workers: *workers, RunID: *run, Strict: *strict, Now: now})
	if err != nil {
		return err
	}
	if *asJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		for _, d := range res.Destinations {
			for _, f := range d.Findings {
				fmt.Fprintf(stdout, "FINDING %s: %s\n", d.Destination, f)
			}
			fmt.Fprintf(stdout, "destination %s: %d files, %d rows checked (%v): %d findings\n", d.Destination, d.Files, d.Rows, d.Checks, len(d.Findings))
		}
	}
	if !res.OK() {
		return fmt.Errorf("verification found problems in the published outputs: %w", output.ErrCheck)
	}
	return nil
}
