package classes

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// tallyAll reads a tally into entries, in the order each gives them.
func tallyAll(t *testing.T, ct *Tally) []classEntry {
	t.Helper()
	var got []classEntry
	if err := ct.Each(func(k Key, n uint32) error {
		got = append(got, classEntry{k, n})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// runFiles returns the run files in dir.
func runFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "classes-*.run"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClassTally: whatever the limit, each gives every class once, in
// ascending key order, with the sum of its counts across runs; close
// removes the runs.
func TestClassTally(t *testing.T) {
	k := func(hi, lo uint64) Key { return Key{Hi: hi, Lo: lo} }
	type add struct {
		k Key
		n uint32
	}
	cases := []struct {
		name  string
		limit int
		adds  []add
		want  []classEntry
		runs  int
	}{
		{"no class", 1, nil, nil, 0},
		{"one class, in memory", 1, []add{{k(1, 1), 1}}, []classEntry{{k(1, 1), 1}}, 0},
		{"one class, added twice", 1, []add{{k(1, 1), 1}, {k(1, 1), 4}}, []classEntry{{k(1, 1), 5}}, 0},
		{"one run and the map", 1, []add{{k(2, 0), 1}, {k(1, 0), 1}, {k(3, 0), 1}},
			[]classEntry{{k(1, 0), 1}, {k(2, 0), 1}, {k(3, 0), 1}}, 1},
		{"many runs", 2, []add{{k(9, 0), 1}, {k(8, 0), 2}, {k(7, 0), 3}, {k(6, 0), 4}, {k(5, 0), 5}, {k(4, 0), 6}, {k(3, 0), 7}},
			[]classEntry{{k(3, 0), 7}, {k(4, 0), 6}, {k(5, 0), 5}, {k(6, 0), 4}, {k(7, 0), 3}, {k(8, 0), 2}, {k(9, 0), 1}}, 2},
		{"duplicates across runs", 1, []add{{k(1, 0), 1}, {k(2, 0), 1}, {k(1, 0), 2}, {k(2, 0), 2}, {k(1, 0), 3}, {k(2, 0), 3}},
			[]classEntry{{k(1, 0), 6}, {k(2, 0), 6}}, 3},
		{"same high half, low half orders", 1, []add{{k(1, 9), 1}, {k(1, 2), 1}, {k(1, 5), 1}},
			[]classEntry{{k(1, 2), 1}, {k(1, 5), 1}, {k(1, 9), 1}}, 1},
		{"a sum past what one run holds saturates", 1, []add{{k(1, 0), 1<<32 - 1}, {k(2, 0), 1}, {k(1, 0), 7}, {k(3, 0), 1}, {k(1, 0), 1}},
			[]classEntry{{k(1, 0), 1<<32 - 1}, {k(2, 0), 1}, {k(3, 0), 1}}, 2},
		{"default limit, no run", 0, []add{{k(2, 0), 1}, {k(1, 0), 1}}, []classEntry{{k(1, 0), 1}, {k(2, 0), 1}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ct := NewTally(dir, c.limit)
			for _, a := range c.adds {
				if err := ct.Add(a.k, a.n); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(runFiles(t, dir)); got != c.runs {
				t.Errorf("%d runs, want %d", got, c.runs)
			}
			got := tallyAll(t, ct)
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if again := tallyAll(t, ct); !slices.Equal(again, got) {
				t.Errorf("a second read gives %v, the first %v", again, got)
			}
			if n, err := ct.Len(); err != nil || n != int64(len(c.want)) {
				t.Errorf("len = %d, %v; want %d", n, err, len(c.want))
			}
			if err := ct.Add(k(1, 1), 1); err == nil {
				t.Error("add after each: no error")
			}
			if err := ct.Close(); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(dir); len(left) > 0 {
				t.Errorf("files left after close: %v", left)
			}
		})
	}
}

// TestClassTallyEquivalence: on random classes and counts (seeded), a
// tally of any limit gives what a plain map gives, its runs merged into one
// whenever they reach maxRuns.
func TestClassTallyEquivalence(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, classes := range []int{1, 300, 5000} {
		want := map[Key]uint32{}
		var adds []classEntry
		for i := 0; i < 3*classes; i++ {
			// a few classes share their high half (the fingerprint)
			e := classEntry{Key{Hi: rng.Uint64() % uint64(classes*4), Lo: rng.Uint64() % 3}, uint32(1 + rng.IntN(5))}
			adds = append(adds, e)
			want[e.key] += e.n
		}
		for _, limit := range []int{1, 7, 100, 0} {
			if limit == 1 && classes > 1000 {
				continue // 15,000 runs: slow, and 300 classes merge runs already
			}
			t.Run(fmt.Sprintf("%d classes, limit %d", classes, limit), func(t *testing.T) {
				dir := t.TempDir()
				ct := NewTally(dir, limit)
				defer ct.Close()
				for _, e := range adds {
					if err := ct.Add(e.key, e.n); err != nil {
						t.Fatal(err)
					}
					if len(ct.counts) > ct.limit {
						t.Fatalf("%d classes in memory, more than the limit %d", len(ct.counts), ct.limit)
					}
				}
				if len(ct.runs) >= maxRuns {
					t.Errorf("%d runs: not merged at %d", len(ct.runs), maxRuns)
				}
				if files := runFiles(t, dir); len(files) != len(ct.runs) {
					t.Errorf("%d run files for %d runs: merged runs left behind", len(files), len(ct.runs))
				}
				got := tallyAll(t, ct)
				if !slices.IsSortedFunc(got, func(a, b classEntry) int { return CompareKeys(a.key, b.key) }) {
					t.Error("not in key order")
				}
				m := map[Key]uint32{}
				for _, e := range got {
					if _, dup := m[e.key]; dup {
						t.Errorf("class %v given twice", e.key)
					}
					m[e.key] = e.n
				}
				if !maps.Equal(m, want) {
					t.Errorf("%d classes differ from the map's %d", len(m), len(want))
				}
			})
		}
	}
}

// TestClassTallyCorrupt: a damaged run is an error naming it, never
// classes silently lost or changed.
func TestClassTallyCorrupt(t *testing.T) {
	damage := []struct {
		name string
		fn   func(b []byte) []byte
		want string
	}{
		{"truncated by a class", func(b []byte) []byte { return b[:len(b)-runEntrySize] }, "trailer says"},
		{"truncated mid-class", func(b []byte) []byte { return b[:len(b)-7] }, "not a whole number"},
		{"empty", func(b []byte) []byte { return nil }, "not a whole number"},
		{"a flipped bit in a key", func(b []byte) []byte { b[15] ^= 1; return b }, "checksum"},
		{"a flipped bit in a count", func(b []byte) []byte { b[runEntrySize+17] ^= 4; return b }, "checksum"},
		{"a flipped bit in the checksum", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, "checksum"},
		{"classes swapped", func(b []byte) []byte {
			c := bytes.Clone(b[:runEntrySize])
			copy(b, b[runEntrySize:2*runEntrySize])
			copy(b[runEntrySize:], c)
			return b
		}, "out of order"},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			dir := t.TempDir()
			ct := NewTally(dir, 2)
			for i := range 3 {
				if err := ct.Add(Key{Hi: uint64(i + 1)}, uint32(i+1)); err != nil {
					t.Fatal(err)
				}
			}
			runs := runFiles(t, dir)
			if len(runs) != 1 {
				t.Fatalf("%d runs, want 1", len(runs))
			}
			b, err := os.ReadFile(runs[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(runs[0], d.fn(b), 0o644); err != nil {
				t.Fatal(err)
			}
			err = ct.Each(func(Key, uint32) error { return nil })
			if !errors.Is(err, errCorruptRun) || !strings.Contains(err.Error(), runs[0]) || !strings.Contains(err.Error(), d.want) {
				t.Errorf("err = %v, want a corrupt run error naming %s and saying %q", err, runs[0], d.want)
			}
			if err := ct.Close(); err != nil {
				t.Fatal(err)
			}
			if left := runFiles(t, dir); len(left) > 0 {
				t.Errorf("runs left after close: %v", left)
			}
		})
	}
	t.Run("run removed", func(t *testing.T) {
		dir := t.TempDir()
		ct := NewTally(dir, 1)
		ct.Add(Key{Hi: 1}, 1)
		ct.Add(Key{Hi: 2}, 1)
		os.Remove(runFiles(t, dir)[0])
		if err := ct.Each(func(Key, uint32) error { return nil }); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
		ct.Close()
	})
	t.Run("no scratch directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "gone")
		ct := NewTally(dir, 1)
		ct.Add(Key{Hi: 1}, 1)
		if err := ct.Add(Key{Hi: 2}, 1); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("err = %v, want an error naming %s", err, dir)
		}
		ct.Close()
	})
}

// TestSmallClasses: small is a search of the sorted fingerprints of the
// classes below min_k; a class sharing a small class's fingerprint is
// taken for small (fails closed), never the reverse.
func TestSmallClasses(t *testing.T) {
	ct := NewTally(t.TempDir(), 2)
	counts := map[Key]uint32{{Hi: 1, Lo: 1}: 1, {Hi: 1, Lo: 2}: 2, {Hi: 5}: 9, {Hi: 7}: 2, {Hi: 9, Lo: 3}: 3, {Hi: 1 << 63}: 1}
	if err := ct.AddAll(counts); err != nil {
		t.Fatal(err)
	}
	c := &Counts{MinK: 3, Tally: ct}
	if err := c.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 7, 1 << 63}; !slices.Equal(slices.Concat(c.below.chunks...), want) {
		t.Errorf("fingerprints %v, want %v", c.below.chunks, want)
	}
	if rows, classes := c.SmallRows(); rows != 6 || classes != 4 || c.Classes != 6 {
		t.Errorf("%d rows in %d small classes of %d, want 6 in 4 of 6", rows, classes, c.Classes)
	}
	tests := []struct {
		k    Key
		want bool
	}{
		{Key{Hi: 1, Lo: 1}, true},
		{Key{Hi: 7}, true},
		{Key{Hi: 1 << 63}, true},
		{Key{Hi: 5}, false},
		{Key{Hi: 9, Lo: 3}, false},
		{Key{Hi: 0}, false},
		{Key{Hi: 1<<64 - 1}, false},
		{Key{Hi: 7, Lo: 99}, true}, // a collision: suppressed too
	}
	for _, tc := range tests {
		if got := c.Small(tc.k); got != tc.want {
			t.Errorf("small(%v) = %v, want %v", tc.k, got, tc.want)
		}
	}
	// across chunks: the even fingerprints from 2 are small
	var s smallClasses
	const n = 2*smallChunk + 3
	for i := uint64(1); i <= n; i++ {
		s.add(Key{Hi: 2 * i})
		s.add(Key{Hi: 2 * i, Lo: 1}) // the same fingerprint: once
	}
	if len(s.chunks) != 3 || len(slices.Concat(s.chunks...)) != n {
		t.Fatalf("%d chunks of %d fingerprints, want 3 of %d", len(s.chunks), len(slices.Concat(s.chunks...)), n)
	}
	for h := uint64(0); h <= 2*n+2; h++ {
		if got, want := s.contains(Key{Hi: h}), h >= 2 && h <= 2*n && h%2 == 0; got != want {
			t.Fatalf("contains(%d) = %v, want %v", h, got, want)
		}
	}
}

// BenchmarkClassCountsMemory measures what min_k's counts cost (the README
// quotes it): the live heap of the first pass, sampled after each task's
// merge, for a number of distinct classes (each of one row, the worst
// case), which stays flat once the tally spills; the disk the runs take;
// and the heap the second pass keeps per small class.
//
//	go test ./pipeline -run XXX -bench ClassCountsMemory -benchtime 1x
func BenchmarkClassCountsMemory(b *testing.B) {
	for _, classes := range []int{1 << 19, 2_000_000, 8_000_000} {
		b.Run(fmt.Sprint(classes, " classes"), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				var ms runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&ms)
				base := ms.HeapAlloc
				c := &Counts{MinK: 2, Tally: NewTally(dir, 0)}
				var peak uint64
				const task = 50_000 // classes of one row group
				h := uint64(0x9e3779b97f4a7c15)
				for done := 0; done < classes; done += task {
					local := make(map[Key]uint32, task)
					for j := 0; j < min(task, classes-done); j++ {
						h ^= h << 13
						h ^= h >> 7
						h ^= h << 17
						local[Key{Hi: h, Lo: uint64(done + j)}] = 1
					}
					if err := c.Merge(local); err != nil {
						b.Fatal(err)
					}
					local = nil
					runtime.GC()
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc-base)
				}
				var disk int64
				for _, r := range c.Tally.runs {
					if st, err := os.Stat(r); err == nil {
						disk += st.Size()
					}
				}
				if err := c.Finish(nil); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&ms)
				if _, n := c.SmallRows(); n != int64(classes) {
					b.Fatalf("%d small classes, want %d", n, classes)
				}
				b.ReportMetric(float64(peak)/(1<<20), "count-peak-MiB")
				b.ReportMetric(float64(disk)/float64(classes), "disk-bytes/class")
				b.ReportMetric(float64(ms.HeapAlloc-base)/float64(classes), "small-bytes/class")
				runtime.KeepAlive(c)
			}
		})
	}
}
