package rules

import (
	"errors"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/deidproject/deid/transforms"
)

// This file declares and decodes what `deid retain` enforces on the stored
// data itself: what happens to rows past retention or of erased subjects
// (then: delete or anonymize), the clock of rows whose time is NULL
// (on_null: {fallback, keep}), the legal minimum a retention period may not
// undercut, and legal hold lists.

// What deid retain does with rows past retention and rows of erased subjects.
const (
	// ThenDelete removes the rows from the stored data.
	ThenDelete = "delete"
	// ThenAnonymize moves the rows, anonymized, to the dataset's
	// _anonymized folder (see RetentionDecl.Anonymize).
	ThenAnonymize = "anonymize"
)

// LegalMinimumDecl is the period the law requires a dataset's rows to be
// kept, measured from the retention rule's time column (the orders table's
// three years after completion under the PRC E-Commerce Law). A retention
// shorter than it is a policy error; rows of erased subjects still inside
// it are restricted (kept in storage, out of every destination) instead of
// erased, and erased once it ends.
type LegalMinimumDecl struct {
	Keep Duration
	// Basis names the law, for the report.
	Basis string
	Pos   Pos
}

// EndedDecl is when the service that produced a dataset closed (promise 7
// of the seeds' reading aid: personal information is deleted or anonymized
// when a product or service stops operating).
type EndedDecl struct {
	// At is the instant the service ended.
	At time.Time
	// Text is the date or time as the policy states it.
	Text string
	Pos  Pos
}

// EndedBy reports whether the dataset's service had ended at instant now.
func (d *DatasetDecl) EndedBy(now time.Time) bool {
	return d.Ended != nil && !now.Before(d.Ended.At)
}

// endedAt decodes ended_at: a date (midnight in the dataset's time zone,
// UTC without one) or an RFC 3339 time.
func (d *decoder) endedAt(n *yaml.Node, path string, ds *DatasetDecl) *EndedDecl {
	s := d.str(n, path)
	if s == "" {
		return nil
	}
	e := &EndedDecl{Text: s, Pos: d.pos(resolve(n))}
	if t, err := time.ParseInLocation(time.DateOnly, s, zoneOr(ds.TimeZone)); err == nil {
		e.At = t
	} else if t, err := time.Parse(time.RFC3339, s); err == nil {
		e.At = t
	} else {
		d.errorf(resolve(n), path, "%q is neither a date (2026-12-01) nor an RFC 3339 time (2026-12-01T00:00:00+08:00)", s)
		return nil
	}
	return e
}

// HoldDecl is one legal hold list: a Parquet or CSV file of subject ids
// whose rows deid retain never deletes or anonymizes while they are listed.
// It is declared like an erasure list.
type HoldDecl = ErasureDecl

// fallback decodes on_null: {fallback: column, keep: duration}.
func (d *decoder) fallback(n *yaml.Node, path string, ds *DatasetDecl) *FallbackDecl {
	f := &FallbackDecl{Pos: d.pos(resolve(n))}
	var colNode *yaml.Node
	d.mapping(n, path,
		field{"fallback", true, func(n *yaml.Node, path string) { colNode, f.TimeColumn = resolve(n), d.str(n, path) }},
		field{"keep", true, func(n *yaml.Node, path string) { f.Keep = d.duration(n, path, ds) }},
	)
	if f.TimeColumn != "" && len(ds.Columns) > 0 && ds.Column(f.TimeColumn) == nil {
		d.errorf(colNode, join(path, "fallback"), "fallback time column %q is not among the dataset's columns", f.TimeColumn)
	}
	return f
}

// duration decodes a retention period; calendar periods need the dataset's
// time zone.
func (d *decoder) duration(n *yaml.Node, path string, ds *DatasetDecl) Duration {
	s := d.str(n, path)
	if s == "" {
		return Duration{}
	}
	dur, err := ParseDuration(s)
	if err != nil {
		d.errorf(resolve(n), path, "%v", err)
		return Duration{}
	}
	if dur.IsCalendar() && ds.TimeZone == nil {
		d.errorf(resolve(n), path, "%s uses months or years, whose length depends on the calendar: declare the dataset's time_zone", dur)
	}
	return dur
}

// thenAnonymize checks then: and decodes anonymize: of a retention rule.
func (d *decoder) thenAnonymize(r *RetentionDecl, thenNode, anonNode *yaml.Node, path string, ds *DatasetDecl) {
	if r.Then == "" && thenNode == nil {
		r.Then = ThenDelete
	}
	switch {
	case r.Then == ThenAnonymize && anonNode == nil:
		d.errorf(thenNode, join(path, "then"), "then: anonymize needs anonymize: with the columns anonymized rows keep and how (columns not listed are dropped)")
	case r.Then != ThenAnonymize && anonNode != nil && r.Then != "":
		d.errorf(resolve(anonNode), join(path, "anonymize"), "anonymize: is only used with then: anonymize")
	}
	if anonNode == nil {
		return
	}
	d.entries(anonNode, join(path, "anonymize"), func(col string, k, v *yaml.Node, cp string) {
		c := ds.Column(col)
		if c == nil {
			d.errorf(k, cp, "column %q is not among the dataset's columns", col)
			return
		}
		t := d.treatment(c, v, cp, nil)
		if t == nil {
			return
		}
		switch {
		case t.Allow != "":
			d.errorf(resolve(v), cp, "allow: has no floor to lower here: anonymized rows must not identify anyone")
		case t.Transform.Keyed:
			d.errorf(resolve(v), cp, "%s needs a key, and a keyed value can be linked back: anonymized rows keep no pseudonyms (use a keyless transform or leave the column out)", t.Transform.Name)
		case c.Type != nil && (c.Type.Category == DirectIdentifier || c.Type.Category == DeviceIdentifier || c.Type.Category == RecordID) &&
			t.Transform.Result != transforms.ResultRemoved:
			d.errorf(resolve(v), cp, "%s leaves this %s column %s: anonymized rows keep no identifier; leave the column out (it is dropped)", t.Transform.Name, c.Type.Category, t.Transform.Result)
		case t.Transform.Drops:
			// explicit drop: same as leaving it out
		default:
			r.Anonymize = append(r.Anonymize, t)
		}
	})
}

func (d *decoder) legalMinimum(n *yaml.Node, dsPath string, ds *DatasetDecl) *LegalMinimumDecl {
	path := join(dsPath, "legal_minimum")
	m := &LegalMinimumDecl{Pos: d.pos(resolve(n))}
	var keepNode *yaml.Node
	d.mapping(n, path,
		field{"keep", true, func(n *yaml.Node, path string) { keepNode, m.Keep = resolve(n), d.duration(n, path, ds) }},
		field{"basis", true, func(n *yaml.Node, path string) { m.Basis = d.str(n, path) }},
	)
	r := ds.Retention
	switch {
	case r == nil:
		d.errorf(resolve(n), path, "a legal minimum is measured from the retention rule's time column: add retention: to dataset %q", ds.Name)
	case keepNode != nil && m.Keep.text != "" && r.Keep.text != "" && ShorterSomewhere(r.Keep, m.Keep, zoneOr(ds.TimeZone)):
		d.errors(r.KeepPos, join(dsPath, "retention.keep"),
			"%s is shorter than the legal minimum of %s (%s, line %d): keep the rows at least as long", r.Keep, m.Keep, m.Basis, keepNode.Line)
	}
	return m
}

func zoneOr(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// ShorterSomewhere reports whether period a ends before period b for some
// starting instant: each is measured back from every day (and half day) of
// four consecutive years, which covers leap years and month lengths. 365d
// is so shorter than 1y, and 12mo is not.
func ShorterSomewhere(a, b Duration, loc *time.Location) bool {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, loc)
	for h := 0; h < 4*366*24; h += 12 {
		now := start.Add(time.Duration(h) * time.Hour)
		if a.Before(now, loc).After(b.Before(now, loc)) {
			return true
		}
	}
	return false
}

func (d *decoder) holds(n *yaml.Node, path string, ds *DatasetDecl, baseDir string) []*HoldDecl {
	return d.subjectLists(n, path, ds, baseDir, "legal hold lists",
		"legal holds name subjects: add subject: <column> to the dataset")
}

// RetainPlan is what `deid retain` enforces, compiled for one instant: per
// dataset with retention, erasure or holds, its cut-offs and the bound
// transforms of anonymized rows. It needs no keys: anonymized rows keep no
// keyed value.
type RetainPlan struct {
	Policy *Policy
	// Now is the reference instant, in UTC.
	Now time.Time
	// Datasets are the datasets retain acts on, in policy order.
	Datasets []*RetainDataset
}

// RetainDataset is one dataset's retention and erasure, ready to apply.
type RetainDataset struct {
	*DatasetDecl
	// Cutoff is the oldest instant retention keeps; zero without retention.
	Cutoff time.Time
	// FallbackCutoff is the oldest fallback-clock instant kept for rows whose
	// time is NULL; zero without a fallback.
	FallbackCutoff time.Time
	// LegalCutoff is the oldest instant still inside the legal minimum: rows
	// at or after it may not be erased yet. Zero without a legal minimum.
	LegalCutoff time.Time
	// Latest is the latest valid event time, now plus the future skew: a
	// later time is handled as a NULL time.
	Latest time.Time
	// Anonymize are the bound transforms of anonymized rows, in the
	// dataset's column order (then: anonymize); nil otherwise.
	Anonymize []*BoundColumn
	// Ended reports that the dataset's service had ended at the plan's
	// now (ended_at): every row goes, as an erased subject's would.
	Ended bool
}

// Anonymizes reports whether the dataset anonymizes instead of deleting.
func (d *RetainDataset) Anonymizes() bool {
	return d.Retention != nil && d.Retention.Then == ThenAnonymize
}

// DefaultFutureSkew is how far after the run's now an event time may be
// when the retention rule sets no future_skew: one day, for clocks that
// drift and zones ahead of the run's.
var DefaultFutureSkew = Duration{Fixed: 24 * time.Hour, text: "1d"}

// Skew returns the retention rule's future skew, or DefaultFutureSkew.
func (r *RetentionDecl) Skew() Duration {
	if r == nil || r.FutureSkew.Fixed == 0 && r.FutureSkew.Months == 0 {
		return DefaultFutureSkew
	}
	return r.FutureSkew
}

// LatestEventTime returns the latest valid event time of the dataset's
// rows at instant now: now plus the retention rule's future skew (one day
// by default). A later time is dated in the future: retention handles it
// as a NULL time, and the children rule measures ages at now instead.
func LatestEventTime(ds *DatasetDecl, now time.Time) time.Time {
	return ds.Retention.Skew().After(now, zoneOr(ds.TimeZone))
}

// ErrNothingToRetain is returned by CompileRetain for a policy with no
// retention, erasure or hold on any dataset.
var ErrNothingToRetain = errors.New("no dataset has retention, erasure, legal holds or ended_at")

// CompileRetain computes the cut-offs of every dataset with retention,
// erasure or holds for instant now and binds the anonymize transforms.
func CompileRetain(p *Policy, now time.Time) (*RetainPlan, error) {
	plan := &RetainPlan{Policy: p, Now: now.UTC()}
	var errs ErrorList
	env := transforms.Env{Now: plan.Now}
	for _, ds := range p.Datasets {
		if ds.Retention == nil && len(ds.Erasure) == 0 && len(ds.Holds) == 0 && !ds.EndedBy(plan.Now) {
			continue
		}
		rd := &RetainDataset{DatasetDecl: ds, Latest: LatestEventTime(ds, plan.Now), Ended: ds.EndedBy(plan.Now)}
		loc := zoneOr(ds.TimeZone)
		if r := ds.Retention; r != nil {
			rd.Cutoff = r.Keep.Before(plan.Now, loc)
			if f := r.OnNullFallback; f != nil {
				rd.FallbackCutoff = f.Keep.Before(plan.Now, loc)
			}
			for _, t := range r.Anonymize {
				bc := &BoundColumn{Name: t.Column, Semantic: ds.Column(t.Column).Type, Spec: t.Transform, Params: t.Params,
					Meaning: t.Transform.Describe(t.Params), Pos: t.Pos}
				tr, err := t.Transform.New(t.Params, env)
				if err != nil {
					errs = append(errs, &Error{File: t.Pos.File, Line: t.Pos.Line, Column: t.Pos.Column,
						Path: "datasets." + ds.Name + ".retention.anonymize." + t.Column, Msg: err.Error()})
					continue
				}
				bc.Transform = tr
				rd.Anonymize = append(rd.Anonymize, bc)
			}
		}
		if m := ds.LegalMinimum; m != nil {
			rd.LegalCutoff = m.Keep.Before(plan.Now, loc)
		}
		plan.Datasets = append(plan.Datasets, rd)
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	if len(plan.Datasets) == 0 {
		return nil, ErrNothingToRetain
	}
	return plan, nil
}

// destinationPurpose is the purpose of dst; an error without a destination
// (treatments of anonymized rows, which have no purpose floor).
func destinationPurpose(dst *DestinationDecl) (*Purpose, error) {
	if dst == nil {
		return nil, errors.New("no destination")
	}
	return LookupPurpose(dst.Purpose)
}
