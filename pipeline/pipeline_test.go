package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// TestRunSample runs the reference policy over the shipped sample and checks
// the output contract: layout mirroring the input partitions, a manifest
// whose hashes match the files, a report, no staging left, and rows that
// read back with an independent reader.
func TestRunSample(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	src := filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet")
	plan := compile(t, dir, samplePolicy(src, filepath.Join(sampleDir(t), "erasure.parquet"), out))
	rep, err := runPlan(t, plan, 2)
	if err != nil {
		t.Fatal(err)
	}
	ds := rep.Datasets[0]
	if ds.RowsIn != 10000 || ds.RowsKept+ds.Removed["retention"]+ds.Removed["erasure"]+ds.Removed["null_time"] != ds.RowsIn {
		t.Errorf("counts do not add up: %+v", ds)
	}
	if ds.Removed["erasure"] == 0 || ds.Removed["retention"] == 0 || ds.RowsKept == 0 {
		t.Errorf("the sample should exercise both rules: %+v", ds.Removed)
	}
	files := tree(t, out)
	want := []string{
		"_manifest.json",
		"_reports/" + rep.RunID + "/report.html",
		"_reports/" + rep.RunID + "/report.json",
		"browsing/dt=2026-10-30/part-0.parquet",
		"browsing/dt=2026-10-31/part-0.parquet",
	}
	if got := keys(files); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("output tree %v, want %v", got, want)
	}
	m, err := output.ReadManifest(context.Background(), storage.Local{}, out)
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, f := range m.Files {
		if files[f.Path] != f.SHA256 {
			t.Errorf("%s: manifest says %s, file hashes to %s", f.Path, f.SHA256, files[f.Path])
		}
		if f.RunID != rep.RunID || f.KeyFingerprint != "8f0f1667feffabbf" || f.PolicySHA256 != plan.Policy.SHA256 {
			t.Errorf("%s: lineage %+v", f.Path, f)
		}
		if len(f.Columns) != 12 || f.Columns[1].Transform != "pseudonymize" || f.Columns[1].SourceType != "int64" || f.Columns[1].OutputType != "utf8" {
			t.Errorf("%s: columns %+v", f.Path, f.Columns[1])
		}
		// the input's SHA-256, for a local file, hashed here again
		if b, err := os.ReadFile(f.Input.Location); err != nil || f.Input.SHA256 != fmt.Sprintf("%x", sha256.Sum256(b)) {
			t.Errorf("%s: input SHA-256 %q, want that of %s (%v)", f.Path, f.Input.SHA256, f.Input.Location, err)
		}
		rows += f.Rows
		// read back with parquet-go
		pf := openParquetGo(t, filepath.Join(out, f.Path))
		if pf.NumRows() != f.Rows {
			t.Errorf("%s: parquet-go reads %d rows, manifest says %d", f.Path, pf.NumRows(), f.Rows)
		}
	}
	for _, in := range ds.Files {
		if b, err := os.ReadFile(in.Location); err != nil || in.SHA256 != fmt.Sprintf("%x", sha256.Sum256(b)) {
			t.Errorf("report: input %s SHA-256 %q (%v)", in.Location, in.SHA256, err)
		}
	}
	if pr, err := Plan(context.Background(), plan, Options{}); err != nil || pr.Datasets[0].Files[0].SHA256 != "" {
		t.Errorf("a dry run hashed its inputs: %v", err)
	}
	if rows != ds.RowsKept || rep.Destinations[0].RowsOut != rows {
		t.Errorf("rows: manifest %d, kept %d, destination %d", rows, ds.RowsKept, rep.Destinations[0].RowsOut)
	}
	if _, err := os.Stat(filepath.Join(out, output.StagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging folder left behind: %v", err)
	}
	// the report on disk is the one returned, for this destination
	var onDisk report.Run
	b, _ := os.ReadFile(filepath.Join(out, "_reports", rep.RunID, "report.json"))
	if err := json.Unmarshal(b, &onDisk); err != nil || onDisk.RunID != rep.RunID || onDisk.Outcome != "succeeded" ||
		onDisk.Datasets[0].RowsKept != ds.RowsKept || onDisk.Keys[0].Fingerprint != "8f0f1667feffabbf" {
		t.Errorf("report on disk: %v, run %s, outcome %s", err, onDisk.RunID, onDisk.Outcome)
	}
}

func openParquetGo(t testing.TB, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	info, _ := f.Stat()
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatalf("parquet-go cannot open %s: %v", path, err)
	}
	return pf
}

// TestDeterminism: the same inputs, policy, key and now give byte-identical
// outputs, whatever the number of workers, and in a second run.
func TestDeterminism(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet")
	erasure := filepath.Join(sampleDir(t), "erasure.parquet")
	var first map[string]string
	for _, workers := range []int{1, 2, 4, 1} {
		out := filepath.Join(dir, fmt.Sprintf("out-%d-%d", workers, len(first)))
		plan := compile(t, dir, samplePolicy(src, erasure, out))
		if _, err := runPlan(t, plan, workers); err != nil {
			t.Fatal(err)
		}
		got := tree(t, filepath.Join(out, "browsing"))
		if first == nil {
			first = got
			continue
		}
		for path, sum := range first {
			if got[path] != sum {
				t.Errorf("workers=%d: %s differs", workers, path)
			}
		}
	}
}

// TestRerunReplacesAndManifestMerges: a run replaces the files of its inputs
// and keeps the manifest entries of files from other inputs.
func TestRerunReplacesAndManifestMerges(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	erasure := filepath.Join(sampleDir(t), "erasure.parquet")
	day := func(d string) string { return filepath.Join(sampleDir(t), "browsing", "dt="+d, "*.parquet") }
	// one day at a time, the glob's fixed prefix is the partition folder:
	// both days would write browsing/part-0.parquet
	rep1, err := runPlan(t, compile(t, dir, samplePolicy(day("2026-10-30"), erasure, out)), 2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runPlan(t, compile(t, dir, samplePolicy(day("2026-10-31"), erasure, out)), 2)
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "already holds the output of") {
		t.Fatalf("a second day overwriting the first day's output: %v", err)
	}
	// with root: the partition folders are kept
	root := filepath.Join(sampleDir(t), "browsing")
	out = filepath.Join(dir, "out2")
	rep1, err = runPlan(t, compile(t, dir, withRoot(samplePolicy(day("2026-10-30"), erasure, out), root)), 2)
	if err != nil {
		t.Fatal(err)
	}
	rep2, err := runPlan(t, compile(t, dir, withRoot(samplePolicy(day("2026-10-31"), erasure, out), root)), 2)
	if err != nil {
		t.Fatal(err)
	}
	m, err := output.ReadManifest(context.Background(), storage.Local{}, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.RunID != rep2.RunID {
		t.Fatalf("manifest: %d files, run %s", len(m.Files), m.RunID)
	}
	// each run writes into its own partition folder: the relative path is
	// taken from the glob's fixed prefix, here the partition folder itself
	byRun := map[string]string{}
	for _, f := range m.Files {
		byRun[f.RunID] = f.Path
	}
	if len(byRun) != 2 || byRun[rep1.RunID] == "" || byRun[rep2.RunID] == "" {
		t.Errorf("manifest does not keep the first run's file: %+v", byRun)
	}
	before := tree(t, out)
	rep3, err := runPlan(t, compile(t, dir, withRoot(samplePolicy(day("2026-10-31"), erasure, out), root)), 1)
	if err != nil {
		t.Fatal(err)
	}
	after := tree(t, out)
	for path, sum := range before {
		if strings.HasPrefix(path, "browsing/") && after[path] != sum {
			t.Errorf("%s changed on a rerun", path)
		}
	}
	m, _ = output.ReadManifest(context.Background(), storage.Local{}, out)
	if len(m.Files) != 2 || m.RunID != rep3.RunID {
		t.Errorf("after rerun: %d files, run %s", len(m.Files), m.RunID)
	}
	if len(keys(after)) != len(keys(before))+2 { // one more report, JSON and HTML
		t.Errorf("rerun left %d files, before %d", len(after), len(before))
	}
}

// TestPlanCountsEqualRun: the dry run reports the counts the run reports.
func TestPlanCountsEqualRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"),
		filepath.Join(sampleDir(t), "erasure.parquet"), out))
	dry, err := Plan(context.Background(), plan, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("plan wrote to the output: %v", err)
	}
	real, err := runPlan(t, plan, 2)
	if err != nil {
		t.Fatal(err)
	}
	pd, rd := dry.Destinations[0], real.Destinations[0]
	if pd.RowsOut != rd.RowsOut || len(pd.Files) != len(rd.Files) {
		t.Errorf("plan would write %d rows in %d files, run wrote %d in %d", pd.RowsOut, len(pd.Files), rd.RowsOut, len(rd.Files))
	}
	for i := range pd.Files {
		if pd.Files[i].Path != rd.Files[i].Path || pd.Files[i].Rows != rd.Files[i].Rows {
			t.Errorf("plan file %+v, run file %+v", pd.Files[i], rd.Files[i])
		}
	}
	for i, d := range dry.Datasets {
		r := real.Datasets[i]
		if d.RowsIn != r.RowsIn || d.RowsKept != r.RowsKept || fmt.Sprint(d.Removed) != fmt.Sprint(r.Removed) {
			t.Errorf("plan %+v, run %+v", d, r)
		}
		for j := range d.Files {
			if fmt.Sprint(d.Files[j].Removed) != fmt.Sprint(r.Files[j].Removed) || d.Files[j].RowsKept != r.Files[j].RowsKept {
				t.Errorf("file %s: plan %+v, run %+v", d.Files[j].Location, d.Files[j], r.Files[j])
			}
		}
	}
}

// TestNoKeyMaterialLeaves: neither the key's hex nor its bytes appear in any
// output file, manifest, report or log line.
func TestNoKeyMaterialLeaves(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"),
		filepath.Join(sampleDir(t), "erasure.parquet"), out))
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rep, err := Run(context.Background(), plan, Options{Logger: logger, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rep.JSON()
	key := plan.Keys[0].Secret()
	haystacks := map[string][]byte{"logs": logs.Bytes(), "returned report": b}
	for path := range tree(t, out) {
		haystacks[path], _ = os.ReadFile(filepath.Join(out, path))
	}
	for name, h := range haystacks {
		for _, needle := range [][]byte{[]byte(testKeyHex), []byte(strings.ToUpper(testKeyHex)), key} {
			if bytes.Contains(h, needle) {
				t.Errorf("%s contains key material", name)
			}
		}
	}
	if !bytes.Contains(haystacks["_manifest.json"], []byte("8f0f1667feffabbf")) {
		t.Error("the manifest does not record the key's fingerprint")
	}
}

// TestNaiveTimestampsNeedAZone: timestamps stored without the UTC flag are
// refused unless the dataset declares their zone; then they are read as
// local times of that zone.
func TestNaiveTimestampsNeedAZone(t *testing.T) {
	dir := t.TempDir()
	naive := &arrow.TimestampType{Unit: arrow.Millisecond}
	// wall clock in Shanghai: 2025-11-01 07:59 is 2025-10-31T23:59Z (expired),
	// 08:00 is exactly the cut-off (kept)
	writeTable(t, filepath.Join(dir, "in", "a.parquet"), 100,
		column{"id", arrowString, []any{"old", "boundary", "null"}},
		column{"at", naive, []any{time.Date(2025, 11, 1, 7, 59, 0, 0, time.UTC), time.Date(2025, 11, 1, 8, 0, 0, 0, time.UTC), nil}})
	policy := func(zone string) string {
		return `version: 1
name: tz
datasets:
  logs:
    source: in/*.parquet
` + zone + `    columns: {id: event_id, at: timestamp}
    retention: {time_column: at, keep: 365d, on_null: keep}
destinations:
  out:
    purpose: analytics
    output: out
    datasets:
      logs:
        columns: {id: keep, at: {transform: truncate_time, unit: hour}}
`
	}
	_, err := runPlan(t, compile(t, dir, policy("")), 1)
	if !errors.Is(err, ErrData) || !strings.Contains(err.Error(), "time_zone") || !strings.Contains(err.Error(), "a.parquet") {
		t.Fatalf("naive timestamps without a zone: %v", err)
	}
	rep, err := runPlan(t, compile(t, dir, policy("    time_zone: Asia/Shanghai\n")), 1)
	if err != nil {
		t.Fatal(err)
	}
	ds := rep.Datasets[0]
	if ds.RowsKept != 2 || ds.Removed["retention"] != 1 {
		t.Errorf("kept %d, removed %v", ds.RowsKept, ds.Removed)
	}
	type row struct {
		ID string    `parquet:"id,optional"`
		At time.Time `parquet:"at,optional,timestamp(millisecond)"`
	}
	rows, err := parquet.ReadFile[row](filepath.Join(dir, "out", "logs", "a.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != "boundary" || !rows[0].At.Equal(time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("rows %+v", rows)
	}
}

// TestUnclassifiedDrop: with unclassified: drop, a column the policy does not
// know is left out of every output and reported.
func TestUnclassifiedDrop(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, filepath.Join(dir, "in", "a.parquet"), 100,
		column{"id", arrowString, []any{"a", "b"}},
		column{"secret_phone", arrowString, []any{"13800138000", "13900139000"}})
	text := `version: 1
name: drop
datasets:
  logs:
    source: in/*.parquet
    unclassified: drop
    columns: {id: event_id}
destinations:
  out:
    purpose: analytics
    output: out
    datasets:
      logs:
        columns: {id: keep}
`
	rep, err := runPlan(t, compile(t, dir, text), 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Datasets[0].DroppedColumns) != "[secret_phone]" {
		t.Errorf("dropped %v", rep.Datasets[0].DroppedColumns)
	}
	pf := openParquetGo(t, filepath.Join(dir, "out", "logs", "a.parquet"))
	if len(pf.Schema().Fields()) != 1 || pf.Schema().Fields()[0].Name() != "id" {
		t.Errorf("output schema %v", pf.Schema())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out", "logs", "a.parquet"))
	if bytes.Contains(b, []byte("13800138000")) {
		t.Error("the dropped column's values reached the output")
	}
}

// TestAllRowsRemoved: an input whose rows are all removed still yields an
// output file, with the schema and no rows.
func TestAllRowsRemoved(t *testing.T) {
	dir := t.TempDir()
	writeTable(t, filepath.Join(dir, "in", "a.parquet"), 100,
		column{"id", arrowString, []any{"a", "b"}},
		column{"at", utcMillis, []any{time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), nil}})
	text := `version: 1
name: empty
datasets:
  logs:
    source: in/*.parquet
    columns: {id: event_id, at: timestamp}
    retention: {time_column: at, keep: 30d, on_null: remove}
destinations:
  out:
    purpose: analytics
    output: out
    datasets:
      logs:
        columns: {id: keep, at: keep}
`
	rep, err := runPlan(t, compile(t, dir, text), 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Datasets[0].Removed["null_time"] != 1 || rep.Datasets[0].Removed["retention"] != 1 {
		t.Errorf("removed %v", rep.Datasets[0].Removed)
	}
	pf := openParquetGo(t, filepath.Join(dir, "out", "logs", "a.parquet"))
	if pf.NumRows() != 0 || len(pf.Schema().Fields()) != 2 {
		t.Errorf("%d rows, schema %v", pf.NumRows(), pf.Schema())
	}
}

// TestCancelPublishesNothing: a run cancelled midway, wherever that falls
// (before any part, with outputs half spliced, between files), leaves no
// output, no staged file and no part in the scratch folder.
func TestCancelPublishesNothing(t *testing.T) {
	for at := 1; at <= 8; at++ {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		plan := compile(t, dir, samplePolicy(filepath.Join(sampleDir(t), "browsing", "dt=*", "*.parquet"),
			filepath.Join(sampleDir(t), "erasure.parquet"), out))
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		scratch := t.TempDir()
		_, err := Run(ctx, plan, Options{Workers: 1 + at%2, BatchSize: 500, ScratchDir: scratch, Progress: func(p Progress) {
			if n++; n == at {
				cancel()
			}
		}})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled at progress %d: error %v", at, err)
		}
		if files := tree(t, out); len(files) != 0 {
			t.Errorf("cancelled at progress %d: the run left %v", at, keys(files))
		}
		if files := tree(t, scratch); len(files) != 0 {
			t.Errorf("cancelled at progress %d: the scratch folder holds %v", at, keys(files))
		}
	}
}

var arrowString = arrow.BinaryTypes.String
