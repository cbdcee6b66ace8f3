package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline/report"
)

// classSizes reads the columns qis of a Parquet file with parquet-go (not
// deid's reader) and returns the rows of each combination of their values.
func classSizes(t *testing.T, path string, qis []string) map[string]int64 {
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
	idx := map[int]int{} // leaf column -> position in the class key
	for i, q := range qis {
		col, ok := pf.Schema().Lookup(q)
		if !ok {
			t.Fatalf("%s has no column %s", path, q)
		}
		idx[col.ColumnIndex] = i
	}
	sizes := map[string]int64{}
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 100)
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				key := make([]string, len(qis))
				for _, v := range row {
					if i, ok := idx[v.Column()]; ok {
						key[i] = "NULL"
						if !v.IsNull() {
							key[i] = fmt.Sprintf("%q", v.String())
						}
					}
				}
				sizes[strings.Join(key, ",")]++
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
	}
	return sizes
}

// TestMinKOnTheExample: the example policy with min_k 3 added to the
// research destination's orders (over province and age band) drops, in deid run, exactly the rows of the
// classes smaller than 3 in the example's own research output (counted here
// with parquet-go), reports them as small_class, leaves every class with at
// least 3 rows; deid plan announces the same count and deid verify
// measures k >= 3 without findings.
func TestMinKOnTheExample(t *testing.T) {
	const minK = 3
	qis := []string{"receiver_address", "birth_date"}
	dir := sampleWorkdir(t)
	qiLine := "        quasi_identifiers: [receiver_address, birth_date, created_at]\n"
	if !strings.Contains(string(samplePolicy), qiLine) {
		t.Fatalf("the example policy no longer lists %q", qiLine)
	}
	enforced := filepath.Join(dir, "mink.yaml")
	// the example's day of order makes every row unique: the classes of
	// province and age band are of every size
	text := strings.Replace(string(samplePolicy), qiLine, fmt.Sprintf("        quasi_identifiers: [%s]\n        min_k: %d\n", strings.Join(qis, ", "), minK), 1)
	if err := os.WriteFile(enforced, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// the same classes measured, not enforced: the reference output
	plain := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(plain, []byte(strings.Replace(text, fmt.Sprintf("        min_k: %d\n", minK), "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "example", "research", "orders", "orders.parquet")

	if res := runDeid(t, dir, nil, "run", "-c", plain, "--now", sampleNow); res.code != 0 {
		t.Fatalf("run without min_k: exit %d\n%s", res.code, res.stderr)
	}
	ref := classSizes(t, out, qis)
	var refRows, small int64
	for _, n := range ref {
		refRows += n
		if n < minK {
			small += n
		}
	}
	t.Logf("without min_k: %d rows in %d classes, %d rows in classes below %d", refRows, len(ref), small, minK)
	if small == 0 || small == refRows {
		t.Fatalf("the example should have classes on both sides of min_k %d", minK)
	}

	plan := runDeid(t, dir, nil, "plan", "-c", enforced, "--now", sampleNow)
	if plan.code != 0 || !strings.Contains(plan.stdout, fmt.Sprintf("in classes below min_k %d", small)) {
		t.Errorf("plan: exit %d, want %d rows in classes below min_k:\n%s%s", plan.code, small, plan.stdout, plan.stderr)
	}

	res := runDeid(t, dir, nil, "run", "-c", enforced, "--now", sampleNow)
	if res.code != 0 {
		t.Fatalf("run with min_k: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, fmt.Sprintf("in classes below min_k %d", small)) {
		t.Errorf("run summary lacks the %d rows below min_k:\n%s", small, res.stdout)
	}
	got := classSizes(t, out, qis)
	var rows int64
	for class, n := range got {
		rows += n
		if n < minK {
			t.Errorf("class %s: %d rows, below min_k %d", class, n, minK)
		}
		if ref[class] != n {
			t.Errorf("class %s: %d rows, %d without min_k", class, n, ref[class])
		}
	}
	if rows != refRows-small {
		t.Errorf("%d rows out, want %d - %d", rows, refRows, small)
	}
	// the report says the same
	var m struct {
		Report string `json:"report"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "out", "example", "research", "_manifest.json"))
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	var rep report.Run
	if b, err = os.ReadFile(filepath.Join(dir, "out", "example", "research", m.Report)); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report %s: %v", m.Report, err)
	}
	for _, d := range rep.Destinations {
		if d.Name == "research" && d.Removed["small_class"] != small {
			t.Errorf("report: removed %v, want small_class %d", d.Removed, small)
		}
	}

	v := runDeid(t, dir, nil, "verify", "-c", enforced, "--json")
	if v.code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
	var vr struct {
		Destinations []*report.Verification `json:"destinations"`
	}
	if err := json.Unmarshal([]byte(v.stdout), &vr); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, v.stdout)
	}
	checked := false
	for _, d := range vr.Destinations {
		for _, r := range d.Risk {
			if d.Destination == "research" && r.Dataset == "orders" {
				checked = true
				if r.K < minK || r.MinK != minK || r.Rows != rows || r.ClassesBelow != 0 {
					t.Errorf("verify risk of research/orders: %+v, want k >= %d over %d rows", r, minK, rows)
				}
			}
		}
	}
	if !checked {
		t.Errorf("verify measured no risk for research/orders:\n%s", v.stdout)
	}
}
