package pipeline

import (
	"fmt"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/rules"
)

// enforcesMinK reports whether any destination of the plan enforces min_k.
func enforcesMinK(plan *rules.Plan) (string, bool) {
	for _, d := range plan.Destinations {
		for _, b := range d.Bindings {
			if b.MinK > 0 {
				return fmt.Sprintf("destination %q, dataset %q", d.Name, b.Dataset.Name), true
			}
		}
	}
	return "", false
}

// qiIndices returns, for c and an output's columns, the index of each
// quasi-identifier among them; an error names one the file does not give.
func qiIndices(c *classes.Counts, loc string, cols []outColumn) ([]int, error) {
	idx := make([]int, 0, len(c.QI))
	for _, q := range c.QI {
		found := -1
		for i, oc := range cols {
			if oc.name == q {
				found = i
				break
			}
		}
		if found < 0 {
			return nil, dataerr.Errorf(loc, q, "destination %q lists %q as a quasi-identifier of dataset %q with min_k %d, but this file does not give it: the classes cannot be counted",
				c.Dst, q, c.Dataset, c.MinK)
		}
		idx = append(idx, found)
	}
	return idx, nil
}
