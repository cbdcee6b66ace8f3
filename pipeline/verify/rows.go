package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/lists"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// This file holds deid verify's row checks (erased subjects, rows past
// retention) and its re-identification risk measure.

// erasedOutputs holds, per destination and dataset, the erased subjects as
// the destination writes its subject column (the column's own transform
// applied to the erasure lists' ids), so that they can be looked for in the
// output whether the subject is kept or pseudonymized.
type erasedOutputs struct {
	store storage.Store
	mem   memory.Allocator
	sets  map[string]map[string]bool
}

func newErasedOutputs(plan *rules.Plan, opt Options) *erasedOutputs {
	return &erasedOutputs{store: opt.Store, mem: opt.Mem, sets: map[string]map[string]bool{}}
}

// forBinding returns the erased subjects as written, or nil when the
// dataset has no erasure list or the destination drops its subject column.
func (e *erasedOutputs) forBinding(ctx context.Context, dst *rules.Destination, b *rules.Binding) (map[string]bool, error) {
	ds := b.Dataset
	bc := b.Columns[ds.Subject]
	if len(ds.Erasure) == 0 || ds.Subject == "" || bc == nil || bc.Transform == nil {
		return nil, nil
	}
	k := dst.Name + "\x00" + ds.Name
	if set, ok := e.sets[k]; ok {
		return set, nil
	}
	// the ids' kind is the subject column's, read from a source file
	_, matches, err := storage.Glob(ctx, e.store, ds.Source)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: no source file to tell the subject column's type: %w", ds.Name, err)
	}
	if len(matches) == 0 {
		return nil, fmt.Errorf("dataset %q: no source file to tell the subject column's type", ds.Name)
	}
	f, _, err := pqstore.Open(ctx, e.store, matches[0].Location, e.mem)
	if err != nil {
		return nil, err
	}
	if err := dataerr.CheckColumnNames(matches[0].Location, f.Schema()); err != nil {
		f.Close()
		return nil, err
	}
	idx := f.Schema().FieldIndices(ds.Subject)
	var typ arrow.DataType
	if len(idx) > 0 {
		typ = f.Schema().Field(idx[0]).Type
	}
	f.Close()
	kind, ok := transforms.KindOf(typ)
	if !ok || (kind != transforms.KindInteger && kind != transforms.KindString) {
		return nil, fmt.Errorf("dataset %q: subject column %q: type %v", ds.Name, ds.Subject, typ)
	}
	var ints []int64
	var strs []string
	for _, l := range ds.Erasure {
		err = lists.ReadSubjectList(ctx, e.store, e.mem, lists.SubjectList{What: "erasure list", Location: l.List, Column: l.Column, Pos: l.Pos,
			Against: matches[0].Location, Subject: ds.Subject}, kind, &ints, &strs)
		if err != nil {
			return nil, err
		}
	}
	mem := e.mem
	var in arrow.Array
	if kind == transforms.KindInteger {
		bld := array.NewInt64Builder(mem)
		bld.AppendValues(ints, nil)
		in = bld.NewArray()
		bld.Release()
	} else {
		bld := array.NewStringBuilder(mem)
		bld.AppendValues(strs, nil)
		in = bld.NewArray()
		bld.Release()
	}
	defer in.Release()
	out, err := bc.Transform.Apply(mem, in)
	if err != nil {
		return nil, fmt.Errorf("dataset %q: apply %s to the erased subjects: %w", ds.Name, bc.Spec.Name, err)
	}
	defer out.Release()
	set := map[string]bool{}
	eachText(out, func(v []byte) { set[string(v)] = true })
	e.sets[k] = set
	return set, nil
}

// retentionBound returns the output column of the dataset's retention time
// and the cut-off as the destination writes that column (kept, or floored
// by truncate_time: both keep the order of times), in the column's own
// units. ok is false when there is nothing to check: no retention, or the
// column dropped or treated otherwise. A kept or truncated time column of a
// type other than a timestamp with a time zone or a date (which a run never
// writes there: its rows' ages cannot be read) is errUnreadableTime.
func retentionBound(mem memory.Allocator, b *rules.Binding, sch *arrow.Schema, now time.Time) (int, int64, bool, error) {
	ds := b.Dataset
	if ds.Retention == nil {
		return 0, 0, false, nil
	}
	loc := ds.TimeZone
	if loc == nil {
		loc = time.UTC
	}
	cutoff := ds.Retention.Keep.Before(now, loc)
	name := ds.Retention.TimeColumn
	bc := b.Columns[name]
	idx := sch.FieldIndices(name)
	if bc == nil || bc.Transform == nil || len(idx) == 0 || (bc.Spec.Name != "keep" && bc.Spec.Name != "truncate_time") {
		return 0, 0, false, nil
	}
	switch typ := sch.Field(idx[0]).Type.(type) {
	case *arrow.TimestampType:
		if typ.TimeZone == "" {
			break
		}
		// the oldest kept tick, saturated: a cut-off before the unit's range
		// (keep: 400y on nanoseconds) keeps every value, and is no error
		v := arrow.Timestamp(transforms.CeilTicks(cutoff, typ.Unit))
		bld := array.NewTimestampBuilder(mem, typ)
		bld.Append(v)
		in := bld.NewArray()
		bld.Release()
		defer in.Release()
		out, err := bc.Transform.Apply(mem, in)
		if err != nil {
			return 0, 0, false, fmt.Errorf("apply %s to the retention cut-off: %w", bc.Spec.Name, err)
		}
		defer out.Release()
		ts, ok := out.(*array.Timestamp)
		if !ok || ts.IsNull(0) {
			return 0, 0, false, nil
		}
		return idx[0], int64(ts.Value(0)), true, nil
	case *arrow.Date32Type:
		y, m, d := cutoff.In(loc).Date()
		return idx[0], time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400, true, nil
	}
	return idx[0], 0, false, fmt.Errorf("%w: column %q is of type %s", errUnreadableTime, name, sch.Field(idx[0]).Type)
}

// errUnreadableTime is a retention time column of a type whose values are
// not instants: a timestamp without a time zone, a dictionary, text.
var errUnreadableTime = errors.New("the retention time column is not a timestamp with a time zone or a date")

// countBefore counts the non-NULL values of a timestamp or date array
// below cut.
func countBefore(a arrow.Array, cut int64) int64 {
	var n int64
	switch a := a.(type) {
	case *array.Timestamp:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) && int64(a.Value(i)) < cut {
				n++
			}
		}
	case *array.Date32:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) && int64(a.Value(i)) < cut {
				n++
			}
		}
	}
	return n
}

// riskClasses counts rows per equivalence class of one binding's
// quasi-identifiers, over every file checked. A class is keyed as a run
// enforcing min_k keys it (classes.Hasher), so both count the same classes;
// the counts are a classes.Tally, so memory stays bounded however many classes
// there are.
type riskClasses struct {
	binding    *rules.Binding
	tally      *classes.Tally
	rows       int64
	incomplete bool
	h          classes.Hasher
	keys       []classes.Key
	cols       []arrow.Array
}

func (rc *riskClasses) add(rec arrow.RecordBatch, cols []int) error {
	rc.cols = rc.cols[:0]
	for _, j := range cols {
		rc.cols = append(rc.cols, rec.Column(j))
	}
	rc.keys = rc.h.Keys(rc.keys[:0], rc.cols)
	for _, k := range rc.keys {
		if err := rc.tally.Add(k, 1); err != nil {
			return err
		}
	}
	rc.rows += int64(len(rc.keys))
	return nil
}

// result computes the k-distribution of the classes counted, reading the
// tally once in key order.
func (rc *riskClasses) result(dataset string) (*report.Risk, error) {
	r := &report.Risk{Dataset: dataset, QuasiIdentifiers: rc.binding.QuasiIdentifiers, MinK: rc.binding.MinK, Threshold: rc.binding.MinK,
		Rows: rc.rows, RowsBySize: map[string]int64{}}
	if r.Threshold == 0 {
		r.Threshold = 5
	}
	err := rc.tally.Each(func(_ classes.Key, n uint32) error {
		k := int64(n)
		r.Classes++
		if r.K == 0 || k < r.K {
			r.K = k
		}
		if k == 1 {
			r.UniqueRows++
		}
		if k < int64(r.Threshold) {
			r.ClassesBelow++
			r.RowsBelow += k
		}
		for _, b := range report.RiskBuckets {
			if k >= b.Min && k <= b.Max {
				r.RowsBySize[b.Label] += k
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("risk of dataset %q: %w", dataset, err)
	}
	return r, nil
}
