package retain

import (
	"bytes"
	"context"
	"crypto/hmac"
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

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// TestRetainErasesPublishedOutputs: subjects erased after outputs were
// published leave the outputs of two destinations with different keys
// (pseudonyms recomputed with each key); a destination without the subject
// is reported, not guessed at; the manifests follow the files; a second run
// erases nothing.
// published is a lake whose outputs were published before subjects asked
// for erasure.
type published struct {
	dir     string
	pol     *rules.Policy
	full    *rules.Plan
	keys    map[string][]byte
	erasure string
}

func publish(t *testing.T) published { return publishWith(t, "") }

// publishWith publishes with extra lines in the orders dataset's policy.
func publishWith(t *testing.T, extra string) published {
	return publishLake(t, extra, func(dir string) {
		for i := range 3 {
			writeOrders(t, filepath.Join(dir, "orders", fmt.Sprintf("part-%d.parquet", i)), genOrders(i, []string{"new", "new"}, 30), 30, nil)
		}
		// a file whose rows are all past retention: published empty, then deleted by retain
		writeOrders(t, filepath.Join(dir, "orders", "part-3.parquet"), genOrders(3, []string{"old"}, 30), 30, nil)
	})
}

// publishLake publishes the orders that sources writes into dir/orders.
func publishLake(t *testing.T, extra string, sources func(dir string)) published {
	dir := t.TempDir()
	sources(dir)
	keys := map[string][]byte{"a": make([]byte, 32), "b": make([]byte, 32)}
	for name, k := range keys {
		for i := range k {
			k[i] = byte(i*7) + name[0]
		}
		os.WriteFile(filepath.Join(dir, name+".key"), []byte(hex.EncodeToString(k)), 0o600)
	}
	erasure := filepath.Join(dir, "erasure.csv")
	os.WriteFile(erasure, []byte("user_id\n999999\n"), 0o644)
	drop := "order_id: drop, created_at: drop, completed_at: drop, province: drop, phone: drop"
	src := fmt.Sprintf(`version: 1
name: t
keys:
  a: hex:file:a.key
  b: hex:file:b.key
datasets:
  orders:
    source: orders/*.parquet
    subject: user_id
    time_zone: UTC
    columns: {order_id: order_id, user_id: account_id, created_at: timestamp, completed_at: timestamp, amount: amount, province: province, phone: phone}
    retention: {time_column: completed_at, keep: 3y, on_null: keep}
    erasure: [{list: erasure.csv}]
%[2]sdestinations:
  an_a: {purpose: analytics, output: out/a, key: a, datasets: {orders: {columns: {user_id: pseudonymize, amount: keep, %[1]s}}}}
  an_b: {purpose: analytics, output: out/b, key: b, datasets: {orders: {columns: {user_id: pseudonymize, amount: keep, %[1]s}}}}
  partner: {purpose: partner_sharing, output: out/p, datasets: {orders: {columns: {user_id: drop, amount: keep, %[1]s}}}}
`, drop, extra)
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

	return published{dir: dir, pol: pol, full: full, keys: keys, erasure: erasure}
}

func TestRetainErasesPublishedOutputs(t *testing.T) {
	pub := publish(t)
	dir, pol, full, keys, erasure := pub.dir, pub.pol, pub.full, pub.keys, pub.erasure

	type outRow struct {
		User   *string `parquet:"user_id,optional"`
		Amount float64 `parquet:"amount,optional"`
	}
	read := func(dest string) map[string][]outRow {
		out := map[string][]outRow{}
		files, _ := filepath.Glob(filepath.Join(dir, "out", dest, "orders", "*.parquet"))
		for _, f := range files {
			rows, err := parquet.ReadFile[outRow](f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = rows
		}
		return out
	}
	pseudonym := func(key []byte, id int64) string {
		m := hmac.New(sha256.New, key)
		fmt.Fprint(m, id)
		return hex.EncodeToString(m.Sum(nil)[:16])
	}
	erased := []int64{1003, 1011}
	before := map[string]map[string][]outRow{"a": read("a"), "b": read("b"), "p": read("p")}
	wantErased := map[string]int64{}
	for _, dest := range []string{"a", "b"} {
		targets := map[string]bool{pseudonym(keys[dest], erased[0]): true, pseudonym(keys[dest], erased[1]): true}
		for _, rows := range before[dest] {
			for _, r := range rows {
				if r.User != nil && targets[*r.User] {
					wantErased[dest]++
				}
			}
		}
		if wantErased[dest] == 0 {
			t.Fatalf("destination %s holds no row of the subjects to erase: the test proves nothing", dest)
		}
	}

	// the subjects ask for erasure after publication
	os.WriteFile(erasure, []byte("user_id\n1003\n1011\n"), 0o644)
	plan, err := rules.CompileRetain(pol, now)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: full, RunID: "erase"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, d := range rep.Destinations {
		got[d.Name] = d.RowsErased
		if d.Name == "partner" && (d.Datasets[0].Method != "re-derived from lineage" || d.RowsErased == 0 || d.Datasets[0].FilesRewritten != 4) {
			t.Errorf("partner: %+v", d.Datasets[0])
		}
	}
	if got["an_a"] != wantErased["a"] || got["an_b"] != wantErased["b"] {
		t.Errorf("erased %v, want an_a %d an_b %d", got, wantErased["a"], wantErased["b"])
	}
	for _, dest := range []string{"a", "b"} {
		after := read(dest)
		targets := map[string]bool{pseudonym(keys[dest], erased[0]): true, pseudonym(keys[dest], erased[1]): true}
		var n, m int64
		for file, rows := range after {
			n += int64(len(rows))
			m += int64(len(before[dest][file]))
			for _, r := range rows {
				if r.User != nil && targets[*r.User] {
					t.Errorf("%s/%s still holds an erased subject's row", dest, file)
				}
			}
		}
		if m-n != wantErased[dest] {
			t.Errorf("%s: %d rows before, %d after, want %d erased", dest, m, n, wantErased[dest])
		}
		// nor in a dictionary page: every entry is used by a kept row
		files, _ := filepath.Glob(filepath.Join(dir, "out", dest, "orders", "*.parquet"))
		dicts := 0
		for _, f := range files {
			unused, n := unusedDictionaryEntries(t, f)
			dicts += n
			if len(unused) > 0 {
				t.Errorf("%s: dictionary entries no row uses: %v", f, unused)
			}
		}
		if dicts == 0 {
			t.Errorf("%s: no dictionary page read: the check above proves nothing", dest)
		}
		man, err := output.ReadManifest(context.Background(), storage.Local{}, filepath.Join(dir, "out", dest))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range man.Files {
			b, _ := os.ReadFile(filepath.Join(dir, "out", dest, f.Path))
			sum := sha256.Sum256(b)
			if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(b)) != f.Bytes || int64(len(after[filepath.Base(f.Path)])) != f.Rows {
				t.Errorf("%s: manifest entry of %s does not match the file", dest, f.Path)
			}
		}
	}
	// the partner's files, re-derived, hold exactly the amounts of the
	// cleaned sources (runs are deterministic); the emptied input's file is gone
	after := read("p")
	if _, ok := after["part-3.parquet"]; ok || len(after) != 3 {
		t.Errorf("partner files after: %d (part-3 should be gone)", len(after))
	}
	for file, rows := range after {
		var got, want []string
		for _, r := range rows {
			got = append(got, fmt.Sprint(r.Amount))
		}
		for _, o := range readOrders(t, filepath.Join(dir, "orders", file), nil) {
			want = append(want, fmt.Sprint(o.Amount))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || len(rows) == len(before["p"][file]) {
			t.Errorf("partner %s: %d rows (before %d), want the cleaned source's %d", file, len(rows), len(before["p"][file]), len(want))
		}
	}
	if man, err := output.ReadManifest(context.Background(), storage.Local{}, filepath.Join(dir, "out", "p")); err != nil || len(man.Files) != 3 {
		t.Errorf("partner manifest: %v", err)
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	again, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: full, RunID: "again"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range again.Destinations {
		if d.RowsErased != 0 {
			t.Errorf("second run erased %d rows from %s", d.RowsErased, d.Name)
		}
	}
}

// TestRetainOutputJournalBlocksRun: a retain run killed after journaling
// an output's erasure leaves a journal that deid run refuses to publish
// over; the next retain run completes the erasure.
func TestRetainOutputJournalBlocksRun(t *testing.T) {
	pub := publish(t)
	os.WriteFile(pub.erasure, []byte("user_id\n1003\n1011\n"), 0o644)
	plan, err := rules.CompileRetain(pub.pol, now)
	if err != nil {
		t.Fatal(err)
	}
	type crash struct{}
	seen := 0
	func() {
		defer func() {
			if r := recover(); r != nil && r != (crash{}) {
				panic(r)
			}
		}()
		Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "killed", failAt: func(n string) {
			if n == "journal-written" {
				if seen++; seen == 2 { // the first is the source dataset's
					panic(crash{})
				}
			}
		}})
	}()
	if seen != 2 {
		t.Fatalf("the output's journal was never written (%d)", seen)
	}
	if _, err := pipeline.Run(context.Background(), pub.full, pipeline.Options{Store: storage.Local{}, RunID: "over", Workers: 1}); err == nil ||
		!strings.Contains(err.Error(), "an interrupted deid retain run awaits completion") {
		t.Fatalf("deid run over a pending retain journal: %v", err)
	}
	rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "resume"})
	if err != nil {
		t.Fatal(err)
	}
	recovered := false
	for _, d := range rep.Destinations {
		recovered = recovered || d.Recovered == recoveredForward
	}
	if !recovered {
		t.Errorf("no destination was rolled forward: %+v", rep.Destinations)
	}
	if left := leftovers(t, pub.dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := pipeline.Run(context.Background(), pub.full, pipeline.Options{Store: storage.Local{}, RunID: "after", Workers: 1}); err != nil {
		t.Errorf("deid run after the retain run completed: %v", err)
	}
}

// TestRetainIsolatedLeaveOutputs: subjects erased while their rows are
// inside the legal minimum leave the published outputs at once: the
// pseudonymized destinations by their recomputed pseudonyms, the partner's
// (no identity) by re-derivation from the cleaned inputs, since isolating
// the rows changed those inputs. The rows themselves wait in the isolated
// part.
func TestRetainIsolatedLeaveOutputs(t *testing.T) {
	pub := publishWith(t, "    legal_minimum: {keep: 3y, basis: PRC E-Commerce Law art. 31}\n")
	dir := pub.dir
	type outRow struct {
		User   *string `parquet:"user_id,optional"`
		Amount float64 `parquet:"amount,optional"`
	}
	read := func(dest string) map[string][]outRow {
		out := map[string][]outRow{}
		files, _ := filepath.Glob(filepath.Join(dir, "out", dest, "orders", "*.parquet"))
		for _, f := range files {
			rows, err := parquet.ReadFile[outRow](f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = rows
		}
		return out
	}
	erased := []int64{1003, 1011}
	os.WriteFile(pub.erasure, []byte("user_id\n1003\n1011\n"), 0o644)
	plan, err := rules.CompileRetain(pub.pol, now)
	if err != nil {
		t.Fatal(err)
	}
	partnerBefore := read("p")
	rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "erase"})
	if err != nil {
		t.Fatal(err)
	}
	ds := rep.Datasets[0]
	if ds.Isolation.Isolated == 0 || ds.Removed["erasure"] != 0 {
		t.Fatalf("the erased subjects' rows should all be isolated: %+v removed %v", ds.Isolation, ds.Removed)
	}
	var isolated int64
	for _, rows := range isoRows(t, dir, nil) {
		isolated += int64(len(rows))
	}
	if isolated != ds.Isolation.Isolated {
		t.Errorf("isolated part holds %d rows, report says %d", isolated, ds.Isolation.Isolated)
	}
	for _, dest := range []string{"a", "b"} {
		targets := map[string]bool{}
		for _, id := range erased {
			m := hmac.New(sha256.New, pub.keys[dest])
			fmt.Fprint(m, id)
			targets[hex.EncodeToString(m.Sum(nil)[:16])] = true
		}
		for file, rows := range read(dest) {
			for _, r := range rows {
				if r.User != nil && targets[*r.User] {
					t.Errorf("%s/%s still holds an isolated subject's row", dest, file)
				}
			}
		}
	}
	var partnerErased int64
	for _, d := range rep.Destinations {
		if d.Name == "partner" {
			partnerErased = d.RowsErased
		}
	}
	if partnerErased == 0 {
		t.Error("the partner's outputs kept the isolated rows")
	}
	for file, rows := range read("p") {
		var got, want []string
		for _, r := range rows {
			got = append(got, fmt.Sprint(r.Amount))
		}
		for _, o := range readOrders(t, filepath.Join(dir, "orders", file), nil) {
			want = append(want, fmt.Sprint(o.Amount))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) || len(rows) == len(partnerBefore[file]) {
			t.Errorf("partner %s: %d rows (before %d), want the cleaned source's %d", file, len(rows), len(partnerBefore[file]), len(want))
		}
	}
	if left := leftovers(t, dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestRetainErasureRefusesChangedRows: an erasure from published outputs
// whose re-encoded rows are not all rows of the published file (a value
// changed between decoding and encoding, as a bug would) fails with
// ErrNewRows naming the file, commits nothing and leaves nothing behind;
// the same erasure without the change then succeeds.
func TestRetainErasureRefusesChangedRows(t *testing.T) {
	pub := publish(t)
	os.WriteFile(pub.erasure, []byte("user_id\n1003\n1011\n"), 0o644)
	plan, err := rules.CompileRetain(pub.pol, now)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(pub.dir, "out")
	before := treeState(t, out)
	alter := func(b arrow.RecordBatch) arrow.RecordBatch {
		cols := slices.Clone(b.Columns())
		j := b.Schema().FieldIndices("amount")[0]
		vals := slices.Clone(cols[j].(*array.Float64).Float64Values())
		vals[0] += 1000
		fb := array.NewFloat64Builder(memory.NewGoAllocator())
		fb.AppendValues(vals, nil)
		cols[j] = fb.NewArray()
		defer cols[j].Release()
		return array.NewRecordBatch(b.Schema(), cols, b.NumRows())
	}
	_, err = Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "bad", alterOutputRows: alter, Workers: 2})
	if !errors.Is(err, ErrNewRows) || !strings.Contains(err.Error(), filepath.Join(out, "a", "orders")) {
		t.Fatalf("error %v, want ErrNewRows naming a published file", err)
	}
	if after := treeState(t, out); !maps.Equal(after, before) {
		t.Errorf("the published outputs changed")
	}
	if left := leftovers(t, pub.dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if _, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "good"}); err != nil {
		t.Fatal(err)
	}
}

// TestUnusedDictionaryEntriesFound: the check that no erased pseudonym
// stays in a dictionary page finds an entry no row uses (arrow-go writes
// an Arrow dictionary's entries as they are).
func TestUnusedDictionaryEntriesFound(t *testing.T) {
	mem := memory.NewGoAllocator()
	d := dictOf(mem, []string{"a", "b", "zz"}, 0, 1, 0)
	sch := arrow.NewSchema([]arrow.Field{{Name: "u", Type: d.DataType(), Nullable: true}}, nil)
	rec := array.NewRecordBatch(sch, []arrow.Array{d}, 3)
	p := filepath.Join(t.TempDir(), "x.parquet")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sch, f, nil, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if unused, n := unusedDictionaryEntries(t, p); n != 1 || len(unused) != 1 || !strings.Contains(unused[0], `"zz"`) {
		t.Errorf("unused entries %v in %d dictionaries, want zz in 1", unused, n)
	}
}

// TestRetainErasesWholeRowGroup: a published file one of whose row groups
// holds only erased subjects' rows and the other none: the first goes, the
// second is copied, and the staged file, with no re-encoded row group, is
// verified as such (it was read as "verify every row group" and crashed
// the process).
func TestRetainErasesWholeRowGroup(t *testing.T) {
	pub := publishLake(t, "", func(dir string) {
		var rows []order
		for i := range 20 {
			c := cutoff.Add(time.Duration(i) * time.Hour)
			user := int64(1000 + i%2) // row group 0: users 1000 and 1001
			if i >= 10 {
				user = 1003 // row group 1: user 1003 alone
			}
			rows = append(rows, order{ID: fmt.Sprint("o", i), User: user, Created: c, Completed: &c, Amount: float64(i), Province: "浙江省", Phone: "13800138000"})
		}
		writeOrders(t, filepath.Join(dir, "orders", "part-0.parquet"), rows, 10, nil)
	})
	os.WriteFile(pub.erasure, []byte("user_id\n1003\n"), 0o644)
	plan, err := rules.CompileRetain(pub.pol, now)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), plan, Options{Store: storage.Local{}, Outputs: pub.full, RunID: "erase", Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Destinations {
		if d.Name != "partner" && d.RowsErased != 10 {
			t.Errorf("%s: %d rows erased, want 10", d.Name, d.RowsErased)
		}
	}
	for _, dest := range []string{"a", "b"} {
		f := filepath.Join(pub.dir, "out", dest, "orders", "part-0.parquet")
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if n := pf.NumRows(); n != 10 || len(pf.RowGroups()) != 1 {
			t.Errorf("%s: %d rows in %d row groups left, want 10 in 1", f, n, len(pf.RowGroups()))
		}
	}
}
