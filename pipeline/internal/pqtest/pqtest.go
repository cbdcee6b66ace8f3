// Package pqtest reads Parquet files back with parquet-go, a reader
// independent of the arrow-go code deid writes and reads with, for tests.
package pqtest

import (
	"bytes"
	"errors"
	"io"

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
