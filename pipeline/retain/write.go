package retain

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/sync/errgroup"

	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/storage"
)

// verifyFile checks a staged file: readable, wantRows rows, the Arrow
// schema want, and the row groups listed in decode (the re-encoded ones;
// nil: all) decoded with their page checksums, on the run's workers. With
// rowsOf set, it is called with k and the hashes of the rows of row group
// decode[k] (rowHasher), for a subset check, from several goroutines at
// once. A file that fails is deleted.
func verifyFile(ctx context.Context, opt *Options, location string, wantRows int64, want *arrow.Schema, decode []int, rowsOf func(k int, hashes []rowHash) error) (err error) {
	st := opt.Store
	defer func() {
		if err != nil {
			st.Delete(ctx, location)
		}
	}()
	f, _, err := pqstore.Open(ctx, st, location, opt.Mem)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	if f.NumRows() != wantRows {
		return fmt.Errorf("verify %s: %d rows, want %d", location, f.NumRows(), wantRows)
	}
	if diff := fieldDiff(f.Schema(), want); diff != "" {
		return fmt.Errorf("verify %s: schema differs from the original: %s", location, diff)
	}
	cols := make([]int, want.NumFields())
	for i := range cols {
		cols[i] = i
	}
	if decode == nil {
		for rg := range f.NumRowGroups() {
			decode = append(decode, rg)
		}
	}
	for _, rg := range decode {
		if rg >= f.NumRowGroups() {
			return fmt.Errorf("verify %s: %d row groups, want more than %d", location, f.NumRowGroups(), rg)
		}
	}
	err = eachRowGroup(ctx, opt, len(decode), func(ctx context.Context, k int) error {
		var h rowHasher
		var hashes []rowHash
		if rowsOf != nil {
			hashes = make([]rowHash, 0, f.RowGroupRows(decode[k]))
		}
		// dictionary-encoded text is read as dictionaries: every page is
		// still decoded and checked, but each entry is hashed once and
		// no value copied out
		dict := map[int]bool{}
		for _, j := range cols {
			switch f.Schema().Field(j).Type.ID() {
			case arrow.STRING, arrow.BINARY:
				dict[j] = f.DictionaryEncoded(decode[k], j)
			}
		}
		err := f.ReadRowGroup(ctx, decode[k], parquetio.ReadOptions{Columns: cols, BatchSize: 1 << 15, Dictionary: dict}, func(b arrow.RecordBatch) error {
			if rowsOf != nil {
				hashes = h.appendHashes(hashes, b)
			}
			return nil
		})
		if err != nil || rowsOf == nil {
			return err
		}
		return rowsOf(k, hashes)
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// eachRowGroup calls fn for k = 0 .. n-1 on the run's workers. The checks
// of staged and published files running at once share Workers slots
// (opt.hashSlots), so that together they decode no more row groups at once
// than there are workers; the first error cancels the rest.
func eachRowGroup(ctx context.Context, opt *Options, n int, fn func(ctx context.Context, k int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(opt.Workers, 1))
	for k := range n {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil { // errgroup would let it kill the process
					if cp, ok := r.(*parquetio.CallerPanic); ok {
						r = cp.Value
					}
					err = fmt.Errorf("row group %d: %w: %v", k, engine.ErrInternal, r)
				}
			}()
			if slots := opt.hashSlots; slots != nil {
				select {
				case slots <- struct{}{}:
					defer func() { <-slots }()
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return fn(gctx, k)
		})
	}
	return g.Wait()
}

// anonWriter encodes anonymized rows: the policy's anonymize columns only,
// each through its transform.
type anonWriter struct {
	d      *dataset
	schema *arrow.Schema
	src    []int // the source column of each output column
	w      storage.Writer
	enc    parquetio.PartEncoder
}

// newAnonWriter starts the staged file of anonymized rows at location;
// the caller aborts it unless close succeeds.
func (d *dataset) newAnonWriter(ctx context.Context, src *arrow.Schema, location string) (*anonWriter, error) {
	a := &anonWriter{d: d}
	var fields []arrow.Field
	for _, bc := range d.ds.Anonymize {
		idx := src.FieldIndices(bc.Name)
		if idx == nil {
			return nil, fmt.Errorf("anonymize: column %q is missing", bc.Name)
		}
		in := src.Field(idx[0])
		out, err := bc.Transform.OutputType(in.Type)
		if err != nil {
			return nil, fmt.Errorf("anonymize column %q (%s): %w", bc.Name, bc.Pos, err)
		}
		fields = append(fields, arrow.Field{Name: bc.Name, Type: out, Nullable: true})
		a.src = append(a.src, idx[0])
	}
	if len(fields) == 0 {
		return nil, errors.New("anonymize: no column is kept")
	}
	a.schema = arrow.NewSchema(fields, nil)
	w, err := d.opt.Store.Create(ctx, location)
	if err != nil {
		return nil, err
	}
	enc, err := parquetio.NewPartEncoder(w, a.schema, nil, d.opt.Writer, d.opt.Mem)
	if err != nil {
		w.Abort()
		return nil, err
	}
	a.w, a.enc = w, enc
	return a, nil
}

func (a *anonWriter) write(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	cols := make([]arrow.Array, len(a.src))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, s := range a.src {
		out, err := a.d.ds.Anonymize[i].Transform.Apply(a.d.opt.Mem, rec.Column(s))
		if err != nil {
			return fmt.Errorf("anonymize column %q: %w", a.d.ds.Anonymize[i].Name, err)
		}
		cols[i] = out
	}
	out := array.NewRecordBatch(a.schema, cols, rec.NumRows())
	defer out.Release()
	return a.enc.Write(out)
}

// close finishes and commits the file.
func (a *anonWriter) close() error {
	if err := a.enc.Close(); err != nil {
		return err
	}
	_, err := a.w.Commit()
	return err
}

// abort discards the file unless it was committed.
func (a *anonWriter) abort() { a.w.Abort() }

// fieldDiff compares schemas by field names, types and nullability (the
// reader adds field-id metadata a writer's schema lacks) and describes the
// first difference, or returns "".
func fieldDiff(got, want *arrow.Schema) string {
	if got.NumFields() != want.NumFields() {
		return fmt.Sprintf("%d fields, want %d", got.NumFields(), want.NumFields())
	}
	for i := range got.NumFields() {
		g, w := got.Field(i), want.Field(i)
		if g.Name != w.Name || g.Nullable != w.Nullable || !arrow.TypeEqual(g.Type, w.Type) {
			return fmt.Sprintf("field %d is %s %s (nullable %v), want %s %s (nullable %v)", i, g.Name, g.Type, g.Nullable, w.Name, w.Type, w.Nullable)
		}
	}
	return ""
}

// isoWriter encodes isolated rows whole, with the source file's schema.
type isoWriter struct {
	w   storage.Writer
	enc parquetio.PartEncoder
}

// newIsoWriter starts the staged file of isolated rows at location; the
// caller aborts it unless close succeeds.
func (d *dataset) newIsoWriter(ctx context.Context, src *arrow.Schema, location string) (*isoWriter, error) {
	w, err := d.opt.Store.Create(ctx, location)
	if err != nil {
		return nil, err
	}
	var enc parquetio.PartEncoder
	if allNullable(src) {
		enc, err = parquetio.NewPartEncoder(w, src, nil, d.opt.Writer, d.opt.Mem)
	} else {
		// keep required columns required, as in rewrite
		enc, err = parquetio.NewPartWriter(w, src, nil, d.opt.Writer, d.opt.Mem)
	}
	if err != nil {
		w.Abort()
		return nil, err
	}
	return &isoWriter{w: w, enc: enc}, nil
}

// close finishes and commits the file.
func (i *isoWriter) close() error {
	if err := i.enc.Close(); err != nil {
		return err
	}
	_, err := i.w.Commit()
	return err
}

// abort discards the file unless it was committed.
func (i *isoWriter) abort() { i.w.Abort() }
