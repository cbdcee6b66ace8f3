package pipeline

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
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// loadErasure reads the dataset's erasure lists into one subject set whose
// kind (integer or string) is the subject column's, taken from the first
// input file. Ids are matched strictly by that kind: a list of the other
// kind is an error, not a conversion. NULL and empty ids are ignored.
func (r *runner) loadErasure(ctx context.Context, ds *rules.Dataset, first *inputFile, dsr *report.Dataset) error {
	if len(ds.Erasure) == 0 {
		return nil
	}
	subjectType := first.schema.Field(first.readCols[first.subjectPos]).Type
	kind, _ := transforms.KindOf(subjectType)
	var ints []int64
	var strs []string
	for _, e := range ds.Erasure {
		sum, attrs, err := r.hashFile(ctx, e.List)
		if errors.Is(err, storage.ErrNotExist) {
			return dataerr.Errorf(e.List, "", "erasure list of dataset %q (%s) does not exist", ds.Name, e.Pos)
		}
		if err != nil {
			return fmt.Errorf("dataset %q: erasure list: %w", ds.Name, err)
		}
		before := len(ints) + len(strs)
		err = ReadSubjectList(ctx, r.opt.Store, r.opt.Mem, SubjectList{What: "erasure list", Location: e.List, Column: e.Column, Pos: e.Pos,
			Against: first.match.Location, Subject: ds.Subject}, kind, &ints, &strs)
		if err != nil {
			return err
		}
		if err := CheckUnchanged(ctx, r.opt.Store, "erasure list", e.List, attrs); err != nil {
			return err
		}
		dsr.Erasure = append(dsr.Erasure, report.ErasureList{Location: e.List, Column: e.Column, Size: attrs.Size, SHA256: sum,
			Generation: attrs.Generation, CRC32C: crcHex(attrs),
			Entries: int64(len(ints) + len(strs) - before)})
	}
	var set *transforms.SubjectSet
	if kind == transforms.KindInteger {
		set = transforms.NewIntSubjectSet(ints)
	} else {
		set = transforms.NewStringSubjectSet(strs)
	}
	for i := range dsr.Erasure {
		dsr.Erasure[i].Subjects = int64(set.Len()) // distinct over all lists of the dataset
	}
	r.erasure[ds.Name] = set
	return nil
}

// hashFile returns the SHA-256 and the attributes of a stored file.
func (r *runner) hashFile(ctx context.Context, location string) (string, storage.Attrs, error) {
	return HashFile(ctx, r.opt.Store, location)
}

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
		return &DataError{Location: location, Err: fmt.Errorf("the %s changed while it was read (%d bytes, generation %d, modified %s; then %d bytes, generation %d, modified %s): "+
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
	f, err := parquetio.Open(ctx, store, e.Location, mem)
	if err != nil {
		return dataerr.Mark(err)
	}
	defer f.Close()
	idx := f.Schema().FieldIndices(e.Column)
	if idx == nil {
		return dataerr.Errorf(e.Location, e.Column, "the %s has no such column (%s); it has %s", e.What, e.Pos, fieldNames(f.Schema()))
	}
	if err := CheckColumnNames(e.Location, f.Schema()); err != nil {
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
	if err := checkNames(e.Location, names); err != nil {
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
