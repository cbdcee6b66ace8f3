package retain

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// Erasure only removes (issue 15): a partner's file that retain derives
// again never gains a row, in particular not the rows of children whose
// ages, taken from another dataset, became unknown when that dataset's
// rows expired.

// childrenLake publishes a lake of two datasets, orders (whose created_at
// serves as the birth date) and events (whose children rule takes ages
// from orders), to a partner (key p unless noKey) and to analytics. The
// subjects, three events each on three days of October 2026:
//
//	1: a child (born 2015) whose only order expires at retain: age unknown since
//	2: an adult (born 1990) whose order stays
//	3: an adult (born 1985) whose only order expires at retain
//	4: no order: age unknown from the start
//	5: an adult on the erasure list: retain rewrites events without them
//
// children is appended to the children rule's mapping.
type childrenLake struct {
	dir  string
	pol  *rules.Policy
	full *rules.Plan
}

func publishChildren(t *testing.T, children string, noKey bool) childrenLake {
	t.Helper()
	dir := t.TempDir()
	old := time.Date(2020, 5, 1, 0, 0, 0, 0, time.UTC) // past the 3-year retention
	recent := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	born := map[int64]time.Time{1: time.Date(2015, 3, 1, 0, 0, 0, 0, time.UTC), 2: time.Date(1990, 3, 1, 0, 0, 0, 0, time.UTC),
		3: time.Date(1985, 3, 1, 0, 0, 0, 0, time.UTC), 5: time.Date(1980, 3, 1, 0, 0, 0, 0, time.UTC)}
	completed := map[int64]time.Time{1: old, 2: recent, 3: old, 5: recent}
	var orders, events []order
	for _, u := range []int64{1, 2, 3, 5} {
		c := completed[u]
		orders = append(orders, order{ID: fmt.Sprintf("o%d", u), User: u, Created: born[u], Completed: &c, Amount: float64(u), Province: "浙江省", Phone: "13800138000"})
	}
	for u := int64(1); u <= 5; u++ {
		for d := range 3 {
			c := time.Date(2026, 10, 10+d, 12, 0, 0, 0, time.UTC)
			events = append(events, order{ID: fmt.Sprintf("e%d-%d", u, d), User: u, Created: c, Completed: &c, Amount: float64(u*100 + int64(d)),
				Province: "广东省", Phone: "13800138000"})
		}
	}
	writeOrders(t, filepath.Join(dir, "orders", "part-0.parquet"), orders, 100, nil)
	writeOrders(t, filepath.Join(dir, "events", "part-0.parquet"), events, 100, nil)
	os.WriteFile(filepath.Join(dir, "erasure.csv"), []byte("user_id\n5\n"), 0o644)
	for _, name := range []string{"p", "a"} {
		os.WriteFile(filepath.Join(dir, name+".key"), []byte(strings.Repeat(hex.EncodeToString([]byte{name[0]}), 32)), 0o600)
	}
	key := "key: p, "
	if noKey {
		key = ""
	}
	cols := "order_id: drop, created_at: drop, completed_at: {transform: truncate_time, unit: day}, province: drop, phone: drop, amount: keep"
	src := fmt.Sprintf(`version: 1
name: children
keys:
  p: hex:file:p.key
  a: hex:file:a.key
datasets:
  orders:
    source: orders/*.parquet
    subject: user_id
    time_zone: UTC
    columns: {order_id: order_id, user_id: account_id, created_at: timestamp, completed_at: timestamp, amount: amount, province: province, phone: phone}
    retention: {time_column: completed_at, keep: 3y, on_null: keep}
  events:
    source: events/*.parquet
    subject: user_id
    time_zone: UTC
    columns: {order_id: order_id, user_id: account_id, created_at: timestamp, completed_at: timestamp, amount: amount, province: province, phone: phone}
    retention: {time_column: completed_at, keep: 3y, on_null: keep}
    erasure: [{list: erasure.csv}]
    children: {age_from: {dataset: orders, birth_date: created_at}, time_column: completed_at%[3]s}
destinations:
  partner: {purpose: partner_sharing, output: out/p, %[2]sdatasets: {events: {columns: {user_id: drop, %[1]s}}}}
  an: {purpose: analytics, output: out/a, key: a, datasets: {events: {columns: {user_id: pseudonymize, %[1]s}}}}
`, cols, key, children)
	path := filepath.Join(dir, "policy.yaml")
	os.WriteFile(path, []byte(src), 0o644)
	pol, err := rules.Load(path, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	full, err := rules.Compile(pol, rules.CompileOptions{Now: now, Lookup: os.LookupEnv})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(context.Background(), full, pipeline.Options{Store: storage.Local{}, RunID: "publish", Workers: 1}); err != nil {
		t.Fatal(err)
	}
	return childrenLake{dir: dir, pol: pol, full: full}
}

// partnerAmounts reads the amounts (one per event: user*100+day) of the
// partner's events file, sorted.
func partnerAmounts(t *testing.T, dir string) []float64 {
	t.Helper()
	type row struct {
		Amount *float64 `parquet:"amount,optional"`
	}
	rows, err := parquet.ReadFile[row](filepath.Join(dir, "out", "p", "events", "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, r := range rows {
		out = append(out, *r.Amount)
	}
	slices.Sort(out)
	return out
}

func users(amounts []float64) []int {
	var out []int
	for _, a := range amounts {
		if u := int(a) / 100; len(out) == 0 || out[len(out)-1] != u {
			out = append(out, u)
		}
	}
	return out
}

func (l childrenLake) retain(t *testing.T, dry bool, runID string) (*report.Retain, error) {
	t.Helper()
	plan, err := rules.CompileRetain(l.pol, now)
	if err != nil {
		t.Fatal(err)
	}
	return Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: l.full, RunID: runID, DryRun: dry})
}

// outputCounts are a retain report's counts for the outputs.
func outputCounts(rep *report.Retain) string {
	var b strings.Builder
	for _, d := range rep.Destinations {
		fmt.Fprintf(&b, "%s: %d;", d.Name, d.RowsErased)
		for _, dd := range d.Datasets {
			fmt.Fprintf(&b, " %s %s scanned %d rewritten %d rows %d;", dd.Dataset, dd.Method, dd.FilesScanned, dd.FilesRewritten, dd.RowsErased)
		}
	}
	return b.String()
}

func manifestEntry(t *testing.T, outDir, path string) *output.ManifestFile {
	t.Helper()
	m, err := output.ReadManifest(context.Background(), storage.Local{}, outDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		if f.Path == path {
			return f
		}
	}
	t.Fatalf("%s: no manifest entry for %s", outDir, path)
	return nil
}

// TestRetainKeepsWithheldChildrenOut: the partner's file records the
// fingerprints of the rows the children rule withheld (a child's, and with
// unknown_age: keep not those of unknown age); after the child's only
// order expires, the re-derived file (its input changed: subject 5 erased)
// still holds none of the child's rows, and no row it did not hold; the
// dry run predicted the counts the run then had; a second run changes
// nothing.
func TestRetainKeepsWithheldChildrenOut(t *testing.T) {
	l := publishChildren(t, `, unknown_age: {keep: "test: ages of unknown age are kept"}`, false)
	before := partnerAmounts(t, l.dir)
	if got := users(before); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("published to the partner: subjects %v, want 2, 3, 4 (1 a child, 5 erased)", got)
	}
	e := manifestEntry(t, filepath.Join(l.dir, "out", "p"), "events/part-0.parquet")
	if len(e.ChildrenWithheld) != 3 || !slices.IsSorted(e.ChildrenWithheld) {
		t.Fatalf("children_withheld %v: want the child's three (subject, day) fingerprints, sorted", e.ChildrenWithheld)
	}
	for _, fp := range e.ChildrenWithheld {
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 8 {
			t.Errorf("fingerprint %q: want 16 hex digits", fp)
		}
	}
	lake := treeState(t, l.dir)
	dry, err := l.retain(t, true, "dry")
	if err != nil {
		t.Fatal(err)
	}
	if after := treeState(t, l.dir); !maps.Equal(lake, after) {
		t.Fatal("the dry run changed the lake or the outputs")
	}
	rep, err := l.retain(t, false, "real")
	if err != nil {
		t.Fatal(err)
	}
	if d, r := outputCounts(dry), outputCounts(rep); d != r {
		t.Errorf("dry run predicted\n%s\nthe run did\n%s", d, r)
	}
	after := partnerAmounts(t, l.dir)
	if !isSubMultiset(after, before) {
		t.Errorf("partner rows after %v are not among those before %v", after, before)
	}
	if got := users(after); !slices.Equal(got, []int{2, 3, 4}) {
		t.Errorf("after retain the partner holds subjects %v, want 2, 3, 4 (1 stays out though its age is unknown now)", got)
	}
	if e := manifestEntry(t, filepath.Join(l.dir, "out", "p"), "events/part-0.parquet"); len(e.ChildrenWithheld) != 3 || e.RunID == "publish" {
		t.Errorf("re-derived entry (run %s) records %d fingerprints, want the child's 3 again", e.RunID, len(e.ChildrenWithheld))
	}
	again, err := l.retain(t, false, "again")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range again.Destinations {
		if d.RowsErased != 0 {
			t.Errorf("second run removed %d rows from %s", d.RowsErased, d.Name)
		}
	}
	// a later run of the same now publishes the same file
	if _, err := pipeline.Run(context.Background(), l.full, pipeline.Options{Store: storage.Local{}, RunID: "later", Workers: 1}); err != nil {
		t.Fatal(err)
	}
	if later := partnerAmounts(t, l.dir); !slices.Equal(later, after) {
		t.Errorf("a later run published %v, retain left %v", later, after)
	}
}

// TestRetainRemovesUnknownAgeFromPartner: without unknown_age: keep, rows
// whose age cannot be told leave the partner (counted as children's) but
// stay in analytics (counted as age_unknown); after the orders expire the
// partner's re-derived file loses the rows of the adult whose age is now
// unknown (3) and keeps the child (1) and subject 4 out; the dry run
// predicted it, and no count is negative.
func TestRetainRemovesUnknownAgeFromPartner(t *testing.T) {
	l := publishChildren(t, "", false)
	rep, err := pipeline.Plan(context.Background(), l.full, pipeline.Options{Store: storage.Local{}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Destinations {
		child, unknown := d.Removed["child"], d.AgeUnknown
		switch {
		case d.Name == "partner" && (child != 6 || unknown != 0):
			t.Errorf("partner: removed as children's %d, unknown ages kept %d; want 6 (1's and 4's) and 0", child, unknown)
		case d.Name == "an" && (child != 3 || unknown != 3):
			t.Errorf("analytics: removed as children's %d, unknown ages kept %d; want 3 and 3", child, unknown)
		}
	}
	before := partnerAmounts(t, l.dir)
	if got := users(before); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("published to the partner: subjects %v, want 2, 3", got)
	}
	if e := manifestEntry(t, filepath.Join(l.dir, "out", "p"), "events/part-0.parquet"); len(e.ChildrenWithheld) != 6 {
		t.Errorf("children_withheld %v: want 6 (1's and 4's rows)", e.ChildrenWithheld)
	}
	dry, err := l.retain(t, true, "dry")
	if err != nil {
		t.Fatal(err)
	}
	real, err := l.retain(t, false, "real")
	if err != nil {
		t.Fatal(err)
	}
	if d, r := outputCounts(dry), outputCounts(real); d != r {
		t.Errorf("dry run predicted\n%s\nthe run did\n%s", d, r)
	}
	after := partnerAmounts(t, l.dir)
	if got := users(after); !slices.Equal(got, []int{2}) || !isSubMultiset(after, before) {
		t.Errorf("after retain the partner holds %v (subjects %v), want only subject 2's rows of %v", after, users(after), before)
	}
	for _, d := range real.Destinations {
		if d.RowsErased < 0 {
			t.Errorf("%s: %d rows erased", d.Name, d.RowsErased)
		}
		if d.Name == "partner" && d.RowsErased != 3 {
			t.Errorf("partner: %d rows removed, want subject 3's 3", d.RowsErased)
		}
	}
}

// TestRetainRefusesNewRows: a partner without a key records no
// fingerprints, so after the child's order expires the re-derivation,
// keeping unknown ages, would publish the child's rows: the run fails
// naming the file, and the output is byte for byte as it was, no staging
// left. The dry run refuses too: its count of the re-derived rows exceeds
// the published rows (a gain hidden by as many removals is found only by
// the run's row check).
func TestRetainRefusesNewRows(t *testing.T) {
	l := publishChildren(t, `, unknown_age: {keep: "test"}`, true)
	out := filepath.Join(l.dir, "out", "p")
	state := treeState(t, out)
	if _, err := l.retain(t, true, "dry"); !errors.Is(err, ErrNewRows) {
		t.Errorf("dry run: %v, want ErrNewRows", err)
	}
	_, err := l.retain(t, false, "real")
	if !errors.Is(err, ErrNewRows) || !errors.Is(err, dataerr.ErrData) || !strings.Contains(err.Error(), filepath.Join(out, "events", "part-0.parquet")) {
		t.Fatalf("retain: %v, want a data error naming the partner's file", err)
	}
	if after := treeState(t, out); !maps.Equal(state, after) {
		t.Errorf("the partner's output changed:\nbefore %v\nafter  %v", state, after)
	}
}

// TestCheckSubset: a file is a subset of itself and of a file with more
// rows, never of one lacking one of its rows (duplicates counted).
func TestCheckSubset(t *testing.T) {
	dir := t.TempDir()
	c := cutoff.Add(time.Hour)
	row := func(id string) order {
		return order{ID: id, User: 1, Created: c, Completed: &c, Amount: 1, Province: "浙江省", Phone: "1"}
	}
	files := map[string][]order{"ab": {row("a"), row("b")}, "abb": {row("a"), row("b"), row("b")}, "b": {row("b")}, "none": nil}
	for name, rows := range files {
		writeOrders(t, filepath.Join(dir, name+".parquet"), rows, 100, nil)
	}
	opt := &Options{Store: storage.Local{}, Mem: memory.NewGoAllocator(), BatchSize: 2}
	for _, tc := range []struct {
		published, staged string
		ok                bool
	}{
		{"ab", "ab", true}, {"abb", "ab", true}, {"ab", "b", true}, {"b", "none", true}, {"missing", "none", true},
		{"ab", "abb", false}, {"b", "ab", false}, {"missing", "b", false},
	} {
		err := checkSubset(context.Background(), opt, "d", filepath.Join(dir, tc.published+".parquet"), filepath.Join(dir, tc.staged+".parquet"))
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrNewRows) {
			t.Errorf("%s as the new version of %s: %v, want ok %v", tc.staged, tc.published, err, tc.ok)
		}
	}
}

func isSubMultiset(sub, of []float64) bool {
	left := map[float64]int{}
	for _, v := range of {
		left[v]++
	}
	for _, v := range sub {
		if left[v] == 0 {
			return false
		}
		left[v]--
	}
	return true
}

// treeState is every file under root by its SHA-256, and every folder.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel] = "dir"
			return nil
		}
		b, _ := os.ReadFile(p)
		s := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(s[:])
		return nil
	})
	return out
}
