package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/lists"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// This file carries out the row rules that remove rows from some
// destinations only: consent withdrawals (per purpose) and children (per
// destination). Retention and erasure, which apply to every destination,
// are in process.go and erasure.go.

// consentRule is one consent list's withdrawals for one purpose.
type consentRule struct {
	purpose    string
	filter     transforms.Consent
	timeColumn string
}

// outputRules are the destination-level row rules of one output, with the
// batch positions of the columns they read.
type outputRules struct {
	consent     []consentRule
	consentTime []int // batch position of each rule's time column, or -1
	children    *transforms.Children
	agePos      int // the birth date or resident ID column, or -1 for births
	childTime   int // the event time column, or -1 (age at now)
	births      *transforms.SubjectValues
	// withheld records the rows the children rule withholds, and holds
	// those the replaced file's manifest entry recorded (withheld.go)
	withheld *withheldFile
}

func (o *outputRules) empty() bool { return o == nil || len(o.consent) == 0 && o.children == nil }

// rowRuleColumns returns the columns the dataset's destination-level row
// rules read.
func rowRuleColumns(ds *rules.Dataset) []string {
	var cols []string
	if rt := ds.Retention; rt != nil && rt.OnNullFallback != nil {
		cols = append(cols, rt.OnNullFallback.TimeColumn) // retention's fallback clock
	}
	for _, c := range ds.Consent {
		cols = append(cols, ds.Subject)
		if c.History == rules.HistoryFromWithdrawal {
			cols = append(cols, c.TimeColumn)
		}
	}
	if c := ds.Children; c != nil {
		if c.FromDataset != "" {
			cols = append(cols, ds.Subject)
		} else {
			cols = append(cols, c.AgeColumn())
		}
		if c.TimeColumn != "" {
			cols = append(cols, c.TimeColumn)
		}
	}
	return cols
}

// bindOutputRules sets the destination-level row rules of every output of in.
func (r *runner) bindOutputRules(in *inputFile, pos map[string]int) error {
	ds := in.ds
	position := func(name string) int {
		if name == "" {
			return -1
		}
		return pos[name]
	}
	for _, out := range in.outputs {
		rulesOut := &outputRules{agePos: -1, childTime: -1}
		for _, c := range r.consent[ds.Name] {
			if c.purpose != out.dst.Purpose {
				continue
			}
			rulesOut.consent = append(rulesOut.consent, c)
			tp := -1
			if c.filter.FromWithdrawal {
				tp = position(c.timeColumn)
				if _, ok := in.schema.Field(in.readCols[tp]).Type.(*arrow.TimestampType); !ok {
					return dataerr.Errorf(in.match.Location, c.timeColumn, "consent time column is %s, not a timestamp", in.schema.Field(in.readCols[tp]).Type)
				}
			}
			rulesOut.consentTime = append(rulesOut.consentTime, tp)
		}
		if c := ds.Children; c != nil && c.Excludes(out.dst.Name) {
			zone := ds.TimeZone
			rulesOut.children = &transforms.Children{Below: c.Below, Inclusive: c.Inclusive, Zone: zone, At: r.plan.Now, Latest: ds.Latest,
				RemoveUnknown: c.RemovesUnknown(out.dst.Purpose) || r.plan.AgesEnded(c)}
			rulesOut.withheld = r.withheldFor(in, out)
			rulesOut.childTime = position(c.TimeColumn)
			if c.FromDataset != "" {
				rulesOut.births = r.births[ds.Name]
			} else {
				rulesOut.agePos = position(c.AgeColumn())
			}
		}
		if !rulesOut.empty() {
			out.rules = rulesOut
		}
	}
	return nil
}

// apply runs the rules on a batch: sel starts as a copy of base. It returns
// how many kept rows had no known age.
func (o *outputRules) apply(r *runner, in *inputFile, cols []arrow.Array, base, sel *transforms.Selection) (int64, error) {
	sel.CopyFrom(base)
	for i, c := range o.consent {
		var times arrow.Array
		if tp := o.consentTime[i]; tp >= 0 {
			times = cols[tp]
		}
		if err := c.filter.Apply(cols[in.subjectPos], times, sel); err != nil {
			return 0, dataerr.Errorf(in.match.Location, in.ds.Subject, "%w", err)
		}
	}
	if o.children == nil {
		return 0, nil
	}
	var times arrow.Array
	if o.childTime >= 0 {
		times = cols[o.childTime]
	}
	birth := arrow.Array(nil)
	if o.births != nil {
		b, err := transforms.BirthDaysOf(r.opt.Mem, cols[in.subjectPos], o.births)
		if err != nil {
			return 0, dataerr.Errorf(in.match.Location, in.ds.Subject, "%w", err)
		}
		defer b.Release()
		birth = b
	} else {
		birth = cols[o.agePos]
	}
	children := o.children
	if o.withheld != nil {
		c := *o.children
		o.withheld.batch(cols[in.subjectPos]).hook(&c)
		children = &c
	}
	unknown, err := children.Apply(birth, times, sel)
	if err != nil {
		return 0, dataerr.Errorf(in.match.Location, in.ds.Children.AgeColumn(), "%w", err)
	}
	return unknown, nil
}

// loadConsent reads the dataset's consent lists. Each list has the subject
// column, a purpose column and a withdrawn_at column; ids are matched by the
// subject column's kind, like erasure lists.
func (r *runner) loadConsent(ctx context.Context, ds *rules.Dataset, first *inputFile, dsr *report.Dataset) error {
	if len(ds.Consent) == 0 {
		return nil
	}
	kind, _ := transforms.KindOf(first.schema.Field(first.schema.FieldIndices(ds.Subject)[0]).Type)
	for _, c := range ds.Consent {
		sum, attrs, err := r.hashFile(ctx, c.List)
		if errors.Is(err, storage.ErrNotExist) {
			return dataerr.Errorf(c.List, "", "consent list of dataset %q (%s) does not exist", ds.Name, c.Pos)
		}
		if err != nil {
			return fmt.Errorf("dataset %q: consent list: %w", ds.Name, err)
		}
		rows, err := lists.ReadConsent(ctx, r.opt.Store, r.opt.Mem, c, kind, lists.SubjectSide(first.match.Location, ds.Subject, kind))
		if err != nil {
			return err
		}
		if err := lists.CheckUnchanged(ctx, r.opt.Store, "consent list", c.List, attrs); err != nil {
			return err
		}
		byPurpose := map[string]*consentRows{}
		for _, p := range rules.Purposes {
			byPurpose[p] = &consentRows{}
		}
		for _, row := range rows {
			byPurpose[row.Purpose].add(row)
		}
		for _, p := range rules.Purposes {
			cr := byPurpose[p]
			if cr.n == 0 {
				continue
			}
			var w *transforms.SubjectValues
			if kind == transforms.KindInteger {
				w = transforms.NewIntSubjectValues(cr.ints, cr.at, earliest)
			} else {
				w = transforms.NewStringSubjectValues(cr.strs, cr.at, earliest)
			}
			r.consent[ds.Name] = append(r.consent[ds.Name], consentRule{purpose: p, timeColumn: c.TimeColumn,
				filter: transforms.Consent{Withdrawn: w, FromWithdrawal: c.History == rules.HistoryFromWithdrawal}})
		}
		dsr.Consent = append(dsr.Consent, report.ConsentList{Location: c.List, Column: c.Column, Size: attrs.Size, SHA256: sum,
			Generation: attrs.Generation, CRC32C: crcHex(attrs),
			History: c.History, Entries: int64(len(rows))})
	}
	return nil
}

func earliest(a, b int64) int64 { return min(a, b) }
func latest(a, b int64) int64   { return max(a, b) }

type consentRows struct {
	ints []int64
	strs []string
	at   []int64
	n    int
}

func (c *consentRows) add(row lists.ConsentRow) {
	c.ints = append(c.ints, row.ID)
	c.strs = append(c.strs, row.SID)
	c.at = append(c.at, row.At)
	c.n++
}

// loadBirths reads the birth dates of the subjects of the dataset a
// children rule takes ages from. A subject with several birth dates gets
// the latest (the youngest age): doubt protects the child.
func (r *runner) loadBirths(ctx context.Context, ds *rules.Dataset, kind transforms.Kind) error {
	c := ds.Children
	if c == nil || c.FromDataset == "" {
		return nil
	}
	from := r.plan.Policy.Dataset(c.FromDataset)
	var matches []storage.Match
	if !from.EndedBy(r.plan.Now) { // no ages are taken from an ended dataset (ended.go)
		var err error
		if _, matches, err = storage.Glob(ctx, r.opt.Store, from.Source); err != nil {
			return fmt.Errorf("dataset %q: ages from dataset %q: %w", ds.Name, from.Name, err)
		}
	}
	var ints []int64
	var strs []string
	var days []int64
	for _, m := range matches {
		f, _, err := pqstore.Open(ctx, r.opt.Store, m.Location, r.opt.Mem)
		if err != nil {
			return dataerr.Mark(err)
		}
		sch := f.Schema()
		if err := dataerr.CheckColumnNames(m.Location, sch); err != nil {
			f.Close()
			return err
		}
		if sch.FieldIndices(from.Subject) == nil || sch.FieldIndices(c.AgeColumn()) == nil {
			f.Close()
			return dataerr.Errorf(m.Location, c.AgeColumn(), "dataset %q's file lacks %q or %q, which the children rule of %q reads (%s)",
				from.Name, from.Subject, c.AgeColumn(), ds.Name, c.Pos)
		}
		if k, ok := transforms.KindOf(sch.Field(sch.FieldIndices(from.Subject)[0]).Type); !ok || k != kind {
			f.Close()
			return dataerr.Errorf(m.Location, from.Subject, "subject ids are %s here but %s in dataset %q: ages join on ids of one type",
				sch.Field(sch.FieldIndices(from.Subject)[0]).Type, kind, ds.Name)
		}
		leaves := []int{f.LeafIndex(from.Subject), f.LeafIndex(c.AgeColumn())}
		for rg := 0; rg < f.NumRowGroups() && err == nil; rg++ {
			err = f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaves, BatchSize: 1 << 16}, func(b arrow.RecordBatch) error {
				subj, birth := b.Column(0), b.Column(1)
				// the children rule's own reading of birth dates, on a
				// selection it never filters: adults and children alike
				for i := 0; i < int(b.NumRows()); i++ {
					if subj.IsNull(i) {
						continue
					}
					d, ok := birthDay(birth, i)
					if !ok {
						continue
					}
					if kind == transforms.KindInteger {
						v, _ := transforms.IntValue(subj, i)
						ints = append(ints, v)
					} else {
						strs = append(strs, strings.Clone(lists.StringAt(subj, i)))
					}
					days = append(days, d)
				}
				return nil
			})
		}
		f.Close()
		if err != nil {
			return dataerr.Mark(err)
		}
	}
	if kind == transforms.KindInteger {
		r.births[ds.Name] = transforms.NewIntSubjectValues(ints, days, latest)
	} else {
		r.births[ds.Name] = transforms.NewStringSubjectValues(strs, days, latest)
	}
	return r.loadWithheld(ctx, ds)
}

// birthDay returns row i of a birth date column (date32, timestamp or
// resident ID) as days since the epoch.
func birthDay(a arrow.Array, i int) (int64, bool) {
	if a.IsNull(i) {
		return 0, false
	}
	switch c := a.(type) {
	case *array.Date32:
		return int64(c.Value(i)), true
	case *array.Timestamp:
		t := c.Value(i).ToTime(c.DataType().(*arrow.TimestampType).Unit)
		return int64(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400), true
	}
	y, m, d, ok := transforms.ResidentIDBirthDate(lists.StringAt(a, i))
	if !ok {
		return 0, false
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400, true
}
