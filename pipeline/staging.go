package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/deidproject/deid/pipeline/storage"
)

// removeStaleStaging removes, from every destination output, the staging
// folders other runs left when they were killed before publishing: those
// whose newest object is older than Options.StaleStaging. A staged file is
// never an output (readers go by the manifest), so this only frees space;
// a folder still being written has recent objects and is kept. Problems
// are logged, never fatal.
func (r *runner) removeStaleStaging(ctx context.Context) {
	age := r.opt.StaleStaging
	if age == 0 {
		age = 24 * time.Hour
	}
	if age < 0 {
		return
	}
	cutoff := r.opt.Clock().Add(-age)
	for _, dst := range r.plan.Destinations {
		root := storage.Join(dst.Output, StagingDir)
		newest := map[string]time.Time{} // run id -> newest object
		err := r.opt.Store.List(ctx, strings.TrimSuffix(root, "/")+"/", func(a storage.Attrs) error {
			rel, err := storage.Rel(root, a.Location)
			if err != nil {
				return nil
			}
			id, _, _ := strings.Cut(rel, "/")
			if t, ok := newest[id]; !ok || a.ModTime.After(t) {
				newest[id] = a.ModTime
			}
			return nil
		})
		if err != nil {
			r.opt.Logger.Warn("could not list the staging folder", "folder", root, "error", err)
			continue
		}
		ids := make([]string, 0, len(newest))
		for id := range newest {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if id == r.opt.RunID || !newest[id].Before(cutoff) {
				continue
			}
			folder := storage.Join(root, id)
			if err := removeTree(ctx, r.opt.Store, folder); err != nil {
				r.opt.Logger.Warn("could not remove a stale staging folder", "folder", folder, "error", err)
				continue
			}
			r.rep.Warn(fmt.Sprintf("destination %q: removed the staging folder of run %s, interrupted before it published (last written %s)",
				dst.Name, id, newest[id].UTC().Format(time.RFC3339)))
		}
	}
}
