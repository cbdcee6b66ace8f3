package transforms

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestFilterMatchesArrow: Selection.Filter's fast paths give exactly what
// Arrow's compute filter gives, for every type they cover, with and
// without nulls, on sliced arrays, for random selections (none, all, runs,
// scattered), and the checked allocator sees no leak.
func TestFilterMatchesArrow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rng := rand.New(rand.NewPCG(7, 11))
	build := func(kind string, n int, nulls bool) arrow.Array {
		null := func() bool { return nulls && rng.IntN(4) == 0 }
		switch kind {
		case "string", "binary", "empty strings":
			var b interface {
				array.Builder
			}
			if kind == "binary" {
				bb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
				for i := 0; i < n; i++ {
					if null() {
						bb.AppendNull()
					} else {
						bb.Append([]byte(strings.Repeat("x", rng.IntN(9))))
					}
				}
				b = bb
			} else {
				sb := array.NewStringBuilder(mem)
				for i := 0; i < n; i++ {
					switch {
					case null():
						sb.AppendNull()
					case kind == "empty strings":
						sb.Append("")
					default:
						sb.Append(fmt.Sprintf("v%d-%s", i, strings.Repeat("é", rng.IntN(5))))
					}
				}
				b = sb
			}
			defer b.Release()
			return b.NewArray()
		case "int64":
			ib := array.NewInt64Builder(mem)
			defer ib.Release()
			for i := 0; i < n; i++ {
				if null() {
					ib.AppendNull()
				} else {
					ib.Append(rng.Int64())
				}
			}
			return ib.NewArray()
		case "timestamp":
			tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
			defer tb.Release()
			for i := 0; i < n; i++ {
				if null() {
					tb.AppendNull()
				} else {
					tb.Append(arrow.Timestamp(rng.Int64N(1 << 50)))
				}
			}
			return tb.NewArray()
		case "float64":
			fb := array.NewFloat64Builder(mem)
			defer fb.Release()
			for i := 0; i < n; i++ {
				if null() {
					fb.AppendNull()
				} else {
					fb.Append(rng.Float64())
				}
			}
			return fb.NewArray()
		case "dictionary":
			db := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
			defer db.Release()
			for i := 0; i < n; i++ {
				if null() {
					db.AppendNull()
				} else {
					db.AppendString(fmt.Sprint("city", rng.IntN(7)))
				}
			}
			return db.NewArray()
		}
		panic(kind)
	}
	for _, kind := range []string{"string", "binary", "empty strings", "int64", "timestamp", "float64", "dictionary"} {
		for _, nulls := range []bool{false, true} {
			for trial := 0; trial < 20; trial++ {
				full := build(kind, 200, nulls)
				off, n := rng.IntN(30), 100+rng.IntN(60)
				a := array.NewSlice(full, int64(off), int64(off+n))
				full.Release()
				var s Selection
				s.Reset(n)
				p := []float64{0.05, 0.5, 0.95, 0.25}[trial%4]
				for i := 0; i < n; i++ {
					if rng.Float64() < p {
						s.remove(i, ReasonRetention)
					}
				}
				if fast, ok := filterFast(mem, a, s.keep, s.kept); !ok {
					t.Fatalf("%s: no fast path", kind)
				} else {
					fast.Release()
				}
				got, err := s.Filter(mem, a)
				if err != nil {
					t.Fatal(err)
				}
				mask := s.mask(mem)
				want, err := compute.FilterArray(compute.WithAllocator(context.Background(), mem), a, mask, *compute.DefaultFilterOptions())
				if err != nil {
					t.Fatal(err)
				}
				if !array.Equal(got, want) || got.NullN() != want.NullN() {
					t.Errorf("%s nulls=%v trial %d: fast filter differs from Arrow's:\n got %v\nwant %v", kind, nulls, trial, got, want)
				}
				mask.Release()
				got.Release()
				want.Release()
				a.Release()
			}
		}
	}
}
