package retain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

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
// multiset: rows are compared by a 64-bit hash of their values (rowhash.go),
// so memory is 8 bytes a row, not the rows. A file with a new row fails the run, naming
// it, and nothing of the output is committed.

// ErrNewRows is matched by the error of a rewritten or re-derived file
// holding a row its published version did not.
var ErrNewRows = errors.New("a published file would gain rows")

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
	parts := make([][]rowHash, f.NumRowGroups())
	err = eachRowGroup(ctx, opt, len(parts), func(ctx context.Context, rg int) error {
		hs, err := hashRowGroup(ctx, f, rg, leaves, opt.BatchSize)
		if err != nil {
			return &dataerr.Error{Location: loc, Err: err}
		}
		parts[rg] = hs
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	hashes := slices.Concat(parts...)
	slices.Sort(hashes)
	return hashes, cols, nil
}

// hashRowGroup returns the hashes of row group rg's rows (rowHasher). The
// check guards against a rule deciding on changed data, not against a
// chosen collision, so a fast hash serves.
func hashRowGroup(ctx context.Context, f *parquetio.File, rg int, leaves []int, batch int64) ([]rowHash, error) {
	hashes := make([]rowHash, 0, f.RowGroupRows(rg))
	var h rowHasher
	err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: leaves, BatchSize: batch}, func(b arrow.RecordBatch) error {
		hashes = h.appendHashes(hashes, b)
		return nil
	})
	return hashes, err
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
	return subsetOf(dst, published, newer, older)
}

// subsetOf refuses newer, the row hashes of (part of) the new version of
// the published file, unless each takes one of older, those of the
// published rows it may hold, as a multiset. It sorts both.
func subsetOf(dst, published string, newer, older []rowHash) error {
	slices.Sort(newer)
	slices.Sort(older)
	extra, j := 0, 0
	for _, h := range newer {
		for j < len(older) && older[j] < h {
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
			"(of %d rows compared with %d published); deid retain only removes rows, so nothing was committed: a rule of the policy decides on data that changed "+
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
