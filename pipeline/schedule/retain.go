package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/deidproject/deid/pipeline/retain"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// RetainReportsDir is the folder, in a dataset's root, where scheduled
// retain runs leave their reports (hidden from source globs by its "_").
const RetainReportsDir = "_reports"

// Retain returns the runner of retain jobs: deid retain on the policy's
// datasets, also erasing the erased subjects from the published outputs of
// the job's destinations (all of them when the job names none). Its report
// is written to <root>/_reports/retain-<run id>.json of every dataset root it
// touched, so an auditor finds it beside the data. clock, when set, fixes the
// reference instant.
func Retain(policy *rules.Policy, opt retain.Options, lookup rules.LookupEnv, clock func() time.Time) RunFunc {
	if clock == nil {
		clock = time.Now
	}
	if opt.Store == nil {
		opt.Store = storage.NewRouter()
	}
	return func(ctx context.Context, job *rules.JobDecl) (*Result, error) {
		now := clock().UTC()
		if err := policy.CheckLocations(); err != nil { // links may have moved since serve started
			return nil, fmt.Errorf("job %s: %w", job.Name, err)
		}
		plan, err := rules.CompileRetain(policy, now)
		if err != nil {
			return nil, fmt.Errorf("job %s: %w", job.Name, err)
		}
		o := opt
		o.RunID, o.DryRun = "", false
		if o.Logger != nil {
			o.Logger = o.Logger.With("job", job.Name)
		}
		if o.Outputs, err = rules.Compile(policy, rules.CompileOptions{Now: now, Lookup: lookup, Destinations: job.Destinations}); err != nil {
			return nil, err
		}
		rep, err := retain.Run(ctx, plan, o)
		if rep == nil {
			return nil, err
		}
		res := &Result{RunID: rep.RunID, Removed: map[string]int64{}}
		roots := map[string]bool{}
		for _, d := range rep.Datasets {
			res.RowsIn += d.RowsIn
			for reason, n := range d.Removed {
				res.Removed[reason] += n
			}
			roots[d.Root] = true
		}
		b, jerr := rep.JSON()
		for _, d := range rep.Datasets { // in policy order, each root once
			if !roots[d.Root] || jerr != nil {
				continue
			}
			delete(roots, d.Root)
			loc := storage.Join(d.Root, RetainReportsDir, "retain-"+rep.RunID+".json")
			if werr := storage.WriteFile(storage.WithRoots(ctx, d.Root), o.Store, loc, b); werr != nil && err == nil {
				err = fmt.Errorf("job %s: write the retain report: %w", job.Name, werr)
			} else if werr == nil {
				res.Reports = append(res.Reports, loc)
			}
		}
		if jerr != nil && err == nil {
			err = fmt.Errorf("job %s: encode the retain report: %w", job.Name, jerr)
		}
		return res, err
	}
}
