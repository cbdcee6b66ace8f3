package lists

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

type ConsentRow struct {
	ID      int64
	SID     string
	Purpose string
	At      int64 // microseconds since the epoch
}

// ReadConsent reads one consent list; rows with a NULL subject are skipped.
// side names the data file and subject column the ids are compared with.
func ReadConsent(ctx context.Context, store storage.Store, mem memory.Allocator, c *rules.ConsentDecl, kind transforms.Kind, side string) ([]ConsentRow, error) {
	if c.Format() == "csv" {
		return readConsentCSV(ctx, store, c, kind, side)
	}
	f, _, err := pqstore.Open(ctx, store, c.List, mem)
	if err != nil {
		return nil, dataerr.Mark(err)
	}
	defer f.Close()
	sch := f.Schema()
	if err := dataerr.CheckColumnNames(c.List, sch); err != nil {
		return nil, err
	}
	names := []string{c.Column, "purpose", "withdrawn_at"}
	var leaves []int
	for _, n := range names {
		idx := sch.FieldIndices(n)
		if idx == nil {
			return nil, dataerr.Errorf(c.List, n, "the consent list has no such column (%s); it needs %s and has %s", c.Pos, strings.Join(names, ", "), fieldNames(sch))
		}
		leaves = append(leaves, f.LeafIndex(n))
	}
	if k, ok := transforms.KindOf(sch.Field(sch.FieldIndices(c.Column)[0]).Type); !ok || k != kind {
		return nil, dataerr.Errorf(c.List, c.Column, "the consent list's ids are %s, but %s: write the list with the subject column's type",
			sch.Field(sch.FieldIndices(c.Column)[0]).Type, side)
	}
	if _, ok := sch.Field(sch.FieldIndices("withdrawn_at")[0]).Type.(*arrow.TimestampType); !ok {
		return nil, dataerr.Errorf(c.List, "withdrawn_at", "is %s, not a timestamp", sch.Field(sch.FieldIndices("withdrawn_at")[0]).Type)
	}
	var rows []ConsentRow
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaves, BatchSize: 1 << 16}, func(b arrow.RecordBatch) error {
			subj, purpose, at := b.Column(0), b.Column(1), b.Column(2)
			ts := at.(*array.Timestamp)
			unit := ts.DataType().(*arrow.TimestampType).Unit
			for i := 0; i < int(b.NumRows()); i++ {
				if subj.IsNull(i) {
					continue
				}
				row := ConsentRow{}
				if kind == transforms.KindInteger {
					row.ID, _ = transforms.IntValue(subj, i)
				} else {
					row.SID = strings.Clone(StringAt(subj, i))
				}
				row.Purpose = StringAt(purpose, i)
				if purpose.IsNull(i) || !isPurpose(row.Purpose) {
					return dataerr.Errorf(c.List, "purpose", "row %d: %q is not one of %s", i, row.Purpose, strings.Join(rules.Purposes, ", "))
				}
				if ts.IsNull(i) {
					return dataerr.Errorf(c.List, "withdrawn_at", "row %d: NULL withdrawal time", i)
				}
				row.At = withdrawalMicros(ts.Value(i), unit)
				rows = append(rows, row)
			}
			return nil
		})
		if err != nil {
			return nil, dataerr.Mark(err)
		}
	}
	return rows, nil
}

// withdrawalMicros returns a withdrawal time of unit as microseconds,
// clamped to the int64 range: a time in the far future (milliseconds at the
// end of their range) stays there instead of wrapping around into the past,
// which would withdraw consent for every row.
func withdrawalMicros(v arrow.Timestamp, unit arrow.TimeUnit) int64 {
	return transforms.FloorTicks(v.ToTime(unit), arrow.Microsecond)
}

// readConsentCSV reads a CSV consent list with a header line; withdrawn_at
// is RFC 3339 text with a zone offset.
func readConsentCSV(ctx context.Context, store storage.Store, c *rules.ConsentDecl, kind transforms.Kind, side string) ([]ConsentRow, error) {
	src, err := store.Open(ctx, c.List)
	if err != nil {
		return nil, fmt.Errorf("consent list: %w", err)
	}
	defer src.Close()
	cr := csv.NewReader(io.NewSectionReader(src, 0, src.Size()))
	header, err := cr.Read()
	if err != nil {
		return nil, dataerr.Errorf(c.List, "", "no header line naming the columns: %w", err)
	}
	col := map[string]int{}
	names := make([]string, len(header))
	for i, h := range header {
		names[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		col[names[i]] = i
	}
	if err := dataerr.CheckNames(c.List, names); err != nil {
		return nil, err
	}
	for _, n := range []string{c.Column, "purpose", "withdrawn_at"} {
		if _, ok := col[n]; !ok {
			return nil, dataerr.Errorf(c.List, n, "the consent list has no such column (%s); its header is %q", c.Pos, strings.Join(header, ","))
		}
	}
	var rows []ConsentRow
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, dataerr.Errorf(c.List, "", "%w", err)
		}
		line, _ := cr.FieldPos(0)
		at := fmt.Sprintf("%s:%d", c.List, line)
		id := strings.TrimSpace(rec[col[c.Column]])
		if id == "" {
			continue
		}
		row := ConsentRow{SID: id, Purpose: strings.TrimSpace(rec[col["purpose"]])}
		if kind == transforms.KindInteger {
			if row.ID, err = strconv.ParseInt(id, 10, 64); err != nil {
				return nil, dataerr.Errorf(at, c.Column, "%q in the consent list is not an integer id, but %s", id, side)
			}
			row.SID = ""
		}
		if !isPurpose(row.Purpose) {
			return nil, dataerr.Errorf(at, "purpose", "%q is not one of %s", row.Purpose, strings.Join(rules.Purposes, ", "))
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(rec[col["withdrawn_at"]]))
		if err != nil {
			return nil, dataerr.Errorf(at, "withdrawn_at", "%q is not an RFC 3339 time with a zone (2026-05-01T08:00:00+08:00)", rec[col["withdrawn_at"]])
		}
		row.At = t.UnixMicro()
		rows = append(rows, row)
	}
}

func isPurpose(s string) bool {
	for _, p := range rules.Purposes {
		if p == s {
			return true
		}
	}
	return false
}

// StringAt returns row i of a string column, plain or dictionary-encoded.
func StringAt(a arrow.Array, i int) string {
	switch c := a.(type) {
	case *array.Dictionary:
		return StringAt(c.Dictionary(), c.GetValueIndex(i))
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Binary:
		return string(c.Value(i))
	}
	return ""
}
