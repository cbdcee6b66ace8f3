package transforms

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// This file holds the pure decisions of `deid retain`, which enforces
// retention and erasure on the stored data itself: which rows of a batch go
// (and why), which stay because of a legal hold or a legal minimum, and what
// a row group's time statistics alone say about its rows.

// Fate is what deid retain does with one stored row.
type Fate uint8

// Fates of a row.
const (
	// FateKeep leaves the row where it is.
	FateKeep Fate = iota
	// FateExpired: past retention (or NULL time removed by on_null); the row
	// is deleted or anonymized.
	FateExpired
	// FateErased: the subject is on an erasure list and the row is outside
	// any legal minimum; the row is deleted or anonymized.
	FateErased
	// FateRestricted: the subject is on an erasure list but the row is
	// still inside the legal minimum; the row is moved to the dataset's
	// isolated part (stored, processed no more) until the minimum ends.
	FateRestricted
)

// RetainCounts are the decisions of RetainRule.Decide, by reason. Every row
// is counted at most once among the removals (Expired, ExpiredNull, Erased)
// and the reasons it was kept (Held, Restricted); NullKept counts rows whose
// time is NULL and that stay.
type RetainCounts struct {
	// Expired rows are past retention by their time column.
	Expired int64
	// ExpiredNull rows have a NULL time and go: on_null: remove, or past
	// the fallback clock.
	ExpiredNull int64
	// ExpiredFuture rows have a time after RetainRule.Latest (dated in the
	// future) and go as a NULL time would.
	ExpiredFuture int64
	// Erased rows belong to erased subjects, outside the legal minimum.
	Erased int64
	// Ended rows belong to a dataset whose service ended
	// (RetainRule.Ended), outside the legal minimum, and are not counted
	// as Erased.
	Ended int64
	// Held rows would have gone but their subject is on a legal hold.
	Held int64
	// Restricted rows belong to erased subjects but are still inside the
	// legal minimum ("restricted: legal minimum"): isolated (FateRestricted),
	// or, with RetainRule.Isolated, left in the isolated part (FateKeep);
	// erased when the minimum ends.
	Restricted int64
	// NullKept rows have a NULL time and stay (on_null: keep, a fallback
	// clock not yet run out, or a NULL fallback time), other than those
	// counted as Held or Restricted.
	NullKept int64
	// FutureKept rows have a time after RetainRule.Latest and stay, as a
	// NULL time would (counted like NullKept, and not in it).
	FutureKept int64
}

// Add adds o to c.
func (c *RetainCounts) Add(o RetainCounts) {
	c.Expired += o.Expired
	c.ExpiredNull += o.ExpiredNull
	c.ExpiredFuture += o.ExpiredFuture
	c.Erased += o.Erased
	c.Ended += o.Ended
	c.Held += o.Held
	c.Restricted += o.Restricted
	c.NullKept += o.NullKept
	c.FutureKept += o.FutureKept
}

// Removed returns the rows that go, whatever the reason.
func (c RetainCounts) Removed() int64 {
	return c.Expired + c.ExpiredNull + c.ExpiredFuture + c.Erased + c.Ended
}

// RetainRule is one dataset's retention and erasure as deid retain applies
// them. Times are instants; a row exactly at a cut-off is kept.
type RetainRule struct {
	// Retention enables the time rule: rows before Cutoff expire.
	Retention bool
	Cutoff    time.Time
	// Latest, when not zero, is the latest valid event time (now plus the
	// dataset's future skew): a later time is handled as a NULL time.
	Latest time.Time
	// OnNullRemove expires rows whose time is NULL.
	OnNullRemove bool
	// Fallback measures rows whose time is NULL from the fallback column:
	// they expire before FallbackCutoff (a NULL fallback time is kept).
	Fallback       bool
	FallbackCutoff time.Time
	// LegalMinimum restricts instead of erasing rows at or after
	// LegalCutoff, and rows whose time is NULL (the legal clock has not
	// started).
	LegalMinimum bool
	LegalCutoff  time.Time
	// Erasure holds the erased subjects, or nil.
	Erasure *SubjectSet
	// Hold holds the subjects on legal hold, or nil.
	Hold *SubjectSet
	// Ended decides the rows of a dataset whose service ended: every row
	// inside retention goes as an erased subject's would (restricted
	// inside the legal minimum, kept for a hold), counted as Ended.
	Ended bool
	// Isolated decides the rows of a dataset's isolated part: every row is
	// of an erased subject, whatever Erasure holds now (lists may be pruned
	// once acted on), and a row still inside the legal minimum stays where
	// it is (FateKeep) instead of being restricted again.
	Isolated bool
}

// NeedsSubjects reports whether Decide needs the subject column.
func (r RetainRule) NeedsSubjects() bool {
	return r.Isolated || r.Erasure != nil && r.Erasure.Len() > 0 || r.Hold != nil && r.Hold.Len() > 0
}

// Decide sets fates[i] for every row and adds the decisions to c. times is
// the time column as instants (a timestamp with a time zone; nil without
// retention), fallback the fallback clock (nil without one), subjects the
// subject column (nil when NeedsSubjects is false).
func (r RetainRule) Decide(times, fallback, subjects arrow.Array, fates []Fate, c *RetainCounts) error {
	n := len(fates)
	timeTicks, err := instantTicks(times, r.Cutoff, n, "time")
	if err != nil {
		return err
	}
	fbTicks, err := instantTicks(fallback, r.FallbackCutoff, n, "fallback time")
	if err != nil {
		return err
	}
	var legalCut int64
	if r.LegalMinimum && times != nil {
		legalCut = CeilTicks(r.LegalCutoff, times.DataType().(*arrow.TimestampType).Unit)
	}
	erased := r.matches(r.Erasure, subjects, n)
	holds := r.matches(r.Hold, subjects, n)
	if erased.err != nil {
		return erased.err
	}
	if holds.err != nil {
		return holds.err
	}
	last := int64(math.MaxInt64) // the latest valid time: none later
	if !r.Latest.IsZero() && times != nil {
		last = FloorTicks(r.Latest, times.DataType().(*arrow.TimestampType).Unit)
	}
	for i := range fates {
		fate := FateKeep
		nullTime := times != nil && times.IsNull(i)
		future := times != nil && !nullTime && int64(timeTicks.vals[i]) > last
		nullTime = nullTime || future // no valid event time
		var nullCounted bool
		if r.Retention && times != nil {
			switch {
			case !nullTime:
				if int64(timeTicks.vals[i]) < timeTicks.cut {
					fate = FateExpired
				}
			case r.Fallback:
				if fallback != nil && !fallback.IsNull(i) && int64(fbTicks.vals[i]) < fbTicks.cut {
					fate, nullCounted = FateExpired, true
				}
			case r.OnNullRemove:
				fate, nullCounted = FateExpired, true
			}
		}
		restricted := false
		ended := false
		if fate == FateKeep && (r.Isolated || r.Ended || erased.hit(i)) {
			ended = r.Ended && !r.Isolated && !erased.hit(i)
			if r.LegalMinimum && times != nil && (nullTime || int64(timeTicks.vals[i]) >= legalCut) {
				restricted = true
				if !r.Isolated {
					fate = FateRestricted
				}
			} else {
				fate = FateErased
			}
		}
		held := false
		switch {
		case restricted:
			// isolation keeps the row, as a hold would: it counts once
			c.Restricted++
		case fate != FateKeep && holds.hit(i):
			fate, held = FateKeep, true // kept for a reason of its own
			c.Held++
		case fate == FateExpired && nullCounted && future:
			c.ExpiredFuture++
		case fate == FateExpired && nullCounted:
			c.ExpiredNull++
		case fate == FateExpired:
			c.Expired++
		case fate == FateErased && ended:
			c.Ended++
		case fate == FateErased:
			c.Erased++
		}
		if fate == FateKeep && nullTime && !restricted && !held {
			if future {
				c.FutureKept++
			} else {
				c.NullKept++
			}
		}
		fates[i] = fate
	}
	return nil
}

type ticks struct {
	vals []arrow.Timestamp
	cut  int64
}

func instantTicks(a arrow.Array, cutoff time.Time, n int, what string) (ticks, error) {
	if a == nil {
		return ticks{}, nil
	}
	ts, ok := a.(*array.Timestamp)
	if !ok {
		return ticks{}, fmt.Errorf("retain: %s column is %s, want a timestamp", what, a.DataType())
	}
	tt := ts.DataType().(*arrow.TimestampType)
	if tt.TimeZone == "" {
		return ticks{}, fmt.Errorf("retain: %s column: %w: timestamp without time zone (convert local times first)", what, ErrUnsupportedType)
	}
	if a.Len() != n {
		return ticks{}, fmt.Errorf("retain: %s column of %d rows, batch of %d", what, a.Len(), n)
	}
	return ticks{vals: ts.TimestampValues(), cut: CeilTicks(cutoff, tt.Unit)}, nil
}

type hits struct {
	sel *Selection
	err error
}

func (h hits) hit(i int) bool { return h.sel != nil && !h.sel.keep[i] }

// matches marks the rows whose subject is in set.
func (r RetainRule) matches(set *SubjectSet, subjects arrow.Array, n int) hits {
	if set == nil || set.Len() == 0 || subjects == nil {
		return hits{}
	}
	sel := &Selection{}
	sel.Reset(n)
	if err := (Erasure{Set: set}).Apply(subjects, sel); err != nil {
		return hits{err: err}
	}
	return hits{sel: sel}
}

// Span is what a row group's time statistics say about its rows.
type Span uint8

// Spans of a row group.
const (
	// SpanMixed: the statistics do not settle it; decode and decide per row.
	SpanMixed Span = iota
	// SpanInside: every row is inside retention.
	SpanInside
	// SpanExpired: every row is past retention.
	SpanExpired
)

// String names the span as reports show it.
func (s Span) String() string {
	switch s {
	case SpanInside:
		return "inside"
	case SpanExpired:
		return "expired"
	}
	return "mixed"
}

// TimeStats are a row group's statistics of the time column.
type TimeStats struct {
	// HasMinMax reports whether Min and Max are known.
	HasMinMax bool
	// Min and Max are the smallest and largest values, in ticks of Unit.
	Min, Max int64
	Unit     arrow.TimeUnit
	// Local marks wall-clock values (no UTC flag): the instant of a value
	// depends on the dataset's time zone.
	Local bool
	// Nulls and Rows count the row group's NULL times and rows; Nulls < 0
	// means unknown.
	Nulls, Rows int64
}

// localSlack bounds how far a wall-clock reading is from the UTC instant of
// the same digits in any time zone (offsets span -12 h to +14 h, and a
// daylight-saving jump adds at most 2 h).
const localSlack = 26 * time.Hour

// Classify says, from the statistics alone, whether every row of a row
// group is inside retention, every row is past it, or neither is certain.
// Subjects (erasure, holds) are not considered: the caller checks them.
func (r RetainRule) Classify(s TimeStats) Span {
	if !r.Retention {
		return SpanInside
	}
	if s.Nulls < 0 {
		return SpanMixed
	}
	nullsStay := !r.OnNullRemove && !r.Fallback
	if s.Nulls == s.Rows && s.Rows > 0 {
		switch {
		case nullsStay:
			return SpanInside
		case r.OnNullRemove:
			return SpanExpired
		}
		return SpanMixed
	}
	if !s.HasMinMax {
		return SpanMixed
	}
	cut := CeilTicks(r.Cutoff, s.Unit)
	slack := int64(0)
	if s.Local {
		slack = int64(localSlack) / int64(s.Unit.Multiplier())
	}
	// a row group whose max may be in the future holds times handled as
	// NULL: its statistics alone never settle "inside" (its future rows
	// are counted, and removed unless NULLs stay)
	// (saturating: a cut-off beyond the unit's range must not wrap around
	// and judge every row group expired)
	mayBeFuture := !r.Latest.IsZero() && s.Max > addSaturating(FloorTicks(r.Latest, s.Unit), -slack)
	switch {
	case s.Min >= addSaturating(cut, slack) && (s.Nulls == 0 || nullsStay) && !mayBeFuture:
		return SpanInside
	case s.Max < addSaturating(cut, -slack) && (s.Nulls == 0 || r.OnNullRemove):
		return SpanExpired
	}
	return SpanMixed
}

// AnyIntBetween reports whether an integer set holds an id in [lo, hi]:
// with a row group's min and max of the subject column, whether any of its
// rows can be on the list. A string set answers true (string statistics may
// be truncated, so they settle nothing).
func (s *SubjectSet) AnyIntBetween(lo, hi int64) bool {
	if !s.isInt {
		return true
	}
	i, _ := slices.BinarySearch(s.ints, lo)
	return i < len(s.ints) && s.ints[i] <= hi
}

// Values returns the set's ids: integers or strings, sorted. The slices are
// the set's own and must not be modified.
func (s *SubjectSet) Values() ([]int64, []string) { return s.ints, s.strs }
