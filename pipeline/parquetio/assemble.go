package parquetio

import (
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/parquet-go/parquet-go/format"
)

// ErrSchemaMismatch is returned by Assemble when the pieces' Parquet
// schemas differ, so their row groups cannot share one footer.
var ErrSchemaMismatch = errors.New("the pieces have different Parquet schemas")

// Piece selects row groups of one Parquet file or part, by index.
type Piece struct {
	Part      Part
	RowGroups []int
}

// Assemble writes one Parquet file holding the selected row groups of the
// pieces, in order, each copied byte for byte through a Splicer
// (AddRowGroups): none is decoded or re-encoded. The footer is the first
// piece's (schema, key-value metadata such as the Arrow schema, writer)
// with the row groups' offsets moved to where they now lie. Page indexes and bloom filters of copied row groups
// are left out of the footer, since they lie outside the row groups' bytes;
// both are optional in Parquet. Every piece must have the same Parquet
// schema as the first (ErrSchemaMismatch otherwise). It returns the rows
// written.
func Assemble(w io.Writer, pieces []Piece) (int64, error) {
	if len(pieces) == 0 {
		return 0, errors.New("assemble: no pieces")
	}
	s := NewSplicer(w)
	for _, p := range pieces {
		if err := s.AddRowGroups(p.Part, p.RowGroups); err != nil {
			return 0, fmt.Errorf("assemble: %w", err)
		}
	}
	return s.Close()
}

// rowGroupRange returns the byte range of a row group's column chunks.
func rowGroupRange(rg *format.RowGroup, size int64) (start, end int64, err error) {
	start, end = math.MaxInt64, 0
	for j := range rg.Columns {
		c := &rg.Columns[j]
		if c.FilePath != "" {
			return 0, 0, fmt.Errorf("column chunk in another file (%s)", c.FilePath)
		}
		s := c.MetaData.DataPageOffset
		if d := c.MetaData.DictionaryPageOffset; d > 0 && d < s {
			s = d
		}
		e := s + c.MetaData.TotalCompressedSize
		if s < int64(len(magic)) || c.MetaData.TotalCompressedSize < 0 || e > size {
			return 0, 0, fmt.Errorf("column chunk at %d+%d lies outside the %d-byte file", s, c.MetaData.TotalCompressedSize, size)
		}
		start, end = min(start, s), max(end, e)
	}
	if len(rg.Columns) == 0 {
		return 0, 0, errors.New("row group without columns")
	}
	return start, end, nil
}

// RowGroupCount returns the number of row groups of a Parquet file or part.
func RowGroupCount(p Part) (int, error) {
	md, _, err := readFooter(p)
	if err != nil {
		return 0, err
	}
	return len(md.RowGroups), nil
}
