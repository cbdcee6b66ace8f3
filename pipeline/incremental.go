package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// skipCommitted, in an incremental run, drops the outputs that a
// destination's manifest already holds from the same input, unchanged
// (location, size, modification time, generation), written with the same
// policy (SHA-256) and key (fingerprint) and the same erasure and consent
// lists (their SHA-256, from the report of the run that wrote it). An input
// none of whose outputs is needed is not read. Datasets whose children rule
// takes ages from another dataset are always processed: their rows depend
// on files this comparison does not cover.
func (r *runner) skipCommitted(ctx context.Context) error {
	skip := map[*fileOutput]bool{}
	for _, dst := range r.plan.Destinations {
		m, err := output.ReadManifest(ctx, r.opt.Store, dst.Output)
		if errors.Is(err, storage.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		committed := map[string]*output.ManifestFile{}
		for _, f := range m.Files {
			committed[f.Path] = f
		}
		fingerprint := ""
		if dst.Key != nil {
			fingerprint = dst.Key.Fingerprint()
		}
		lists := map[string]string{} // run id + dataset -> lists digest
		for _, in := range r.inputs {
			if in.ds.Children != nil && in.ds.Children.FromDataset != "" {
				continue
			}
			current := listsDigest(r.datasetReport(in.ds))
			for _, out := range in.outputs {
				if out.dst != dst || out.classes != nil {
					// min_k counts classes over every file: all are processed
					continue
				}
				f := committed[out.rel]
				if f == nil || f.Input.Location != in.match.Location || f.Input.Size != in.match.Size ||
					!f.Input.ModTime.Equal(in.match.ModTime) || f.Input.Generation != in.match.Generation ||
					f.PolicySHA256 != r.plan.Policy.SHA256 || f.KeyFingerprint != fingerprint {
					continue
				}
				k := f.RunID + "\x00" + in.ds.Name
				old, ok := lists[k]
				if !ok {
					old, err = r.committedLists(ctx, dst.Output, f.RunID, in.ds.Name)
					if err != nil {
						r.opt.Logger.Warn("incremental: cannot read the report of the run that wrote an output; processing it again",
							"output", storage.Join(dst.Output, out.rel), "error", err)
					}
					lists[k] = old
				}
				if old != "" && old == current {
					skip[out] = true
				}
			}
		}
	}
	if len(skip) == 0 {
		return nil
	}
	var keep []*inputFile
	for _, in := range r.inputs {
		var outs []*fileOutput
		for _, out := range in.outputs {
			if skip[out] {
				r.rep.Lock()
				out.rep.Unchanged = append(out.rep.Unchanged, out.rel)
				r.rep.Unlock()
				continue
			}
			outs = append(outs, out)
		}
		in.outputs = outs
		if len(outs) > 0 {
			keep = append(keep, in)
			continue
		}
		dsr := r.datasetReport(in.ds)
		r.rep.Lock()
		for i, f := range dsr.Files {
			if f == in.report {
				dsr.Files = append(dsr.Files[:i], dsr.Files[i+1:]...)
				break
			}
		}
		dsr.Unchanged = append(dsr.Unchanged, in.match.Location)
		r.rep.Unlock()
	}
	r.inputs = keep
	for _, d := range r.rep.Destinations {
		sort.Strings(d.Unchanged)
	}
	r.opt.Logger.Info("incremental: outputs already committed from unchanged inputs are kept", "outputs", len(skip), "inputs_to_read", len(keep))
	return nil
}

// listsDigest identifies the erasure and consent lists a dataset was
// processed with.
func listsDigest(d *report.Dataset) string {
	h := sha256.New()
	for _, e := range d.Erasure {
		fmt.Fprintf(h, "erasure %s %s %s\n", e.Location, e.Column, e.SHA256)
	}
	for _, c := range d.Consent {
		fmt.Fprintf(h, "consent %s %s %s %s\n", c.Location, c.Column, c.History, c.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// committedLists reads the lists digest of dataset from the report of run
// runID in output.
func (r *runner) committedLists(ctx context.Context, outDir, runID, dataset string) (string, error) {
	loc := storage.Join(outDir, output.ReportsDir, runID, "report.json")
	b, err := storage.ReadFile(ctx, r.opt.Store, loc)
	if err != nil {
		return "", err
	}
	var rep report.Run
	if err := json.Unmarshal(b, &rep); err != nil {
		return "", fmt.Errorf("%s: %w", loc, err)
	}
	for _, d := range rep.Datasets {
		if d.Name == dataset {
			return listsDigest(d), nil
		}
	}
	return "", fmt.Errorf("%s: no dataset %q", loc, dataset)
}
