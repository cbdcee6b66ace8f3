package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Issue 15, item 8: identifiers typed in groups ("身份证 110101 19841104
// 8310") passed scrub unchanged. The real binary scrubs a free_text column
// holding grouped ids and writes the tokens, not the digits.

const detectGroupsPolicy = `version: 1
name: groups
datasets:
  d:
    source: in/*.parquet
    columns: {id: non_personal, note: free_text}
destinations:
  out:
    purpose: research
    output: out
    datasets:
      d:
        columns: {id: keep, note: scrub}
`

func TestDetectGroupsE2E(t *testing.T) {
	dir := t.TempDir()
	notes := []string{
		"身份证 110101 19841104 8310",
		"卡号 6222-0200-0000-0007，电话 138.1234.5678",
		"IMEI 35 209900 176148 1，下单 2024-01-01",
	}
	mem := memory.NewGoAllocator()
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	bld := array.NewRecordBuilder(mem, sch)
	defer bld.Release()
	for i, n := range notes {
		bld.Field(0).(*array.Int64Builder).Append(int64(i))
		bld.Field(1).(*array.StringBuilder).Append(n)
	}
	rec := bld.NewRecordBatch()
	defer rec.Release()
	writeParquetFile(t, filepath.Join(dir, "in", "part-0.parquet"), rec, nil)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(detectGroupsPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	res := runDeid(t, dir, nil, "run", "-c", "policy.yaml", "--now", "2026-11-01T00:00:00Z")
	if res.code != 0 {
		t.Fatalf("deid run: exit %d\n%s", res.code, res.stderr)
	}
	_, rows := readRows(t, filepath.Join(dir, "out", "d", "part-0.parquet"))
	got := map[int64]string{}
	for _, r := range rows {
		got[r["id"].(int64)], _ = r["note"].(string)
	}
	want := []string{
		"身份证 [ID_CARD]",
		"卡号 [BANK_CARD]，电话 [PHONE]",
		"IMEI [IMEI]，下单 2024-01-01",
	}
	for i, w := range want {
		if got[int64(i)] != w {
			t.Errorf("row %d: note %q, want %q", i, got[int64(i)], w)
		}
	}
	for _, digits := range []string{"19841104", "0200", "1234", "209900"} {
		for i, n := range got {
			if strings.Contains(n, digits) {
				t.Errorf("row %d still holds %q: %q", i, digits, n)
			}
		}
	}
}
