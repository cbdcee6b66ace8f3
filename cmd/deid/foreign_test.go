package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/parquetio"
)

// TestDuckDBWrittenFilesRead: files DuckDB writes (its COPY to Parquet with
// zstd, a writer other than arrow-go, parquet-go and deid's) are read by
// deid's codec, lean reader and arrow-go's alike, to the same rows as the
// file DuckDB copied (docs/design/parquet.md, foreign writers).
func TestDuckDBWrittenFilesRead(t *testing.T) {
	bench := benchDir(t)
	peer := benchPeer.build(t, bench, "duckdb-peer")
	srcs, err := filepath.Glob(filepath.Join(repoRoot(t), "testdata", "sample", "browsing", "*", "*.parquet"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no sample browsing files: %v", err)
	}
	for i, src := range srcs {
		out := filepath.Join(t.TempDir(), "duckdb.parquet")
		runTool(t, bench, nil, peer, "-mode", "copy", "-in", src, "-out", out, "-threads", "1")
		// DuckDB adds the hive partition column (dt) it finds in the path:
		// the original's columns are compared
		want, names := parquetRows(t, src, false, nil)
		lean, _ := parquetRows(t, out, false, names)
		arrowGo, _ := parquetRows(t, out, true, names)
		if len(want) == 0 || !slices.Equal(lean, want) || !slices.Equal(arrowGo, want) {
			t.Errorf("file %d: DuckDB's copy reads as %d rows (lean reader) and %d (arrow-go), the original as %d; or their values differ",
				i, len(lean), len(arrowGo), len(want))
		}
	}
}

// parquetRows reads every row of the file at path with deid's codec (with
// arrowGo, through arrow-go's reader only), of the columns names (nil:
// all), and returns them rendered and sorted, and the columns' names.
func parquetRows(t *testing.T, path string, arrowGo bool, names []string) ([]string, []string) {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquetio.Open(src, st.Size(), path, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if names == nil {
		for _, fld := range f.Schema().Fields() {
			names = append(names, fld.Name)
		}
	}
	var cols []int
	for _, n := range names {
		idx := f.Schema().FieldIndices(n)
		if len(idx) != 1 {
			t.Fatalf("%s: column %q appears %d times", path, n, len(idx))
		}
		cols = append(cols, idx[0])
	}
	var rows []string
	for rg := range f.NumRowGroups() {
		if !arrowGo && !f.LeanReadable(rg, cols) {
			t.Logf("%s row group %d: read by arrow-go, outside the lean reader's support matrix", filepath.Base(path), rg)
		}
		err := f.ReadRowGroup(context.Background(), rg, parquetio.ReadOptions{Columns: cols, BatchSize: 1000, ArrowGo: arrowGo}, func(b arrow.RecordBatch) error {
			for r := range int(b.NumRows()) {
				var row []string
				for c := range int(b.NumCols()) {
					row = append(row, b.Column(c).ValueStr(r))
				}
				rows = append(rows, strings.Join(row, "\x1f"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(rows)
	return rows, names
}
