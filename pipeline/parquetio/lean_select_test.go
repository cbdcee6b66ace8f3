package parquetio

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// keepByValue is a RowFilter that keeps the rows whose first filter
// column's value hashes below share (of 256), so what it keeps does not
// depend on where batches start. It filters its columns with Arrow's
// compute kernel, independent of the reader's selected decoding.
func keepByValue(mem memory.Allocator, cols []int, share uint32) *RowFilter {
	return &RowFilter{Columns: cols, Select: func(in []arrow.Array) ([]bool, int, []arrow.Array, error) {
		n := in[0].Len()
		keep := make([]bool, n)
		kept := 0
		for i := range keep {
			h := fnv.New32a()
			h.Write([]byte(leanValue(in[0], i)))
			if keep[i] = h.Sum32()%256 < share; keep[i] {
				kept++
			}
		}
		mb := array.NewBooleanBuilder(mem)
		defer mb.Release()
		mb.AppendValues(keep, nil)
		mask := mb.NewBooleanArray()
		defer mask.Release()
		out := make([]arrow.Array, len(in))
		for j, a := range in {
			f, err := compute.FilterArray(context.Background(), a, mask, *compute.DefaultFilterOptions())
			if err != nil {
				return nil, 0, nil, err
			}
			out[j] = f
		}
		return keep, kept, out, nil
	}}
}

// TestLeanReaderSelected: reading with a RowFilter gives the rows a full
// read gives, less those the filter removes, for every encoding and NULL
// pattern the model files hold, batch sizes from 3 rows up, dense and
// dictionary reads, on the lean path and on arrow-go's.
func TestLeanReaderSelected(t *testing.T) {
	files := 30
	if testing.Short() {
		files = 12
	}
	dir := t.TempDir()
	for i := 0; i < files; i++ {
		path, desc, r := writeModelFile(t, dir, i, 7)
		share := []uint32{0, 1, 26, 128, 230, 256}[i%6]
		t.Run(fmt.Sprintf("%d-share%d", i, share), func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			defer mem.AssertSize(t, 0)
			batch := int64([]int{3, 7, 100, 4096}[r.IntN(4)])
			full, types, err := readColumns(t, memory.DefaultAllocator, path, ReadOptions{BatchSize: batch, ArrowGo: true}, false)
			if err != nil {
				t.Fatalf("%s: %v", desc, err)
			}
			// the filter reads column 0 and, in half the files, the last one
			cols := []int{0}
			if i%2 == 1 && len(full) > 1 {
				cols = append(cols, len(full)-1)
			}
			want := make([][]string, len(full))
			for row, v := range full[0] {
				h := fnv.New32a()
				h.Write([]byte(v))
				if h.Sum32()%256 < share {
					for k := range full {
						want[k] = append(want[k], full[k][row])
					}
				}
			}
			dict := map[int]bool{}
			for k, typ := range types {
				if typ != nil && (typ.ID() == arrow.STRING || typ.ID() == arrow.BINARY) && r.IntN(2) == 0 {
					dict[k] = true
				}
			}
			for _, tc := range []struct {
				name string
				opt  ReadOptions
				lean bool
			}{
				{"lean", ReadOptions{BatchSize: batch}, true},
				{"lean, dictionaries", ReadOptions{BatchSize: batch, Dictionary: dict}, true},
				{"arrow-go", ReadOptions{BatchSize: batch, ArrowGo: true}, false},
			} {
				tc.opt.Filter = keepByValue(mem, cols, share)
				alloc := memory.Allocator(mem)
				if !tc.lean {
					alloc = memory.DefaultAllocator // arrow-go's delta decoder leaks
				}
				got, _, err := readColumns(t, alloc, path, tc.opt, tc.lean)
				if err != nil {
					t.Fatalf("%s, %s: %v", desc, tc.name, err)
				}
				compareLean(t, fmt.Sprintf("%s, %s, filter on %v keeping %d/256", desc, tc.name, cols, share), got, want)
			}
		})
	}
}

// TestRowFilterChecked: a RowFilter whose answer does not fit its batch is
// an error, not a panic or a wrong batch.
func TestRowFilterChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.parquet")
	writeParquetGo(t, rand.New(rand.NewPCG(1, 2)), path)
	for _, tc := range []struct {
		name    string
		select_ func(in []arrow.Array) ([]bool, int, []arrow.Array, error)
	}{
		{"short keep", func(in []arrow.Array) ([]bool, int, []arrow.Array, error) {
			in[0].Retain()
			return make([]bool, in[0].Len()-1), 0, []arrow.Array{in[0]}, nil
		}},
		{"wrong count", func(in []arrow.Array) ([]bool, int, []arrow.Array, error) {
			in[0].Retain()
			keep := make([]bool, in[0].Len())
			for i := range keep {
				keep[i] = true
			}
			return keep, in[0].Len() - 1, []arrow.Array{in[0]}, nil
		}},
		{"unfiltered column", func(in []arrow.Array) ([]bool, int, []arrow.Array, error) {
			in[0].Retain()
			return make([]bool, in[0].Len()), 0, []arrow.Array{in[0]}, nil
		}},
		{"its own error", func(in []arrow.Array) ([]bool, int, []arrow.Array, error) {
			return nil, 0, nil, fmt.Errorf("no")
		}},
	} {
		for _, arrowGo := range []bool{false, true} {
			_, _, err := readColumns(t, memory.DefaultAllocator, path,
				ReadOptions{BatchSize: 100, ArrowGo: arrowGo, Filter: &RowFilter{Columns: []int{0}, Select: tc.select_}}, !arrowGo)
			if err == nil {
				t.Errorf("%s (arrow-go %v): no error", tc.name, arrowGo)
			}
		}
	}
}
