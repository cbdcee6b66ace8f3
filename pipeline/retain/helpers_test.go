package retain

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// now is the reference instant of every test; retention keeps 3 years.
var (
	now    = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	cutoff = time.Date(2023, 11, 1, 0, 0, 0, 0, time.UTC)
	fbCut  = time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC) // fallback: created_at + 1y
)

// order is one row of the test dataset.
type order struct {
	ID        string
	User      int64
	Created   time.Time
	Completed *time.Time
	Amount    float64
	Province  string
	Phone     string
}

func (o order) key() string {
	c := "NULL"
	if o.Completed != nil {
		c = o.Completed.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s|%d|%s|%s|%g|%s|%s", o.ID, o.User, o.Created.UTC().Format(time.RFC3339Nano), c, o.Amount, o.Province, o.Phone)
}

// orderSchema is the dataset's Arrow schema; local makes the times
// wall-clock timestamps (no UTC flag).
func orderSchema(local bool) *arrow.Schema {
	zone := "UTC"
	if local {
		zone = ""
	}
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: zone}
	return arrow.NewSchema([]arrow.Field{
		{Name: "order_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "created_at", Type: ts, Nullable: true},
		{Name: "completed_at", Type: ts, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "province", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "phone", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
}

// writeOrders writes rows as a Parquet file of row groups of rgRows rows
// with deid's writer. With local, times are written as wall-clock readings
// in loc.
func writeOrders(t testing.TB, path string, rows []order, rgRows int64, local *time.Location) {
	t.Helper()
	writeOrdersWith(t, path, rows, rgRows, local, "")
}

// writeOrdersWith is writeOrders with the pages compressed by codec (a
// parquetio.WriterOptions codec name; "" is zstd).
func writeOrdersWith(t testing.TB, path string, rows []order, rgRows int64, local *time.Location, codec string) {
	t.Helper()
	mem := memory.NewGoAllocator()
	sch := orderSchema(local != nil)
	b := array.NewRecordBuilder(mem, sch)
	defer b.Release()
	tick := func(tm time.Time) arrow.Timestamp {
		if local != nil {
			w := tm.In(local)
			tm = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), time.UTC)
		}
		return arrow.Timestamp(tm.UnixMicro())
	}
	for _, o := range rows {
		b.Field(0).(*array.StringBuilder).Append(o.ID)
		b.Field(1).(*array.Int64Builder).Append(o.User)
		b.Field(2).(*array.TimestampBuilder).Append(tick(o.Created))
		if o.Completed == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.TimestampBuilder).Append(tick(*o.Completed))
		}
		b.Field(4).(*array.Float64Builder).Append(o.Amount)
		b.Field(5).(*array.StringBuilder).Append(o.Province)
		b.Field(6).(*array.StringBuilder).Append(o.Phone)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	enc, err := parquetio.NewPartEncoder(&buf, sch, map[string]bool{"province": true}, parquetio.WriterOptions{MaxRowGroupRows: rgRows, Codec: codec}, mem)
	if err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < rec.NumRows(); off += rgRows {
		s := rec.NewSlice(off, min(off+rgRows, rec.NumRows()))
		if err := enc.Write(s); err != nil {
			t.Fatal(err)
		}
		s.Release()
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readRow is how parquet-go, the independent reader, reads an order.
type readRow struct {
	ID        string     `parquet:"order_id,optional"`
	User      int64      `parquet:"user_id,optional"`
	Created   time.Time  `parquet:"created_at,optional,timestamp(microsecond)"`
	Completed *time.Time `parquet:"completed_at,optional,timestamp(microsecond)"`
	Amount    float64    `parquet:"amount,optional"`
	Province  string     `parquet:"province,optional"`
	Phone     string     `parquet:"phone,optional"`
}

// readOrders reads a file with parquet-go; with local, wall-clock readings
// are turned back into instants of loc.
func readOrders(t testing.TB, path string, local *time.Location) []order {
	t.Helper()
	rows, err := parquet.ReadFile[readRow](path)
	if err != nil {
		t.Fatalf("parquet-go cannot read %s: %v", path, err)
	}
	back := func(tm time.Time) time.Time {
		if local == nil {
			return tm.UTC()
		}
		u := tm.UTC()
		return time.Date(u.Year(), u.Month(), u.Day(), u.Hour(), u.Minute(), u.Second(), u.Nanosecond(), local).UTC()
	}
	out := make([]order, len(rows))
	for i, r := range rows {
		o := order{ID: r.ID, User: r.User, Created: back(r.Created), Amount: r.Amount, Province: r.Province, Phone: r.Phone}
		if r.Completed != nil {
			c := back(*r.Completed)
			o.Completed = &c
		}
		out[i] = o
	}
	return out
}

// lakeRows reads every source file under dir (not hidden folders) with
// parquet-go: file name (relative) -> sorted row keys.
func lakeRows(t testing.TB, dir string, local *time.Location) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(dir, "orders", "*.parquet"))
	for _, f := range files {
		var keys []string
		for _, o := range readOrders(t, f, local) {
			keys = append(keys, o.key())
		}
		sort.Strings(keys)
		out[filepath.Base(f)] = keys
	}
	return out
}

// anonRows reads every anonymized file under dir with parquet-go, as a
// sorted multiset of "amount|province|completed day".
func anonRows(t testing.TB, dir string) []string {
	t.Helper()
	type anon struct {
		Completed *time.Time `parquet:"completed_at,optional,timestamp(microsecond)"`
		Amount    float64    `parquet:"amount,optional"`
		Province  string     `parquet:"province,optional"`
	}
	var out []string
	filepath.WalkDir(filepath.Join(dir, "orders", anonFolder), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rows, err := parquet.ReadFile[anon](p)
		if err != nil {
			t.Fatalf("parquet-go cannot read %s: %v", p, err)
		}
		for _, r := range rows {
			c := "NULL"
			if r.Completed != nil {
				c = r.Completed.UTC().Format(time.RFC3339)
			}
			out = append(out, fmt.Sprintf("%g|%s|%s", r.Amount, r.Province, c))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// isoRows reads every file of the isolated part under dir with parquet-go:
// the source file's stem (its folder in the part) -> sorted row keys, the
// files of all runs together.
func isoRows(t testing.TB, dir string, local *time.Location) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	base := filepath.Join(dir, "orders", isoFolder)
	filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		stem, _ := filepath.Rel(base, filepath.Dir(p))
		for _, o := range readOrders(t, p, local) {
			out[stem] = append(out[stem], o.key())
		}
		return nil
	})
	for _, keys := range out {
		sort.Strings(keys)
	}
	return out
}

// leftovers lists files under dir that are neither data nor anonymized
// data: temporary files, journals, locks.
func leftovers(t testing.TB, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.Contains(rel, ".deid") || strings.Contains(rel, "tmp") {
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// policyOpts shape the test policy.
type policyOpts struct {
	onNull    string // keep, remove, or "{fallback: created_at, keep: 1y}"
	anonymize bool
	legal     bool
	legalKeep string // the legal minimum (default 3y)
	erasure   []int64
	holds     []int64
	zone      string // the dataset's time_zone (default UTC)
}

// writePolicy writes the lists and the policy under dir and compiles it.
func writePolicy(t testing.TB, dir string, o policyOpts) *rules.RetainPlan {
	t.Helper()
	if o.onNull == "" {
		o.onNull = "keep"
	}
	if o.zone == "" {
		o.zone = "UTC"
	}
	list := func(name string, ids []int64) string {
		var b strings.Builder
		b.WriteString("user_id\n")
		for _, id := range ids {
			fmt.Fprintf(&b, "%d\n", id)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var extra, then string
	if o.erasure != nil {
		extra += fmt.Sprintf("    erasure: [{list: %s}]\n", list("erasure.csv", o.erasure))
	}
	if o.holds != nil {
		extra += fmt.Sprintf("    holds: [{list: %s}]\n", list("holds.csv", o.holds))
	}
	if o.legal {
		if o.legalKeep == "" {
			o.legalKeep = "3y"
		}
		extra += fmt.Sprintf("    legal_minimum: {keep: %s, basis: PRC E-Commerce Law art. 31}\n", o.legalKeep)
	}
	if o.anonymize {
		then = "      then: anonymize\n      anonymize:\n        amount: keep\n        province: keep\n        completed_at: {transform: truncate_time, unit: day}\n"
	}
	src := fmt.Sprintf(`version: 1
name: t
datasets:
  orders:
    source: %s/orders/*.parquet
    subject: user_id
    time_zone: %s
    columns:
      order_id: order_id
      user_id: account_id
      created_at: timestamp
      completed_at: timestamp
      amount: amount
      province: province
      phone: phone
    retention:
      time_column: completed_at
      keep: 3y
      on_null: %s
%s%sdestinations:
  out:
    purpose: analytics
    output: %s/out
    datasets:
      orders:
        columns: {order_id: drop, user_id: drop, created_at: drop, completed_at: drop, amount: drop, province: drop, phone: drop}
`, dir, o.zone, o.onNull, then, extra, dir)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := rules.Load(path, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rules.CompileRetain(p, now)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// run runs retain on the plan with a checked allocator.
func run(t testing.TB, plan *rules.RetainPlan, dry bool) *report.Retain {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Mem: mem, DryRun: dry, RunID: "run-" + fmt.Sprint(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	mem.AssertSize(t, 0)
	return rep
}

func tp(t time.Time) *time.Time { return &t }

// unusedDictionaryEntries returns, read with parquet-go, the dictionary
// entries of the file's column chunks that no value of the chunk uses (an
// erased subject's pseudonym left in a dictionary page would be one), and
// how many dictionary pages it read.
func unusedDictionaryEntries(t testing.TB, path string) ([]string, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var unused []string
	dicts := 0
	for g, rg := range pf.RowGroups() {
		for c, cc := range rg.ColumnChunks() {
			used := map[string]bool{}
			var dict parquet.Dictionary
			pages := cc.Pages()
			for {
				p, err := pages.ReadPage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if d := p.Dictionary(); d != nil {
					dict = d
				}
				vals := make([]parquet.Value, p.NumValues())
				n, err := p.Values().ReadValues(vals)
				if err != nil && err != io.EOF {
					t.Fatal(err)
				}
				for _, v := range vals[:n] {
					if !v.IsNull() {
						used[string(v.Bytes())] = true
					}
				}
				parquet.Release(p)
			}
			pages.Close()
			if dict == nil {
				continue
			}
			dicts++
			for k := range dict.Len() {
				if v := dict.Index(int32(k)); !used[string(v.Bytes())] {
					unused = append(unused, fmt.Sprintf("row group %d column %d: %q", g, c, v.Bytes()))
				}
			}
		}
	}
	return unused, dicts
}
