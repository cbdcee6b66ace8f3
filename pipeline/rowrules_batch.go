package pipeline

// This file holds the row rules of a batch as processRowGroup applies them:
// wall-clock times made instants (and their daylight-saving gaps and
// overlaps counted), the dataset's retention and erasure, and the row filter
// that lets the reader apply them while it decodes.

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/transforms"
)

// toInstants converts the batch's wall-clock timestamps of the dataset's
// declared zone (cols, by position) to instants in place, and returns the
// arrays it made, for the caller to release. Times in a daylight-saving
// gap or overlap are counted into the dataset's report, except in the
// columns of counted (positions already counted for these rows) and in a
// min_k counting pass, which reads the rows a second time.
func (r *runner) toInstants(in *inputFile, cols []arrow.Array, counted []int) ([]arrow.Array, error) {
	var converted []arrow.Array
	var local transforms.LocalCounts
	for pos := range in.naive {
		if cols[pos] == nil {
			continue
		}
		var c arrow.Array
		var err error
		if r.counting || slices.Contains(counted, pos) {
			c, err = transforms.LocalToInstant(r.opt.Mem, cols[pos], in.ds.TimeZone)
		} else {
			c, err = transforms.LocalToInstantCounted(r.opt.Mem, cols[pos], in.ds.TimeZone, &local)
		}
		if err != nil {
			return converted, dataerr.Errorf(in.match.Location, in.schema.Field(in.readCols[pos]).Name, "%w", err)
		}
		converted = append(converted, c)
		cols[pos] = c
	}
	if local != (transforms.LocalCounts{}) {
		r.addLocalCounts(in.ds, local)
	}
	return converted, nil
}

func releaseAll(arrays []arrow.Array) {
	for _, a := range arrays {
		if a != nil {
			a.Release()
		}
	}
}

// applyRowRules removes from sel the rows of the batch (cols, by position)
// that the dataset's row rules remove: retention and erasure. It returns
// how many of the rows kept have a time in the future (after the latest
// event time), kept as NULL times are.
func (r *runner) applyRowRules(in *inputFile, cols []arrow.Array, sel *transforms.Selection) (futureKept int64, err error) {
	var rule transforms.Retention
	if in.timePos >= 0 {
		rt := in.ds.Retention
		rule = transforms.Retention{Cutoff: in.ds.Cutoff, Latest: in.ds.Latest, OnNullRemove: rt.OnNullRemove, FallbackCutoff: in.ds.FallbackCutoff}
		if fb := rt.OnNullFallback; fb != nil {
			err = rule.ApplyFallback(cols[in.timePos], cols[in.pos[fb.TimeColumn]], sel)
		} else {
			err = rule.Apply(cols[in.timePos], sel)
		}
		if err != nil {
			return 0, dataerr.Errorf(in.match.Location, rt.TimeColumn, "%w", err)
		}
	}
	if set := r.erasure[in.ds.Name]; in.subjectPos >= 0 && set != nil {
		if err := (transforms.Erasure{Set: set}).Apply(cols[in.subjectPos], sel); err != nil {
			return 0, dataerr.Errorf(in.match.Location, in.ds.Subject, "%w", err)
		}
	}
	if in.timePos >= 0 {
		futureKept = rule.FutureKept(cols[in.timePos], sel) // erased rows do not stay
	}
	return futureKept, nil
}

// ruleCount returns how many dataset-level row rules apply to the file.
func (in *inputFile) ruleCount(r *runner) int {
	n := 0
	if in.timePos >= 0 {
		n++
	}
	if in.subjectPos >= 0 && r.erasure[in.ds.Name] != nil {
		n++
	}
	return n
}

// hasOutputRules reports whether a destination of the file has row rules
// of its own (consent, children).
func (in *inputFile) hasOutputRules() bool {
	for _, out := range in.outputs {
		if out.rules != nil {
			return true
		}
	}
	return false
}

// rowFilter returns the reader's filter for the dataset's row rules: it
// reads the rule columns (the time column, the retention's fallback clock,
// the subject) among read (readPos: their positions), applies the rules,
// and counts the removals (by reason, into counts, then the future times
// kept) and the rows read.
func (r *runner) rowFilter(in *inputFile, read, readPos []int, counts []int64, reasons []transforms.Reason) *parquetio.RowFilter {
	want := map[int]bool{}
	if in.timePos >= 0 {
		want[in.timePos] = true
		if fb := in.ds.Retention.OnNullFallback; fb != nil {
			want[in.pos[fb.TimeColumn]] = true
		}
	}
	if in.subjectPos >= 0 && r.erasure[in.ds.Name] != nil {
		want[in.subjectPos] = true
	}
	flt := &parquetio.RowFilter{}
	for k := range read {
		if want[readPos[k]] {
			flt.Columns = append(flt.Columns, k)
		}
	}
	mem := r.opt.Mem
	cols := make([]arrow.Array, len(in.leaves))
	var sel transforms.Selection
	flt.Select = func(batch []arrow.Array) ([]bool, int, []arrow.Array, error) {
		clear(cols)
		for j, k := range flt.Columns {
			cols[readPos[k]] = batch[j]
		}
		n := batch[0].Len()
		converted, err := r.toInstants(in, cols, nil)
		defer releaseAll(converted)
		if err != nil {
			return nil, 0, nil, err
		}
		sel.Reset(n)
		futureKept, err := r.applyRowRules(in, cols, &sel)
		if err != nil {
			return nil, 0, nil, err
		}
		for i, reason := range reasons {
			counts[i] += sel.Removed(reason)
		}
		counts[len(reasons)] += futureKept
		r.rowsDone.Add(int64(n))
		r.progress(int(r.filesDone.Load()))
		// the filter columns as read: the batch converts them again
		filtered := make([]arrow.Array, len(batch))
		for j, a := range batch {
			if filtered[j], err = sel.Filter(mem, a); err != nil {
				releaseAll(filtered)
				return nil, 0, nil, fmt.Errorf("%s: filter column %q: %w", in.match.Location, in.schema.Field(in.readCols[readPos[flt.Columns[j]]]).Name, err)
			}
		}
		return sel.Keep(), sel.Kept(), filtered, nil
	}
	return flt
}
