package retain

import (
	"errors"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/dataerr"
)

// TestJournalScope: a journal found at recovery is replayed only if each
// of its locations is one its root's run could have written.
func TestJournalScope(t *testing.T) {
	ds := scope{root: "/lake/orders", dataset: "orders", source: "/lake/orders/*.parquet"}
	out := scope{root: "/out/partner_ads", dataset: "destination partner_ads"}
	const run = "20261101T000000Z-1a2b3c4d"
	stg := "/lake/orders/.deid-retain/" + run + "/"
	ostg := "/out/partner_ads/.deid-retain/" + run + "/"
	cases := []struct {
		name string
		sc   scope
		j    journal
		bad  string // what the error names; "" if accepted
	}{
		{"dataset rewrite", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/a.parquet", Staged: stg + "00000.parquet"}}}, ""},
		{"dataset delete", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/a.parquet", Delete: true}}}, ""},
		{"anonymized and restricted", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/a.parquet", Staged: stg + "00000.parquet",
			AnonStaged: stg + "00000-anonymized.parquet", AnonFinal: "/lake/orders/_anonymized/a/" + run + ".parquet",
			IsoStaged: stg + "00000-restricted.parquet", IsoFinal: "/lake/orders/_restricted/a/" + run + ".parquet"}}}, ""},
		{"released restricted file", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/_restricted/a/r0.parquet", Delete: true}}}, ""},
		{"output rewrite and manifest", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{
			{File: "/out/partner_ads/orders/a.parquet", Staged: ostg + "00000.parquet"}, {File: "/out/partner_ads/_manifest.json", Staged: ostg + "_manifest.json"}}}, ""},
		{"red team: lake overwritten from an output", out, journal{RunID: "x", Dataset: "", Actions: []action{
			{File: "/lake/orders/orders.parquet", Staged: "/out/partner_ads/evil.parquet"}}}, "/lake/orders/orders.parquet"},
		{"journal of no dataset", out, journal{RunID: run, Dataset: "", Actions: nil}, `for ""`},
		{"file outside the output", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{
			{File: "/out/partner_ads/orders/a.parquet", Delete: true}, {File: "/tmp/rt/victim/z", Delete: true}}}, "/tmp/rt/victim/z"},
		{"file up and out", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{
			{File: "/out/partner_ads/../../lake/consent.csv", Delete: true}}}, "consent.csv"},
		{"the root itself", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{{File: "/out/partner_ads/.", Delete: true}}}, "is not inside"},
		{"staged outside the staging folder", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{
			{File: "/out/partner_ads/orders/a.parquet", Staged: "/out/partner_ads/evil.parquet"}}}, "evil.parquet"},
		{"staged in another run's folder", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{
			{File: "/out/partner_ads/orders/a.parquet", Staged: "/out/partner_ads/.deid-retain/other/00000.parquet"}}}, "other/00000.parquet"},
		{"staged up and out of staging", ds, journal{RunID: run, Dataset: "orders", Actions: []action{
			{File: "/lake/orders/a.parquet", Staged: stg + "../../../../tmp/x"}}}, "tmp/x"},
		{"file in the work folder", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: stg + "00000.parquet", Delete: true}}}, "work folder"},
		{"file not of the source", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/keys/audit.key", Delete: true}}}, "audit.key"},
		{"anonymized outside its part", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/a.parquet", Staged: stg + "0.parquet",
			AnonStaged: stg + "0-anonymized.parquet", AnonFinal: "/lake/orders/b.parquet"}}}, "b.parquet"},
		{"restricted without its staged part", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/a.parquet", Delete: true,
			IsoFinal: "/lake/orders/_restricted/a/x.parquet"}}}, "without"},
		{"output moving restricted rows", out, journal{RunID: run, Dataset: "destination partner_ads", Actions: []action{{File: "/out/partner_ads/orders/a.parquet", Staged: ostg + "0.parquet",
			IsoStaged: ostg + "0-r.parquet", IsoFinal: "/out/partner_ads/_restricted/a.parquet"}}}, "restricted"},
		{"replaced and deleted", ds, journal{RunID: run, Dataset: "orders", Actions: []action{{File: "/lake/orders/a.parquet", Staged: stg + "0.parquet", Delete: true}}}, "both"},
		{"another dataset's journal", ds, journal{RunID: run, Dataset: "device", Actions: nil}, `"device"`},
		{"run id with a slash", ds, journal{RunID: "../x", Dataset: "orders", Actions: nil}, "run id"},
		{"empty run id", ds, journal{RunID: "", Dataset: "orders", Actions: nil}, "run id"},
		{"gs: inside", scope{root: "gs://b/lake/orders", dataset: "orders", source: "gs://b/lake/orders/*.parquet"}, journal{RunID: run, Dataset: "orders",
			Actions: []action{{File: "gs://b/lake/orders/a.parquet", Staged: "gs://b/lake/orders/.deid-retain/" + run + "/0.parquet"}}}, ""},
		{"gs: other bucket", scope{root: "gs://b/lake/orders", dataset: "orders", source: "gs://b/lake/orders/*.parquet"}, journal{RunID: run, Dataset: "orders",
			Actions: []action{{File: "gs://other/lake/orders/a.parquet", Delete: true}}}, "gs://other"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.sc.check("/j/journal.json", c.j)
			if c.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, dataerr.ErrData) || !strings.Contains(err.Error(), "/j/journal.json") || !strings.Contains(err.Error(), c.bad) {
				t.Fatalf("got %v, want a data error naming the journal and %s", err, c.bad)
			}
		})
	}
}
