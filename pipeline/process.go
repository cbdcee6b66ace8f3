package pipeline

import (
	"context"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/transforms"
)

// partFile is one encoded part being written.
type partFile struct {
	p  *scratch.Part
	pw parquetio.PartEncoder
}

func (p *partFile) close() error {
	if err := p.pw.Close(); err != nil {
		return err
	}
	return p.p.Finish()
}

func (p *partFile) discard() { p.p.Discard() }

// processRowGroup decodes one row group in batches, applies the row rules
// and, per destination, the transforms, and encodes each destination's rows
// as a part. It returns the part paths (one per output, "" when no row
// survived) and the counts: removed per reason, then the rows kept whose
// time is in the future (after the dataset's latest event time), then
// kept; per output,
// removed per destination reason, then by min_k (small classes), rows of
// unknown age, and kept.
//
// During the first pass of a run enforcing min_k (r.counting), it reads
// only the row rules' and quasi-identifiers' columns, transforms the
// quasi-identifiers of the kept rows and adds their classes to the
// outputs' counts; it writes nothing. A dry run reads the same columns and
// counts the rows min_k would remove.
//
// head, when not nil, gives each output's part a way to stream into the
// output once rg is the next row group to splice (see scratch.Part). The
// stages are rowGroupTask's (rowgroup.go).
func (r *runner) processRowGroup(ctx context.Context, in *inputFile, rg int, f *parquetio.File, head func(oi int) func() *parquetio.Splicer) (parts []*scratch.Part, counts []int64, outCounts [][]int64, err error) {
	t := r.newRowGroupTask(in, rg, f, head)
	if !t.planRead() {
		return nil, t.counts, t.outCounts, nil
	}
	t.startBatches()
	defer func() { t.release(err != nil) }()
	if err := f.ReadRowGroup(ctx, rg, t.readOptions(), t.batch); err != nil {
		return nil, nil, nil, dataerr.Mark(err)
	}
	if parts, err = t.finish(); err != nil {
		return nil, nil, nil, err
	}
	return parts, t.counts, t.outCounts, nil
}

// lazyColumn reports whether the column at pos may be read as a dictionary
// however large its dictionary: no row rule reads it, and every output
// transforms it (no keep) with a transform that works lazily on a
// dictionary's entries.
func (r *runner) lazyColumn(in *inputFile, pos int) bool {
	if r.opt.noLazy || pos == in.subjectPos || pos == in.timePos || in.hasOutputRules() || slices.Contains(rowRuleColumns(in.ds), in.schema.Field(in.readCols[pos]).Name) {
		return false
	}
	typ := in.schema.Field(in.readCols[pos]).Type
	used := false
	for _, out := range in.outputs {
		for _, oc := range out.cols {
			if oc.pos != pos {
				continue
			}
			if !oc.bc.Spec.Keyed || !transforms.LazyCapable(oc.bc.Transform, typ) {
				return false
			}
			used = true
		}
	}
	return used
}

// newPart starts a part (in memory, or in the scratch directory), choosing dictionary
// encoding per column from the first batch it will hold. A part of deid's
// own writer streams into the output once head returns its Splicer.
func (r *runner) newPart(first arrow.RecordBatch, head func() *parquetio.Splicer) (*partFile, error) {
	dict := map[string]bool{}
	for i, fld := range first.Schema().Fields() {
		dict[fld.Name] = parquetio.WantsDictionary(first.Column(i))
	}
	p := scratch.NewPart(r.scratch, &r.partMem)
	pw, err := parquetio.NewPartEncoder(p, first.Schema(), dict, r.opt.Writer, r.opt.Mem)
	if err != nil {
		p.Discard()
		return nil, err
	}
	if fw, fast := pw.(*parquetio.FastPartWriter); fast {
		if !r.opt.noStream {
			p.StreamWhen(head) // its writer marks where the footer begins
		}
		fw.SetSpare(r.spare)
	}
	return &partFile{p: p, pw: pw}, nil
}

func isBinary(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		return true
	}
	return false
}
