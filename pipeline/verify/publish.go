package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// This file holds what deid verify writes: verify.json beside the report of
// the run checked, and that report's page again.

// publishVerification writes the destination's verification beside the
// report of the run checked (the manifest's last run by default), signed
// with the audit key when the policy has one, and renders that report's
// page again with the verification in it.
func publishVerification(ctx context.Context, s storage.Store, plan *rules.Plan, v *report.Verification) error {
	runID := v.RunID
	if runID == "" {
		m, err := output.ReadManifest(ctx, s, v.Output)
		if err != nil {
			return err
		}
		runID = m.RunID
	}
	b, err := v.JSON()
	if err != nil {
		return err
	}
	if k := plan.AuditKey; k != nil {
		if b, err = report.SignJSON(b, k.Secret(), k.Fingerprint()); err != nil {
			return err
		}
	}
	dir := storage.Join(v.Output, output.ReportsDir, runID)
	if err := storage.WriteFile(ctx, s, storage.Join(dir, "verify.json"), b); err != nil {
		return err
	}
	data, err := storage.ReadFile(ctx, s, storage.Join(dir, "report.json"))
	if errors.Is(err, storage.ErrNotExist) {
		return nil // files of a run whose report is gone: nothing to render
	}
	if err != nil {
		return err
	}
	r, _, err := report.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", storage.Join(dir, "report.json"), err)
	}
	if r.Verification, err = report.ParseVerification(b); err != nil {
		return err
	}
	page, err := r.HTML()
	if err != nil {
		return err
	}
	return storage.WriteFile(ctx, s, storage.Join(dir, "report.html"), page)
}
