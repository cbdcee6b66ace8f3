package rules

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a retention period: a fixed part (seconds, minutes, hours,
// days of exactly 86,400 s, weeks) and a calendar part (months, years) whose
// length depends on the date and the time zone.
type Duration struct {
	Fixed  time.Duration
	Months int // years count as 12 months
	text   string
}

// IsCalendar reports whether the duration has months or years, which need a
// declared time zone to be measured.
func (d Duration) IsCalendar() bool { return d.Months != 0 }

// String returns the duration as the policy wrote it.
func (d Duration) String() string { return d.text }

// Before returns the instant the duration before now: months are subtracted
// on the calendar of loc first (a month before 31 March is 3 March in a
// non-leap year, as time.AddDate normalizes), then the fixed part.
func (d Duration) Before(now time.Time, loc *time.Location) time.Time {
	t := now
	if d.Months != 0 {
		t = now.In(loc).AddDate(0, -d.Months, 0)
	}
	return t.Add(-d.Fixed).UTC()
}

// After returns the instant the duration after now, months added on the
// calendar of loc first, then the fixed part.
func (d Duration) After(now time.Time, loc *time.Location) time.Time {
	t := now
	if d.Months != 0 {
		t = now.In(loc).AddDate(0, d.Months, 0)
	}
	return t.Add(d.Fixed).UTC()
}

// durationUnits maps unit suffixes to their fixed length in seconds, or 0
// for months.
var durationUnits = []struct {
	suffix string
	fixed  int64
	months int64
}{
	{"mo", 0, 1},
	{"min", 60, 0},
	{"y", 0, 12},
	{"w", 7 * 86400, 0},
	{"d", 86400, 0},
	{"h", 3600, 0},
	{"s", 1, 0},
}

// The bounds of a duration. A longer one is refused, never wrapped
// around: a sum that overflowed once made keep: 50000d50000d50000d a
// negative period that removed every row. A thousand years back or ahead
// of any plausible now stays inside the years 0 to 9999 that reports'
// RFC 3339 times can hold (a report with a cut-off in year -7973 cannot
// be written at all).
const (
	// maxMonths is 1,000 years, the longest period in all.
	maxMonths = 1000 * 12
	// monthSeconds is the mean Gregorian month (30.436875 days), which
	// weighs months against the fixed part.
	monthSeconds = 2629746
	// maxSeconds bounds the whole duration: 1,000 mean Gregorian years.
	maxSeconds = maxMonths * monthSeconds
	// maxFixedSeconds bounds the fixed part: time.Duration's range, about
	// 292 years (106,751 days).
	maxFixedSeconds = math.MaxInt64 / int64(time.Second)
)

// ParseDuration reads a retention period such as "365d", "3y", "1y6mo" or
// "36h": one or more whole numbers each followed by a unit (s, min, h,
// d = 86,400 s, w, mo, y). A bare "m" is refused as ambiguous: six minutes
// and six months differ by five orders of magnitude, and a retention of
// 6m read as minutes removes every row. The parts add up to at most
// 1,000 years (months counted as mean Gregorian months), and the fixed
// units (s, min, h, d, w) to at most 106,751 days (about 292 years: write
// longer periods in y); a longer duration is refused.
func ParseDuration(s string) (Duration, error) {
	d := Duration{text: s}
	var months, fixed int64 // fixed in seconds
	rest := strings.TrimSpace(s)
	if rest == "" {
		return d, fmt.Errorf("empty duration (write e.g. 365d, 3y or 36h)")
	}
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return d, fmt.Errorf("duration %q: expected a number at %q (write e.g. 365d, 3y or 36h)", s, rest)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 32)
		if err != nil {
			return d, fmt.Errorf("duration %q: number %s is too large", s, rest[:i])
		}
		rest = rest[i:]
		if strings.HasPrefix(rest, "m") && !strings.HasPrefix(rest, "mo") && !strings.HasPrefix(rest, "min") {
			return d, fmt.Errorf("duration %q: unit \"m\" is ambiguous: write %dmin for minutes or %dmo for months", s, n, n)
		}
		matched := false
		for _, u := range durationUnits {
			if strings.HasPrefix(rest, u.suffix) {
				// n < 2^31 and each sum stays within its bound, so
				// nothing here overflows
				months += n * u.months
				fixed += n * u.fixed
				if err := durationBounds(s, months, fixed); err != nil {
					return d, err
				}
				rest = rest[len(u.suffix):]
				matched = true
				break
			}
		}
		if !matched {
			return d, fmt.Errorf("duration %q: unknown unit at %q (units: s, min, h, d, w, mo, y)", s, rest)
		}
	}
	if fixed == 0 && months == 0 {
		return d, fmt.Errorf("duration %q is zero: a retention period keeps something", s)
	}
	d.Months, d.Fixed = int(months), time.Duration(fixed)*time.Second
	return d, nil
}

// durationBounds checks the sums so far of duration s: months, and the
// fixed part in seconds.
func durationBounds(s string, months, fixed int64) error {
	switch {
	case fixed > maxFixedSeconds:
		return fmt.Errorf("duration %q is too long: its s, min, h, d and w add up to more than 106751d (about 292 years); write longer periods in y", s)
	case months > maxMonths || months*monthSeconds+fixed > maxSeconds:
		return fmt.Errorf("duration %q is too long: its parts add up to more than 1000y (to keep rows for ever, give the dataset no retention)", s)
	}
	return nil
}
