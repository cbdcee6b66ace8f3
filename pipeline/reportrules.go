package pipeline

import (
	"time"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/rules"
)

// The report records every rule as the policy states it: these build the
// report's record of a rule from the compiled plan, for deid run, plan and
// retain alike, so that no report says less (or other) than the policy.

// RetentionReport returns the report's record of a dataset's retention
// rule (nil without one): cutoff, fallbackCutoff and latest are the plan's
// Cutoff, FallbackCutoff and Latest for the dataset.
func RetentionReport(ds *rules.DatasetDecl, cutoff, fallbackCutoff, latest time.Time) *report.Retention {
	rt := ds.Retention
	if rt == nil {
		return nil
	}
	out := &report.Retention{TimeColumn: rt.TimeColumn, Keep: rt.Keep.String(), Cutoff: cutoff, OnNull: "keep",
		FutureSkew: rt.Skew().String(), LatestEventTime: latest}
	switch {
	case rt.OnNullRemove:
		out.OnNull = "remove"
	case rt.OnNullFallback != nil:
		out.OnNull = "fallback"
		out.OnNullFallback = &report.Fallback{TimeColumn: rt.OnNullFallback.TimeColumn, Keep: rt.OnNullFallback.Keep.String(), Cutoff: fallbackCutoff}
	}
	if ds.TimeZone != nil {
		out.TimeZone = ds.TimeZone.String()
	}
	return out
}

// childrenReport returns the report's record of the dataset's children
// rule for destination name: nil when it has none or it does not keep
// children out of that destination.
func childrenReport(ds *rules.DatasetDecl, name string) *report.Children {
	c := ds.Children
	if c == nil || !c.Excludes(name) {
		return nil
	}
	out := &report.Children{Dataset: c.FromDataset, BirthDate: c.BirthDate, ResidentID: c.ResidentID, Below: c.Below,
		Inclusive: c.Inclusive, TimeColumn: c.TimeColumn}
	if out.TimeColumn == "" && ds.Retention != nil {
		out.TimeColumn = ds.Retention.TimeColumn // the rule's default
	}
	return out
}

// treatmentReport fills in what the policy states of a dataset in a
// destination beyond its columns: the risk measure and the children rule.
func treatmentReport(tr *report.Treatment, dst *rules.Destination, b *rules.Binding) {
	tr.QuasiIdentifiers = append([]string(nil), b.QuasiIdentifiers...)
	tr.MinK = b.MinK
	tr.Children = childrenReport(b.Dataset.DatasetDecl, dst.Name)
}

// floorOf returns the floor of the destination's purpose for a column of
// semantic type st, as the report names results ("" for an unknown
// purpose).
func floorOf(purpose string, st *rules.SemanticType) string {
	p, err := rules.LookupPurpose(purpose)
	if err != nil || st == nil {
		return ""
	}
	return p.Floor(st).String()
}

// keyAllow returns the policy's reason for the destination's sharing its
// key with another one, or "".
func keyAllow(p *rules.Policy, name string) string {
	for _, d := range p.Destinations {
		if d.Name == name {
			return d.KeyAllow
		}
	}
	return ""
}

// readersOf returns the destinations of the plan that read dataset name:
// the ones a warning about the dataset concerns.
func readersOf(plan *rules.Plan, name string) []string {
	var out []string
	for _, d := range plan.Destinations {
		if d.Binding(name) != nil {
			out = append(out, d.Name)
		}
	}
	return out
}

// AnonymizeReport returns the report's record of a dataset's anonymize
// treatments (retention then: anonymize), in the dataset's column order:
// the columns anonymized rows keep, and how; nil when it anonymizes
// nothing.
func AnonymizeReport(ds *rules.RetainDataset) []report.Column {
	var out []report.Column
	for _, bc := range ds.Anonymize {
		c := report.Column{Name: bc.Name, Transform: bc.Spec.Name, Params: paramsForReport(bc), Result: bc.Spec.Result.String(), Meaning: bc.Meaning}
		if bc.Semantic != nil {
			c.SemanticType = bc.Semantic.Name
		}
		out = append(out, c)
	}
	return out
}
