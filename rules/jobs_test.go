package rules

import (
	"strings"
	"testing"
	"time"
)

// TestParseSchedule: the accepted cron forms and their next run after a
// fixed instant, including the zone prefix and a daylight-saving gap.
func TestParseSchedule(t *testing.T) {
	after := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC) // a Saturday
	cases := []struct {
		name, spec string
		want       string // next run after `after`, RFC 3339 in UTC; "" for a parse error
		err        string
	}{
		{"five fields", "0 3 * * *", "2026-03-08T03:00:00Z", ""},
		{"six fields, seconds first", "*/5 * * * * *", "2026-03-07T12:00:05Z", ""},
		{"descriptor", "@daily", "2026-03-08T00:00:00Z", ""},
		{"every", "@every 90s", "2026-03-07T12:01:30Z", ""},
		{"day of week", "30 6 * * MON", "2026-03-09T06:30:00Z", ""},
		{"Shanghai, no DST", "CRON_TZ=Asia/Shanghai 0 3 * * *", "2026-03-07T19:00:00Z", ""},
		{"TZ prefix", "TZ=Asia/Shanghai 0 3 * * *", "2026-03-07T19:00:00Z", ""},
		// 2026-03-08 02:30 does not exist in New York (clocks jump 02:00 -> 03:00):
		// that day's run is skipped, the next is on the 9th
		{"DST gap skips the day", "CRON_TZ=America/New_York 30 2 * * *", "2026-03-09T06:30:00Z", ""},
		{"four fields", "0 3 * *", "", "expected 5 to 6 fields, found 4"},
		{"seven fields", "0 0 3 * * * *", "", "expected 5 to 6 fields, found 7"},
		{"hour out of range", "0 24 * * *", "", "above maximum"},
		{"bad zone", "CRON_TZ=Nowhere/Land 0 3 * * *", "", "provided bad location"},
		{"bad descriptor", "@fortnightly", "", "unrecognized descriptor"},
		{"empty", "", "", "empty spec string"},
		{"zone alone", "TZ=", "", "the zone must be followed by a space and the schedule"},
		{"zone without schedule", "CRON_TZ=Asia/Shanghai", "", "the zone must be followed by a space and the schedule"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := ParseSchedule(c.spec)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want ...%s...", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Next(after).UTC().Format(time.RFC3339); got != c.want {
				t.Errorf("next %s, want %s", got, c.want)
			}
		})
	}
}

// TestScheduleAutumnOverlap: a time that happens twice when clocks go back
// runs twice, an hour apart (the README says so).
func TestScheduleAutumnOverlap(t *testing.T) {
	s, err := ParseSchedule("CRON_TZ=America/New_York 30 1 * * *")
	if err != nil {
		t.Fatal(err)
	}
	first := s.Next(time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)) // 01:00 EDT
	second := s.Next(first)
	if first.UTC().Format(time.RFC3339) != "2026-11-01T05:30:00Z" || second.UTC().Format(time.RFC3339) != "2026-11-01T06:30:00Z" {
		t.Errorf("runs at %s and %s", first.UTC(), second.UTC())
	}
}

func TestJobsDecoded(t *testing.T) {
	src := minimal + "jobs:\n  - name: nightly\n    what: deidentify\n    schedule: CRON_TZ=Asia/Shanghai 0 3 * * *\n  - {name: sweep, what: retain, destinations: [out], schedule: '@weekly'}\n"
	p, err := Parse("p.yaml", []byte(src), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Jobs) != 2 {
		t.Fatalf("%d jobs", len(p.Jobs))
	}
	j := p.Job("nightly")
	if j.What != JobDeidentify || j.Schedule != "CRON_TZ=Asia/Shanghai 0 3 * * *" || j.Destinations != nil || j.SchedulePos.Line != 29 {
		t.Errorf("nightly: %+v", j)
	}
	if s := p.Job("sweep"); s.What != JobRetain || len(s.Destinations) != 1 || s.Destinations[0] != "out" {
		t.Errorf("sweep: %+v", s)
	}
	if p.Job("none") != nil {
		t.Error("unknown job found")
	}
}

// FuzzParseSchedule: any text is either rejected with an error or gives a
// schedule whose next run is after the given instant (or none: zero).
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "*/5 * * * * *", "@every 90s", "CRON_TZ=Asia/Shanghai 0 3 * * MON", "TZ=UTC 0 0 29 2 *", "0 0 30 2 *", "@daily"} {
		f.Add(s)
	}
	after := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSchedule(spec)
		if err != nil {
			return
		}
		if next := s.Next(after); !next.IsZero() && !next.After(after) {
			t.Fatalf("%q: next %s is not after %s", spec, next, after)
		}
	})
}
