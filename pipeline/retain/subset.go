package retain

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/zeebo/xxh3"
	"golang.org/x/sync/errgroup"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// Erasure only removes. A published file that retain rewrites (erased
// pseudonyms) or derives again (partner outputs) must hold a subset of the
// rows it held: a row it did not hold would be published by a run whose
// whole purpose is to withdraw data, unseen by whoever reviewed the first
// publication (a child's row whose age became unknown once the dataset
// its age came from expired, issue 15). So before anything is committed,
// every row of the new file must take one row of the old file, as a
// multiset: rows are compared by a 128-bit hash of every column's value
// (its type's text form, NULL apart; xxh3), so memory is 16 bytes a row of the
// two files, not the rows. A file with a new row fails the run, naming
// it, and nothing of the output is committed.

// ErrNewRows is matched by the error of a rewritten or re-derived file
// holding a row its published version did not.
var ErrNewRows = errors.New("a published file would gain rows")

type rowHash [2]uint64

// rowHashes returns the sorted hashes of the rows of the Parquet file at
// loc and its column names and types (dictionaries as their values).
func rowHashes(ctx context.Context, opt *Options, loc string) ([]rowHash, []string, error) {
	f, _, err := pqstore.Open(ctx, opt.Store, loc, opt.Mem)
	if err != nil {
		return nil, nil, &dataerr.Error{Err: err}
	}
	defer f.Close()
	sch := f.Schema()
	cols := make([]string, sch.NumFields())
	leaves := make([]int, sch.NumFields())
	for i, fld := range sch.Fields() {
		t := fld.Type
		if d, ok := t.(*arrow.DictionaryType); ok {
			t = d.ValueType
		}
		cols[i] = strconv.Quote(fld.Name) + " " + t.String()
		leaves[i] = f.LeafIndex(fld.Name)
	}
	// row groups are hashed on the run's workers, each into its own
	// slice; the run's checks running at once share Workers slots
	// (opt.hashSlots), so that several files checked together do not
	// decode more row groups at once than there are workers
	parts := make([][]rowHash, f.NumRowGroups())
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(opt.Workers, 1))
	for rg := range parts {
		g.Go(func() error {
			if slots := opt.hashSlots; slots != nil {
				select {
				case slots <- struct{}{}:
					defer func() { <-slots }()
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			hs, err := hashRowGroup(gctx, f, rg, leaves, opt.BatchSize)
			if err != nil {
				return &dataerr.Error{Location: loc, Err: err}
			}
			parts[rg] = hs
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	hashes := slices.Concat(parts...)
	slices.SortFunc(hashes, cmpRowHash)
	return hashes, cols, nil
}

// hashRowGroup returns the hashes of row group rg's rows: 128-bit xxh3 of
// every column's value in its type's text form, NULL apart. The check
// guards against a rule deciding on changed data, not against a chosen
// collision, so a fast hash serves.
func hashRowGroup(ctx context.Context, f *parquetio.File, rg int, leaves []int, batch int64) ([]rowHash, error) {
	hashes := make([]rowHash, 0, f.RowGroupRows(rg))
	var buf []byte
	err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaves, BatchSize: batch}, func(b arrow.RecordBatch) error {
		for i := 0; i < int(b.NumRows()); i++ {
			buf = buf[:0]
			for _, c := range b.Columns() {
				if c.IsNull(i) {
					buf = append(buf, 0)
					continue
				}
				v := c.ValueStr(i)
				buf = binary.AppendUvarint(append(buf, 1), uint64(len(v)))
				buf = append(buf, v...)
			}
			h := xxh3.Hash128(buf)
			hashes = append(hashes, rowHash{h.Hi, h.Lo})
		}
		return nil
	})
	return hashes, err
}

func cmpRowHash(a, b rowHash) int {
	if a[0] != b[0] {
		if a[0] < b[0] {
			return -1
		}
		return 1
	}
	switch {
	case a[1] < b[1]:
		return -1
	case a[1] > b[1]:
		return 1
	}
	return 0
}

// checkSubset refuses the staged new version of the published file at
// published when it holds a row the published file does not (as a
// multiset) or other columns. A published file that does not exist holds
// no row.
func checkSubset(ctx context.Context, opt *Options, dst, published, staged string) error {
	// the new version and the published file are read at once
	var older []rowHash
	var oldCols []string
	var oldErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		older, oldCols, oldErr = rowHashes(ctx, opt, published)
	}()
	newer, newCols, err := rowHashes(ctx, opt, staged)
	<-done
	if err != nil {
		return fmt.Errorf("destination %q: %s: read the new version to check it: %w", dst, published, err)
	}
	if len(newer) == 0 {
		return nil
	}
	switch err := oldErr; {
	case errors.Is(err, storage.ErrNotExist):
		older = nil
	case err != nil:
		return fmt.Errorf("destination %q: %s: read the published file to check its new version: %w", dst, published, err)
	case !slices.Equal(newCols, oldCols):
		return &dataerr.Error{Location: published, Err: fmt.Errorf("destination %q: %w: its new version has other columns (%v, published %v); nothing was committed",
			dst, ErrNewRows, newCols, oldCols)}
	}
	extra, j := 0, 0
	for _, h := range newer {
		for j < len(older) && cmpRowHash(older[j], h) < 0 {
			j++
		}
		if j < len(older) && older[j] == h {
			j++ // this published row is taken
			continue
		}
		extra++
	}
	if extra > 0 {
		return &dataerr.Error{Location: published, Err: fmt.Errorf("destination %q: %w: its new version holds %d row(s) the published file does not "+
			"(%d rows, published %d); deid retain only removes rows, so nothing was committed: a rule of the policy decides on data that changed "+
			"since publication; publish the destination again with deid run to review it", dst, ErrNewRows, extra, len(newer), len(older))}
	}
	return nil
}

// subsetCheck is the pipeline.Options.BeforePublish of a re-derivation:
// every staged file is a subset of the file it replaces.
func subsetCheck(opt *Options) func(ctx context.Context, dst *report.Destination, staging string) error {
	return func(ctx context.Context, dst *report.Destination, staging string) error {
		for _, f := range dst.Files {
			if err := checkSubset(ctx, opt, dst.Name, storage.Join(dst.Output, f.Path), storage.Join(staging, f.Path)); err != nil {
				return err
			}
		}
		return nil
	}
}
