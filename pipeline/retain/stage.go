package retain

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"

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
	pieces, rewritten, err := build(false, out)
	if err != nil {
		return nil, err
	}
	_, uniformCodec := f.Codec()
	if _, err := parquetio.Assemble(io.Discard, pieces); errors.Is(err, parquetio.ErrSchemaMismatch) || !uniformCodec {
		// copied row groups next to re-encoded ones must agree on each
		// column's codec: some readers (parquet-go) decode every row group
		// with the first one's
		d.opt.Logger.Info("re-encoding the whole file: its Parquet schema or codecs differ from what deid writes", "file", m.Location)
		for _, k := range kinds {
			if k == rgCopy {
				d.rep.RowGroups.Copied--
				d.rep.RowGroups.Rewritten++
			}
		}
		if pieces, rewritten, err = build(true, sinks{}); err != nil {
			return nil, err
		}
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
	mem := d.opt.Mem
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
	var err error
	var enc parquetio.PartEncoder
	wopt := d.opt.Writer
	if codec, ok := f.Codec(); ok {
		wopt.Codec = codec // the file's own, so that its row groups agree
	}
	if allNullable(sch) {
		enc, err = parquetio.NewPartEncoder(part, sch, dict, wopt, mem)
	} else {
		// deid's fast writer writes every column optional; arrow-go's
		// keeps required columns required, as the original has them
		enc, err = parquetio.NewPartWriter(part, sch, dict, wopt, mem)
	}
	if err != nil {
		return nil, 0, err
	}
	off := 0
	cctx := compute.WithAllocator(ctx, mem)
	err = f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: all, BatchSize: d.opt.BatchSize}, func(b arrow.RecordBatch) error {
		n := int(b.NumRows())
		seg := fates[off : off+n]
		off += n
		// the kept rows, then those anonymized, then those isolated
		for class := range 3 {
			var write func(arrow.RecordBatch) error
			switch {
			case class == 0:
				write = enc.Write
			case class == 1 && out.anon != nil:
				write = out.anon.write
			case class == 2 && out.iso != nil:
				write = out.iso.enc.Write
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
				err = write(rows)
			}
			rows.Release()
			if err != nil {
				return err
			}
		}
		return nil
	})
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
