package rules

import (
	"strings"
	"testing"
	"time"
)

// TestEndedAt: ended_at takes a date (midnight in the dataset's time zone)
// or an RFC 3339 time; anything else is a policy error at its line; the
// dataset counts as ended from that instant, and CompileRetain acts on it
// even without retention, erasure or holds.
func TestEndedAt(t *testing.T) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	for _, tc := range []struct {
		name, decl string
		want       time.Time
		err        string
	}{
		{"date, UTC", "    ended_at: 2026-12-01\n", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ""},
		{"date in the dataset's zone", "    time_zone: Asia/Shanghai\n    ended_at: \"2026-12-01\"\n", time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai), ""},
		{"zone after ended_at", "    ended_at: 2026-12-01\n    time_zone: Asia/Shanghai\n", time.Date(2026, 12, 1, 0, 0, 0, 0, shanghai), ""},
		{"RFC 3339", "    ended_at: 2026-12-01T08:30:00+08:00\n", time.Date(2026, 12, 1, 0, 30, 0, 0, time.UTC), ""},
		{"no date", "    ended_at: soon\n", time.Time{}, `p.yaml:8:15: datasets.logs.ended_at: "soon" is neither a date`},
		{"empty", "    ended_at: \"\"\n", time.Time{}, "must not be empty"},
		{"not a date", "    ended_at: 2026-13-01\n", time.Time{}, "is neither a date"},
		{"a list", "    ended_at: [2026-12-01]\n", time.Time{}, "datasets.logs.ended_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(minimal, "    source: in/*.parquet\n", "    source: in/*.parquet\n"+tc.decl, 1)
			p, err := Parse("p.yaml", []byte(src), env(nil))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ds := p.Dataset("logs")
			if ds.Ended == nil || !ds.Ended.At.Equal(tc.want) {
				t.Fatalf("ended %+v, want %v", ds.Ended, tc.want)
			}
			if ds.EndedBy(tc.want.Add(-time.Nanosecond)) || !ds.EndedBy(tc.want) {
				t.Error("EndedBy does not turn at the instant")
			}
			// no retention, erasure or holds: still a dataset retain acts on
			ds.Retention = nil
			for _, at := range []time.Time{tc.want.Add(-time.Hour), tc.want} {
				plan, err := CompileRetain(p, at)
				switch {
				case at.Before(tc.want) && err != ErrNothingToRetain:
					t.Errorf("before the end: %v, want ErrNothingToRetain", err)
				case !at.Before(tc.want) && (err != nil || len(plan.Datasets) != 1 || !plan.Datasets[0].Ended):
					t.Errorf("at the end: %v %+v", err, plan)
				}
			}
		})
	}
}
