package rules

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDurationUnitsMeanOneThing: a bare "m" could be minutes or months, so
// it is refused with what to write instead; "min" and "mo" are read.
func TestDurationUnitsMeanOneThing(t *testing.T) {
	cases := []struct {
		in     string
		fixed  time.Duration
		months int
		err    string
	}{
		{"6min", 6 * time.Minute, 0, ""},
		{"90min", 90 * time.Minute, 0, ""},
		{"1h30min", 90 * time.Minute, 0, ""},
		{"1mo", 0, 1, ""},
		{"1y6mo", 0, 18, ""},
		{"2d12h", 60 * time.Hour, 0, ""},
		{"6m", 0, 0, `unit "m" is ambiguous: write 6min for minutes or 6mo for months`},
		{"1h30m", 0, 0, `write 30min for minutes or 30mo for months`},
		{"1y6m", 0, 0, `write 6min for minutes or 6mo for months`},
		{"6m30s", 0, 0, `unit "m" is ambiguous`},
		{"6M", 0, 0, "unknown unit"},
		{"6 m", 0, 0, "unknown unit"},
		{"6mins", 0, 0, "expected a number"},
		{"6mon", 0, 0, "expected a number"},
		{"6minutes", 0, 0, "expected a number"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			d, err := ParseDuration(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || d.Fixed != c.fixed || d.Months != c.months {
				t.Fatalf("= %+v, %v; want fixed %s months %d", d, err, c.fixed, c.months)
			}
		})
	}
}

// TestDurationBounds: the parts of a duration add up without overflow and
// to at most 1,000 years, the fixed units (s to w) to at most 106,751 days
// (time.Duration's range); a longer one is refused, never wrapped around.
// Before, 50000d50000d50000d passed each part's bound and summed to a
// negative period (-1,524,095 h) that removed every row.
func TestDurationBounds(t *testing.T) {
	cases := []struct {
		in     string
		fixed  time.Duration
		months int
		err    string
	}{
		{"400y", 0, 4800, ""},
		{"1000y", 0, 12000, ""},
		{"999y12mo", 0, 12000, ""},
		{"700y106751d", 106751 * 24 * time.Hour, 8400, ""},
		{"50000d", 50000 * 24 * time.Hour, 0, ""},
		{"50000d50000d", 100000 * 24 * time.Hour, 0, ""},
		{"106751d", 106751 * 24 * time.Hour, 0, ""},
		{"50000d50000d50000d", 0, 0, "add up to more than 106751d"},
		{"106752d", 0, 0, "add up to more than 106751d"},
		{"15251w1d", 0, 0, "add up to more than 106751d"},
		{"2147483647s2147483647s2147483647s2147483647s2147483647s", 0, 0, "add up to more than 106751d"},
		{"1001y", 0, 0, "add up to more than 1000y"},
		{"1000y1s", 0, 0, "add up to more than 1000y"},
		{"9999y", 0, 0, "add up to more than 1000y"},
		{"800y106751d", 0, 0, "add up to more than 1000y"},
		{"2147483647y", 0, 0, "add up to more than 1000y"},
		{"500y500y1mo", 0, 0, "add up to more than 1000y"},
		{"2147483647mo2147483647mo", 0, 0, "add up to more than 1000y"},
		{"3000000000d", 0, 0, "number 3000000000 is too large"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			d, err := ParseDuration(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("= %+v, %v; want error %q", d, err, c.err)
				}
				return
			}
			if err != nil || d.Fixed != c.fixed || d.Months != c.months {
				t.Fatalf("= %+v, %v; want fixed %s months %d", d, err, c.fixed, c.months)
			}
			if d.Fixed < 0 || d.Months < 0 {
				t.Fatalf("negative duration %+v", d)
			}
		})
	}
}

// durationPolicy is retainPolicy with its hold list in a folder of its own.
var durationPolicy = strings.Replace(retainPolicy, "- list: holds.csv", "- list: lists/holds.csv", 1)

// TestDurationPolicyErrors: an ambiguous or bad duration in any retention
// field is a policy error at its line and column; future_skew is read and
// defaults to one day.
func TestDurationPolicyErrors(t *testing.T) {
	cases := []struct {
		name      string
		old, new  string
		line, col int
		path, msg string
	}{
		{"keep 6m", "keep: 3y\n      on_null", "keep: 6m\n      on_null", 20, 13, "datasets.orders.retention.keep", `write 6min for minutes or 6mo for months`},
		{"keep 1h30m", "keep: 3y\n      on_null", "keep: 1h30m\n      on_null", 20, 13, "datasets.orders.retention.keep", `write 30min for minutes or 30mo for months`},
		{"fallback keep 6m", "created_at, keep: 1y}", "created_at, keep: 6m}", 21, 45, "datasets.orders.retention.on_null.keep", `unit "m" is ambiguous`},
		{"legal minimum 36m", "{keep: 3y, basis", "{keep: 36m, basis", 27, 27, "datasets.orders.legal_minimum.keep", `write 36min for minutes or 36mo for months`},
		{"future skew 6m", "then: anonymize\n", "then: anonymize\n      future_skew: 6m\n", 23, 20, "datasets.orders.retention.future_skew", `unit "m" is ambiguous`},
		{"future skew not a duration", "then: anonymize\n", "then: anonymize\n      future_skew: soon\n", 23, 20, "datasets.orders.retention.future_skew", "expected a number"},
		{"keep summed past the fixed range", "keep: 3y\n      on_null", "keep: 50000d50000d50000d\n      on_null", 20, 13, "datasets.orders.retention.keep", "add up to more than 106751d"},
		{"keep over 1000y", "keep: 3y\n      on_null", "keep: 9999y\n      on_null", 20, 13, "datasets.orders.retention.keep", "add up to more than 1000y"},
		{"future skew over 1000y", "then: anonymize\n", "then: anonymize\n      future_skew: 999y2y\n", 23, 20, "datasets.orders.retention.future_skew", "add up to more than 1000y"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if strings.Count(durationPolicy, c.old) != 1 {
				t.Fatalf("edit %q does not occur exactly once", c.old)
			}
			src := strings.Replace(durationPolicy, c.old, c.new, 1)
			_, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
			var list ErrorList
			if !errors.As(err, &list) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("want a policy error, got %v", err)
			}
			for _, e := range list {
				if e.File == "policy.yaml" && e.Line == c.line && e.Column == c.col && e.Path == c.path && strings.Contains(e.Msg, c.msg) {
					return
				}
			}
			t.Errorf("want policy.yaml:%d:%d: %s: ...%s...\ngot:\n%v", c.line, c.col, c.path, c.msg, err)
		})
	}
}

// TestFutureSkew: the latest valid event time is now plus future_skew, one
// day when the policy sets none.
func TestFutureSkew(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	cases := []struct {
		name, edit string
		want       time.Time
	}{
		{"default", "", now.Add(24 * time.Hour)},
		{"2d", "      future_skew: 2d\n", now.Add(48 * time.Hour)},
		{"90min", "      future_skew: 90min\n", now.Add(90 * time.Minute)},
		{"1mo", "      future_skew: 1mo\n", time.Date(2027, 1, 7, 1, 0, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(durationPolicy, "then: anonymize\n", "then: anonymize\n"+c.edit, 1)
			p, err := Parse("/p/policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
			if err != nil {
				t.Fatal(err)
			}
			if got := LatestEventTime(p.Dataset("orders"), now); !got.Equal(c.want) {
				t.Errorf("latest event time %s, want %s", got, c.want)
			}
		})
	}
	if got := LatestEventTime(&DatasetDecl{}, now); !got.Equal(now.Add(24 * time.Hour)) {
		t.Errorf("without retention: %s", got)
	}
}
