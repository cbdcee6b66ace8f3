package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/verify"
)

// TestMinKSpill: a run and a dry run enforcing min_k whose counts spill
// at every class give the same bytes and counts as with the default limit,
// and deid verify's risk check gives the same figures; no run is left in
// the scratch directory.
func TestMinKSpill(t *testing.T) {
	plan, out, _, _ := verifyJobPolicy(t, minKPolicy+"        min_k: 3\n")
	logs := filepath.Join(out, "logs")
	ref := tree(t, logs)
	refRep, err := runPlan(t, plan, 2)
	if err != nil {
		t.Fatal(err)
	}
	if refRep.Destinations[0].Removed["small_class"] == 0 {
		t.Fatal("no row removed in small classes: min_k would not be exercised")
	}
	refVerify, err := verify.Outputs(context.Background(), plan, verify.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 5} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			scratch := t.TempDir()
			var logBuf bytes.Buffer
			rep, err := Run(context.Background(), plan, Options{Workers: 2, BatchSize: 1000, ScratchDir: scratch, classLimit: limit,
				Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			if m := regexp.MustCompile(`runs_spilled=(\d+)`).FindStringSubmatch(logBuf.String()); m == nil || m[1] == "0" {
				t.Fatalf("the counts did not spill with a limit of %d classes: %v", limit, m)
			}
			if got := tree(t, logs); !reflect.DeepEqual(got, ref) {
				t.Errorf("outputs differ with a limit of %d classes: %v, want %v", limit, got, ref)
			}
			if a, b := rep.Destinations[0].Removed, refRep.Destinations[0].Removed; !maps.Equal(a, b) {
				t.Errorf("removed %v, want %v", a, b)
			}
			pr, err := Plan(context.Background(), plan, Options{Workers: 2, BatchSize: 64, ScratchDir: scratch, classLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := pr.Destinations[0].Removed, refRep.Destinations[0].Removed; !maps.Equal(a, b) {
				t.Errorf("plan removed %v, the run %v", a, b)
			}
			res, err := verify.Outputs(context.Background(), plan, verify.Options{BatchSize: 64, ScratchDir: scratch, TallyLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := res.Destinations[0].Risk, refVerify.Destinations[0].Risk; !reflect.DeepEqual(a, b) {
				t.Errorf("verify risk %+v, want %+v", a, b)
			}
			if left, _ := filepath.Glob(filepath.Join(scratch, "*", "classes-*.run")); len(left) > 0 {
				t.Errorf("runs left: %v", left)
			}
			if left, _ := filepath.Glob(filepath.Join(scratch, "classes-*.run")); len(left) > 0 {
				t.Errorf("runs left: %v", left)
			}
		})
	}
}

// TestShardedMinKSpanning: with the classes spread over two shards (each
// shard's file holds every class, with half its rows) and counts that spill
// at every class, the shards' outputs equal a single run's byte for byte.
func TestShardedMinKSpanning(t *testing.T) {
	plan, out := shardedMinKPlan(t)
	src := plan.Datasets[0].Source
	dir := filepath.Dir(src)
	b, err := os.ReadFile(filepath.Join(dir, "part-0.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "part-1.parquet"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	single, err := Run(context.Background(), plan, Options{Workers: 2, ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	want := tree(t, filepath.Join(out, "logs"))
	if len(want) != 2 || single.Destinations[0].Removed["small_class"] == 0 {
		t.Fatalf("the single run wrote %v and removed %v: min_k over two files would not be exercised", keys(want), single.Destinations[0].Removed)
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
			reps[i], errs[i] = Run(context.Background(), plan, Options{Workers: 1, RunID: fmt.Sprintf("sim-%d", i), ScratchDir: t.TempDir(),
				Shard: &Shard{Index: i, Count: 2, Inputs: frozen}, ShardWait: time.Minute, classLimit: 1})
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
	got := tree(t, filepath.Join(out, "logs"))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the sharded outputs %v differ from the single run's %v", got, want)
	}
	sum := reps[0].Destinations[0].Removed["small_class"] + reps[1].Destinations[0].Removed["small_class"]
	if s := single.Destinations[0].Removed["small_class"]; sum != s {
		t.Errorf("the shards removed %d rows in small classes, the single run %d", sum, s)
	}
}
