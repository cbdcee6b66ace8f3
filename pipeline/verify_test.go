package pipeline

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/verify"
	"github.com/deidproject/deid/rules"
)

const verifyPolicy = `version: 1
name: verify
audit_key: hex:env:A
keys:
  k: hex:env:K
datasets:
  logs:
    source: SRC/logs/*.parquet
    subject: user_id
    columns:
      user_id: account_id
      phone: phone
      imei: imei
      query: free_text
      city: city
      at: timestamp
    retention: {time_column: at, keep: 30d, on_null: keep}
    erasure:
      - list: SRC/erasure.csv
destinations:
  analytics:
    purpose: analytics
    output: OUT
    key: k
    datasets:
      logs:
        columns:
          query: {transform: scrub, detectors: [phone]}
`

const verifyRows = 600

// erasureCSV erases three of the 80 subjects.
const erasureCSV = "user_id\n1000000003\n1000000017\n1000000042\n"

// pseudonym is the README's definition of pseudonymize: lowercase hex of
// the first 16 bytes of HMAC-SHA256(key, value as text).
func pseudonym(t *testing.T, keyHex, value string) string {
	m := hmac.New(sha256.New, mustDecodeHex(t, keyHex))
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// verifyJob writes a source of verifyRows rows (phones and IMEIs in their
// columns and, in some queries, phones the scrub must remove), runs the
// policy and returns the plan, the output file and the source's phones and
// IMEIs by row.
func verifyJob(t *testing.T) (*rules.Plan, string, []string, []string) {
	t.Helper()
	return verifyJobPolicy(t, verifyPolicy)
}

func verifyJobPolicy(t *testing.T, policy string) (*rules.Plan, string, []string, []string) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var users, phones, imeis, queries, cities, ats []any
	var ps, is []string
	for i := 0; i < verifyRows; i++ {
		p := fmt.Sprintf("139%08d", rng.IntN(100000000))
		imei := fmt.Sprintf("86%013d", rng.Int64N(1e13))
		q := []string{"running shoes", "天气 杭州", "order 20261101", "联系" + p + "谢谢"}[rng.IntN(4)]
		users = append(users, int64(1000000000+rng.IntN(80)))
		phones, imeis, queries, cities = append(phones, p), append(imeis, imei), append(queries, q), append(cities, []string{"杭州", "北京"}[i%2])
		ps, is = append(ps, p), append(is, imei)
		ats = append(ats, testNow.Add(-time.Duration(rng.Int64N(int64(60*24*time.Hour)))))
	}
	os.WriteFile(filepath.Join(dir, "erasure.csv"), []byte(erasureCSV), 0o644)
	writeTable(t, filepath.Join(dir, "logs", "part-0.parquet"), 200,
		column{"user_id", arrow.PrimitiveTypes.Int64, users}, column{"phone", arrow.BinaryTypes.String, phones},
		column{"imei", arrow.BinaryTypes.String, imeis}, column{"query", arrow.BinaryTypes.String, queries},
		column{"city", arrow.BinaryTypes.String, cities}, column{"at", utcMillis, ats})
	out := filepath.Join(dir, "out")
	text := strings.NewReplacer("SRC", dir, "OUT", out).Replace(policy)
	path := filepath.Join(dir, "policy.yaml")
	os.WriteFile(path, []byte(text), 0o644)
	lookup := env(map[string]string{"K": testKeyHex, "A": auditKeyHex})
	p, err := rules.Load(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := rules.Compile(p, rules.CompileOptions{Now: testNow, Lookup: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runPlan(t, plan, 2); err != nil {
		t.Fatal(err)
	}
	return plan, filepath.Join(out, "logs", "part-0.parquet"), ps, is
}

// recompile compiles another policy over the files verifyJobPolicy wrote
// in dir, without running it.
func recompile(t *testing.T, dir, policy string) *rules.Plan {
	t.Helper()
	text := strings.NewReplacer("SRC", dir, "OUT", filepath.Join(dir, "out")).Replace(policy)
	path := filepath.Join(dir, "policy.yaml")
	os.WriteFile(path, []byte(text), 0o644)
	lookup := env(map[string]string{"K": testKeyHex, "A": auditKeyHex})
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

// readColumns reads a Parquet file's columns as strings (NULL as nil), with
// arrow-go's reader, not deid's.
func readColumns(t *testing.T, path string) ([]string, map[string][]any) {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var names []string
	cols := map[string][]any{}
	for i := 0; i < int(tbl.NumCols()); i++ {
		name := tbl.Schema().Field(i).Name
		names = append(names, name)
		for _, chunk := range tbl.Column(i).Data().Chunks() {
			for r := 0; r < chunk.Len(); r++ {
				if chunk.IsNull(r) {
					cols[name] = append(cols[name], nil)
					continue
				}
				switch a := chunk.(type) {
				case *array.String:
					cols[name] = append(cols[name], a.Value(r))
				case *array.Timestamp:
					cols[name] = append(cols[name], a.Value(r).ToTime(a.DataType().(*arrow.TimestampType).Unit))
				case *array.Dictionary:
					cols[name] = append(cols[name], a.Dictionary().(*array.String).Value(a.GetValueIndex(r)))
				default:
					t.Fatalf("column %s: %T", name, chunk)
				}
			}
		}
	}
	return names, cols
}

// plantedColumns returns the output's columns read by readColumns, to
// write back with plants: text, but the time column "at" of type at.
func plantedColumns(names []string, cols map[string][]any, at arrow.DataType) []column {
	var planted []column
	for _, n := range names {
		typ := arrow.DataType(arrow.BinaryTypes.String)
		if n == "at" {
			typ = at
		}
		planted = append(planted, column{n, typ, cols[n]})
	}
	return planted
}

type findingKey struct {
	check, column string
	rg            int
}

// verifyFindings verifies the plan's outputs, and checks that the findings
// are the same, to every count and message, however the work is cut: one
// worker or several, values read one by one (a batch of one row holds no
// dictionary) or a dictionary's distinct values once a batch.
func verifyFindings(t *testing.T, plan *rules.Plan, strict bool) (*verify.Result, map[findingKey]bool) {
	t.Helper()
	res, err := verify.Outputs(context.Background(), plan, verify.Options{BatchSize: 64, Strict: strict})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(res.Destinations[0].Findings)
	for _, opt := range []verify.Options{{BatchSize: 1, Workers: 1}, {BatchSize: 1 << 16, Workers: 3}, {BatchSize: 7, Workers: 2}} {
		opt.Strict = strict
		other, err := verify.Outputs(context.Background(), plan, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(other.Destinations[0].Findings); !bytes.Equal(got, want) {
			t.Errorf("batch size %d, %d workers: findings\n%s\nwant (batch size 64)\n%s", opt.BatchSize, opt.Workers, got, want)
		}
	}
	got := map[findingKey]bool{}
	for _, f := range res.Destinations[0].Findings {
		got[findingKey{f.Check, f.Column, f.RowGroup}] = true
	}
	return res, got
}

// TestVerifyClean: a run's own output passes every check, also strictly,
// and the result is written beside the run's report.
func TestVerifyClean(t *testing.T) {
	plan, out, _, _ := verifyJob(t)
	for _, strict := range []bool{false, true} {
		res, got := verifyFindings(t, plan, strict)
		if !res.OK() || len(got) > 0 {
			t.Errorf("strict=%v: findings on a clean run: %v", strict, res.Destinations[0].Findings)
		}
		if d := res.Destinations[0]; d.Files != 1 || d.Rows >= verifyRows || d.Rows < verifyRows/3 { // retention and erasure remove some
			t.Errorf("checked %d files, %d rows", d.Files, d.Rows)
		}
	}
	job := filepath.Dir(filepath.Dir(out))
	m, _ := filepath.Glob(filepath.Join(job, output.ReportsDir, "*", "verify.json"))
	if len(m) != 1 {
		t.Fatalf("verify.json beside the report: %v", m)
	}
	// the signed verification is in the report's page, and report check
	// verifies both
	page, _ := os.ReadFile(filepath.Join(filepath.Dir(m[0]), "report.html"))
	if !strings.Contains(string(page), "Every check passed.") {
		t.Error("the report's page does not show the verification")
	}
	res, err := output.CheckReports(context.Background(), storage.Local{}, job, output.CheckOptions{PublicKey: auditPublic(t, auditKeyHex)})
	if err != nil || !res.OK() {
		t.Fatalf("report check after verify: %v %v", err, res.Problems)
	}
	b, _ := os.ReadFile(m[0])
	os.WriteFile(m[0], []byte(strings.Replace(string(b), `"strict": true`, `"strict": false`, 1)), 0o644)
	res, err = output.CheckReports(context.Background(), storage.Local{}, job, output.CheckOptions{PublicKey: auditPublic(t, auditKeyHex)})
	if err != nil || !strings.Contains(fmt.Sprint(res.Problems), m[0]+": report does not match its signature: the verification was changed after it was signed") {
		t.Errorf("edited verify.json: %v %v", err, res.Problems)
	}
}

// TestVerifyFindsPlanted plants, at seeded random rows, raw phone numbers
// in the scrubbed query, raw IMEIs in the pseudonymized imei column (raw
// identifiers, and not of the pseudonym's form), rows of
// erased subjects, rows past retention and an extra column of raw phones, and checks that each is found in its column
// and row group, and that nothing else is.
func TestVerifyFindsPlanted(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			plan, out, phones, imeis := verifyJob(t)
			names, cols := readColumns(t, out)
			rng := rand.New(rand.NewPCG(seed, 99))
			const rg = 100 // rows per row group of the planted file
			n := len(cols[names[0]])
			want := map[findingKey]bool{}
			for i := 0; i < 3; i++ {
				r := rng.IntN(n)
				cols["query"][r] = "please call " + phones[rng.IntN(verifyRows)] + " today"
				want[findingKey{"pii", "query", r / rg}] = true
				want[findingKey{"identifier", "query", r / rg}] = true
				r = rng.IntN(n)
				cols["imei"][r] = imeis[rng.IntN(verifyRows)]
				want[findingKey{"identifier", "imei", r / rg}] = true
				want[findingKey{"pseudonym", "imei", r / rg}] = true // not of the pseudonym's form either
			}
			// one value in several rows: counted once a row, also when the
			// column is read as a dictionary
			for r := 10; r < 15; r++ {
				cols["query"][r] = "call " + phones[0]
			}
			want[findingKey{"pii", "query", 0}] = true
			want[findingKey{"identifier", "query", 0}] = true
			// rows past retention (30 days before the run's now)
			for i := 0; i < 2; i++ {
				r := rng.IntN(n)
				cols["at"][r] = testNow.Add(-31 * 24 * time.Hour)
				want[findingKey{"retention", "at", r / rg}] = true
			}
			var planted []column
			if seed == 3 { // a file without its subject column is a finding, not a crash
				names = slices.DeleteFunc(names, func(n string) bool { return n == "user_id" })
				want[findingKey{"schema", "user_id", -1}] = true
			}
			planted = plantedColumns(names, cols, utcMillis)
			extra := make([]any, n)
			for i := range extra {
				extra[i] = phones[i]
			}
			planted = append(planted, column{"phone", arrow.BinaryTypes.String, extra})
			want[findingKey{"schema", "phone", -1}] = true
			for g := 0; g < (n+rg-1)/rg; g++ {
				want[findingKey{"pii", "phone", g}] = true
				want[findingKey{"identifier", "phone", g}] = true
			}
			// rows of erased subjects, pseudonymized as the destination writes them
			for _, id := range []string{"1000000003", "1000000042"} {
				r := rng.IntN(n)
				cols["user_id"][r] = pseudonym(t, testKeyHex, id)
				if seed != 3 { // seed 3 leaves the subject column out
					want[findingKey{"erasure", "user_id", r / rg}] = true
				}
			}
			os.Remove(out)
			writeTable(t, out, rg, planted...)

			res, got := verifyFindings(t, plan, false)
			if res.OK() {
				t.Fatal("nothing found")
			}
			var missing, extraFound []string
			for k := range want {
				if !got[k] {
					missing = append(missing, fmt.Sprint(k))
				}
			}
			for k := range got {
				if !want[k] {
					extraFound = append(extraFound, fmt.Sprint(k))
				}
			}
			sort.Strings(missing)
			sort.Strings(extraFound)
			if len(missing) > 0 || len(extraFound) > 0 {
				t.Errorf("missing %v\nunexpected %v\nfindings: %v", missing, extraFound, res.Destinations[0].Findings)
			}
			for _, f := range res.Destinations[0].Findings {
				for _, p := range phones {
					if strings.Contains(f.String(), p) {
						t.Fatalf("a finding shows a raw value: %s", f)
					}
				}
				if f.File != out {
					t.Errorf("finding names %s, want %s", f.File, out)
				}
			}
		})
	}
}

// TestVerifyNestedSource: a source whose dropped nested column comes
// before its identifier columns (so their Parquet leaf indices are past its
// field indices) is run and verified: a raw IMEI planted in the output is
// found in its column, and nothing else is.
func TestVerifyNestedSource(t *testing.T) {
	dir := t.TempDir()
	const rows = 300
	var addrs, users, ats, cities, queries, phones, imeis []any
	rng := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < rows; i++ {
		addrs = append(addrs, []string{"西湖区", fmt.Sprint("文三路 ", i)})
		users = append(users, int64(1000000000+i%40))
		ats = append(ats, testNow.Add(-time.Duration(rng.Int64N(int64(20*24*time.Hour)))))
		cities = append(cities, []string{"杭州", "北京"}[i%2])
		queries = append(queries, "running shoes")
		phones = append(phones, fmt.Sprintf("139%08d", rng.IntN(100000000)))
		imeis = append(imeis, fmt.Sprintf("86%013d", rng.Int64N(1e13)))
	}
	addr := arrow.StructOf(arrow.Field{Name: "district", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "street", Type: arrow.BinaryTypes.String, Nullable: true})
	os.WriteFile(filepath.Join(dir, "erasure.csv"), []byte(erasureCSV), 0o644)
	// imei is leaf 7 of fields 0 to 6
	writeTable(t, filepath.Join(dir, "logs", "part-0.parquet"), 100,
		column{"addr", addr, addrs}, column{"user_id", arrow.PrimitiveTypes.Int64, users}, column{"at", utcMillis, ats},
		column{"city", arrow.BinaryTypes.String, cities}, column{"query", arrow.BinaryTypes.String, queries},
		column{"phone", arrow.BinaryTypes.String, phones}, column{"imei", arrow.BinaryTypes.String, imeis})
	plan := recompile(t, dir, strings.Replace(verifyPolicy, "    subject: user_id\n", "    subject: user_id\n    unclassified: drop # addr\n", 1))
	if _, err := runPlan(t, plan, 2); err != nil {
		t.Fatal(err)
	}
	if res, got := verifyFindings(t, plan, true); !res.OK() || len(got) > 0 {
		t.Fatalf("findings on a clean run: %v", res.Destinations[0].Findings)
	}
	out := filepath.Join(dir, "out", "logs", "part-0.parquet")
	names, cols := readColumns(t, out)
	cols["imei"][150] = imeis[3]
	os.Remove(out)
	writeTable(t, out, 100, plantedColumns(names, cols, utcMillis)...)
	_, got := verifyFindings(t, plan, false)
	want := map[findingKey]bool{{"identifier", "imei", 1}: true, {"pseudonym", "imei", 1}: true}
	if !maps.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}

// TestVerifyUnreadableTime: an output whose retention time column holds
// timestamps without a time zone (which a run never writes) is a retention
// finding, not a check skipped in silence.
func TestVerifyUnreadableTime(t *testing.T) {
	plan, out, _, _ := verifyJob(t)
	names, cols := readColumns(t, out)
	os.Remove(out)
	writeTable(t, out, 100, plantedColumns(names, cols, &arrow.TimestampType{Unit: arrow.Millisecond})...)
	res, got := verifyFindings(t, plan, false)
	if want := map[findingKey]bool{{"retention", "at", -1}: true}; !maps.Equal(got, want) {
		t.Fatalf("findings %v, want %v", res.Destinations[0].Findings, want)
	}
	if msg := res.Destinations[0].Findings[0].Msg; !strings.Contains(msg, "timestamp[ms]") || !strings.Contains(msg, "cannot be checked") {
		t.Errorf("message %q", msg)
	}
}

// TestVerifyRisk: the equivalence classes of the quasi-identifiers, counted
// by verify, equal those counted here on the output read with arrow-go; a
// class below min_k is a finding, and none is when every class is large.
func TestVerifyRisk(t *testing.T) {
	cases := []struct {
		qis     string
		minK    int
		finding bool
	}{
		{"[city, at]", 5, true},
		{"[city]", 5, false},
		{"[city, at]", 0, false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.qis, c.minK), func(t *testing.T) {
			extra := "        quasi_identifiers: " + c.qis + "\n"
			if c.minK > 0 {
				extra += fmt.Sprintf("        min_k: %d\n", c.minK)
			}
			// the run does not enforce min_k, so that verify finds the
			// classes below it: the run's own enforcement is TestMinK
			plan, out, _, _ := verifyJobPolicy(t, verifyPolicy+"        quasi_identifiers: "+c.qis+"\n")
			plan = recompile(t, filepath.Dir(filepath.Dir(filepath.Dir(out))), verifyPolicy+extra)
			res, err := verify.Outputs(context.Background(), plan, verify.Options{BatchSize: 64})
			if err != nil {
				t.Fatal(err)
			}
			d := res.Destinations[0]
			if len(d.Risk) != 1 {
				t.Fatalf("risk: %+v", d.Risk)
			}
			r := d.Risk[0]
			// the classes, counted independently
			_, cols := readColumns(t, out)
			qis := strings.Split(strings.Trim(c.qis, "[]"), ", ")
			sizes := map[string]int64{}
			for i := range cols["city"] {
				var key []string
				for _, q := range qis {
					key = append(key, fmt.Sprint(cols[q][i]))
				}
				sizes[strings.Join(key, "|")]++
			}
			var k, unique, below, rowsBelow, rows int64
			threshold := int64(max(c.minK, 5))
			for _, n := range sizes {
				rows += n
				if k == 0 || n < k {
					k = n
				}
				if n == 1 {
					unique++
				}
				if n < threshold {
					below++
					rowsBelow += n
				}
			}
			if r.Rows != rows || r.Classes != int64(len(sizes)) || r.K != k || r.UniqueRows != unique || r.ClassesBelow != below || r.RowsBelow != rowsBelow {
				t.Errorf("risk %+v, want rows %d classes %d k %d unique %d below %d (%d rows)", r, rows, len(sizes), k, unique, below, rowsBelow)
			}
			var bySize int64
			for _, n := range r.RowsBySize {
				bySize += n
			}
			if bySize != rows {
				t.Errorf("rows by class size add up to %d, want %d", bySize, rows)
			}
			found := false
			for _, f := range d.Findings {
				found = found || f.Check == "risk" && strings.Contains(f.Msg, fmt.Sprintf("k = %d, below min_k %d", k, c.minK))
			}
			if found != c.finding || res.OK() == c.finding {
				t.Errorf("risk finding %v, want %v: %v", found, c.finding, d.Findings)
			}
		})
	}
}
