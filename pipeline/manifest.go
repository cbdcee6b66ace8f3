package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// manifest merges this run's files into the destination's manifest, as the
// commit will write it.
func (r *runner) manifest(ctx context.Context, dst *report.Destination) (*output.Manifest, error) {
	old, err := output.ReadManifest(ctx, r.opt.Store, dst.Output)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		old = &output.Manifest{}
	case err != nil:
		return nil, fmt.Errorf("%w (move it aside to start a new manifest)", err)
	}
	m := &output.Manifest{
		Format: output.ManifestFormatV1, Destination: dst.Name, Purpose: dst.Purpose, RunID: r.opt.RunID, Now: r.plan.Now,
		PolicySHA256: r.plan.Policy.SHA256, KeyFingerprint: dst.KeyFingerprint,
		Report: output.ReportsDir + "/" + r.opt.RunID + "/report.json",
	}
	written := map[string]bool{}
	for _, f := range dst.Files {
		written[f.Path] = true
		m.Files = append(m.Files, &output.ManifestFile{OutputFile: *f, RunID: r.opt.RunID, Now: r.plan.Now,
			PolicySHA256: r.plan.Policy.SHA256, KeyFingerprint: dst.KeyFingerprint, ChildrenWithheld: r.recorded(dst.Name, f.Path)})
	}
	for _, f := range old.Files {
		if !written[f.Path] {
			m.Files = append(m.Files, f)
		}
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	if m.Files == nil {
		m.Files = []*output.ManifestFile{}
	}
	return m, nil
}
