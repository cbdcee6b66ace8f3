package parquetio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"
)

// TestAssemble: selected row groups of several files, copied without
// decoding, read back by parquet-go as exactly those rows in that order.
func TestAssemble(t *testing.T) {
	mem := checkedMem(t)
	opt := WriterOptions{MaxRowGroupRows: 100}
	a := writePart(t, mem, [][2]int{{0, 300}}, opt)    // row groups [0,100) [100,200) [200,300)
	b := writePart(t, mem, [][2]int{{1000, 150}}, opt) // [1000,1100) [1100,1150)
	var out bytes.Buffer
	rows, err := Assemble(&out, []Piece{{a, []int{2, 0}}, {b, []int{1}}, {a, nil}})
	if err != nil || rows != 250 {
		t.Fatalf("rows %d, %v", rows, err)
	}
	type row struct {
		ID *string `parquet:"id,optional"`
	}
	got, err := parquet.Read[row](bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, r := range [][2]int{{200, 300}, {0, 100}, {1100, 1150}} {
		for i := r[0]; i < r[1]; i++ {
			want = append(want, i)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for k, i := range want {
		if (i%11 == 0) != (got[k].ID == nil) || got[k].ID != nil && *got[k].ID != fmt.Sprintf("ev-%d", i) {
			t.Fatalf("row %d: %v, want ev-%d", k, got[k].ID, i)
		}
	}
	// our own reader verifies every page checksum of the copied chunks
	path := t.TempDir() + "/a.parquet"
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := readAll(t, mem, path); err != nil || n != 250 {
		t.Fatalf("our reader: %d rows, %v", n, err)
	}

	var buf bytes.Buffer
	pw, _ := NewPartWriter(&buf, arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}}, nil), nil, WriterOptions{}, mem)
	pw.Close()
	if _, err := Assemble(new(bytes.Buffer), []Piece{{a, []int{0}}, {bytes.NewReader(buf.Bytes()), nil}}); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("different schemas: %v", err)
	}
	if _, err := Assemble(new(bytes.Buffer), []Piece{{a, []int{3}}}); err == nil {
		t.Error("row group 3 of 3 accepted")
	}
}
