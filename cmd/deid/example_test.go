package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// This file is the end-to-end test of the example policy
// (deploy/examples/policy.yaml, the built-in default) on the sample lake.
// Everything is read back with parquet-go, an independent reader, and the
// expectations are computed here from the inputs and the policy's promises,
// or taken from reviewed golden files, never from deid's own functions.

// pqRow is one row read with parquet-go: column name to value (nil, string,
// int64, float64, or time text).
type pqRow map[string]any

// readRows reads every row of a flat Parquet file with parquet-go.
func readRows(t *testing.T, path string) ([]string, []pqRow) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	pf, err := parquet.OpenFile(f, info.Size())
	if err != nil {
		t.Fatalf("parquet-go cannot open %s: %v", path, err)
	}
	fields := pf.Schema().Fields()
	names := make([]string, len(fields))
	for i, fl := range fields {
		names[i] = fl.Name()
	}
	var out []pqRow
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 128)
		for {
			n, err := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				row := pqRow{}
				for _, v := range r {
					fl := fields[v.Column()]
					row[fl.Name()] = plainValue(fl, v)
				}
				out = append(out, row)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		rows.Close()
	}
	return names, out
}

func plainValue(fl parquet.Field, v parquet.Value) any {
	if v.IsNull() {
		return nil
	}
	if lt := fl.Type().LogicalType(); lt != nil {
		switch val := lt.Value.(type) {
		case *format.TimestampType:
			n := v.Int64()
			switch val.Unit.Value.(type) {
			case *format.MilliSeconds:
				return time.UnixMilli(n).UTC().Format(time.RFC3339Nano)
			case *format.NanoSeconds:
				return time.Unix(0, n).UTC().Format(time.RFC3339Nano)
			}
			return time.UnixMicro(n).UTC().Format(time.RFC3339Nano)
		case *format.DateType:
			return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02")
		}
	}
	switch v.Kind() {
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	case parquet.Int32:
		return int64(v.Int32())
	case parquet.Int64:
		return v.Int64()
	case parquet.Float:
		return float64(v.Float())
	case parquet.Double:
		return v.Double()
	case parquet.Boolean:
		return v.Boolean()
	}
	return v.String()
}

// runExample runs the built-in example policy and returns the output root.
func runExample(t *testing.T) (workdir, out string) {
	t.Helper()
	dir := sampleWorkdir(t)
	res := runDeid(t, dir, nil, "run", "--now", sampleNow)
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	return dir, filepath.Join(dir, "out", "example")
}

// outputs lists the Parquet outputs under root, by path relative to root.
func outputs(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	sort.Strings(files)
	return files
}

// TestExampleGolden: every output file of the example policy equals its
// reviewed golden file (one JSON object per row, columns in file order).
// After a deliberate change, run go test ./cmd/deid -run ExampleGolden
// -update and review the diff of testdata/golden (the flag is shared with the
// README's generated sections: both are files this package's tests own).
func TestExampleGolden(t *testing.T) {
	_, out := runExample(t)
	golden := filepath.Join(repoRoot(t), "testdata", "golden", "example")
	files := outputs(t, out)
	if len(files) != 14 {
		t.Errorf("%d output files: %v", len(files), files)
	}
	if *update {
		os.RemoveAll(golden)
	}
	for _, rel := range files {
		names, rows := readRows(t, filepath.Join(out, rel))
		var b strings.Builder
		for _, r := range rows {
			b.WriteString("{")
			for i, n := range names {
				if i > 0 {
					b.WriteString(",")
				}
				k, _ := json.Marshal(n)
				v, _ := json.Marshal(r[n])
				b.Write(k)
				b.WriteString(":")
				b.Write(v)
			}
			b.WriteString("}\n")
		}
		path := filepath.Join(golden, strings.TrimSuffix(rel, ".parquet")+".jsonl")
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: no golden file (run with -update and review): %v", rel, err)
			continue
		}
		if string(want) != b.String() {
			t.Errorf("%s differs from %s (if intended: -update, then review the diff)", rel, path)
		}
	}
}

// identifierColumns are the sample lake's direct- and device-identifier
// columns, per dataset, as the example policy classifies them.
var identifierColumns = map[string][]string{
	"device": {"imei", "mac", "oaid", "android_id", "imsi", "iccid"},
	"orders": {"receiver_name", "receiver_phone", "receiver_address", "resident_id", "invoice_title", "taxpayer_id",
		"invoice_email", "bank_card"},
}

// TestExampleLeaksNoIdentifier: no value of at least 6 characters from an
// identifier column of the input appears as a substring anywhere in any
// output of any destination (the example policy allows no exception that
// would keep one: its masked phone keeps 3 + 4 digits).
func TestExampleLeaksNoIdentifier(t *testing.T) {
	_, out := runExample(t)
	lake := filepath.Join(repoRoot(t), "testdata", "lake")
	secrets := map[string]string{} // value -> where it came from
	for ds, cols := range identifierColumns {
		files, _ := filepath.Glob(filepath.Join(lake, ds, "*", "*.parquet"))
		more, _ := filepath.Glob(filepath.Join(lake, ds, "*.parquet"))
		for _, f := range append(files, more...) {
			_, rows := readRows(t, f)
			for _, r := range rows {
				for _, c := range cols {
					if s, ok := r[c].(string); ok && utf8.RuneCountInString(s) >= 6 {
						secrets[s] = ds + "." + c
					}
				}
			}
		}
	}
	if len(secrets) < 500 {
		t.Fatalf("only %d identifier values read from the lake", len(secrets))
	}
	var outputsText strings.Builder
	for _, rel := range outputs(t, out) {
		_, rows := readRows(t, filepath.Join(out, rel))
		for _, r := range rows {
			for _, v := range r {
				fmt.Fprintf(&outputsText, "%v\x00", v)
			}
		}
	}
	text := outputsText.String()
	for s, from := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s value %q appears in an output", from, s)
		}
	}
}

// TestExampleRowRules: expired, erased, withdrawn and child rows are absent
// and every other row is present, per destination. The expected sets are
// computed here from the inputs and the policy's rules.
func TestExampleRowRules(t *testing.T) {
	_, out := runExample(t)
	lake := filepath.Join(repoRoot(t), "testdata", "lake")
	now, _ := time.Parse(time.RFC3339, sampleNow)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	erased := map[int64]bool{}
	for _, rec := range readCSV(t, filepath.Join(lake, "erasure.csv")) {
		id, _ := strconv.ParseInt(rec[0], 10, 64)
		erased[id] = true
	}
	withdrawn := map[string]map[int64]bool{} // purpose -> subjects
	for _, rec := range readCSV(t, filepath.Join(lake, "consent.csv")) {
		id, _ := strconv.ParseInt(rec[0], 10, 64)
		if withdrawn[rec[1]] == nil {
			withdrawn[rec[1]] = map[int64]bool{}
		}
		withdrawn[rec[1]][id] = true
	}
	// birth dates per subject, from the orders (the latest if several)
	_, orderRows := readRows(t, filepath.Join(lake, "orders", "orders.parquet"))
	birth := map[int64]string{}
	for _, r := range orderRows {
		id := r["user_id"].(int64)
		if b, ok := r["birth_date"].(string); ok && b > birth[id] {
			birth[id] = b
		}
	}
	// ageOf is the subject's age at the event, false when it cannot be told
	ageOf := func(id any, at any) (int, bool) {
		uid, ok := id.(int64)
		if !ok || at == nil || birth[uid] == "" {
			return 0, false
		}
		ev, _ := time.Parse(time.RFC3339Nano, at.(string))
		b, _ := time.Parse("2006-01-02", birth[uid])
		ey, em, ed := ev.In(shanghai).Date()
		age := ey - b.Year()
		if em < b.Month() || em == b.Month() && ed < b.Day() {
			age--
		}
		return age, age >= 0
	}
	// isChild: a child at the event; a row of unknown age is kept, except
	// from partner_sharing destinations (doubt protects the child)
	isChild := func(dst string, id any, at any) bool {
		age, known := ageOf(id, at)
		if !known {
			return dst == "partner_ads" // partner_sharing
		}
		return age < 14
	}
	purposes := map[string]string{"training": "training", "analytics": "analytics", "partner_ads": "partner_sharing", "research": "research"}
	childless := map[string]bool{"training": true, "partner_ads": true, "research": true}
	type dsRule struct {
		name, idCol, timeCol, childTimeCol string
		keep                               func(t *string, r pqRow) bool
		dests                              []string
	}
	days := func(n int) func(*string, pqRow) bool {
		return func(ts *string, _ pqRow) bool {
			if ts == nil {
				return false // on_null: remove
			}
			v, _ := time.Parse(time.RFC3339Nano, *ts)
			return !v.Before(now.Add(-time.Duration(n) * 24 * time.Hour))
		}
	}
	threeYears := func(ts *string, r pqRow) bool {
		if ts == nil {
			// open orders: kept until a year after their creation
			c, ok := r["created_at"].(string)
			if !ok {
				return true
			}
			v, _ := time.Parse(time.RFC3339Nano, c)
			return !v.Before(now.In(shanghai).AddDate(-1, 0, 0))
		}
		v, _ := time.Parse(time.RFC3339Nano, *ts)
		return !v.Before(now.In(shanghai).AddDate(-3, 0, 0))
	}
	sets := []dsRule{
		{"device", "event_id", "event_time", "event_time", days(180), []string{"training", "research"}},
		{"service", "event_id", "event_time", "event_time", days(365), []string{"training", "analytics", "partner_ads"}},
		{"orders", "order_id", "completed_at", "created_at", threeYears, []string{"training", "analytics", "partner_ads", "research"}},
	}
	for _, ds := range sets {
		files, _ := filepath.Glob(filepath.Join(lake, ds.name, "*", "*.parquet"))
		more, _ := filepath.Glob(filepath.Join(lake, ds.name, "*.parquet"))
		var rows []pqRow
		for _, f := range append(files, more...) {
			_, r := readRows(t, f)
			rows = append(rows, r...)
		}
		for _, dst := range ds.dests {
			want := map[string]bool{}
			for _, r := range rows {
				var ts *string
				if s, ok := r[ds.timeCol].(string); ok {
					ts = &s
				}
				uid, _ := r["user_id"].(int64)
				switch {
				case !ds.keep(ts, r), erased[uid], withdrawn[purposes[dst]][uid]:
					continue
				case childless[dst] && isChild(dst, r["user_id"], r[ds.childTimeCol]):
					continue
				}
				want[fmt.Sprint(r[ds.idCol])] = true
			}
			got := map[string]bool{}
			outFiles, _ := filepath.Glob(filepath.Join(out, dst, ds.name, "*", "*.parquet"))
			more, _ := filepath.Glob(filepath.Join(out, dst, ds.name, "*.parquet"))
			n := 0
			for _, f := range append(outFiles, more...) {
				_, r := readRows(t, f)
				for _, row := range r {
					got[fmt.Sprint(row[ds.idCol])] = true
					n++
				}
			}
			if n != len(want) {
				t.Errorf("%s/%s: %d rows, want %d", dst, ds.name, n, len(want))
			}
			if dst == "partner_ads" {
				continue // ids are pseudonymized there: the count is the check
			}
			for id := range want {
				if !got[id] {
					t.Errorf("%s/%s: row %s missing", dst, ds.name, id)
				}
			}
			for id := range got {
				if !want[id] {
					t.Errorf("%s/%s: row %s should be gone", dst, ds.name, id)
				}
			}
		}
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs[1:]
}
