package rules

import (
	"fmt"
	"time"
)

// A dataset declared ended (ended_at: the service that produced it closed)
// is no longer processed: from that instant on, runs, dry runs and verify
// leave it out of every destination, read none of its files, and take no
// ages from it; deid retain deletes or anonymizes its rows and its
// published files (pipeline/retain).

// AgesEnded reports whether children rule c takes ages from a dataset
// whose service had ended: every age is then unknown, and doubt protects
// the child in every destination the rule covers (the rows are removed,
// not kept as of unknown age).
func (plan *Plan) AgesEnded(c *ChildrenDecl) bool {
	if c == nil || c.FromDataset == "" {
		return false
	}
	from := plan.Policy.Dataset(c.FromDataset)
	return from != nil && from.EndedBy(plan.Now)
}

// WithoutEnded returns plan without the datasets whose service had ended
// at the plan's now, and one warning per such dataset; plan itself when
// none has.
func (plan *Plan) WithoutEnded() (*Plan, []string) {
	ended := map[string]bool{}
	var warnings []string
	for _, ds := range plan.Datasets {
		if ds.EndedBy(plan.Now) {
			ended[ds.Name] = true
			warnings = append(warnings, fmt.Sprintf(
				"dataset %q: its service ended at %s (ended_at at %s): it is not published; deid retain removes its rows and published files",
				ds.Name, ds.Ended.At.Format(time.RFC3339), ds.Ended.Pos))
		}
	}
	for _, ds := range plan.Datasets {
		if !ended[ds.Name] && plan.AgesEnded(ds.Children) {
			warnings = append(warnings, fmt.Sprintf(
				"dataset %q: its children rule takes ages from dataset %q, whose service ended: no age can be told, so its rows leave every destination the rule covers; take ages from another dataset (children.age_from)",
				ds.Name, ds.Children.FromDataset))
		}
	}
	if len(ended) == 0 {
		return plan, warnings
	}
	p := *plan
	p.Datasets = nil
	for _, ds := range plan.Datasets {
		if !ended[ds.Name] {
			p.Datasets = append(p.Datasets, ds)
		}
	}
	p.Destinations = make([]*Destination, len(plan.Destinations))
	for i, d := range plan.Destinations {
		c := *d
		c.Bindings = nil
		for _, b := range d.Bindings {
			if !ended[b.Dataset.Name] {
				c.Bindings = append(c.Bindings, b)
			}
		}
		p.Destinations[i] = &c
	}
	return &p, warnings
}

// Outputs returns the output of every destination, in the policy's order.
func (plan *Plan) Outputs() []string {
	outputs := make([]string, 0, len(plan.Destinations))
	for _, dst := range plan.Destinations {
		outputs = append(outputs, dst.Output)
	}
	return outputs
}
