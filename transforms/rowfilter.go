package transforms

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Reason is why a row filter removed a row. A row removed by several filters
// is counted once, under the first filter that removed it; the pipeline runs
// the filters in the order of the reasons below.
type Reason int

// Reasons for removing a row.
const (
	// ReasonNullTime: the retention rule's time column is NULL and the rule
	// says on_null: remove.
	ReasonNullTime Reason = iota
	// ReasonFutureTime: the retention rule's time is later than the run's
	// now plus the dataset's future skew, so it is no valid event time; the
	// rule handles it as a NULL time (on_null) and removed it.
	ReasonFutureTime
	// ReasonRetention: the row is older than the retention period.
	ReasonRetention
	// ReasonErasure: the row's subject is on an erasure list.
	ReasonErasure
	// ReasonConsent: the subject withdrew consent for the destination's
	// purpose. Counted per destination.
	ReasonConsent
	// ReasonChild: the subject was a child at the event and the destination
	// excludes children. Counted per destination.
	ReasonChild
	// ReasonSmallClass: the row's equivalence class over the destination's
	// quasi-identifiers (its output values) holds fewer rows than the
	// policy's min_k. Counted per destination, for the destinations that
	// set min_k only.
	ReasonSmallClass
	numReasons
)

// Reasons lists the reasons that remove a row from every destination, in
// counting order.
func Reasons() []Reason {
	return []Reason{ReasonNullTime, ReasonFutureTime, ReasonRetention, ReasonErasure}
}

// DestinationReasons lists the reasons that remove a row from some
// destinations only, in counting order.
func DestinationReasons() []Reason { return []Reason{ReasonConsent, ReasonChild} }

// CopyFrom makes s a copy of o: the destination-level filters then start
// from the rows every destination keeps, with fresh counts.
func (s *Selection) CopyFrom(o *Selection) {
	s.keep = append(s.keep[:0], o.keep...)
	s.kept = o.kept
	s.removed = [numReasons]int64{}
}

// String returns the reason's name as reports show it.
func (r Reason) String() string {
	switch r {
	case ReasonNullTime:
		return "null_time"
	case ReasonFutureTime:
		return "future_time"
	case ReasonRetention:
		return "retention"
	case ReasonErasure:
		return "erasure"
	case ReasonConsent:
		return "consent"
	case ReasonChild:
		return "child"
	case ReasonSmallClass:
		return "small_class"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Selection records which rows of one batch survive the row filters and how
// many each reason removed. The zero value is not usable; call Reset.
type Selection struct {
	keep    []bool
	kept    int
	removed [numReasons]int64
}

// Reset prepares the selection for a batch of n rows, all kept.
func (s *Selection) Reset(n int) {
	if cap(s.keep) < n {
		s.keep = make([]bool, n)
	}
	s.keep = s.keep[:n]
	for i := range s.keep {
		s.keep[i] = true
	}
	s.kept = n
	s.removed = [numReasons]int64{}
}

// Len returns the number of rows in the batch.
func (s *Selection) Len() int { return len(s.keep) }

// Kept returns the number of surviving rows.
func (s *Selection) Kept() int { return s.kept }

// Keeps reports whether row i survives.
func (s *Selection) Keeps(i int) bool { return s.keep[i] }

// Removed returns how many rows reason r removed.
func (s *Selection) Removed(r Reason) int64 { return s.removed[r] }

// remove drops row i for reason r unless an earlier filter already did.
func (s *Selection) remove(i int, r Reason) {
	if s.keep[i] {
		s.keep[i] = false
		s.kept--
		s.removed[r]++
	}
}

// Drop removes row i for reason r unless an earlier filter already did;
// for filters outside this package (k-anonymity suppression).
func (s *Selection) Drop(i int, r Reason) { s.remove(i, r) }

// Filter returns the surviving rows of a, which must have the selection's length.
func (s *Selection) Filter(mem memory.Allocator, a arrow.Array) (arrow.Array, error) {
	if a.Len() != len(s.keep) {
		return nil, fmt.Errorf("filter: array of %d rows, selection of %d", a.Len(), len(s.keep))
	}
	if s.kept == len(s.keep) {
		a.Retain()
		return a, nil
	}
	if s.kept == 0 {
		return array.NewSlice(a, 0, 0), nil
	}
	if out, ok := filterFast(mem, a, s.keep, s.kept); ok {
		return out, nil
	}
	mask := s.mask(mem)
	defer mask.Release()
	ctx := compute.WithAllocator(context.Background(), mem)
	return compute.FilterArray(ctx, a, mask, *compute.DefaultFilterOptions())
}

func (s *Selection) mask(mem memory.Allocator) arrow.Array {
	b := array.NewBooleanBuilder(mem)
	defer b.Release()
	b.AppendValues(s.keep, nil)
	return b.NewArray()
}

// Retention removes rows whose time is before Cutoff. A row exactly at the
// cutoff is kept. NULL times are kept or removed as OnNullRemove says, and
// so are times after Latest (dated in the future: no valid event time),
// counted as ReasonFutureTime when removed.
type Retention struct {
	// Cutoff is the oldest instant that is kept.
	Cutoff time.Time
	// Latest, when not zero, is the latest valid event time (the run's now
	// plus the dataset's future skew): a later time is handled as NULL.
	Latest time.Time
	// OnNullRemove removes rows whose time is NULL (counted as
	// ReasonNullTime); otherwise they are kept.
	OnNullRemove bool
	// FallbackCutoff, when not zero, measures rows whose time is NULL on
	// a fallback clock (ApplyFallback): they are removed (as
	// ReasonNullTime) when the fallback time is before it.
	FallbackCutoff time.Time
}

// ApplyFallback is Apply with the fallback clock fb (a timestamp array with
// a time zone, as long as col) for rows whose time is NULL; a NULL fallback
// time is kept.
func (r Retention) ApplyFallback(col, fb arrow.Array, sel *Selection) error {
	if err := r.Apply(col, sel); err != nil {
		return err
	}
	future := r.future(col)
	if col.NullN() == 0 && future == nil {
		return nil
	}
	ts, ok := fb.(*array.Timestamp)
	if !ok {
		return fmt.Errorf("retention: fallback time column is %s, want a timestamp", fb.DataType())
	}
	tt := ts.DataType().(*arrow.TimestampType)
	if tt.TimeZone == "" {
		return fmt.Errorf("retention: fallback time column: %w: timestamp without time zone (declare the dataset's time_zone)", ErrUnsupportedType)
	}
	if fb.Len() != col.Len() {
		return fmt.Errorf("retention: fallback column of %d rows, time column of %d", fb.Len(), col.Len())
	}
	cut := CeilTicks(r.FallbackCutoff, tt.Unit)
	vals := ts.TimestampValues()
	for i := range vals {
		if fb.IsNull(i) || int64(vals[i]) >= cut {
			continue
		}
		switch {
		case col.IsNull(i):
			sel.remove(i, ReasonNullTime)
		case future != nil && future(i):
			sel.remove(i, ReasonFutureTime)
		}
	}
	return nil
}

// future returns whether row i of the time column col is after Latest, or
// nil when no row can be (no Latest, or not a timestamp column).
func (r Retention) future(col arrow.Array) func(i int) bool {
	ts, ok := col.(*array.Timestamp)
	if !ok || r.Latest.IsZero() {
		return nil
	}
	last := FloorTicks(r.Latest, ts.DataType().(*arrow.TimestampType).Unit)
	vals := ts.TimestampValues()
	return func(i int) bool { return !ts.IsNull(i) && int64(vals[i]) > last }
}

// FutureKept returns how many rows that sel keeps have a time after Latest
// (dated in the future, handled as NULL times): those on_null: keep or a
// fallback clock not yet run out let stay. Call it after every row rule of
// the dataset, so that the count holds only rows that stay.
func (r Retention) FutureKept(col arrow.Array, sel *Selection) int64 {
	future := r.future(col)
	if future == nil || col.Len() != sel.Len() {
		return 0
	}
	var n int64
	for i := range sel.keep {
		if sel.keep[i] && future(i) {
			n++
		}
	}
	return n
}

// Apply marks the rows of the time column col that the rule removes.
// col must be a timestamp array with a time zone (instants).
func (r Retention) Apply(col arrow.Array, sel *Selection) error {
	ts, ok := col.(*array.Timestamp)
	if !ok {
		return fmt.Errorf("retention: time column is %s, want a timestamp", col.DataType())
	}
	tt := ts.DataType().(*arrow.TimestampType)
	if tt.TimeZone == "" {
		return fmt.Errorf("retention: %w: timestamp without time zone (declare the dataset's time_zone)", ErrUnsupportedType)
	}
	cut := CeilTicks(r.Cutoff, tt.Unit)
	last := int64(math.MaxInt64) // the latest valid time: none later
	hasLatest := !r.Latest.IsZero()
	if hasLatest {
		last = FloorTicks(r.Latest, tt.Unit)
	}
	vals := ts.TimestampValues()
	nulls := ts.NullN() > 0
	for i, v := range vals {
		if nulls && ts.IsNull(i) {
			if r.OnNullRemove {
				sel.remove(i, ReasonNullTime)
			}
			continue
		}
		switch {
		case int64(v) < cut:
			sel.remove(i, ReasonRetention)
		case hasLatest && int64(v) > last && r.OnNullRemove:
			sel.remove(i, ReasonFutureTime)
		}
	}
	return nil
}

// CeilTicks returns the smallest tick count of unit u whose instant is at or
// after t, so that "v >= CeilTicks(t)" is exactly "instant(v) >= t". It
// saturates: an instant before the unit's range (a nanosecond count spans
// only 1677 to 2262) gives math.MinInt64, which every value is at or after,
// and one after the range math.MaxInt64; it never wraps around.
func CeilTicks(t time.Time, u arrow.TimeUnit) int64 {
	ns := int64(u.Multiplier())
	nsec := int64(t.Nanosecond())
	frac := nsec / ns
	if nsec%ns != 0 {
		frac++
	}
	return saturatedTicks(t.Unix(), int64(time.Second)/ns, frac)
}

// FloorTicks returns the largest tick count of unit u whose instant is at
// or before t, so that "v > FloorTicks(t)" is exactly "instant(v) > t": with
// the latest valid event time, the time is in the future. It saturates
// like CeilTicks: an instant after the unit's range gives math.MaxInt64,
// which no value is after.
func FloorTicks(t time.Time, u arrow.TimeUnit) int64 {
	ns := int64(u.Multiplier())
	return saturatedTicks(t.Unix(), int64(time.Second)/ns, int64(t.Nanosecond())/ns)
}

// saturatedTicks returns sec*perSec + frac (0 <= frac <= perSec) clamped
// to the int64 range.
func saturatedTicks(sec, perSec, frac int64) int64 {
	switch {
	case sec > 0 && sec > (math.MaxInt64-frac)/perSec:
		return math.MaxInt64
	// sec*perSec + frac = (sec+1)*perSec - (perSec-frac); Go's division
	// rounds the negative quotient up, as the comparison needs
	case sec < 0 && sec+1 < (math.MinInt64+(perSec-frac))/perSec:
		return math.MinInt64
	}
	// in range: a product that wraps is undone by the addition (int64
	// arithmetic is modular), so the sum is exact
	return sec*perSec + frac
}

// addSaturating returns a + b clamped to the int64 range.
func addSaturating(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// SubjectSet is an immutable set of subject identifiers (integers or strings)
// held as a sorted slice: compact, with no per-entry allocation, so that an
// erasure list of millions of subjects stays small.
type SubjectSet struct {
	ints  []int64
	strs  []string
	isInt bool
	// bits is a one-hash filter over the integer ids (about 16 bits per id,
	// at most 32 MiB): an id whose bit is clear is not in the set, which
	// spares most lookups (a run checks every row, few are erased) the
	// binary search
	bits  []uint64
	shift uint
}

// NewIntSubjectSet returns a set of integer subject ids; ids may repeat.
func NewIntSubjectSet(ids []int64) *SubjectSet {
	s := slices.Clone(ids)
	slices.Sort(s)
	set := &SubjectSet{ints: slices.Compact(s), isInt: true}
	if n := len(set.ints); n > 0 {
		k := uint(6) // log2 of the filter's bits: at least one word
		for k < 28 && 1<<k < 16*n {
			k++
		}
		set.bits = make([]uint64, 1<<(k-6))
		set.shift = 64 - k
		for _, v := range set.ints {
			h := set.hash(v)
			set.bits[h>>6] |= 1 << (h & 63)
		}
	}
	return set
}

// hash maps v to a bit of the filter (Fibonacci hashing).
func (s *SubjectSet) hash(v int64) uint64 { return (uint64(v) * 0x9E3779B97F4A7C15) >> s.shift }

// NewStringSubjectSet returns a set of string subject ids; ids may repeat.
func NewStringSubjectSet(ids []string) *SubjectSet {
	s := slices.Clone(ids)
	slices.Sort(s)
	return &SubjectSet{strs: slices.Compact(s)}
}

// Len returns the number of distinct subjects.
func (s *SubjectSet) Len() int { return len(s.ints) + len(s.strs) }

// IsInteger reports whether the set holds integer ids.
func (s *SubjectSet) IsInteger() bool { return s.isInt }

// ContainsInt reports whether integer id v is in the set.
func (s *SubjectSet) ContainsInt(v int64) bool {
	if s.bits == nil {
		return false
	}
	if h := s.hash(v); s.bits[h>>6]&(1<<(h&63)) == 0 {
		return false
	}
	_, ok := slices.BinarySearch(s.ints, v)
	return ok
}

// ContainsString reports whether string id v is in the set.
func (s *SubjectSet) ContainsString(v string) bool {
	i := sort.SearchStrings(s.strs, v)
	return i < len(s.strs) && s.strs[i] == v
}

// Erasure removes rows whose subject is in Set. NULL subjects are never
// removed (a NULL on the list matches nothing, like SQL's anti join).
type Erasure struct {
	Set *SubjectSet
}

// Apply marks the rows of the subject column col whose id is in the set. The
// column's kind must match the set's: integers for an integer set, strings
// for a string set.
func (e Erasure) Apply(col arrow.Array, sel *Selection) error {
	k, ok := KindOf(col.DataType())
	switch {
	case ok && k == KindInteger && e.Set.isInt:
		return e.applyInts(col, sel)
	case ok && k == KindString && !e.Set.isInt:
		return e.applyStrings(col, sel)
	}
	want := "string"
	if e.Set.isInt {
		want = "integer"
	}
	return fmt.Errorf("erasure: subject column is %s but the erasure list holds %s ids", col.DataType(), want)
}

func (e Erasure) applyInts(col arrow.Array, sel *Selection) error {
	if d, ok := col.(*array.Dictionary); ok {
		hit, err := e.dictionaryHits(d)
		if err != nil {
			return err
		}
		markDictionary(d, hit, sel)
		return nil
	}
	n := col.Len()
	if a, ok := col.(*array.Int64); ok && a.NullN() == 0 {
		for i, v := range a.Int64Values() {
			if sel.keep[i] && e.Set.ContainsInt(v) {
				sel.remove(i, ReasonErasure)
			}
		}
		return nil
	}
	for i := 0; i < n; i++ {
		if !sel.keep[i] || col.IsNull(i) {
			continue
		}
		if v, ok := IntValue(col, i); ok && e.Set.ContainsInt(v) {
			sel.remove(i, ReasonErasure)
		}
	}
	return nil
}

func (e Erasure) applyStrings(col arrow.Array, sel *Selection) error {
	if d, ok := col.(*array.Dictionary); ok {
		hit, err := e.dictionaryHits(d)
		if err != nil {
			return err
		}
		markDictionary(d, hit, sel)
		return nil
	}
	src, ok := newByteStrings(col)
	if !ok {
		return fmt.Errorf("erasure: %w %s", ErrUnsupportedType, col.DataType())
	}
	for i := 0; i < col.Len(); i++ {
		if sel.keep[i] && !col.IsNull(i) && e.Set.ContainsString(unsafeString(src.at(i))) {
			sel.remove(i, ReasonErasure)
		}
	}
	return nil
}

// dictionaryHits evaluates the set once per dictionary entry.
func (e Erasure) dictionaryHits(d *array.Dictionary) ([]bool, error) {
	dict := d.Dictionary()
	probe := &Selection{}
	probe.Reset(dict.Len())
	if err := e.Apply(dict, probe); err != nil {
		return nil, err
	}
	hit := make([]bool, dict.Len())
	for i := range hit {
		hit[i] = !probe.keep[i]
	}
	return hit, nil
}

func markDictionary(d *array.Dictionary, hit []bool, sel *Selection) {
	for i := 0; i < d.Len(); i++ {
		if sel.keep[i] && !d.IsNull(i) && hit[d.GetValueIndex(i)] {
			sel.remove(i, ReasonErasure)
		}
	}
}

// IntValue returns element i of an integer array as an int64; ok is false
// for a uint64 above the int64 range (no id in an int64 set can match it).
func IntValue(a arrow.Array, i int) (v int64, ok bool) {
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int8:
		return int64(a.Value(i)), true
	case *array.Uint64:
		u := a.Value(i)
		return int64(u), u <= 1<<63-1
	case *array.Uint32:
		return int64(a.Value(i)), true
	case *array.Uint16:
		return int64(a.Value(i)), true
	case *array.Uint8:
		return int64(a.Value(i)), true
	}
	return 0, false
}

// Keep returns, per row of the batch, whether it survives. The slice is
// the selection's own: valid until the next Reset, and not to be changed.
func (s *Selection) Keep() []bool { return s.keep }
