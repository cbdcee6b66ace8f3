package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones of these tests, on a host without zoneinfo too

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/deidproject/deid/pipeline/report"
)

// The tests of this file run the real binary on what durations and event
// times mean: a bare "m" is refused, a rule that removes every row warns,
// a time in the future is no valid event time, and wall-clock times in a
// daylight-saving gap or overlap are counted.

var timesEnv = []string{"TIMES_K=" + strings.Repeat("5a", 32), "TIMES_AUDIT=" + strings.Repeat("cd", 32)}

// timesNow is the reference instant of every command of these tests.
var timesNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// timesPolicy is one dataset t of lake/t/*.parquet (a subject, the event
// time at and a created_at clock) sent to destination out. KEEP, ONNULL
// and EXTRA (more dataset keys) are replaced.
const timesPolicy = `version: 1
name: times
keys:
  k: hex:env:TIMES_K
audit_key: hex:env:TIMES_AUDIT
datasets:
  t:
    source: lake/t/*.parquet
    subject: user_id
    columns:
      user_id: account_id
      at: timestamp
      created_at: timestamp
    retention:
      time_column: at
      keep: KEEP
      on_null: ONNULL
EXTRA
destinations:
  out:
    purpose: analytics
    output: out
    key: k
    datasets:
      t: {}
`

// timesRow is one row of a test file: a subject and two clocks (ticks of
// the file's unit; nil is NULL).
type timesRow struct {
	user      int64
	at, begun *int64
}

func ticks(v int64) *int64 { return &v }

func micros(t time.Time) *int64 { return ticks(t.UnixMicro()) }

// writeTimesFile writes rows as lake/t/part-0.parquet under dir: times of
// microseconds, with the UTC flag unless naive (wall-clock times).
func writeTimesFile(t *testing.T, dir string, naive bool, rows []timesRow) {
	t.Helper()
	writeTimesFileIn(t, dir, arrow.Microsecond, naive, rows)
}

// writeTimesFileIn is writeTimesFile with times of unit u.
func writeTimesFileIn(t *testing.T, dir string, u arrow.TimeUnit, naive bool, rows []timesRow) {
	t.Helper()
	mem := memory.NewGoAllocator()
	zone := "UTC"
	if naive {
		zone = ""
	}
	tt := &arrow.TimestampType{Unit: u, TimeZone: zone}
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "at", Type: tt, Nullable: true},
		{Name: "created_at", Type: tt, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.user)
		for i, v := range []*int64{r.at, r.begun} {
			if v == nil {
				b.Field(1 + i).AppendNull()
			} else {
				b.Field(1 + i).(*array.TimestampBuilder).Append(arrow.Timestamp(*v))
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(dir, "lake", "t", "part-0.parquet")
	writeParquetFile(t, path, rec, parquet.NewWriterProperties(parquet.WithAllocator(mem)))
}

// writeTimesPolicy writes policy.yaml in dir.
func writeTimesPolicy(t *testing.T, dir, keep, onNull, extra string) {
	t.Helper()
	text := strings.NewReplacer("KEEP", keep, "ONNULL", onNull, "EXTRA\n", extra).Replace(timesPolicy)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// octoberRows are n rows of five subjects dated in October 2026.
func octoberRows(n int) []timesRow {
	rows := make([]timesRow, n)
	for i := range rows {
		at := time.Date(2026, 10, 1+i%28, 8, 0, 0, 0, time.UTC)
		rows[i] = timesRow{user: int64(1 + i%5), at: micros(at), begun: micros(at)}
	}
	return rows
}

func nowFlag() string { return timesNow.Format(time.RFC3339) }

func decodeRun(t *testing.T, res deidResult) *report.Run {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var rep report.Run
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, res.stdout)
	}
	return &rep
}

func decodeRetain(t *testing.T, res deidResult) *report.Retain {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var rep report.Retain
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, res.stdout)
	}
	return &rep
}

// TestTimesAmbiguousMinutesRefused: a bare "m" in any retention duration
// is a policy error (exit 2) at its line and column, saying to write min or
// mo; "min" and "mo" are accepted. Before, keep: 6m meant six minutes.
func TestTimesAmbiguousMinutesRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cases := []struct {
		name, keep, onNull, extra string
		where, msg                string // "" where: accepted
	}{
		{"keep 6m", "6m", "keep", "", "policy.yaml:16:13", `write 6min for minutes or 6mo for months`},
		{"keep 1h30m", "1h30m", "keep", "", "policy.yaml:16:13", `write 30min for minutes or 30mo for months`},
		{"keep 1y6m", "1y6m", "keep", "    time_zone: Asia/Shanghai\n", "policy.yaml:16:13", `write 6min for minutes or 6mo for months`},
		{"fallback keep 30m", "30d", "{fallback: created_at, keep: 30m}", "", "policy.yaml:17:45", `write 30min for minutes or 30mo for months`},
		{"future skew 5m", "30d", "keep", "      future_skew: 5m\n", "policy.yaml:18:20", `write 5min for minutes or 5mo for months`},
		{"keep 6M", "6M", "keep", "", "policy.yaml:16:13", `unknown unit at "M" (units: s, min, h, d, w, mo, y)`},
		{"keep 6 m", "6 m", "keep", "", "policy.yaml:16:13", `unknown unit`},
		{"keep 6min", "6min", "keep", "", "", ""},
		{"keep 90min", "90min", "keep", "", "", ""},
		{"keep 6mo", "6mo", "keep", "    time_zone: Asia/Shanghai\n", "", ""},
		{"keep 1y6mo", "1y6mo", "keep", "    time_zone: Asia/Shanghai\n", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTimesFile(t, dir, false, octoberRows(10))
			extra := c.extra
			if strings.HasPrefix(extra, "      future_skew") {
				// future_skew belongs to the retention mapping, right after on_null
				writeTimesPolicy(t, dir, c.keep, c.onNull, "")
				p := filepath.Join(dir, "policy.yaml")
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), "      on_null: keep\n", "      on_null: keep\n"+extra, 1)), 0o644)
			} else if extra != "" {
				// the time zone goes at the dataset's level, before columns
				writeTimesPolicy(t, dir, c.keep, c.onNull, "")
				p := filepath.Join(dir, "policy.yaml")
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), "    columns:\n", extra+"    columns:\n", 1)), 0o644)
			} else {
				writeTimesPolicy(t, dir, c.keep, c.onNull, "")
			}
			res := runDeid(t, dir, timesEnv, "validate", "-c", "policy.yaml")
			if c.where == "" {
				if res.code != 0 {
					t.Fatalf("validate: exit %d: %s", res.code, res.stderr)
				}
				return
			}
			// line numbers shift by one when a time zone line was added
			where := c.where
			if strings.HasPrefix(extra, "    time_zone") {
				where = "policy.yaml:17:13"
			}
			if res.code != 2 || !strings.Contains(res.stderr, where) || !strings.Contains(res.stderr, c.msg) {
				t.Errorf("validate: exit %d, want 2 with %s ...%s...\n%s", res.code, where, c.msg, res.stderr)
			}
			if res := runDeid(t, dir, timesEnv, "plan", "-c", "policy.yaml", "--now", nowFlag()); res.code != 2 {
				t.Errorf("plan: exit %d, want 2: %s", res.code, res.stderr)
			}
		})
	}
}

// TestTimesEveryRowRemovedWarns: plan, run and retain --dry-run warn when
// a dataset's row rules remove every row, naming the dataset, the rule and
// the count; the run's report lists the warning. A rule that leaves rows
// draws none.
func TestTimesEveryRowRemovedWarns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cases := []struct {
		name, keep, onNull, extra string
		rows                      []timesRow
		want                      string // "" for no warning
		edit                      [2]string
		runOnly                   bool // a destination's rule: retain does not apply it
	}{
		{"keep 6min", "6min", "keep", "", octoberRows(2000), `dataset "t": retention keep 6min removes every row (2,000 of 2,000)`, [2]string{}, false},
		{"keep 1d", "1d", "remove", "", octoberRows(30), `dataset "t": retention keep 1d removes every row (30 of 30)`, [2]string{}, false},
		{"erasure of everyone", "3650d", "keep", "    erasure:\n      - list: lists/erased.csv\n", octoberRows(12),
			`dataset "t": erasure removes every row (12 of 12)`, [2]string{}, false},
		{"retention and erasure", "20d", "keep", "    erasure:\n      - list: lists/erased.csv\n", octoberRows(28),
			`dataset "t": its row rules remove every row (retention keep 20d `, [2]string{}, false},
		{"NULL times removed", "30d", "remove", "", []timesRow{{user: 1}, {user: 2}, {user: 3}},
			`dataset "t": retention on_null (NULL at) removes every row (3 of 3)`, [2]string{}, false},
		{"rows kept", "30d", "keep", "", octoberRows(40), "", [2]string{}, false},
		{"children of one destination", "3650d", "keep",
			"    children: {below: 14, destinations: [out], age_from: {birth_date: created_at}}\n", octoberRows(15),
			`destination "out": the children rule removes every row (15 of 15)`, [2]string{"created_at: timestamp", "created_at: birth_date"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTimesFile(t, dir, false, c.rows)
			writeTimesPolicy(t, dir, c.keep, c.onNull, c.extra)
			if c.edit[0] != "" {
				p := filepath.Join(dir, "policy.yaml")
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), c.edit[0], c.edit[1], 1)), 0o644)
			}
			os.MkdirAll(filepath.Join(dir, "lists"), 0o755)
			os.WriteFile(filepath.Join(dir, "lists", "erased.csv"), []byte("user_id\n1\n2\n3\n4\n5\n"), 0o644)
			now := nowFlag()
			check := func(cmd, out string) {
				t.Helper()
				if c.want == "" {
					if strings.Contains(out, "removes every row") || strings.Contains(out, "remove every row") {
						t.Errorf("%s warns although rows are kept:\n%s", cmd, out)
					}
					return
				}
				if !strings.Contains(out, c.want) {
					t.Errorf("%s: no warning %q in\n%s", cmd, c.want, out)
				}
			}
			res := runDeid(t, dir, timesEnv, "plan", "-c", "policy.yaml", "--now", now)
			if res.code != 0 {
				t.Fatalf("plan: exit %d: %s", res.code, res.stderr)
			}
			check("plan", res.stdout)
			rep := decodeRun(t, runDeid(t, dir, timesEnv, "plan", "-c", "policy.yaml", "--now", now, "--json"))
			check("plan --json", strings.Join(rep.Warnings, "\n"))
			if !c.runOnly {
				res = runDeid(t, dir, timesEnv, "retain", "-c", "policy.yaml", "--now", now, "--dry-run")
				if res.code != 0 {
					t.Fatalf("retain --dry-run: exit %d: %s", res.code, res.stderr)
				}
				check("retain --dry-run", res.stdout)
			}
			rep = decodeRun(t, runDeid(t, dir, timesEnv, "run", "-c", "policy.yaml", "--now", now, "--json"))
			check("run's report", strings.Join(rep.Warnings, "\n"))
			published := filepath.Join(dir, "out", "_reports")
			entries, _ := os.ReadDir(published)
			var text string
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".json") {
					b, _ := os.ReadFile(filepath.Join(published, e.Name()))
					text += string(b)
				}
			}
			if text != "" {
				check("published report", text)
			}
		})
	}
}

// TestTimesFutureRows: a time after now plus the skew (one day unless the
// retention sets future_skew) is handled as a NULL time by run, plan and
// retain, and counted as future_time; now+23h is a valid time. Before,
// rows dated in 2300 or at the end of the int64 range never expired.
func TestTimesFutureRows(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	old := micros(timesNow.Add(-400 * 24 * time.Hour))
	rows := []timesRow{
		{user: 1, at: micros(timesNow.Add(-24 * time.Hour)), begun: old},                              // valid
		{user: 2, at: micros(timesNow.Add(23 * time.Hour)), begun: old},                               // valid: inside the skew
		{user: 3, at: micros(timesNow.Add(25 * time.Hour)), begun: old},                               // future
		{user: 4, at: micros(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)), begun: old},                // future
		{user: 5, at: ticks(math.MaxInt64), begun: old},                                               // future
		{user: 6, at: micros(timesNow.Add(-60 * 24 * time.Hour)), begun: old},                         // past retention
		{user: 7, at: micros(time.Date(2299, 12, 31, 0, 0, 0, 0, time.UTC)), begun: micros(timesNow)}, // future, recent fallback
	}
	cases := []struct {
		name, onNull, skew string
		removedFuture      int64 // by run, plan and retain
		keptFuture         int64 // by retain
	}{
		{"on_null remove", "remove", "", 4, 0},
		{"on_null keep", "keep", "", 0, 4},
		{"fallback", "{fallback: created_at, keep: 30d}", "", 3, 1},
		{"skew 2d", "remove", "      future_skew: 2d\n", 3, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTimesFile(t, dir, false, rows)
			writeTimesPolicy(t, dir, "30d", c.onNull, "")
			if c.skew != "" {
				p := filepath.Join(dir, "policy.yaml")
				b, _ := os.ReadFile(p)
				os.WriteFile(p, []byte(strings.Replace(string(b), "      on_null: "+c.onNull+"\n", "      on_null: "+c.onNull+"\n"+c.skew, 1)), 0o644)
			}
			now := nowFlag()
			keptFuture := c.keptFuture
			for _, cmd := range []string{"plan", "run"} {
				rep := decodeRun(t, runDeid(t, dir, timesEnv, cmd, "-c", "policy.yaml", "--now", now, "--json"))
				d := rep.Datasets[0]
				skew := map[bool]string{true: "2d", false: "1d"}[c.skew != ""]
				if r := d.Retention; r == nil || r.FutureSkew != skew || !r.LatestEventTime.Equal(timesNow.Add(map[bool]time.Duration{true: 48, false: 24}[c.skew != ""]*time.Hour)) {
					t.Errorf("%s: report's retention %+v, want future skew %s", cmd, d.Retention, skew)
				}
				if d.Removed["future_time"] != c.removedFuture || d.Removed["retention"] != 1 || d.RowsKept != 6-c.removedFuture {
					t.Errorf("%s: removed %v, %d kept; want future_time %d, retention 1, %d kept", cmd, d.Removed, d.RowsKept, c.removedFuture, 6-c.removedFuture)
				}
				// future rows that stay are counted as retain counts them
				if d.FutureTimeKept != keptFuture {
					t.Errorf("%s: future_time_kept %d, want %d", cmd, d.FutureTimeKept, keptFuture)
				}
				res := runDeid(t, dir, timesEnv, cmd, "-c", "policy.yaml", "--now", now)
				if want := fmt.Sprintf("future time %d; future times kept %d\n", c.removedFuture, keptFuture); res.code != 0 || !strings.Contains(res.stdout, want) {
					t.Errorf("%s: exit %d, summary without %q:\n%s%s", cmd, res.code, want, res.stdout, res.stderr)
				}
			}
			dry := decodeRetain(t, runDeid(t, dir, timesEnv, "retain", "-c", "policy.yaml", "--now", now, "--dry-run", "--json"))
			done := decodeRetain(t, runDeid(t, dir, timesEnv, "retain", "-c", "policy.yaml", "--now", now, "--json"))
			for name, rep := range map[string]*report.Retain{"retain --dry-run": dry, "retain": done} {
				d := rep.Datasets[0]
				if d.Removed[report.RemovedFutureTime] != c.removedFuture || d.FutureTimeKept != keptFuture || d.RowsKept != 6-c.removedFuture {
					t.Errorf("%s: removed %v, future kept %d, rows kept %d; want future_time %d, %d kept, %d rows", name, d.Removed,
						d.FutureTimeKept, d.RowsKept, c.removedFuture, keptFuture, 6-c.removedFuture)
				}
			}
			// the lake now holds only what retain kept: a second run removes nothing
			again := decodeRetain(t, runDeid(t, dir, timesEnv, "retain", "-c", "policy.yaml", "--now", now, "--json"))
			if d := again.Datasets[0]; d.RowsIn != 6-c.removedFuture || d.Removed[report.RemovedFutureTime] != 0 {
				t.Errorf("second retain: %d rows in, removed %v", d.RowsIn, d.Removed)
			}
		})
	}
}

// TestTimesLocalTransitions: wall-clock times (no UTC flag) in a
// spring-forward gap or an autumn overlap of the dataset's time_zone are
// counted per dataset by plan and run (nonexistent_local_time,
// ambiguous_local_time); a zone without daylight saving counts none.
// Before, they were resolved silently.
func TestTimesLocalTransitions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	wall := func(mo time.Month, d, h, mi int) *int64 { return micros(time.Date(2026, mo, d, h, mi, 0, 0, time.UTC)) }
	cases := []struct {
		zone                   string
		times                  []*int64
		nonexistent, ambiguous int64
	}{
		{"America/New_York", []*int64{wall(3, 8, 2, 30), wall(3, 8, 2, 0), wall(3, 8, 3, 0), wall(11, 1, 1, 30), wall(10, 20, 12, 0)}, 2, 1},
		{"Europe/Berlin", []*int64{wall(3, 29, 2, 15), wall(10, 25, 2, 30), wall(10, 25, 2, 59), wall(10, 25, 3, 0), wall(7, 1, 12, 0)}, 1, 2},
		{"Asia/Shanghai", []*int64{wall(3, 8, 2, 30), wall(3, 29, 2, 15), wall(11, 1, 1, 30), wall(10, 25, 2, 30)}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.zone, func(t *testing.T) {
			if _, err := time.LoadLocation(c.zone); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var rows []timesRow
			for i, v := range c.times {
				rows = append(rows, timesRow{user: int64(i + 1), at: v, begun: wall(1, 15, 12, 0)})
			}
			writeTimesFile(t, dir, true, rows)
			writeTimesPolicy(t, dir, "3650d", "keep", "")
			p := filepath.Join(dir, "policy.yaml")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), "    columns:\n", fmt.Sprintf("    time_zone: %s\n    columns:\n", c.zone), 1)), 0o644)
			for _, cmd := range []string{"plan", "run"} {
				rep := decodeRun(t, runDeid(t, dir, timesEnv, cmd, "-c", "policy.yaml", "--now", nowFlag(), "--json"))
				d := rep.Datasets[0]
				if d.NonexistentLocalTime != c.nonexistent || d.AmbiguousLocalTime != c.ambiguous || d.RowsKept != int64(len(rows)) {
					t.Errorf("%s: nonexistent %d, ambiguous %d, %d kept; want %d, %d, %d", cmd, d.NonexistentLocalTime, d.AmbiguousLocalTime,
						d.RowsKept, c.nonexistent, c.ambiguous, len(rows))
				}
			}
			res := runDeid(t, dir, timesEnv, "plan", "-c", "policy.yaml", "--now", nowFlag())
			if c.nonexistent+c.ambiguous > 0 && !strings.Contains(res.stdout, fmt.Sprintf("local times: %d nonexistent", c.nonexistent)) {
				t.Errorf("plan's summary does not count the local times:\n%s", res.stdout)
			}
		})
	}
}

// TestTimesLongPeriods: retention periods and future skews longer than a
// nanosecond timestamp's range (1677-2262) decide each row by its instant
// in run, plan and retain, and a duration whose parts add up past the
// bounds (1000y in all, 106751d of fixed units) is a policy error at its
// position. Before, the cut-offs wrapped
// around: keep: 1000y removed every row as retention, future_skew: 300y
// every row as future_time, and keep: 50000d50000d50000d was a negative
// period that kept nothing.
func TestTimesLongPeriods(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	ns := func(at time.Time) *int64 { return ticks(at.UnixNano()) }
	rows := []timesRow{
		{user: 1, at: ns(timesNow.Add(-24 * time.Hour))},
		{user: 2, at: ns(timesNow.Add(-60 * 24 * time.Hour))},
		{user: 3, at: ticks(math.MinInt64)}, // 1677-09-21
		{user: 4, at: ticks(math.MaxInt64)}, // 2262-04-11: after now + 1 day
	}
	cases := []struct {
		name, keep, onNull, skew string
		retention, future, kept  int64 // removed, and future rows kept
		rowsKept                 int64
		where, msg               string // a policy error instead
	}{
		{"keep 400y", "400y", "remove", "", 0, 1, 0, 3, "", ""},
		{"keep 1000y", "1000y", "remove", "", 0, 1, 0, 3, "", ""},
		{"keep 1000y on_null keep", "1000y", "keep", "", 0, 0, 1, 4, "", ""},
		{"keep 12000mo fallback", "12000mo", "{fallback: created_at, keep: 999y12mo}", "", 0, 0, 1, 4, "", ""},
		{"future skew 300y", "30d", "remove", "300y", 2, 0, 0, 2, "", ""},
		{"keep 1000y future skew 300y", "1000y", "keep", "300y", 0, 0, 0, 4, "", ""},
		{"summed days", "50000d50000d50000d", "remove", "", 0, 0, 0, 0, "policy.yaml:17:13", "add up to more than 106751d"},
		{"summed years", "500y501y", "remove", "", 0, 0, 0, 0, "policy.yaml:17:13", "add up to more than 1000y"},
		{"keep 9999y", "9999y", "keep", "", 0, 0, 0, 0, "policy.yaml:17:13", "add up to more than 1000y"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTimesFileIn(t, dir, arrow.Nanosecond, false, rows)
			writeTimesPolicy(t, dir, c.keep, c.onNull, "")
			p := filepath.Join(dir, "policy.yaml")
			b, _ := os.ReadFile(p)
			text := strings.Replace(string(b), "    columns:\n", "    time_zone: UTC\n    columns:\n", 1)
			if c.skew != "" {
				text = strings.Replace(text, "      on_null: "+c.onNull+"\n", "      on_null: "+c.onNull+"\n      future_skew: "+c.skew+"\n", 1)
			}
			os.WriteFile(p, []byte(text), 0o644)
			now := nowFlag()
			if c.where != "" {
				res := runDeid(t, dir, timesEnv, "validate", "-c", "policy.yaml")
				if res.code != 2 || !strings.Contains(res.stderr, c.where) || !strings.Contains(res.stderr, c.msg) {
					t.Errorf("validate: exit %d, want 2 with %s ...%s...\n%s", res.code, c.where, c.msg, res.stderr)
				}
				return
			}
			for _, cmd := range []string{"plan", "run"} {
				d := decodeRun(t, runDeid(t, dir, timesEnv, cmd, "-c", "policy.yaml", "--now", now, "--json")).Datasets[0]
				if d.Removed["retention"] != c.retention || d.Removed["future_time"] != c.future || d.FutureTimeKept != c.kept || d.RowsKept != c.rowsKept {
					t.Errorf("%s: removed %v, future kept %d, %d kept; want retention %d, future_time %d, future kept %d, %d kept",
						cmd, d.Removed, d.FutureTimeKept, d.RowsKept, c.retention, c.future, c.kept, c.rowsKept)
				}
			}
			d := decodeRetain(t, runDeid(t, dir, timesEnv, "retain", "-c", "policy.yaml", "--now", now, "--dry-run", "--json")).Datasets[0]
			if d.Removed[report.RemovedRetention] != c.retention || d.Removed[report.RemovedFutureTime] != c.future || d.FutureTimeKept != c.kept ||
				d.RowsKept != c.rowsKept || c.rowsKept > 0 && d.RowGroups.Dropped != 0 {
				t.Errorf("retain --dry-run: removed %v, future kept %d, %d kept, %d row groups dropped; want retention %d, future_time %d, future kept %d, %d kept",
					d.Removed, d.FutureTimeKept, d.RowsKept, d.RowGroups.Dropped, c.retention, c.future, c.kept, c.rowsKept)
			}
		})
	}
}
