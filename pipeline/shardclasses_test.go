package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// shardedMinKPlan compiles the min_k test policy (min_k 3) over the files
// verifyJobPolicy wrote, with its output in a fresh folder, and returns
// the plan and that folder.
func shardedMinKPlan(t *testing.T) (*rules.Plan, string) {
	t.Helper()
	_, published, _, _ := verifyJobPolicy(t, minKPolicy+"        min_k: 3\n")
	dir := filepath.Dir(filepath.Dir(filepath.Dir(published)))
	out := filepath.Join(dir, "sharded")
	return recompile(t, dir, strings.ReplaceAll(minKPolicy+"        min_k: 3\n", "OUT", out)), out
}

// TestShardedMinKInProcess: two shards of one run, one with the only input
// file and one with none (its counts file is empty), run together and give
// the single run's output file byte for byte.
func TestShardedMinKInProcess(t *testing.T) {
	plan, out := shardedMinKPlan(t)
	single, err := Run(context.Background(), plan, Options{Workers: 2, Store: storage.NewRouter()})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(out, "logs", "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if single.Destinations[0].Removed["small_class"] == 0 {
		t.Fatal("the single run removed no rows in small classes: min_k would not be exercised")
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	frozen, err := FreezeInputs(context.Background(), plan, Options{}, "sim")
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 2)
	reps := make([]*report.Run, 2)
	done := make(chan int)
	for i := range 2 {
		go func() {
			reps[i], errs[i] = Run(context.Background(), plan, Options{Workers: 1, RunID: fmt.Sprintf("sim-%d", i),
				Shard: &Shard{Index: i, Count: 2, Inputs: frozen}, ShardWait: time.Minute})
			done <- i
		}()
	}
	<-done
	<-done
	for i, err := range errs {
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	got, err := os.ReadFile(filepath.Join(out, "logs", "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the sharded output differs from the single run's")
	}
	if a, b := reps[0].Destinations[0].Removed["small_class"], single.Destinations[0].Removed["small_class"]; a != b {
		t.Errorf("shard 0 removed %d rows in small classes, the single run %d", a, b)
	}
}

// TestShardedMinKCorruptCounts: a shard that finds another shard's counts
// file damaged fails naming the file, and publishes nothing.
func TestShardedMinKCorruptCounts(t *testing.T) {
	plan, out := shardedMinKPlan(t)
	frozen, err := FreezeInputs(context.Background(), plan, Options{}, "sim")
	if err != nil {
		t.Fatal(err)
	}
	shard := &Shard{Index: 0, Count: 2, Inputs: frozen}
	other := classesLocation(shard, out, 1)
	b := classFile(t, []classes.Group{{Dst: "analytics", Dataset: "logs", Counts: map[classes.Key]uint32{{Hi: 1}: 2, {Hi: 2}: 1}}})
	if err := os.WriteFile(other, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), plan, Options{Workers: 1, Shard: shard, ShardWait: time.Minute})
	if !errors.Is(err, classes.ErrCorrupt) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "shard 1 of 2") {
		t.Fatalf("err = %v, want a corrupt-counts error naming %s", err, other)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "logs", "*.parquet")); len(m) > 0 {
		t.Errorf("a failed shard published %v", m)
	}
	if _, err := os.Stat(shardReportLocation(out, "sim", 0, 2)); err == nil {
		t.Error("a failed shard wrote its report")
	}
}

// classFile is the encoding of a shard's class counts file of groups.
func classFile(t *testing.T, groups []classes.Group) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := classes.Encode(&buf, groups); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClassCountsMerge: a shard adds the other shards' counts files to its
// own counts, for the classes it holds only, and ignores other groups.
func TestClassCountsMerge(t *testing.T) {
	dir := t.TempDir()
	a, b, c := classes.Key{Hi: 1}, classes.Key{Hi: 2}, classes.Key{Hi: 3}
	own := classes.NewTally(dir, 1)
	if err := own.AddAll(map[classes.Key]uint32{a: 1, b: 2}); err != nil {
		t.Fatal(err)
	}
	r := &runner{opt: Options{Store: storage.NewRouter()}, classes: map[string]*classes.Counts{
		"research\x00orders": {Dst: "research", Dataset: "orders", MinK: 3, Tally: own},
	}}
	files := [][]classes.Group{
		{{Dst: "research", Dataset: "orders", Counts: map[classes.Key]uint32{a: 1, c: 5}}},
		{
			{Dst: "research", Dataset: "orders", Counts: map[classes.Key]uint32{b: 2}},
			{Dst: "research", Dataset: "logs", Counts: map[classes.Key]uint32{a: 100}},
			{Dst: "partner", Dataset: "orders", Counts: map[classes.Key]uint32{a: 100}},
		},
	}
	var others []classes.ShardFile
	for i, f := range files {
		loc := filepath.Join(dir, "classes-"+string(rune('1'+i))+".bin")
		if err := os.WriteFile(loc, classFile(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
		others = append(others, classes.ShardFile{Index: i + 1, Count: 3, Loc: loc})
	}
	if err := r.mergeClasses(context.Background(), others); err != nil {
		t.Fatal(err)
	}
	// merged: a 2, b 4 (c is not this shard's class)
	got := r.classes["research\x00orders"]
	if !got.Small(a) || got.Small(b) || got.Small(c) {
		t.Errorf("small(a) = %v, small(b) = %v, small(c) = %v, want true, false, false with min_k 3", got.Small(a), got.Small(b), got.Small(c))
	}
	if rows, classes := got.SmallRows(); rows != 2 || classes != 1 || got.Classes != 2 {
		t.Errorf("%d rows in %d small classes of %d, want 2 in 1 of 2", rows, classes, got.Classes)
	}
	if runs, _ := filepath.Glob(filepath.Join(dir, "*.run")); len(runs) > 0 {
		t.Errorf("runs left after the merge: %v", runs)
	}
	missing := filepath.Join(dir, "missing.bin")
	r.classes = map[string]*classes.Counts{}
	if err := r.mergeClasses(context.Background(), []classes.ShardFile{{Index: 1, Count: 2, Loc: missing}}); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	if classes.SatAdd(1<<32-2, 5) != 1<<32-1 || classes.SatAdd(2, 3) != 5 {
		t.Error("SatAdd does not saturate")
	}
}
