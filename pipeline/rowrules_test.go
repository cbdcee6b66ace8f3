package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
)

// userIDs reads the user_id column of an output file with parquet-go.
func userIDs(t *testing.T, path string) []int64 {
	t.Helper()
	pf := openParquetGo(t, path)
	col, ok := pf.Schema().Lookup("user_id")
	if !ok {
		t.Fatalf("%s has no user_id", path)
	}
	var ids []int64
	for _, rg := range pf.RowGroups() {
		pages := rg.ColumnChunks()[col.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if err != nil {
				break
			}
			vals := make([]parquet.Value, p.NumValues())
			n, _ := p.Values().ReadValues(vals)
			for _, v := range vals[:n] {
				ids = append(ids, v.Int64())
			}
		}
		pages.Close()
	}
	slices.Sort(ids)
	return ids
}

// TestConsentAndChildren: consent withdrawals remove a subject from the
// destinations of the withdrawn purpose only; children are kept from the
// destinations the rule names, with ages from a resident ID in the dataset
// itself or from another dataset joined on the subject; rows of unknown
// age are kept and counted.
func TestConsentAndChildren(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	// check characters computed with ISO 7064 MOD 11-2
	const adult, child, invalid = "110105198001010016", "110101201602290016", "110101201602290012"
	writeTable(t, filepath.Join(dir, "lake/orders/o.parquet"), 100,
		column{"user_id", arrow.PrimitiveTypes.Int64, []any{int64(1), int64(2), int64(3), int64(4), int64(3)}},
		column{"at", utcMillis, []any{at, at, at, at, at.AddDate(0, 0, 1)}},
		column{"rid", arrow.BinaryTypes.String, []any{adult, adult, child, invalid, child}},
	)
	writeTable(t, filepath.Join(dir, "lake/events/e.parquet"), 100,
		column{"user_id", arrow.PrimitiveTypes.Int64, []any{int64(1), int64(2), int64(3), int64(3), int64(5)}},
		column{"at", utcMillis, []any{at, at, at, at, at}},
	)
	// user 2 withdrew from analytics; user 1 from training, but only from
	// June 2027 on, which no row reaches
	os.WriteFile(filepath.Join(dir, "consent.csv"), []byte("user_id,purpose,withdrawn_at\n2,analytics,2026-06-01T00:00:00+08:00\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "later.csv"), []byte("user_id,purpose,withdrawn_at\n1,training,2027-06-01T00:00:00Z\n"), 0o644)
	policy := `version: 1
name: rows
keys:
  a: hex:env:K
  b: hex:env:K
datasets:
  orders:
    source: lake/orders/*.parquet
    subject: user_id
    columns: {user_id: non_personal, at: timestamp, rid: resident_id}
    consent:
      - list: consent.csv
      - {list: later.csv, history: from_withdrawal, time_column: at}
    children:
      age_from: {resident_id: rid}
      time_column: at
      destinations: [train]
  events:
    source: lake/events/*.parquet
    subject: user_id
    columns: {user_id: non_personal, at: timestamp}
    consent:
      - list: consent.csv
    children:
      age_from: {dataset: orders, resident_id: rid}
      time_column: at
      destinations: [train]
destinations:
  train:
    purpose: training
    output: out/train
    key: a
    datasets: {orders: {}, events: {}}
  stats:
    purpose: analytics
    output: out/stats
    key: {name: b, allow: "test: both keys read one variable"}
    datasets: {orders: {}, events: {}}
`
	plan := compile(t, dir, policy)
	rep, err := runPlan(t, plan, 2)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file string
		want []int64
	}{
		{"out/train/orders/o.parquet", []int64{1, 2, 4}}, // the child's two rows go; unknown age stays
		{"out/stats/orders/o.parquet", []int64{1, 3, 3, 4}},
		{"out/train/events/e.parquet", []int64{1, 2, 5}}, // 3 is a child per orders; 5 has no known age
		{"out/stats/events/e.parquet", []int64{1, 3, 3, 5}},
	}
	for _, c := range cases {
		if got := userIDs(t, filepath.Join(dir, c.file)); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: user ids %v, want %v", c.file, got, c.want)
		}
	}
	byName := map[string]map[string]int64{}
	unknown := map[string]int64{}
	for _, d := range rep.Destinations {
		byName[d.Name] = d.Removed
		unknown[d.Name] = d.AgeUnknown
	}
	if byName["train"]["child"] != 4 || byName["train"]["consent"] != 0 || byName["stats"]["consent"] != 2 || byName["stats"]["child"] != 0 {
		t.Errorf("removed: %v", byName)
	}
	if unknown["train"] != 2 || unknown["stats"] != 0 {
		t.Errorf("age unknown: %v", unknown)
	}
	if rep.Datasets[0].Consent[0].Entries != 1 || rep.Datasets[0].Consent[1].History != "from_withdrawal" {
		t.Errorf("consent lists: %+v", rep.Datasets[0].Consent)
	}
}
