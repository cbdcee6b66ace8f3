package rules

import (
	"fmt"
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

// durationUnits maps unit suffixes to their fixed length, or 0 for months.
var durationUnits = []struct {
	suffix string
	fixed  time.Duration
	months int
}{
	{"mo", 0, 1},
	{"min", time.Minute, 0},
	{"y", 0, 12},
	{"w", 7 * 24 * time.Hour, 0},
	{"d", 24 * time.Hour, 0},
	{"h", time.Hour, 0},
	{"s", time.Second, 0},
}

// ParseDuration reads a retention period such as "365d", "3y", "1y6mo" or
// "36h": one or more whole numbers each followed by a unit (s, min, h,
// d = 86,400 s, w, mo, y). A bare "m" is refused as ambiguous: six minutes
// and six months differ by five orders of magnitude, and a retention of
// 6m read as minutes removes every row.
func ParseDuration(s string) (Duration, error) {
	d := Duration{text: s}
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
				if u.months != 0 {
					d.Months += int(n) * u.months
				} else {
					if n > int64(1<<62/u.fixed) {
						return d, fmt.Errorf("duration %q is too long", s)
					}
					d.Fixed += time.Duration(n) * u.fixed
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
	if d.Fixed == 0 && d.Months == 0 {
		return d, fmt.Errorf("duration %q is zero: a retention period keeps something", s)
	}
	return d, nil
}
