// Package pqtest holds Parquet helpers for tests: reading files back with
// parquet-go, a reader independent of the arrow-go code deid writes and
// reads with, and writing files with arrow-go's writer.
package pqtest

import (
	"bytes"
	"errors"
	"io"

	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	aparquet "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
)

// Rows reads every row of the file in data with parquet-go (which checks
// the page CRCs of data pages) and returns how many it read.
func Rows(data []byte) (int64, error) {
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return 0, err
	}
	var n int64
	buf := make([]parquet.Row, 100)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			k, err := rows.ReadRows(buf)
			n += int64(k)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return n, err
			}
		}
		rows.Close()
	}
	return n, nil
}

// WriteArrow writes rec to w as one Parquet file with arrow-go's writer.
func WriteArrow(t testing.TB, w io.Writer, rec arrow.RecordBatch, props *aparquet.WriterProperties, arrowProps pqarrow.ArrowWriterProperties) {
	t.Helper()
	fw, err := pqarrow.NewFileWriter(rec.Schema(), w, props, arrowProps)
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}
