package retain

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// The isolation test's lake: retention 3 years, a legal minimum of 2 years,
// subjects 1002 and 1007 erased, 1007 also on a legal hold.
var (
	isoErased = []int64{1002, 1007}
	isoHeld   = []int64{1007}
)

// isoLake writes the lake's files under dir and returns their rows: per
// file, rows of a subject and a kind of time: "recent" (a month old: inside
// the legal minimum), "mid" (2.5 years: past the minimum, inside
// retention), "old" (past retention), "open" (NULL completed_at).
func isoLake(t *testing.T, dir string) map[string][]order {
	spec := map[string][]struct {
		user int64
		kind string
		n    int
	}{
		"part-0": {{1002, "recent", 5}, {1005, "recent", 5}, {1002, "old", 3}},
		"part-1": {{1007, "recent", 5}, {1002, "open", 3}, {1005, "mid", 4}},
		"part-2": {{1002, "mid", 4}, {1005, "recent", 3}},
		"part-3": {{1002, "recent", 4}}, // isolated whole: the source file goes
	}
	files := map[string][]order{}
	for file, groups := range spec {
		var rows []order
		for g, s := range groups {
			for i := range s.n {
				o := order{ID: fmt.Sprintf("%s-%d-%d", file, g, i), User: s.user, Amount: float64(g*10+i) + 0.25,
					Province: []string{"浙江省", "广东省"}[i%2], Phone: fmt.Sprintf("1390013%04d", g*10+i)}
				h := time.Duration(i) * time.Hour
				var c time.Time
				switch s.kind {
				case "recent":
					c = now.AddDate(0, -1, 0).Add(-h)
				case "mid":
					c = now.AddDate(-2, -6, 0).Add(-h)
				case "old":
					c = now.AddDate(-3, 0, -10).Add(-h)
				}
				if s.kind == "open" {
					o.Created = now.AddDate(0, 0, -10).Add(-h)
				} else {
					o.Completed = tp(c)
					o.Created = c.Add(-24 * time.Hour)
				}
				rows = append(rows, o)
			}
		}
		writeOrders(t, filepath.Join(dir, "orders", file+".parquet"), rows, 4, nil)
		files[file] = rows
	}
	return files
}

// isoModel is the test's own statement of the lake: rows in the source
// files and in the isolated part, by source file stem.
type isoModel struct {
	source, iso map[string][]order
}

// isoStep is what one run at at does, by the test's reading of the policy.
type isoStep struct {
	isolated, released, remaining int64
	removed, held                 map[string]int64
	anonymized                    []string
}

// step applies one retain run at instant at to the model.
func (m isoModel) step(at time.Time) (isoModel, isoStep) {
	retCut, legalCut := at.AddDate(-3, 0, 0), at.AddDate(-2, 0, 0)
	s := isoStep{removed: map[string]int64{report.RemovedRetention: 0, report.RemovedNullTime: 0, report.RemovedErasure: 0},
		held: map[string]int64{report.HeldLegalHold: 0, report.HeldLegalMinimum: 0}}
	next := isoModel{source: map[string][]order{}, iso: map[string][]order{}}
	decide := func(o order, isolated bool) (where string) {
		held := slices.Contains(isoHeld, o.User)
		erased := isolated || slices.Contains(isoErased, o.User)
		reason := ""
		switch {
		case o.Completed != nil && o.Completed.Before(retCut):
			reason = report.RemovedRetention
		case erased && (o.Completed == nil || !o.Completed.Before(legalCut)):
			s.held[report.HeldLegalMinimum]++
			return "iso"
		case erased:
			reason = report.RemovedErasure
		default:
			return "stay"
		}
		if held {
			s.held[report.HeldLegalHold]++
			return "stay"
		}
		s.removed[reason]++
		day := "NULL"
		if o.Completed != nil {
			day = o.Completed.UTC().Truncate(24 * time.Hour).Format(time.RFC3339)
		}
		s.anonymized = append(s.anonymized, fmt.Sprintf("%g|%s|%s", o.Amount, o.Province, day))
		return "gone"
	}
	for file, rows := range m.source {
		for _, o := range rows {
			switch decide(o, false) {
			case "stay":
				next.source[file] = append(next.source[file], o)
			case "iso":
				next.iso[file] = append(next.iso[file], o)
				s.isolated++
			}
		}
	}
	for file, rows := range m.iso {
		for _, o := range rows {
			if decide(o, true) == "gone" {
				s.released++
				continue
			}
			next.iso[file] = append(next.iso[file], o)
			s.remaining++
		}
	}
	sort.Strings(s.anonymized)
	return next, s
}

func keys(files map[string][]order, ext string) map[string][]string {
	out := map[string][]string{}
	for file, rows := range files {
		for _, o := range rows {
			out[file+ext] = append(out[file+ext], o.key())
		}
		sort.Strings(out[file+ext])
	}
	return out
}

// TestRetainIsolation: rows of erased subjects inside the legal minimum move
// to the isolated part (and a source file isolated whole goes); the same
// run again changes nothing; a run after the minimum ended deletes or
// anonymizes them, deletes the emptied isolated files, and keeps those of
// a subject on a legal hold (and rows whose legal clock has not started);
// that run is idempotent too. Rows are compared as multisets read with
// parquet-go.
func TestRetainIsolation(t *testing.T) {
	for _, then := range []string{"delete", "anonymize"} {
		t.Run(then, func(t *testing.T) {
			dir := t.TempDir()
			model := isoModel{source: isoLake(t, dir), iso: map[string][]order{}}
			opts := policyOpts{legal: true, legalKeep: "2y", erasure: isoErased, holds: isoHeld, anonymize: then == "anonymize"}
			writePolicy(t, dir, opts)
			pol, err := rules.Load(filepath.Join(dir, "policy.yaml"), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			var anonymized []string
			later := now.AddDate(2, 0, 0) // the minimum of the "recent" rows has ended; retention has not
			for i, at := range []time.Time{now, now, later, later} {
				plan, err := rules.CompileRetain(pol, at)
				if err != nil {
					t.Fatal(err)
				}
				var want isoStep
				model, want = model.step(at)
				anonymized = append(anonymized, want.anonymized...)
				sort.Strings(anonymized)
				mtimes := modTimes(t, dir)
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				runID := fmt.Sprintf("run%d", i)
				dry, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Mem: mem, RunID: runID, DryRun: true})
				if err != nil {
					t.Fatal(err)
				}
				rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Mem: mem, RunID: runID})
				if err != nil {
					t.Fatal(err)
				}
				mem.AssertSize(t, 0)
				ds := rep.Datasets[0]
				where := fmt.Sprintf("run %d at %s", i, at.Format(time.DateOnly))
				if got, w := lakeRows(t, dir, nil), keys(model.source, ".parquet"); !equalRows(got, w) {
					t.Errorf("%s: source rows differ:\n%s", where, diffRows(got, w))
				}
				if got, w := isoRows(t, dir, nil), keys(model.iso, ""); !equalRows(got, w) {
					t.Errorf("%s: isolated rows differ:\n%s", where, diffRows(got, w))
				}
				if then == "anonymize" {
					if got := anonRows(t, dir); !slices.Equal(got, anonymized) {
						t.Errorf("%s: anonymized rows %d, want %d", where, len(got), len(anonymized))
					}
				} else if _, err := os.Stat(filepath.Join(dir, "orders", anonFolder)); err == nil {
					t.Errorf("%s: then: delete wrote an anonymized part", where)
				}
				iso := ds.Isolation
				if iso.Isolated != want.isolated || iso.Released != want.released || iso.Remaining != want.remaining {
					t.Errorf("%s: isolation %+v, want isolated %d released %d remaining %d", where, iso, want.isolated, want.released, want.remaining)
				}
				if !mapsEqual(ds.Removed, want.removed) || !mapsEqual(ds.Held, want.held) {
					t.Errorf("%s: removed %v held %v, want %v %v", where, ds.Removed, ds.Held, want.removed, want.held)
				}
				if d := dry.Datasets[0]; d.Isolation.Isolated != iso.Isolated || d.Isolation.Released != iso.Released || !mapsEqual(d.Removed, ds.Removed) {
					t.Errorf("%s: the dry run reported %+v %v, the run %+v %v", where, d.Isolation, d.Removed, iso, ds.Removed)
				}
				if left := leftovers(t, dir); len(left) > 0 {
					t.Errorf("%s: left behind: %v", where, left)
				}
				switch i {
				case 0:
					// the layout: <root>/_restricted/<file path without .parquet>/<run id>.parquet
					files := ls(t, filepath.Join(dir, "orders", isoFolder))
					if w := []string{"part-0/run0.parquet", "part-1/run0.parquet", "part-3/run0.parquet"}; !slices.Equal(files, w) {
						t.Errorf("isolated part holds %v, want %v", files, w)
					}
					if _, err := os.Stat(filepath.Join(dir, "orders", "part-3.parquet")); err == nil {
						t.Error("the source file isolated whole is still there")
					}
					if ds.Files != (report.FileCounts{Scanned: 4, Rewritten: 3, Deleted: 1}) || iso.Files != (report.FileCounts{}) {
						t.Errorf("files %+v, isolated files %+v", ds.Files, iso.Files)
					}
				case 2:
					// part-0's and part-3's isolated rows all went: their files too
					if files := ls(t, filepath.Join(dir, "orders", isoFolder)); !slices.Equal(files, []string{"part-1/run0.parquet"}) {
						t.Errorf("isolated part holds %v after the release", files)
					}
					if iso.Files != (report.FileCounts{Scanned: 3, Untouched: 1, Deleted: 2}) {
						t.Errorf("isolated files %+v", iso.Files)
					}
					if then == "anonymize" {
						if files := ls(t, filepath.Join(dir, "orders", anonFolder)); !slices.Contains(files, "part-0/run2-released-run0.parquet") {
							t.Errorf("anonymized part holds %v", files)
						}
					}
				case 1, 3:
					// the same instant again: nothing changes
					if ds.Files.Rewritten+ds.Files.Deleted+iso.Files.Rewritten+iso.Files.Deleted != 0 || !mapsEqualT(modTimes(t, dir), mtimes) {
						t.Errorf("%s: the repeated run changed files: %+v %+v", where, ds.Files, iso.Files)
					}
				}
				if (i == 0 || i == 2) && want.isolated+want.released == 0 {
					t.Fatalf("%s: the step moved nothing: the test proves nothing", where)
				}
			}
		})
	}
}

// ls lists the files under dir, relative, with "/" separators, sorted.
func ls(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestRunSkipsIsolatedPart: deid run never reads the isolated part, even
// with a ** source glob and once nothing else would keep its rows out (the
// erasure list emptied).
func TestRunSkipsIsolatedPart(t *testing.T) {
	dir := t.TempDir()
	isoLake(t, dir)
	writePolicy(t, dir, policyOpts{legal: true, legalKeep: "2y", erasure: isoErased})
	plan, err := rules.CompileRetain(mustLoad(t, filepath.Join(dir, "policy.yaml")), now)
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, plan, false)
	if rep.Datasets[0].Isolation.Isolated == 0 {
		t.Fatal("nothing was isolated: the test proves nothing")
	}
	os.WriteFile(filepath.Join(dir, "erasure.csv"), []byte("user_id\n"), 0o644)
	src, _ := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	policy := strings.Replace(strings.Replace(string(src), "/orders/*.parquet", "/orders/**/*.parquet", 1), "amount: drop", "amount: keep", 1)
	path := filepath.Join(dir, "policy-run.yaml")
	os.WriteFile(path, []byte(policy), 0o644)

	_, matches, err := storage.Glob(context.Background(), storage.Local{}, filepath.Join(dir, "orders", "**", "*.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	var sourceRows int
	for _, m := range matches {
		if strings.Contains(m.Rel, isoFolder) || strings.Contains(m.Rel, anonFolder) {
			t.Errorf("the source glob lists %s", m.Location)
		}
		sourceRows += len(readOrders(t, m.Location, nil))
	}
	full, err := rules.Compile(mustLoad(t, path), rules.CompileOptions{Now: now, Lookup: os.LookupEnv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(context.Background(), full, pipeline.Options{Store: storage.Local{}, RunID: "deid-run", Workers: 1}); err != nil {
		t.Fatal(err)
	}
	type outRow struct {
		Amount float64 `parquet:"amount,optional"`
	}
	outRows := 0
	for _, f := range ls(t, filepath.Join(dir, "out")) {
		if !strings.HasSuffix(f, ".parquet") || strings.HasPrefix(f, "_") || strings.HasPrefix(f, ".") {
			continue
		}
		rows, err := parquet.ReadFile[outRow](filepath.Join(dir, "out", f))
		if err != nil {
			t.Fatal(err)
		}
		outRows += len(rows)
	}
	if outRows != sourceRows || sourceRows == 0 {
		t.Errorf("deid run wrote %d rows from %d source rows: it read the isolated part", outRows, sourceRows)
	}
}

func mustLoad(t *testing.T, path string) *rules.Policy {
	t.Helper()
	p, err := rules.Load(path, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRetainReplaysV1Journal: a journal an earlier version wrote (format
// v1, no isolated rows) is still completed.
func TestRetainReplaysV1Journal(t *testing.T) {
	dir := t.TempDir()
	writeOrders(t, filepath.Join(dir, "orders", "part-0.parquet"), genOrders(0, []string{"new"}, 10), 10, nil)
	writeOrders(t, filepath.Join(dir, "orders", "part-1.parquet"), genOrders(1, []string{"new"}, 10), 10, nil)
	plan := writePolicy(t, dir, policyOpts{})
	work := filepath.Join(dir, "orders", workDir)
	os.MkdirAll(work, 0o755)
	j := fmt.Sprintf(`{"format": %q, "run_id": "old", "dataset": "orders", "actions": [{"file": %q, "delete": true}]}`,
		journalFormatV1, filepath.Join(dir, "orders", "part-1.parquet"))
	if err := os.WriteFile(filepath.Join(work, journalName), []byte(j), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := run(t, plan, false)
	if rep.Datasets[0].Recovered != recoveredForward {
		t.Errorf("recovered %q, want %q", rep.Datasets[0].Recovered, recoveredForward)
	}
	if rows := lakeRows(t, dir, nil); len(rows) != 1 || len(rows["part-0.parquet"]) != 10 {
		t.Errorf("after replaying the v1 journal: %d files", len(rows))
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestRetainReleasesAfterListPruned: the erasure list is pruned once acted
// on. The run that releases isolated rows after the legal minimum still
// reads their subject column (every file of the isolated part needs it,
// whatever the lists hold) and records the released subjects as erased.
func TestRetainReleasesAfterListPruned(t *testing.T) {
	dir := t.TempDir()
	isoLake(t, dir)
	writePolicy(t, dir, policyOpts{legal: true, legalKeep: "2y", erasure: isoErased})
	pol, err := rules.Load(filepath.Join(dir, "policy.yaml"), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	run := func(pol *rules.Policy, at time.Time, id string) *report.RetainDataset {
		plan, err := rules.CompileRetain(pol, at)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, RunID: id})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Datasets[0]
	}
	if ds := run(pol, now, "run0"); ds.Isolation.Isolated == 0 {
		t.Fatalf("nothing isolated: %+v", ds.Isolation)
	}
	writePolicy(t, dir, policyOpts{legal: true, legalKeep: "2y", erasure: []int64{}}) // the list, pruned
	pruned, err := rules.Load(filepath.Join(dir, "policy.yaml"), os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	ds := run(pruned, now.AddDate(2, 0, 0), "run1")
	if ds.Isolation.Released == 0 {
		t.Fatalf("nothing released: %+v", ds.Isolation)
	}
	if ds.Subjects.Erased == 0 || len(ds.Subjects.Fingerprints) != int(ds.Subjects.Erased) {
		t.Errorf("%d rows released, but %d subjects recorded as erased (%d fingerprints)", ds.Isolation.Released, ds.Subjects.Erased, len(ds.Subjects.Fingerprints))
	}
}
