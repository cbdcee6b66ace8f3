package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zeebo/xxh3"

	"github.com/deidproject/deid/rules"
)

// naiveWords is words' reference: the value itself and every maximal run
// of identifier characters shorter than it, of at least minIdentifierLen
// bytes, each of a length keep accepts.
func naiveWords(v []byte, keep func(int) bool) [][]byte {
	var out [][]byte
	if len(v) >= minIdentifierLen && keep(len(v)) {
		out = append(out, v)
	}
	start := -1
	for i := 0; i <= len(v); i++ {
		in := i < len(v) && (v[i] >= '0' && v[i] <= '9' || v[i] >= 'a' && v[i] <= 'z' || v[i] >= 'A' && v[i] <= 'Z' ||
			v[i] == '@' || v[i] == '.' || v[i] == '_' || v[i] == '+' || v[i] == '-' || v[i] == ':')
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if n := i - start; n >= minIdentifierLen && n < len(v) && keep(n) {
				out = append(out, v[start:i])
			}
			start = -1
		}
	}
	return out
}

func collectWords(v []byte, keep func(int) bool) [][]byte {
	var out [][]byte
	words(v, keep, func(w []byte) { out = append(out, slices.Clone(w)) })
	return out
}

func anyLength(int) bool { return true }

func TestWords(t *testing.T) {
	cases := []struct {
		in   string
		keep func(int) bool
		want []string
	}{
		{"", anyLength, nil},
		{"short", anyLength, nil},
		{"869012345678901", anyLength, []string{"869012345678901"}},
		{"call 13812345678 now", anyLength, []string{"call 13812345678 now", "13812345678"}},
		{"a@b.cn,x.y@example.com;13812345678", anyLength, []string{"a@b.cn,x.y@example.com;13812345678", "a@b.cn", "x.y@example.com", "13812345678"}},
		{"电话13812345678。", anyLength, []string{"电话13812345678。", "13812345678"}},
		{"\xff\xfe869012345678901\x00", anyLength, []string{"\xff\xfe869012345678901\x00", "869012345678901"}},
		{"fe80::1ff:fe23:4567:890a%eth0", anyLength, []string{"fe80::1ff:fe23:4567:890a%eth0", "fe80::1ff:fe23:4567:890a"}},
		{"abcde fghij", anyLength, []string{"abcde fghij"}}, // runs of 5: too short
		// only the lengths kept: 11
		{"call 13812345678 or 869012345678901", func(n int) bool { return n == 11 }, []string{"13812345678"}},
		{"13812345678", func(n int) bool { return n == 15 }, nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q", c.in), func(t *testing.T) {
			got := collectWords([]byte(c.in), c.keep)
			var want [][]byte
			for _, w := range c.want {
				want = append(want, []byte(w))
			}
			if !slices.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Errorf("words = %q, want %q", got, want)
			}
			if ref := naiveWords([]byte(c.in), c.keep); !slices.EqualFunc(got, ref, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Errorf("words = %q, reference %q", got, ref)
			}
		})
	}
}

// FuzzWords: words finds exactly what the reference finds, and oneWord
// says whether the value is its only run.
func FuzzWords(f *testing.F) {
	for _, s := range []string{"", "call 13812345678 now", "a@b.cn,x.y@example.com", "\xff869012345678901", "0123456789abcdef0123456789abcdef"} {
		f.Add([]byte(s), uint8(11))
	}
	f.Fuzz(func(t *testing.T, v []byte, only uint8) {
		for _, keep := range []func(int) bool{anyLength, func(n int) bool { return n == int(only) }} {
			got, want := collectWords(v, keep), naiveWords(v, keep)
			if !slices.EqualFunc(got, want, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Fatalf("words(%q) = %q, reference %q", v, got, want)
			}
		}
		all := !slices.ContainsFunc(v, func(c byte) bool { return !identByte[c] })
		if oneWord(v) != all {
			t.Fatalf("oneWord(%q) = %v", v, !all)
		}
	})
}

// TestIdentifierSetFilter: every value added is found (no false negative,
// whatever the filter's size), values not added are found rarely, and the
// lengths are those seen.
func TestIdentifierSetFilter(t *testing.T) {
	for _, n := range []int{1, 100, 50_000} {
		t.Run(fmt.Sprint(n, " values"), func(t *testing.T) {
			ids := &identifierSet{seed: uint64(n) * 7919, blocks: make([][8]uint64, max((n*10+511)/512, 2))}
			for i := range n {
				ids.add(ids.hash(fmt.Appendf(nil, "86901%010d", i)).Lo)
			}
			for i := range n {
				if v := fmt.Appendf(nil, "86901%010d", i); !ids.has(v) {
					t.Fatalf("%s added and not found", v)
				}
			}
			fp := 0
			const tries = 100_000
			for i := range tries {
				if ids.has(fmt.Appendf(nil, "13%09d", i)) {
					fp++
				}
			}
			// 10 bits a value, 7 probes in one block: about 1 %
			if rate := float64(fp) / tries; rate > 0.03 {
				t.Errorf("false positive rate %.4f with %d values", rate, n)
			}
		})
	}
}

// TestFilterBuildDirect: past maxDistinctExact distinct values the filter
// is sized and filled directly, and every value is still found: those
// gathered before, and those flushed or added after.
func TestFilterBuildDirect(t *testing.T) {
	defer func(n int) { maxDistinctExact = n }(maxDistinctExact)
	maxDistinctExact = 1000
	ids := &identifierSet{plan: &rules.Plan{}, seed: 42}
	fb := &filterBuild{ctx: context.Background(), ids: ids, set: &hashSet{}}
	value := func(i int) []byte { return fmt.Appendf(nil, "86901%010d", i) }
	for batch := range 5 {
		local := &hashSet{}
		for i := batch * 600; i < (batch+1)*600; i++ {
			if fb.direct.Load() && i%2 == 0 {
				ids.add(ids.hash(value(i)).Lo) // as a task does once direct
				continue
			}
			local.add(ids.hash(value(i)))
		}
		fb.flush(local)
		if want := batch >= 1; fb.direct.Load() != want {
			t.Fatalf("after %d values: direct %v", (batch+1)*600, fb.direct.Load())
		}
	}
	fb.finish()
	if fb.err != nil {
		t.Fatal(fb.err)
	}
	for i := range 3000 {
		if !ids.has(value(i)) {
			t.Fatalf("%s added and not found", value(i))
		}
	}
}

// TestFilterBuildExact: with the distinct values gathered, a value that
// hits the filter is a candidate only if its whole hash is one of theirs:
// no value outside the set is (a clean output then has no candidate, and
// the sources are not read again).
func TestFilterBuildExact(t *testing.T) {
	ids := &identifierSet{plan: &rules.Plan{}, seed: 7}
	fb := &filterBuild{ctx: context.Background(), ids: ids, set: &hashSet{}}
	local := &hashSet{}
	for i := range 20_000 {
		local.add(ids.hash(fmt.Appendf(nil, "86901%010d", i%5000))) // repeated values
	}
	fb.flush(local)
	fb.finish()
	if len(ids.exact) != 5000 || fb.direct.Load() {
		t.Fatalf("%d exact hashes (direct %v), want 5000", len(ids.exact), fb.direct.Load())
	}
	for i := range 5000 {
		if !ids.has(fmt.Appendf(nil, "86901%010d", i)) {
			t.Fatalf("value %d not found", i)
		}
	}
	for i := range 100_000 {
		if v := fmt.Appendf(nil, "13%09d", i); ids.has(v) {
			t.Fatalf("%s found, never added", v)
		}
	}
}

// TestScanAllocations: the per-value paths allocate nothing (eachText once
// copied every string; words and the filter's lookup never should).
func TestScanAllocations(t *testing.T) {
	bld := array.NewStringBuilder(memory.NewGoAllocator())
	for i := range 1000 {
		bld.Append(fmt.Sprintf("https://shop.example.com/item/%d?ref=13812345678", i))
	}
	a := bld.NewArray()
	defer a.Release()
	ids := &identifierSet{seed: 1, blocks: make([][8]uint64, 64)}
	ids.lengths[11] = true
	var n int
	allocs := testing.AllocsPerRun(20, func() {
		eachText(a, func(v []byte) {
			words(v, ids.mayHaveLength, func(w []byte) {
				if ids.has(w) {
					n++
				}
			})
		})
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations a scan of 1,000 values, want 0", allocs)
	}
}

// BenchmarkScanWords is the identifier check's per-value path over URLs:
// the words scan, the length filter and the filter's lookup.
func BenchmarkScanWords(b *testing.B) {
	bld := array.NewStringBuilder(memory.NewGoAllocator())
	var bytes int64
	for i := range 10_000 {
		v := fmt.Sprintf("https://shop.example.com/item/%d?ref=search&q=%d", i, i*7919)
		bytes += int64(len(v))
		bld.Append(v)
	}
	a := bld.NewArray()
	defer a.Release()
	ids := &identifierSet{seed: 1, blocks: make([][8]uint64, 1<<12)}
	ids.lengths[11], ids.lengths[15], ids.lengths[36] = true, true, true
	b.SetBytes(bytes)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		eachText(a, func(v []byte) {
			words(v, ids.mayHaveLength, func(w []byte) {
				if ids.has(w) {
					n++
				}
			})
		})
	}
}

// TestHashSet: the open-addressed set holds exactly the hashes added, each
// once, against a Go map: random ones with repeats, the zero hash (which
// marks a free slot), hashes whose low bits collide, across growth and a
// reset.
func TestHashSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s hashSet
	want := map[xxh3.Uint128]bool{}
	add := func(h xxh3.Uint128) {
		s.add(h)
		want[h] = true
	}
	for round := range 2 {
		for i := range 50_000 {
			h := xxh3.Uint128{Hi: rng.Uint64(), Lo: rng.Uint64()}
			switch i % 5 {
			case 0:
				h = xxh3.Uint128{Hi: uint64(i), Lo: 42} // the same slot, then the next
			case 1:
				h = xxh3.Uint128{Hi: uint64(i % 7), Lo: uint64(i % 11)} // repeats
			}
			add(h)
		}
		add(xxh3.Uint128{})
		add(xxh3.Uint128{})
		if s.len() != len(want) {
			t.Fatalf("round %d: %d hashes, want %d", round, s.len(), len(want))
		}
		got := map[xxh3.Uint128]int{}
		s.each(func(h xxh3.Uint128) { got[h]++ })
		for h := range want {
			if got[h] != 1 {
				t.Fatalf("round %d: %v given %d times", round, h, got[h])
			}
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: each gave %d hashes, want %d", round, len(got), len(want))
		}
		s.reset()
		clear(want)
		if s.len() != 0 {
			t.Fatalf("after reset: %d", s.len())
		}
	}
}

// BenchmarkHashSetAdd adds a task's worth of source hashes (200k distinct,
// each five times, in random order, as in the bench's 1M-row row groups)
// to a warm set; a warm set allocates nothing.
func BenchmarkHashSetAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	distinct := make([]xxh3.Uint128, 200_000)
	for i := range distinct {
		distinct[i] = xxh3.Uint128{Hi: rng.Uint64(), Lo: rng.Uint64()}
	}
	hs := make([]xxh3.Uint128, 0, 5*len(distinct))
	for range 5 {
		hs = append(hs, distinct...)
	}
	rng.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })
	var s hashSet
	fill := func() {
		s.reset()
		for _, h := range hs {
			s.add(h)
		}
	}
	fill()
	if allocs := testing.AllocsPerRun(2, fill); allocs > 0 {
		b.Fatalf("%v allocations per fill of a warm set", allocs)
	}
	b.ResetTimer()
	for range b.N {
		fill()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hs)), "ns/add")
}
