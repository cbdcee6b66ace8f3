package retain

import (
	"context"
	"errors"
	"fmt"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// checkSources lists every dataset's source before any dataset is
// changed, so that a refusal never comes half way through a run, with some
// datasets changed and a journal to complete. It refuses a source that
// matches no file (neither does the dataset's isolated part) as run does
// (pipeline.CheckNotEmpty: a data error unless allow_empty: true, then a
// warning, returned), a folder named without a glob or a link to nothing
// in the source folder (pipeline.SourceError), and the links of
// checkLinks.
func checkSources(ctx context.Context, plan *rules.RetainPlan, opt *Options) (warnings []string, err error) {
	for _, ds := range plan.Datasets {
		root, matches, err := storage.Glob(ctx, opt.Store, ds.Source)
		if errors.Is(err, storage.ErrNotExist) && !errors.Is(err, storage.ErrDanglingLink) {
			continue // runDataset reports it
		}
		if err != nil {
			if err = pipeline.SourceError(ds.Name, ds.Source, err); !errors.Is(err, dataerr.ErrData) && !storage.IsURI(ds.Source) {
				err = &dataerr.Error{Err: err}
			}
			return nil, err
		}
		if ds.Root != "" {
			root = ds.Root
		}
		n := len(matches)
		if n == 0 {
			_, isolated, err := storage.Glob(ctx, opt.Store, storage.Join(root, isoFolder, "**", "*.parquet"))
			if err != nil && !errors.Is(err, storage.ErrNotExist) {
				return nil, fmt.Errorf("dataset %q: list its isolated part: %w", ds.Name, err)
			}
			n = len(isolated)
		}
		if n == 0 && ds.Ended {
			continue // an ended dataset is emptied: a run before this one did it
		}
		w, err := pipeline.CheckNotEmpty(ds.DatasetDecl, n)
		if err != nil {
			return nil, err
		}
		if w != "" {
			warnings = append(warnings, w)
		}
		if !storage.IsURI(ds.Source) { // object storage has no links
			if err := checkLinks(ctx, ds, root, matches); err != nil {
				return nil, err
			}
		}
	}
	return warnings, checkOutputLinks(ctx, opt)
}

// checkLinks refuses, before any dataset is changed, a symbolic link where
// retain would write on local disk: a source file that is a link
// (rewriting it would replace the link and leave the rows in its target),
// or a link at retain's own names in the dataset's root (work folder,
// lock, isolated and anonymized parts). Each write checks again
// (storage.Local).
func checkLinks(ctx context.Context, ds *rules.RetainDataset, root string, matches []storage.Match) error {
	rctx := storage.WithRoots(ctx, root)
	for _, n := range []string{workDir, lockName, isoFolder, anonFolder} {
		if err := storage.NoLinks(rctx, "write", storage.Join(root, n)); err != nil {
			return &dataerr.Error{Err: fmt.Errorf("dataset %q: %w", ds.Name, err)}
		}
	}
	for _, m := range matches {
		if err := sourceLink(ds.Name, m.Location); err != nil {
			return err
		}
	}
	return nil
}

// checkOutputLinks refuses a link at retain's names in a destination's
// output, as checkLinks does in a dataset's root.
func checkOutputLinks(ctx context.Context, opt *Options) error {
	if opt.Outputs == nil {
		return nil
	}
	for _, dst := range opt.Outputs.Destinations {
		for _, n := range []string{workDir, output.ManifestName, output.ReportsDir, lock.Dir} {
			if err := storage.NoLinks(ctx, "write", storage.Join(dst.Output, n)); err != nil {
				return &dataerr.Error{Err: fmt.Errorf("destination %q: %w", dst.Name, err)}
			}
		}
	}
	return nil
}

// protectionWarning says when the bucket of a dataset keeps what retain
// deleted or replaced (object versioning, soft delete).
func protectionWarning(ctx context.Context, st storage.Store, name, root string) string {
	p, err := storage.DeleteProtection(ctx, st, root)
	if err != nil {
		return fmt.Sprintf("dataset %q: could not check whether the bucket of %s keeps deleted objects (%v): check its versioning and soft delete settings", name, root, err)
	}
	if w := p.Warning(); w != "" {
		return fmt.Sprintf("dataset %q: %s", name, w)
	}
	return ""
}
