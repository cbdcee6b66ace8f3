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

	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// This file holds the stage stage of a file's job (job.go): how deid
// retain writes a file's new version on the engine. The row groups it keeps
// are copied byte for byte, those it rewrites re-encoded without the removed
// rows, anonymized rows go into the dataset's anonymized part and isolated
// rows into its restricted part, all staged in the work folder and verified
// before the journal commits them.

// stageFile starts the stage stage: the file's new version (and its
// anonymized and isolated rows) staged in the work folder. Row groups are
// copied, dropped or re-encoded on the engine's workers; a file whose rows
// move to a sink (anonymized or isolated) re-encodes its row groups in
// order instead, since one writer receives those rows.
func (j *job) stageFile(ctx context.Context) (*engine.File, error) {
	d, f, m, fr := j.d, j.f, j.m, j.fr
	st := d.opt.Store
	src, err := st.Open(ctx, m.Location)
	if err != nil {
		return nil, err
	}
	j.src = src
	if g := src.Attrs().Generation; g != m.Generation {
		return nil, fmt.Errorf("%s (generation %d, now %d): %w", m.Location, m.Generation, g, ErrConcurrentChange)
	}
	orig := parquetio.Part(src)
	dir := storage.Join(d.work, d.opt.RunID)
	a := &action{File: m.Location, Delete: fr.RowsKept == 0, Generation: m.Generation}
	if fr.Anonymized > 0 {
		a.AnonStaged, a.AnonFinal = storage.Join(dir, fmt.Sprintf("%05d-anonymized.parquet", j.n)), fr.AnonymizedTo
		if j.sinks.anon, err = d.newAnonWriter(ctx, f.Schema(), a.AnonStaged); err != nil {
			return nil, err
		}
	}
	if fr.Isolated > 0 {
		a.IsoStaged, a.IsoFinal = storage.Join(dir, fmt.Sprintf("%05d-restricted.parquet", j.n)), fr.IsolatedTo
		if j.sinks.iso, err = d.newIsoWriter(ctx, f.Schema(), a.IsoStaged); err != nil {
			return nil, err
		}
	}
	reencode, err := j.reencodes(orig)
	if err != nil {
		return nil, err
	}
	outputs := 1
	if a.Delete {
		outputs = 0
	}
	ef := &engine.File{Name: m.Location, RowGroups: len(j.rgs), Outputs: outputs,
		Task: func(ctx context.Context, rg int, _ engine.Head) ([]engine.Piece, error) {
			if j.sinks.anon != nil || j.sinks.iso != nil {
				return nil, nil // re-encoded in order (InOrder)
			}
			return j.stageRowGroup(ctx, rg, orig, reencode, outputs, sinks{})
		},
		Open: func(ctx context.Context, _ int) (engine.Output, error) {
			a.Staged = storage.Join(dir, fmt.Sprintf("%05d.parquet", j.n))
			s, err := newStagedFile(ctx, st, a.Staged, orig, reencode)
			if err != nil {
				return nil, fmt.Errorf("%s: stage the rewritten file: %w", m.Location, err)
			}
			return s, nil
		},
		Finish: func(ctx context.Context, outs []engine.Output) (*engine.File, error) {
			return nil, j.finishStaged(ctx, a, outs, reencode)
		}}
	if j.sinks.anon != nil || j.sinks.iso != nil {
		ef.InOrder = func(ctx context.Context, rg int, _ []engine.Piece) ([]engine.Piece, error) {
			return j.stageRowGroup(ctx, rg, orig, reencode, outputs, j.sinks)
		}
	}
	return ef, nil
}

// reencodes decides whether every kept row group of the file is
// re-encoded, not only those that lose rows: copied row groups next to
// re-encoded ones must agree on the Parquet schema and on each column's
// codec (some readers, parquet-go, decode every row group with the first
// one's). Decided before anything is encoded, from an empty part.
func (j *job) reencodes(orig parquetio.Part) (bool, error) {
	d, f := j.d, j.f
	_, uniformCodec := f.Codec()
	reencode := !uniformCodec
	if !reencode && slices.ContainsFunc(j.rgs, func(dec rgDecision) bool { return dec.kind == rgRewrite }) {
		var err error
		if reencode, err = d.partSchemaDiffers(f, orig); err != nil {
			return false, err
		}
	}
	if reencode {
		d.opt.Logger.Info("re-encoding the whole file: its Parquet schema or codecs differ from what deid writes", "file", j.m.Location)
		d.mu.Lock()
		for _, dec := range j.rgs {
			if dec.kind == rgCopy {
				d.rep.RowGroups.Copied--
				d.rep.RowGroups.Rewritten++
			}
		}
		d.mu.Unlock()
	}
	return reencode, nil
}

// stageRowGroup is row group rg's piece of the new version: copied byte for
// byte, dropped, or its kept rows re-encoded (every kept row group, with
// reencode), the rows that go written to out.
func (j *job) stageRowGroup(ctx context.Context, rg int, orig parquetio.Part, reencode bool, outputs int, out sinks) ([]engine.Piece, error) {
	dec := &j.rgs[rg]
	fates := dec.fates
	switch {
	case dec.kind == rgDrop:
		return nil, nil
	case dec.kind == rgCopy && !reencode:
		if outputs == 0 {
			return nil, nil
		}
		return []engine.Piece{{Source: orig, RowGroups: []int{rg}}}, nil
	case dec.kind == rgCopy:
		fates = make([]transforms.Fate, j.f.RowGroupRows(rg))
	}
	part, groups, err := j.d.rewrite(ctx, j.f, rg, fates, out)
	if err != nil || part == nil {
		return nil, err
	}
	dec.groups = groups
	if outputs == 0 {
		part.Discard()
		return nil, nil
	}
	return []engine.Piece{{Part: part, RowGroups: firstGroups(groups)}}, nil
}

// stagedFile is the new version being spliced in the work folder.
type stagedFile struct {
	loc string
	w   storage.Writer
	sp  *parquetio.Splicer
}

// newStagedFile creates the staged file at loc; unless every row group is
// re-encoded, the original's footer gives it its schema and metadata.
func newStagedFile(ctx context.Context, st storage.Store, loc string, orig parquetio.Part, reencode bool) (*stagedFile, error) {
	w, err := st.Create(ctx, loc)
	if err != nil {
		return nil, err
	}
	s := &stagedFile{loc: loc, w: w, sp: parquetio.NewSplicer(w)}
	if !reencode {
		if err := s.sp.AddRowGroups(orig, nil); err != nil {
			w.Abort()
			return nil, err
		}
	}
	return s, nil
}

// Splicer is where the new version's row groups go (engine.Output).
func (s *stagedFile) Splicer() *parquetio.Splicer { return s.sp }

// Abort discards the staged file.
func (s *stagedFile) Abort() { s.w.Abort() }

// Name names the staged file in errors.
func (s *stagedFile) Name() string { return "the rewritten file" }

// finishStaged ends the stage stage: the new version's footer, its
// verification (its re-encoded row groups decoded), the sinks' files
// closed and verified. The job's action is then set.
func (j *job) finishStaged(ctx context.Context, a *action, outs []engine.Output, reencode bool) (err error) {
	d, m, fr := j.d, j.m, j.fr
	defer j.close()
	if !a.Delete {
		s, _ := outs[0].(*stagedFile)
		if s == nil {
			return fmt.Errorf("%s: stage the rewritten file: no row group", m.Location)
		}
		if _, err := s.sp.Close(); err != nil {
			s.Abort()
			return fmt.Errorf("%s: stage the rewritten file: %w", m.Location, err)
		}
		if _, err := s.w.Commit(); err != nil {
			s.Abort()
			return fmt.Errorf("%s: stage the rewritten file: %w", m.Location, err)
		}
		if err := verifyFile(ctx, d.opt, a.Staged, fr.RowsKept, j.f.Schema(), j.rewritten(reencode), nil); err != nil {
			return fmt.Errorf("%s: stage the rewritten file: %w", m.Location, err)
		}
	}
	if anon := j.sinks.anon; anon != nil {
		if err := anon.close(); err != nil {
			return fmt.Errorf("%s: stage the anonymized rows: %w", m.Location, err)
		}
		if err := verifyFile(ctx, d.opt, a.AnonStaged, fr.Anonymized, anon.schema, nil, nil); err != nil {
			return fmt.Errorf("%s: stage the anonymized rows: %w", m.Location, err)
		}
	}
	if iso := j.sinks.iso; iso != nil {
		// the isolated rows keep every column: rows = isolated, schema = the source's
		if err := iso.close(); err != nil {
			return fmt.Errorf("%s: stage the isolated rows: %w", m.Location, err)
		}
		if err := verifyFile(ctx, d.opt, a.IsoStaged, fr.Isolated, j.f.Schema(), nil, nil); err != nil {
			return fmt.Errorf("%s: stage the isolated rows: %w", m.Location, err)
		}
	}
	if d.opt.DryRun {
		if p := d.opt.predict; p != nil {
			p.note(m.Location, a.Staged) // "" when the file would be deleted
		}
		return nil
	}
	j.action = a
	return nil
}

// rewritten lists the row groups of the new version that were re-encoded,
// for its verification to decode.
func (j *job) rewritten(reencode bool) []int {
	return reencodedRowGroups(len(j.rgs), func(rg int) (bool, int) {
		dec := j.rgs[rg]
		return dec.kind == rgCopy && !reencode, dec.groups // a dropped row group has no groups
	})
}

// reencodedRowGroups returns the indices, in a new version spliced from n
// source row groups, of its re-encoded row groups: of source row group rg,
// one copied row group, or the groups its re-encoded part holds (0 when
// dropped or emptied).
func reencodedRowGroups(n int, of func(rg int) (copied bool, groups int)) []int {
	idx := []int{} // none is not nil, which verifyFile reads as all
	next := 0
	for rg := range n {
		copied, groups := of(rg)
		if copied {
			next++
			continue
		}
		for range groups {
			idx = append(idx, next)
			next++
		}
	}
	return idx
}

// sinks receive the rows of a rewritten row group that do not stay: the
// anonymized ones (Expired, Erased) and the isolated ones (Restricted);
// nil sinks drop them.
type sinks struct {
	anon *anonWriter
	iso  *isoWriter
	// hashes, when set, receives the hashes of every row read (kept or
	// not), for a subset check: the rows are then decoded whole, with no
	// row filter, so the check does not rest on the filter it checks
	hashes *[]rowHash
}

// rewrite decodes row group rg whole and encodes its kept rows as a part;
// the rows that go are anonymized into out.anon, and the restricted rows
// written to out.iso, when they are set. It returns the part and its number
// of row groups (0 when no row stays).
func (d *dataset) rewrite(ctx context.Context, f *parquetio.File, rg int, fates []transforms.Fate, out sinks) (*scratch.Part, int, error) {
	sch := f.Schema()
	all := make([]int, sch.NumFields())
	dict := map[string]bool{}
	readDict := map[int]bool{} // text leaves read as Arrow dictionaries
	for i := range all {
		all[i] = f.LeafIndex(sch.Field(i).Name)
		dict[sch.Field(i).Name] = f.DictionaryEncoded(rg, all[i])
		// only rows are removed (no sink transforms them): a dictionary
		// chunk's entries are then decoded once, not once a row, and deid's
		// encoder maps them to its own dictionary once each, inserting
		// only those a kept row uses (see below for arrow-go's)
		switch sch.Field(i).Type.ID() {
		case arrow.STRING, arrow.BINARY:
			readDict[all[i]] = dict[sch.Field(i).Name] && out.hashes != nil && out.anon == nil && out.iso == nil
		}
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
	if _, fast := enc.(*parquetio.FastPartWriter); !fast {
		// arrow-go's writer takes no dictionary batches for dense columns,
		// and would write a dictionary's every entry, used or not
		clear(readDict)
	}
	write := enc.Write
	if alter := d.opt.alterOutputRows; alter != nil && out.hashes != nil {
		write = func(b arrow.RecordBatch) error {
			b = alter(b)
			defer b.Release()
			return enc.Write(b)
		}
	}
	if out.anon == nil && out.iso == nil && out.hashes == nil {
		err = d.readKept(ctx, f, rg, all, fates, write)
	} else {
		err = d.readSorted(ctx, f, rg, all, readDict, fates, write, out)
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
// restricted ones to out.iso (isolated), each when set; with out.hashes,
// every row's hash goes there first. The leaves in dict are read as Arrow
// dictionaries.
func (d *dataset) readSorted(ctx context.Context, f *parquetio.File, rg int, all []int, dict map[int]bool, fates []transforms.Fate, write func(arrow.RecordBatch) error, out sinks) error {
	mem := d.opt.Mem
	off := 0
	cctx := compute.WithAllocator(ctx, mem)
	var h rowHasher
	if out.hashes != nil {
		*out.hashes = slices.Grow(*out.hashes, len(fates))
	}
	return f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: all, BatchSize: d.opt.BatchSize, Dictionary: dict}, func(b arrow.RecordBatch) error {
		n := int(b.NumRows())
		if off+n > len(fates) {
			return fmt.Errorf("row group %d: more rows than decided (%d)", rg, len(fates))
		}
		seg := fates[off : off+n]
		off += n
		if out.hashes != nil {
			*out.hashes = h.appendHashes(*out.hashes, b)
		}
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
