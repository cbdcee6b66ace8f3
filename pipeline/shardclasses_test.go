package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

type decoded struct {
	group string
	key   classKey
	n     uint32
}

func decodeAll(t *testing.T, b []byte) ([]decoded, error) {
	t.Helper()
	var got []decoded
	err := decodeClasses(bytes.NewReader(b), int64(len(b)), func(dst, dataset string, k classKey, n uint32) {
		got = append(got, decoded{dst + "/" + dataset, k, n})
	})
	return got, err
}

func encodeToBytes(t *testing.T, groups []classGroup) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := encodeClasses(&buf, groups); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestClassCountsRoundTrip: what encodeClasses writes decodes to the same
// counts, groups by (destination, dataset) and keys ascending, whatever the
// order they were given in.
func TestClassCountsRoundTrip(t *testing.T) {
	big := map[classKey]uint32{}
	for i := uint64(0); i < 1000; i++ {
		big[classKey{Hi: i * 0x9e3779b97f4a7c15, Lo: ^i}] = uint32(i%7 + 1)
	}
	big[classKey{Hi: ^uint64(0), Lo: ^uint64(0)}] = 1<<32 - 1
	tests := []struct {
		name   string
		groups []classGroup
	}{
		{"no groups", nil},
		{"an empty group", []classGroup{{dst: "research", dataset: "orders", counts: map[classKey]uint32{}}}},
		{"one class", []classGroup{{dst: "research", dataset: "orders", counts: map[classKey]uint32{{Hi: 1, Lo: 2}: 3}}}},
		{"groups out of order, many classes", []classGroup{
			{dst: "zeta", dataset: "b", counts: big},
			{dst: "alpha", dataset: "orders", counts: map[classKey]uint32{{Hi: 5}: 1, {Lo: 5}: 2, {Hi: 5, Lo: 1}: 9}},
			{dst: "alpha", dataset: "logs", counts: map[classKey]uint32{{Hi: 0, Lo: 0}: 4}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := encodeToBytes(t, tc.groups)
			got, err := decodeAll(t, b)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]map[classKey]uint32{}
			for _, g := range tc.groups {
				want[g.dst+"/"+g.dataset] = g.counts
			}
			back := map[string]map[classKey]uint32{}
			for i, d := range got {
				if back[d.group] == nil {
					back[d.group] = map[classKey]uint32{}
				}
				back[d.group][d.key] = d.n
				if i > 0 && got[i-1].group == d.group && compareKeys(got[i-1].key, d.key) >= 0 {
					t.Errorf("class %d not after the one before it", i)
				}
				if i > 0 && got[i-1].group > d.group {
					t.Errorf("group %s after %s", d.group, got[i-1].group)
				}
			}
			for g, m := range want {
				if len(m) > 0 && !maps.Equal(back[g], m) {
					t.Errorf("group %s: %d classes back, want %d", g, len(back[g]), len(m))
				}
			}
			if again := encodeToBytes(t, tc.groups); !bytes.Equal(again, b) {
				t.Error("encoding is not deterministic")
			}
			if n := len(big); tc.name == "groups out of order, many classes" && len(b) > 20*(n+3)+100 {
				t.Errorf("%d bytes for %d classes: not compact", len(b), n+4)
			}
		})
	}
}

// TestClassCountsMerge: a shard adds the other shards' counts files to its
// own counts, for the classes it holds only, and ignores other groups.
func TestClassCountsMerge(t *testing.T) {
	dir := t.TempDir()
	a, b, c := classKey{Hi: 1}, classKey{Hi: 2}, classKey{Hi: 3}
	own := newClassTally(dir, 1)
	if err := own.addAll(map[classKey]uint32{a: 1, b: 2}); err != nil {
		t.Fatal(err)
	}
	r := &runner{opt: Options{Store: storage.NewRouter()}, classes: map[string]*classCounts{
		"research\x00orders": {dst: "research", dataset: "orders", minK: 3, tally: own},
	}}
	files := [][]classGroup{
		{{dst: "research", dataset: "orders", counts: map[classKey]uint32{a: 1, c: 5}}},
		{
			{dst: "research", dataset: "orders", counts: map[classKey]uint32{b: 2}},
			{dst: "research", dataset: "logs", counts: map[classKey]uint32{a: 100}},
			{dst: "partner", dataset: "orders", counts: map[classKey]uint32{a: 100}},
		},
	}
	var others []shardClasses
	for i, f := range files {
		loc := filepath.Join(dir, "classes-"+string(rune('1'+i))+".bin")
		if err := os.WriteFile(loc, encodeToBytes(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
		others = append(others, shardClasses{index: i + 1, count: 3, loc: loc})
	}
	if err := r.mergeClasses(context.Background(), others); err != nil {
		t.Fatal(err)
	}
	// merged: a 2, b 4 (c is not this shard's class)
	got := r.classes["research\x00orders"]
	if !got.small(a) || got.small(b) || got.small(c) {
		t.Errorf("small(a) = %v, small(b) = %v, small(c) = %v, want true, false, false with min_k 3", got.small(a), got.small(b), got.small(c))
	}
	if rows, classes := got.smallRows(); rows != 2 || classes != 1 || got.classes != 2 {
		t.Errorf("%d rows in %d small classes of %d, want 2 in 1 of 2", rows, classes, got.classes)
	}
	if runs, _ := filepath.Glob(filepath.Join(dir, "*.run")); len(runs) > 0 {
		t.Errorf("runs left after the merge: %v", runs)
	}
	missing := filepath.Join(dir, "missing.bin")
	r.classes = map[string]*classCounts{}
	if err := r.mergeClasses(context.Background(), []shardClasses{{index: 1, count: 2, loc: missing}}); !errors.Is(err, storage.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
	if satAdd(1<<32-2, 5) != 1<<32-1 || satAdd(2, 3) != 5 {
		t.Error("satAdd does not saturate")
	}
}

// TestClassCountsCorrupt: a damaged counts file is refused with an error
// naming it, never merged silently.
func TestClassCountsCorrupt(t *testing.T) {
	good := encodeToBytes(t, []classGroup{{dst: "research", dataset: "orders",
		counts: map[classKey]uint32{{Hi: 1}: 1, {Hi: 2}: 300, {Hi: 3}: 2}}})
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	unsorted := func() []byte {
		// two classes swapped, with a valid checksum: caught by the order check
		var buf bytes.Buffer
		buf.WriteString(classesFormat)
		buf.Write(appendString(nil, "research"))
		buf.Write(appendString(nil, "orders"))
		buf.WriteByte(2)
		buf.Write(append(make([]byte, 15), 2, 1))
		buf.Write(append(make([]byte, 15), 1, 1))
		buf.WriteByte(0)
		return withCRC(buf.Bytes())
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"another format", append([]byte("deid-classes/v9\n"), good[len(classesFormat):]...), "not a deid class counts file"},
		{"truncated", good[:len(good)-9], "corrupt class counts"},
		{"a flipped bit in a key", flip(len(classesFormat) + 17 + 15), "checksum"},
		{"a flipped bit in the checksum", flip(len(good) - 1), "checksum"},
		{"trailing bytes", append(bytes.Clone(good[:len(good)-4]), append([]byte{0}, good[len(good)-4:]...)...), "trailing bytes"},
		{"keys out of order", unsorted(), "out of order"},
		{"a zero count", withCRC(append(append([]byte(classesFormat), append(appendString(appendString(nil, "d"), "s"), 1)...), append(make([]byte, 16), 0, 0)...)), "count 0"},
	}
	dir := t.TempDir()
	r := &runner{opt: Options{Store: storage.NewRouter()}, classes: map[string]*classCounts{}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".bin")
			if err := os.WriteFile(loc, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			err := r.mergeClasses(context.Background(), []shardClasses{{index: 1, count: 2, loc: loc}})
			if err == nil || !errors.Is(err, errCorruptClasses) || !strings.Contains(err.Error(), loc) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a corrupt-counts error naming %s and saying %q", err, loc, tc.want)
			}
		})
	}
}

// withCRC appends the CRC-32C trailer to a hand-built counts file.
func withCRC(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)))
}

// FuzzDecodeClasses: the decoder never panics, and what it accepts encodes
// back to the same bytes.
func FuzzDecodeClasses(f *testing.F) {
	var buf bytes.Buffer
	_ = encodeClasses(&buf, []classGroup{{dst: "d", dataset: "s", counts: map[classKey]uint32{{Hi: 1}: 2, {Lo: 7}: 1}}})
	f.Add(buf.Bytes())
	f.Add([]byte(classesFormat))
	f.Fuzz(func(t *testing.T, b []byte) {
		groups := map[string]*classGroup{}
		var order []string
		err := decodeClasses(bytes.NewReader(b), int64(len(b)), func(dst, dataset string, k classKey, n uint32) {
			g := dst + "\x00" + dataset
			if groups[g] == nil {
				groups[g] = &classGroup{dst: dst, dataset: dataset, counts: map[classKey]uint32{}}
				order = append(order, g)
			}
			groups[g].counts[k] = n
		})
		if err != nil {
			return
		}
		var gs []classGroup
		for _, g := range order {
			gs = append(gs, *groups[g])
		}
		var again bytes.Buffer
		if err := encodeClasses(&again, gs); err != nil {
			t.Fatal(err)
		}
		back, err := decodeAll(t, again.Bytes())
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		n := 0
		for _, g := range groups {
			n += len(g.counts)
		}
		if len(back) != n {
			t.Fatalf("%d classes accepted, %d after re-encoding", n, len(back))
		}
	})
}

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
	b := encodeToBytes(t, []classGroup{{dst: "analytics", dataset: "logs", counts: map[classKey]uint32{{Hi: 1}: 2, {Hi: 2}: 1}}})
	if err := os.WriteFile(other, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), plan, Options{Workers: 1, Shard: shard, ShardWait: time.Minute})
	if !errors.Is(err, errCorruptClasses) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "shard 1 of 2") {
		t.Fatalf("err = %v, want a corrupt-counts error naming %s", err, other)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "logs", "*.parquet")); len(m) > 0 {
		t.Errorf("a failed shard published %v", m)
	}
	if _, err := os.Stat(shardReportLocation(out, "sim", 0, 2)); err == nil {
		t.Error("a failed shard wrote its report")
	}
}
