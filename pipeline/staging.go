package pipeline

import (
	"context"
	"fmt"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
)

// holdStaging takes the staging lease of every destination output and
// returns its release.
func (r *runner) holdStaging(ctx context.Context) (release func(), err error) {
	var stops []func()
	release = func() {
		for _, stop := range stops {
			stop()
		}
	}
	owner := lock.NewOwner()
	for _, dst := range r.plan.Destinations {
		l, err := lock.At(r.opt.Store, lock.StagingPath(dst.Output, r.opt.RunID), "staging", owner, output.StagingLeaseTTL, nil)
		if err == nil {
			err = l.Acquire(ctx)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("destination %q: the staging lease of run %s: %w", dst.Name, r.opt.RunID, err)
		}
		r.stagingLeases.Store(dst.Output, l)
		stop := lock.Renewing(ctx, l, output.StagingLeaseTTL, func(err error) {
			r.opt.Logger.Warn("staging lease could not be renewed", "output", dst.Output, "error", err)
		})
		stops = append(stops, func() {
			stop()
			if err := l.Release(context.WithoutCancel(ctx)); err != nil {
				r.opt.Logger.Warn("staging lease could not be released: it expires with its lease", "output", dst.Output, "error", err)
			}
		})
	}
	return release, nil
}

// cleanStaging, as a run starts, settles in every destination output what
// killed runs left: a commit past its commit point is completed (under the
// publish lock), a staging folder whose lease is free is removed, and so
// is a free lease without a folder. A problem is logged, never fatal: the
// commit completes interrupted commits again under the publish lock.
func (r *runner) cleanStaging(ctx context.Context) {
	if r.opt.StaleStaging < 0 {
		return
	}
	for _, dst := range r.plan.Destinations {
		if err := r.cleanOutputStaging(ctx, dst.Name, dst.Output); err != nil {
			r.opt.Logger.Warn("could not settle the staging folder", "output", dst.Output, "error", err)
		}
	}
}

func (r *runner) cleanOutputStaging(ctx context.Context, name, outDir string) error {
	return output.SettleStaging(ctx, r.opt.Store, outDir, r.opt.RunID, r.opt.PublishWait, r.opt.Logger, func(msg string) {
		r.rep.Warn(fmt.Sprintf("destination %q: %s", name, msg))
	})
}
