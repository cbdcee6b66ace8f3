package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deidproject/deid/pipeline/internal/pqtest"
	"github.com/deidproject/deid/pipeline/internal/testmem"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/rules"
)

const testKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// testNow is the reference instant of the tests, as in WORKLOAD.md.
var testNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func env(vars map[string]string) rules.LookupEnv {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// compile writes policy text into dir and compiles it.
func compile(t testing.TB, dir, text string) *rules.Plan {
	t.Helper()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup := env(map[string]string{"K": testKeyHex})
	p, err := rules.Load(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rules.Compile(p, rules.CompileOptions{Now: testNow, Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// samplePolicy is the reference policy over the given source glob and
// erasure list, writing to out.
func samplePolicy(source, erasure, out string) string {
	return strings.NewReplacer("SOURCE", source, "ERASURE", erasure, "OUTPUT", out).Replace(`version: 1
name: test
keys:
  k: hex:env:K
datasets:
  browsing:
    source: SOURCE
    subject: user_id
    columns:
      event_id: event_id
      user_id: account_id
      device_id: imei
      oaid: advertising_id
      ip: ip
      user_agent: user_agent
      url: url
      search_query: free_text
      event_time: timestamp
      lat: latitude
      lon: longitude
      city: city
    retention: {time_column: event_time, keep: 365d, on_null: remove}
    erasure:
      - list: ERASURE
destinations:
  ref:
    purpose: analytics
    output: OUTPUT
    key: k
    datasets:
      browsing:
        columns:
          event_id: keep
          user_id: pseudonymize
          device_id: pseudonymize
          oaid: pseudonymize
          ip: {transform: generalize_ip, variant: bench}
          user_agent: keep
          url: url_strip
          search_query: {transform: scrub, detectors: [email_bench, phone_bench]}
          event_time: {transform: truncate_time, unit: hour}
          lat: {transform: round, digits: 2}
          lon: {transform: round, digits: 2}
          city: keep
`)
}

// withRoot adds root: to the policy's dataset.
func withRoot(policy, root string) string {
	return strings.Replace(policy, "    subject: user_id\n", "    subject: user_id\n    root: "+root+"\n", 1)
}

// sampleDir is the browsing sample shipped in testdata.
func sampleDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs("../testdata/sample")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// copySample copies the sample's partitions into dir/browsing.
func copySample(t testing.TB, dir string) string {
	t.Helper()
	src := filepath.Join(sampleDir(t), "browsing")
	dst := filepath.Join(dir, "browsing")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755)
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// runPlan runs a plan with a leak-checking allocator.
func runPlan(t testing.TB, plan *rules.Plan, workers int) (*report.Run, error) {
	t.Helper()
	mem := testmem.New(t)
	return Run(context.Background(), plan, Options{Workers: workers, Mem: mem, ScratchDir: t.TempDir(), BatchSize: 1000})
}

// tree returns every file under root with its SHA-256, relative paths sorted.
func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		sum := sha256.Sum256(b)
		rel, _ := filepath.Rel(root, p)
		out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		return nil
	})
	return out
}

func keys(m map[string]string) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// column is one column of a test table.
type column struct {
	name string
	typ  arrow.DataType
	// values: string, int64, float64, time.Time, []string (a struct of
	// string fields) or nil (NULL), one per row
	values []any
}

// appendValue appends v to builder fb (see column.values).
func appendValue(t testing.TB, fb array.Builder, v any) {
	if v == nil {
		fb.AppendNull()
		return
	}
	switch fb := fb.(type) {
	case *array.StringBuilder:
		fb.Append(v.(string))
	case *array.Int64Builder:
		fb.Append(v.(int64))
	case *array.Float64Builder:
		fb.Append(v.(float64))
	case *array.TimestampBuilder:
		fb.Append(arrow.Timestamp(v.(time.Time).UnixMilli()))
	case *array.StructBuilder:
		fb.Append(true)
		for k, s := range v.([]string) {
			fb.FieldBuilder(k).(*array.StringBuilder).Append(s)
		}
	default:
		t.Fatalf("writeTable: %T", fb)
	}
}

// writeTable writes a Parquet file with Arrow, in row groups of rg rows.
func writeTable(t testing.TB, path string, rg int64, cols ...column) {
	t.Helper()
	mem := memory.NewGoAllocator()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
	}
	sch := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	for i, c := range cols {
		for _, v := range c.values {
			appendValue(t, b.Field(i), v)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rg), parquet.WithAllocator(mem))
	pqtest.WriteArrow(t, f, rec, props, pqarrow.NewArrowWriterProperties())
}

var utcMillis = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
