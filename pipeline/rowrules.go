package pipeline

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/parquetio"
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
				RemoveUnknown: c.RemovesUnknown(out.dst.Purpose) || agesEnded(r.plan, c)}
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
		rows, err := r.readConsent(ctx, c, kind, SubjectSide(first.match.Location, ds.Subject, kind))
		if err != nil {
			return err
		}
		if err := CheckUnchanged(ctx, r.opt.Store, "consent list", c.List, attrs); err != nil {
			return err
		}
		byPurpose := map[string]*consentRows{}
		for _, p := range rules.Purposes {
			byPurpose[p] = &consentRows{}
		}
		for _, row := range rows {
			byPurpose[row.purpose].add(row)
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

type consentRow struct {
	id      int64
	sid     string
	purpose string
	at      int64 // microseconds since the epoch
}

type consentRows struct {
	ints []int64
	strs []string
	at   []int64
	n    int
}

func (c *consentRows) add(row consentRow) {
	c.ints = append(c.ints, row.id)
	c.strs = append(c.strs, row.sid)
	c.at = append(c.at, row.at)
	c.n++
}

// readConsent reads one consent list; rows with a NULL subject are skipped.
// side names the data file and subject column the ids are compared with.
func (r *runner) readConsent(ctx context.Context, c *rules.ConsentDecl, kind transforms.Kind, side string) ([]consentRow, error) {
	if c.Format() == "csv" {
		return r.readConsentCSV(ctx, c, kind, side)
	}
	f, err := parquetio.Open(ctx, r.opt.Store, c.List, r.opt.Mem)
	if err != nil {
		return nil, dataerr.Mark(err)
	}
	defer f.Close()
	sch := f.Schema()
	if err := CheckColumnNames(c.List, sch); err != nil {
		return nil, err
	}
	names := []string{c.Column, "purpose", "withdrawn_at"}
	var leaves []int
	for _, n := range names {
		idx := sch.FieldIndices(n)
		if idx == nil {
			return nil, dataerr.Errorf(c.List, n, "the consent list has no such column (%s); it needs %s and has %s", c.Pos, strings.Join(names, ", "), fieldNames(sch))
		}
		leaves = append(leaves, f.LeafIndex(n))
	}
	if k, ok := transforms.KindOf(sch.Field(sch.FieldIndices(c.Column)[0]).Type); !ok || k != kind {
		return nil, dataerr.Errorf(c.List, c.Column, "the consent list's ids are %s, but %s: write the list with the subject column's type",
			sch.Field(sch.FieldIndices(c.Column)[0]).Type, side)
	}
	if _, ok := sch.Field(sch.FieldIndices("withdrawn_at")[0]).Type.(*arrow.TimestampType); !ok {
		return nil, dataerr.Errorf(c.List, "withdrawn_at", "is %s, not a timestamp", sch.Field(sch.FieldIndices("withdrawn_at")[0]).Type)
	}
	var rows []consentRow
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaves, BatchSize: 1 << 16}, func(b arrow.RecordBatch) error {
			subj, purpose, at := b.Column(0), b.Column(1), b.Column(2)
			ts := at.(*array.Timestamp)
			unit := ts.DataType().(*arrow.TimestampType).Unit
			for i := 0; i < int(b.NumRows()); i++ {
				if subj.IsNull(i) {
					continue
				}
				row := consentRow{}
				if kind == transforms.KindInteger {
					row.id, _ = transforms.IntValue(subj, i)
				} else {
					row.sid = strings.Clone(stringAt(subj, i))
				}
				row.purpose = stringAt(purpose, i)
				if purpose.IsNull(i) || !isPurpose(row.purpose) {
					return dataerr.Errorf(c.List, "purpose", "row %d: %q is not one of %s", i, row.purpose, strings.Join(rules.Purposes, ", "))
				}
				if ts.IsNull(i) {
					return dataerr.Errorf(c.List, "withdrawn_at", "row %d: NULL withdrawal time", i)
				}
				row.at = withdrawalMicros(ts.Value(i), unit)
				rows = append(rows, row)
			}
			return nil
		})
		if err != nil {
			return nil, dataerr.Mark(err)
		}
	}
	return rows, nil
}

// withdrawalMicros returns a withdrawal time of unit as microseconds,
// clamped to the int64 range: a time in the far future (milliseconds at the
// end of their range) stays there instead of wrapping around into the past,
// which would withdraw consent for every row.
func withdrawalMicros(v arrow.Timestamp, unit arrow.TimeUnit) int64 {
	return transforms.FloorTicks(v.ToTime(unit), arrow.Microsecond)
}

// readConsentCSV reads a CSV consent list with a header line; withdrawn_at
// is RFC 3339 text with a zone offset.
func (r *runner) readConsentCSV(ctx context.Context, c *rules.ConsentDecl, kind transforms.Kind, side string) ([]consentRow, error) {
	src, err := r.opt.Store.Open(ctx, c.List)
	if err != nil {
		return nil, fmt.Errorf("consent list: %w", err)
	}
	defer src.Close()
	cr := csv.NewReader(io.NewSectionReader(src, 0, src.Size()))
	header, err := cr.Read()
	if err != nil {
		return nil, dataerr.Errorf(c.List, "", "no header line naming the columns: %w", err)
	}
	col := map[string]int{}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		col[names[i]] = i
	}
	if err := checkNames(c.List, names); err != nil {
		return nil, err
	}
	for _, n := range []string{c.Column, "purpose", "withdrawn_at"} {
		if _, ok := col[n]; !ok {
			return nil, dataerr.Errorf(c.List, n, "the consent list has no such column (%s); its header is %q", c.Pos, strings.Join(header, ","))
		}
	}
	var rows []consentRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, dataerr.Errorf(c.List, "", "%w", err)
		}
		line, _ := cr.FieldPos(0)
		at := fmt.Sprintf("%s:%d", c.List, line)
		id := strings.TrimSpace(rec[col[c.Column]])
		if id == "" {
			continue
		}
		row := consentRow{sid: id, purpose: strings.TrimSpace(rec[col["purpose"]])}
		if kind == transforms.KindInteger {
			if row.id, err = strconv.ParseInt(id, 10, 64); err != nil {
				return nil, dataerr.Errorf(at, c.Column, "%q in the consent list is not an integer id, but %s", id, side)
			}
			row.sid = ""
		}
		if !isPurpose(row.purpose) {
			return nil, dataerr.Errorf(at, "purpose", "%q is not one of %s", row.purpose, strings.Join(rules.Purposes, ", "))
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[col["withdrawn_at"]]))
		if err != nil {
			return nil, dataerr.Errorf(at, "withdrawn_at", "%q is not an RFC 3339 time with a zone (2026-05-01T08:00:00+08:00)", rec[col["withdrawn_at"]])
		}
		row.at = t.UnixMicro()
		rows = append(rows, row)
	}
}

func isPurpose(s string) bool {
	for _, p := range rules.Purposes {
		if p == s {
			return true
		}
	}
	return false
}

// stringAt returns row i of a string column, plain or dictionary-encoded.
func stringAt(a arrow.Array, i int) string {
	switch c := a.(type) {
	case *array.Dictionary:
		return stringAt(c.Dictionary(), c.GetValueIndex(i))
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Binary:
		return string(c.Value(i))
	}
	return ""
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
		f, err := parquetio.Open(ctx, r.opt.Store, m.Location, r.opt.Mem)
		if err != nil {
			return dataerr.Mark(err)
		}
		sch := f.Schema()
		if err := CheckColumnNames(m.Location, sch); err != nil {
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
						strs = append(strs, strings.Clone(stringAt(subj, i)))
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
	y, m, d, ok := transforms.ResidentIDBirthDate(stringAt(a, i))
	if !ok {
		return 0, false
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400, true
}
