package transforms

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// SubjectValues maps subject ids (integers or strings) to one int64 each,
// held as sorted slices: a consent list's withdrawal instants, or the birth
// days of subjects taken from another dataset.
type SubjectValues struct {
	ints  []int64
	strs  []string
	vals  []int64
	isInt bool
}

// NewIntSubjectValues returns the map ids[i] -> vals[i]. When an id repeats,
// merge(old, new) picks the value kept.
func NewIntSubjectValues(ids, vals []int64, merge func(a, b int64) int64) *SubjectValues {
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
	m := &SubjectValues{isInt: true}
	for _, i := range idx {
		if n := len(m.ints); n > 0 && m.ints[n-1] == ids[i] {
			m.vals[n-1] = merge(m.vals[n-1], vals[i])
			continue
		}
		m.ints = append(m.ints, ids[i])
		m.vals = append(m.vals, vals[i])
	}
	return m
}

// NewStringSubjectValues is NewIntSubjectValues for string ids.
func NewStringSubjectValues(ids []string, vals []int64, merge func(a, b int64) int64) *SubjectValues {
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ids[idx[a]] < ids[idx[b]] })
	m := &SubjectValues{}
	for _, i := range idx {
		if n := len(m.strs); n > 0 && m.strs[n-1] == ids[i] {
			m.vals[n-1] = merge(m.vals[n-1], vals[i])
			continue
		}
		m.strs = append(m.strs, ids[i])
		m.vals = append(m.vals, vals[i])
	}
	return m
}

// lookup returns the value of row i's subject in col.
func (m *SubjectValues) lookup(col arrow.Array, i int) (int64, bool) {
	if col.IsNull(i) {
		return 0, false
	}
	if m.isInt {
		v, ok := IntValue(col, i)
		if !ok {
			return 0, false
		}
		j, found := slices.BinarySearch(m.ints, v)
		if !found {
			return 0, false
		}
		return m.vals[j], true
	}
	s, ok := stringValue(col, i)
	if !ok {
		return 0, false
	}
	j := sort.SearchStrings(m.strs, s)
	if j == len(m.strs) || m.strs[j] != s {
		return 0, false
	}
	return m.vals[j], true
}

// checkSubject returns an error unless col's kind matches the map's ids.
func (m *SubjectValues) checkSubject(what string, col arrow.Array) error {
	k, ok := KindOf(col.DataType())
	if ok && (k == KindInteger) == m.isInt && (k == KindString) == !m.isInt {
		return nil
	}
	want := "string"
	if m.isInt {
		want = "integer"
	}
	return fmt.Errorf("%s: subject column is %s but the list holds %s ids", what, col.DataType(), want)
}

// stringValue returns row i of a string or binary array, plain or dictionary.
func stringValue(a arrow.Array, i int) (string, bool) {
	if d, ok := a.(*array.Dictionary); ok {
		return stringValue(d.Dictionary(), d.GetValueIndex(i))
	}
	switch c := a.(type) {
	case *array.String:
		return c.Value(i), true
	case *array.LargeString:
		return c.Value(i), true
	case *array.Binary:
		return string(c.Value(i)), true
	case *array.LargeBinary:
		return string(c.Value(i)), true
	}
	return "", false
}

// instantMicros returns row i of a timestamp array as microseconds since the
// epoch (rounded down), or false for NULL.
func instantMicros(a arrow.Array, i int) (int64, bool) {
	ts, ok := a.(*array.Timestamp)
	if !ok || ts.IsNull(i) {
		return 0, false
	}
	v := int64(ts.Value(i))
	switch ts.DataType().(*arrow.TimestampType).Unit {
	case arrow.Second:
		return mulSaturating(v, 1e6), true
	case arrow.Millisecond:
		return mulSaturating(v, 1e3), true
	case arrow.Nanosecond:
		if v < 0 && v%1000 != 0 {
			return v/1000 - 1, true
		}
		return v / 1000, true
	}
	return v, true
}

// mulSaturating returns v*m (m > 0) clamped to the int64 range: a time
// beyond it stays in the far future or past instead of wrapping around.
func mulSaturating(v, m int64) int64 {
	switch {
	case v > math.MaxInt64/m:
		return math.MaxInt64
	case v < math.MinInt64/m:
		return math.MinInt64
	}
	return v * m
}

// Consent removes the rows of subjects who withdrew consent for a purpose.
// Withdrawn maps each subject to the instant of its earliest withdrawal, in
// microseconds since the epoch. With FromWithdrawal only rows at or after the
// withdrawal go, and a row whose time is NULL goes too (it cannot be shown
// to predate the withdrawal); otherwise every row of the subject goes.
type Consent struct {
	Withdrawn      *SubjectValues
	FromWithdrawal bool
}

// Apply marks the rows to remove. times is the event time column (timestamp)
// and may be nil unless FromWithdrawal. NULL subjects are never removed.
func (c Consent) Apply(subject, times arrow.Array, sel *Selection) error {
	if err := c.Withdrawn.checkSubject("consent", subject); err != nil {
		return err
	}
	if c.FromWithdrawal {
		if _, ok := times.(*array.Timestamp); !ok {
			return fmt.Errorf("consent: the time column is %s, not a timestamp", times.DataType())
		}
	}
	for i := 0; i < subject.Len(); i++ {
		if !sel.keep[i] {
			continue
		}
		at, ok := c.Withdrawn.lookup(subject, i)
		if !ok {
			continue
		}
		if c.FromWithdrawal {
			if t, ok := instantMicros(times, i); ok && t < at {
				continue
			}
		}
		sel.remove(i, ReasonConsent)
	}
	return nil
}

// Children removes the rows of subjects younger than Below full years at the
// event (at most Below with Inclusive). Ages are computed on calendar dates
// in Zone: the event's date against the birth date; someone born on 29
// February turns a year older on 1 March in other years.
type Children struct {
	Below     int
	Inclusive bool
	// Zone is the zone whose calendar dates are compared (UTC when nil).
	Zone *time.Location
	// At is the instant ages are measured at when a row has no event time
	// column (times is nil): the run's now.
	At time.Time
	// Latest, when not zero, is the latest valid event time (now plus the
	// dataset's future skew): a later event time (dated in the future) is
	// no age at all, and the age is measured at At instead, so that a
	// child today is not made an adult by a bogus date.
	Latest time.Time
	// RemoveUnknown removes the rows whose age cannot be told, counted as
	// children's (ReasonChild), instead of keeping them: doubt protects the
	// child (partner destinations).
	RemoveUnknown bool
	// Withheld, when set, is asked for every row still kept, with the day
	// its age is measured at (days since the epoch, the calendar date in
	// Zone; ok is false when the row's event time is NULL): true removes
	// the row as a child's whatever its age is now (the rows withheld when
	// a file was published, whose ages may since have become unknown).
	Withheld func(i int, day int64, ok bool) bool
	// Note, when set, is called for every row the rule removes, with its
	// day as Withheld takes it.
	Note func(i int, day int64, ok bool)
}

// Apply marks child rows and returns how many rows it kept with no known
// age (NULL or invalid birth date, NULL event time); with RemoveUnknown
// those are removed instead, and not counted.
// birth is a date32 or timestamp column of birth dates, or a string column
// of resident IDs (birth date in characters 7-14, check character valid).
func (c Children) Apply(birth, times arrow.Array, sel *Selection) (unknown int64, err error) {
	if times != nil {
		if _, ok := times.(*array.Timestamp); !ok {
			return 0, fmt.Errorf("children: the time column is %s, not a timestamp", times.DataType())
		}
	}
	birthDay, err := birthDays(birth)
	if err != nil {
		return 0, err
	}
	zone := c.Zone
	if zone == nil {
		zone = time.UTC
	}
	remove := func(i int, day int64, ok bool) {
		sel.remove(i, ReasonChild)
		if c.Note != nil {
			c.Note(i, day, ok)
		}
	}
	for i := 0; i < birth.Len(); i++ {
		if !sel.keep[i] {
			continue
		}
		at, timed := c.At, true
		if times != nil {
			if us, ok := instantMicros(times, i); !ok {
				timed = false
			} else if at = time.UnixMicro(us); !c.Latest.IsZero() && at.After(c.Latest) {
				at = c.At
			}
		}
		ey, em, ed := at.In(zone).Date()
		var day int64
		if timed {
			day = time.Date(ey, em, ed, 0, 0, 0, 0, time.UTC).Unix() / 86400
		}
		if c.Withheld != nil && c.Withheld(i, day, timed) {
			remove(i, day, timed)
			continue
		}
		by, bm, bd, ok := birthDay(i)
		age := ey - by
		if em < bm || em == bm && ed < bd {
			age--
		}
		// no birth date, no event time, or born after the event (the
		// birth date is wrong): the age cannot be told
		if !ok || !timed || age < 0 {
			if c.RemoveUnknown {
				remove(i, day, timed)
			} else {
				unknown++
			}
			continue
		}
		if age < c.Below || c.Inclusive && age == c.Below {
			remove(i, day, timed)
		}
	}
	return unknown, nil
}

// birthDays returns a function giving row i's birth date.
func birthDays(a arrow.Array) (func(i int) (int, time.Month, int, bool), error) {
	switch c := a.(type) {
	case *array.Date32:
		return func(i int) (int, time.Month, int, bool) {
			if c.IsNull(i) {
				return 0, 0, 0, false
			}
			y, m, d := time.Unix(int64(c.Value(i))*86400, 0).UTC().Date()
			return y, m, d, true
		}, nil
	case *array.Timestamp:
		return func(i int) (int, time.Month, int, bool) {
			us, ok := instantMicros(c, i)
			if !ok {
				return 0, 0, 0, false
			}
			y, m, d := time.UnixMicro(us).UTC().Date()
			return y, m, d, true
		}, nil
	}
	if k, ok := KindOf(a.DataType()); ok && k == KindString {
		return func(i int) (int, time.Month, int, bool) {
			if a.IsNull(i) {
				return 0, 0, 0, false
			}
			s, _ := stringValue(a, i)
			return ResidentIDBirthDate(s)
		}, nil
	}
	return nil, fmt.Errorf("children: birth dates come from a date, timestamp or resident ID column, not %s", a.DataType())
}

// ResidentIDBirthDate returns the birth date inside an 18-character PRC
// resident identity number, or false when the number is not valid: the
// rules of birth_year (check character by ISO 7064 MOD 11-2 with X or x for
// 10, a province code, a real date from 1800 on).
func ResidentIDBirthDate(s string) (year int, month time.Month, day int, ok bool) {
	d := residentIDBirth([]byte(s))
	if !d.ok {
		return 0, 0, 0, false
	}
	return int(d.year), time.Month(d.month), d.day, true
}

// BirthDaysOf returns a date32 array holding, for each row of subject, the
// birth day its subject has in births (days since the epoch), NULL where
// the subject is NULL or unknown: the age source when birth dates come from
// another dataset.
func BirthDaysOf(mem memory.Allocator, subject arrow.Array, births *SubjectValues) (arrow.Array, error) {
	if err := births.checkSubject("children", subject); err != nil {
		return nil, err
	}
	b := array.NewDate32Builder(mem)
	defer b.Release()
	b.Reserve(subject.Len())
	for i := 0; i < subject.Len(); i++ {
		if v, ok := births.lookup(subject, i); ok {
			b.UnsafeAppend(arrow.Date32(v))
		} else {
			b.UnsafeAppendBoolToBitmap(false)
		}
	}
	return b.NewArray(), nil
}
