package main

import (
	"context"
	"io"

	"github.com/deidproject/deid/pipeline"
)

func planCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f runFlags
	plan, opt, done, err := f.setup("plan", args, stderr)
	if err != nil {
		return err
	}
	rep, err := pipeline.Plan(ctx, plan, opt)
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
