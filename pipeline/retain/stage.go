package retain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// This file holds how deid retain writes a file's new version: the row
// groups it keeps copied byte for byte, the ones it rewrites re-encoded
// without the removed rows, anonymized rows into the dataset's anonymized
// part and isolated rows into its restricted part, all staged in the work
// folder and verified before the journal commits them.

// stage writes the file's new version (and its anonymized rows) into the
// work folder and verifies it.
func (d *dataset) stage(ctx context.Context, f *parquetio.File, m storage.Match, n int, kinds []rgKind, fates [][]transforms.Fate, fr *report.RetainFile) (*action, error) {
	st, mem := d.opt.Store, d.opt.Mem
	src, err := st.Open(ctx, m.Location)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if g := src.Attrs().Generation; g != m.Generation {
		return nil, fmt.Errorf("%s (generation %d, now %d): %w", m.Location, m.Generation, g, ErrConcurrentChange)
	}
	orig := parquetio.Part(src)
	dir := storage.Join(d.work, d.opt.RunID)
	a := &action{File: m.Location, Delete: fr.RowsKept == 0, Generation: m.Generation}
	var out sinks
	if fr.Anonymized > 0 {
		a.AnonStaged, a.AnonFinal = storage.Join(dir, fmt.Sprintf("%05d-anonymized.parquet", n)), fr.AnonymizedTo
		if out.anon, err = d.newAnonWriter(ctx, f.Schema(), a.AnonStaged); err != nil {
			return nil, err
		}
		defer out.anon.abort()
	}
	if fr.Isolated > 0 {
		a.IsoStaged, a.IsoFinal = storage.Join(dir, fmt.Sprintf("%05d-restricted.parquet", n)), fr.IsolatedTo
		if out.iso, err = d.newIsoWriter(ctx, f.Schema(), a.IsoStaged); err != nil {
			return nil, err
		}
		defer out.iso.abort()
	}
	defer d.closeParts()
	// build lists the pieces of the new file: the original's footer, its
	// kept row groups copied and the re-encoded ones. With reencode, kept
	// row groups are re-encoded too (for files whose Parquet schema deid's
	// writer does not reproduce); anonymized and isolated rows are written
	// once.
	build := func(reencode bool, out sinks) ([]parquetio.Piece, []int, error) {
		pieces := []parquetio.Piece{{Part: orig}}
		if reencode {
			pieces = nil
		}
		var rewritten []int // row group indices in the new file that were re-encoded
		next := 0
		for rg, k := range kinds {
			fs := fates[rg]
			switch {
			case k == rgCopy && !reencode:
				pieces = append(pieces, parquetio.Piece{Part: orig, RowGroups: []int{rg}})
				next++
				continue
			case k == rgCopy:
				fs = make([]transforms.Fate, f.RowGroupRows(rg))
			case k == rgDrop:
				continue
			}
			part, groups, err := d.rewrite(ctx, f, rg, fs, out)
			if err != nil {
				return nil, nil, err
			}
			if groups > 0 {
				idx := make([]int, groups)
				for i := range idx {
					idx[i] = i
					rewritten = append(rewritten, next+i)
				}
				next += groups
				pieces = append(pieces, parquetio.Piece{Part: part, RowGroups: idx})
			}
		}
		return pieces, rewritten, nil
	}
	// copied row groups next to re-encoded ones must agree on the Parquet
	// schema and on each column's codec (some readers, parquet-go, decode
	// every row group with the first one's): otherwise every row group is
	// re-encoded. Decided before anything is encoded, from an empty part.
	_, uniformCodec := f.Codec()
	reencode := !uniformCodec
	if !reencode && slices.Contains(kinds, rgRewrite) {
		if reencode, err = d.partSchemaDiffers(f, orig); err != nil {
			return nil, err
		}
	}
	if reencode {
		d.opt.Logger.Info("re-encoding the whole file: its Parquet schema or codecs differ from what deid writes", "file", m.Location)
		for _, k := range kinds {
			if k == rgCopy {
				d.rep.RowGroups.Copied--
				d.rep.RowGroups.Rewritten++
			}
		}
	}
	pieces, rewritten, err := build(reencode, out)
	if err != nil {
		return nil, err
	}
	if !a.Delete {
		a.Staged = storage.Join(dir, fmt.Sprintf("%05d.parquet", n))
		if err := writeVerified(ctx, st, a.Staged, fr.RowsKept, f.Schema(), rewritten, mem, func(w io.Writer) error {
			_, err := parquetio.Assemble(w, pieces)
			return err
		}); err != nil {
			return nil, fmt.Errorf("%s: stage the rewritten file: %w", m.Location, err)
		}
	}
	if out.anon != nil {
		if err := out.anon.close(); err != nil {
			return nil, fmt.Errorf("%s: stage the anonymized rows: %w", m.Location, err)
		}
		if err := verifyFile(ctx, st, a.AnonStaged, fr.Anonymized, out.anon.schema, nil, mem); err != nil {
			return nil, fmt.Errorf("%s: stage the anonymized rows: %w", m.Location, err)
		}
	}
	if out.iso != nil {
		// the isolated rows keep every column: rows = isolated, schema = the source's
		if err := out.iso.close(); err != nil {
			return nil, fmt.Errorf("%s: stage the isolated rows: %w", m.Location, err)
		}
		if err := verifyFile(ctx, st, a.IsoStaged, fr.Isolated, f.Schema(), nil, mem); err != nil {
			return nil, fmt.Errorf("%s: stage the isolated rows: %w", m.Location, err)
		}
	}
	return a, nil
}

// sinks receive the rows of a rewritten row group that do not stay: the
// anonymized ones (Expired, Erased) and the isolated ones (Restricted);
// nil sinks drop them.
type sinks struct {
	anon *anonWriter
	iso  *isoWriter
}

// rewrite decodes row group rg whole and encodes its kept rows as a part;
// the rows that go are anonymized into out.anon, and the restricted rows
// written to out.iso, when they are set. It returns the part and its number
// of row groups (0 when no row stays).
func (d *dataset) rewrite(ctx context.Context, f *parquetio.File, rg int, fates []transforms.Fate, out sinks) (parquetio.Part, int, error) {
	sch := f.Schema()
	all := make([]int, sch.NumFields())
	dict := map[string]bool{}
	for i := range all {
		all[i] = f.LeafIndex(sch.Field(i).Name)
		dict[sch.Field(i).Name] = f.DictionaryEncoded(rg, all[i])
	}
	budget := d.opt.partMem
	if budget == nil {
		budget = &scratch.Budget{} // nothing held in memory
	}
	part := scratch.NewPart(d.opt.scratch, budget)
	keep := false
	defer func() {
		if !keep {
			part.Discard()
		}
	}()
	enc, err := d.newEncoder(part, f, dict)
	if err != nil {
		return nil, 0, err
	}
	if out.anon == nil && out.iso == nil {
		err = d.readKept(ctx, f, rg, all, fates, enc.Write)
	} else {
		err = d.readSorted(ctx, f, rg, all, fates, enc.Write, out)
	}
	if err != nil {
		return nil, 0, err
	}
	if err := enc.Close(); err != nil {
		return nil, 0, err
	}
	if enc.Rows() == 0 {
		return nil, 0, nil
	}
	// the part waits in memory, or past the run's budget in the scratch
	// folder, until it is assembled, as a run's parts do
	if err := part.Finish(); err != nil {
		return nil, 0, err
	}
	groups, err := parquetio.RowGroupCount(part)
	if err != nil {
		return nil, 0, err
	}
	keep = true
	d.open = append(d.open, part)
	return part, groups, nil
}

// newEncoder starts a part of f's re-encoded rows on w: deid's fast writer
// when every column is optional (it writes every column optional), else
// arrow-go's, which keeps required columns required as the original has
// them; with the file's own codec, so that its row groups agree.
func (d *dataset) newEncoder(w io.Writer, f *parquetio.File, dict map[string]bool) (parquetio.PartEncoder, error) {
	wopt := d.opt.Writer
	if codec, ok := f.Codec(); ok {
		wopt.Codec = codec
	}
	if allNullable(f.Schema()) {
		return parquetio.NewPartEncoder(w, f.Schema(), dict, wopt, d.opt.Mem)
	}
	return parquetio.NewPartWriter(w, f.Schema(), dict, wopt, d.opt.Mem)
}

// partSchemaDiffers reports whether the parts deid writes for f have
// another Parquet schema than orig, f's bytes: an empty part's footer
// tells, before any row group is encoded.
func (d *dataset) partSchemaDiffers(f *parquetio.File, orig parquetio.Part) (bool, error) {
	var buf bytes.Buffer
	enc, err := d.newEncoder(&buf, f, nil)
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		return false, err
	}
	_, err = parquetio.Assemble(io.Discard, []parquetio.Piece{{Part: orig}, {Part: bytes.NewReader(buf.Bytes())}})
	if errors.Is(err, parquetio.ErrSchemaMismatch) {
		return true, nil
	}
	return false, err
}

// fateClass sorts a row of a rewritten row group: 0 stays, 1 goes
// (deleted or anonymized), 2 is isolated.
func fateClass(f transforms.Fate) int {
	switch f {
	case transforms.FateKeep:
		return 0
	case transforms.FateRestricted:
		return 2
	}
	return 1
}

// closeParts frees the parts kept for assembling.
func (d *dataset) closeParts() {
	for _, p := range d.open {
		p.Discard()
	}
	d.open = nil
}

func allNullable(s *arrow.Schema) bool {
	for _, f := range s.Fields() {
		if !f.Nullable {
			return false
		}
	}
	return true
}

// readKept decodes the kept rows of row group rg and passes them to write,
// through the reader's row filter, as a run reads: the lean reader decodes
// only the values of the rows fates keeps, never those removed.
func (d *dataset) readKept(ctx context.Context, f *parquetio.File, rg int, all []int, fates []transforms.Fate, write func(arrow.RecordBatch) error) error {
	off := 0
	filter := &parquetio.RowFilter{Columns: []int{0}, Select: func(cols []arrow.Array) ([]bool, int, []arrow.Array, error) {
		n := cols[0].Len()
		if off+n > len(fates) {
			return nil, 0, nil, fmt.Errorf("row group %d: more rows than decided (%d)", rg, len(fates))
		}
		keep := make([]bool, n)
		kept := 0
		for i, fate := range fates[off : off+n] {
			if fate == transforms.FateKeep {
				keep[i] = true
				kept++
			}
		}
		off += n
		filtered, err := filterArray(d.opt.Mem, cols[0], keep)
		return keep, kept, []arrow.Array{filtered}, err
	}}
	return f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: all, BatchSize: d.opt.BatchSize, Filter: filter}, func(b arrow.RecordBatch) error {
		if b.NumRows() == 0 {
			return nil
		}
		return write(b)
	})
}

// filterArray returns the rows of a that keep selects.
func filterArray(mem memory.Allocator, a arrow.Array, keep []bool) (arrow.Array, error) {
	mb := array.NewBooleanBuilder(mem)
	mb.AppendValues(keep, nil)
	mask := mb.NewArray()
	mb.Release()
	defer mask.Release()
	return compute.FilterArray(compute.WithAllocator(context.Background(), mem), a, mask, *compute.DefaultFilterOptions())
}

// readSorted decodes row group rg whole and sorts its rows by fate: the
// kept ones to write, those that go to out.anon (anonymized) and the
// restricted ones to out.iso (isolated), each when set.
func (d *dataset) readSorted(ctx context.Context, f *parquetio.File, rg int, all []int, fates []transforms.Fate, write func(arrow.RecordBatch) error, out sinks) error {
	mem := d.opt.Mem
	off := 0
	cctx := compute.WithAllocator(ctx, mem)
	return f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: all, BatchSize: d.opt.BatchSize}, func(b arrow.RecordBatch) error {
		n := int(b.NumRows())
		seg := fates[off : off+n]
		off += n
		// the kept rows, then those anonymized, then those isolated
		for class := range 3 {
			var to func(arrow.RecordBatch) error
			switch {
			case class == 0:
				to = write
			case class == 1 && out.anon != nil:
				to = out.anon.write
			case class == 2 && out.iso != nil:
				to = out.iso.enc.Write
			default:
				continue
			}
			mb := array.NewBooleanBuilder(mem)
			for _, fate := range seg {
				mb.Append(fateClass(fate) == class)
			}
			mask := mb.NewArray()
			mb.Release()
			rows, err := compute.FilterRecordBatch(cctx, b, mask, compute.DefaultFilterOptions())
			mask.Release()
			if err != nil {
				return err
			}
			if rows.NumRows() > 0 {
				err = to(rows)
			}
			rows.Release()
			if err != nil {
				return err
			}
		}
		return nil
	})
}
