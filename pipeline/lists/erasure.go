package lists

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
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

// HashFile returns the hex SHA-256 and the attributes of a stored file.
func HashFile(ctx context.Context, store storage.Store, location string) (string, storage.Attrs, error) {
	src, err := store.Open(ctx, location)
	if err != nil {
		return "", storage.Attrs{}, err
	}
	defer src.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(src, 0, src.Size())); err != nil {
		return "", storage.Attrs{}, fmt.Errorf("read %s: %w", location, err)
	}
	return hex.EncodeToString(h.Sum(nil)), src.Attrs(), nil
}

// CheckUnchanged returns a data error when the object at location is no
// longer the version whose attributes were read before (another size,
// modification time or generation): a list hashed for the report, then
// parsed, must be the same list both times, or the report would vouch for
// ids the run did not use.
func CheckUnchanged(ctx context.Context, store storage.Store, what, location string, before storage.Attrs) error {
	now, err := store.Stat(ctx, location)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, location, err)
	}
	if now.Size != before.Size || !now.ModTime.Equal(before.ModTime) || now.Generation != before.Generation {
		return &dataerr.Error{Location: location, Err: fmt.Errorf("the %s changed while it was read (%d bytes, generation %d, modified %s; then %d bytes, generation %d, modified %s): "+
			"run again once it is written", what, before.Size, before.Generation, before.ModTime.Format(time.RFC3339Nano), now.Size, now.Generation, now.ModTime.Format(time.RFC3339Nano))}
	}
	return nil
}

// SubjectList is a list of subject ids to read: an erasure list, a legal
// hold list.
type SubjectList struct {
	// What names the list in errors ("erasure list").
	What string
	// Location is the Parquet or CSV file (by extension).
	Location string
	// Column is the list's column of ids.
	Column string
	// Pos is where the policy declares the list.
	Pos rules.Pos
	// Against is the data file whose subject column gave the ids' kind,
	// and Subject that column: a list of the other kind names both sides.
	Against, Subject string
}

// kindMismatch says, in an error, what a list's ids are compared with:
// the subject column of the data file that gave their kind.
func (l SubjectList) kindMismatch(kind transforms.Kind) string {
	if l.Against == "" {
		return fmt.Sprintf("the dataset's subject column holds %s ids", kind)
	}
	return SubjectSide(l.Against, l.Subject, kind)
}

// SubjectSide describes the data side of an id type mismatch: the subject
// column, its data file and the kind of ids it holds.
func SubjectSide(location, column string, kind transforms.Kind) string {
	return fmt.Sprintf("the subject column %q of %s, which it is compared with, holds %s ids", column, location, kind)
}

// ReadSubjectList appends the ids of a Parquet or CSV list to ints or strs,
// by kind (the subject column's): ids are matched strictly by type, a list
// of the other kind is a data error, and NULL or empty ids are skipped.
func ReadSubjectList(ctx context.Context, store storage.Store, mem memory.Allocator, l SubjectList, kind transforms.Kind, ints *[]int64, strs *[]string) error {
	if strings.EqualFold(filepath.Ext(l.Location), ".csv") {
		return readListCSV(ctx, store, l, kind, ints, strs)
	}
	return readListParquet(ctx, store, mem, l, kind, ints, strs)
}

func readListParquet(ctx context.Context, store storage.Store, mem memory.Allocator, e SubjectList, kind transforms.Kind, ints *[]int64, strs *[]string) error {
	f, _, err := pqstore.Open(ctx, store, e.Location, mem)
	if err != nil {
		return dataerr.Mark(err)
	}
	defer f.Close()
	idx := f.Schema().FieldIndices(e.Column)
	if idx == nil {
		return dataerr.Errorf(e.Location, e.Column, "the %s has no such column (%s); it has %s", e.What, e.Pos, fieldNames(f.Schema()))
	}
	if err := dataerr.CheckColumnNames(e.Location, f.Schema()); err != nil {
		return err
	}
	typ := f.Schema().Field(idx[0]).Type
	if k, ok := transforms.KindOf(typ); !ok || k != kind {
		return dataerr.Errorf(e.Location, e.Column, "the %s's ids are %s, but %s: ids are matched by type, "+
			"write the list with the subject column's type", e.What, typ, e.kindMismatch(kind))
	}
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		leaf := []int{f.LeafIndex(e.Column)}
		err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaf, BatchSize: 1 << 16}, func(b arrow.RecordBatch) error {
			col := b.Column(0)
			for i := 0; i < col.Len(); i++ {
				if col.IsNull(i) {
					continue
				}
				switch c := col.(type) {
				case *array.String:
					*strs = append(*strs, strings.Clone(c.Value(i)))
				case *array.LargeString:
					*strs = append(*strs, strings.Clone(c.Value(i)))
				default:
					if v, ok := transforms.IntValue(col, i); ok {
						*ints = append(*ints, v)
					}
				}
			}
			return nil
		})
		if err != nil {
			return dataerr.Mark(err)
		}
	}
	return nil
}

// readListCSV reads a CSV list with a header line naming its columns.
func readListCSV(ctx context.Context, store storage.Store, e SubjectList, kind transforms.Kind, ints *[]int64, strs *[]string) error {
	src, err := store.Open(ctx, e.Location)
	if err != nil {
		return fmt.Errorf("%s: %w", e.What, err)
	}
	defer src.Close()
	cr := csv.NewReader(io.NewSectionReader(src, 0, src.Size()))
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return dataerr.Errorf(e.Location, "", "no header line naming the columns: %w", err)
	}
	names := make([]string, len(header))
	col := -1
	for i, h := range header {
		names[i] = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if names[i] == e.Column {
			col = i
		}
	}
	if err := dataerr.CheckNames(e.Location, names); err != nil {
		return err
	}
	if col < 0 {
		return dataerr.Errorf(e.Location, e.Column, "the %s has no such column (%s); its header is %q", e.What, e.Pos, strings.Join(header, ","))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return dataerr.Errorf(e.Location, "", "%w", err)
		}
		line, _ := cr.FieldPos(col)
		v := strings.TrimSpace(rec[col])
		if v == "" {
			continue // NULL: erases nothing
		}
		if kind == transforms.KindString {
			*strs = append(*strs, strings.Clone(v))
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return dataerr.Errorf(fmt.Sprintf("%s:%d", e.Location, line), e.Column, "%q in the %s is not an integer id, but %s", v, e.What, e.kindMismatch(kind))
		}
		*ints = append(*ints, n)
	}
}

// fieldNames lists a schema's column names, quoted.
func fieldNames(s *arrow.Schema) string {
	names := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		names[i] = f.Name
	}
	return rules.QuoteNames(names)
}
