package pipeline

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deidproject/deid/pipeline/internal/parallel"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/transforms"
)

// partFile is one encoded part being written.
type partFile struct {
	p  *scratchPart
	pw parquetio.PartEncoder
}

func (p *partFile) close() error {
	if err := p.pw.Close(); err != nil {
		return err
	}
	return p.p.finish()
}

func (p *partFile) discard() { p.p.discard() }

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
// output once rg is the next row group to splice (see scratchPart).
func (r *runner) processRowGroup(ctx context.Context, in *inputFile, rg int, f *parquetio.File, head func(oi int) func() *parquetio.Splicer) (parts []*scratchPart, counts []int64, outCounts [][]int64, err error) {
	mem := r.opt.Mem
	reasons := transforms.Reasons()
	dreasons := transforms.DestinationReasons()
	counts = make([]int64, len(reasons)+2) // by reason, future kept, kept
	iFutureKept, iRowsKept := len(reasons), len(reasons)+1
	outCounts = make([][]int64, len(in.outputs))
	for i := range in.outputs {
		outCounts[i] = make([]int64, len(dreasons)+3) // by reason, small class, unknown age, kept
	}
	iSmall, iUnknown, iKept := len(dreasons), len(dreasons)+1, len(dreasons)+2
	lean := r.dryRun || r.counting // read and transform only what counting needs
	ruleCols := map[int]bool{}
	for _, c := range rowRuleColumns(in.ds) {
		ruleCols[in.pos[c]] = true
	}
	for _, out := range in.outputs {
		for _, ci := range out.qi {
			ruleCols[out.cols[ci].pos] = true
		}
	}
	// local class counts of this row group, per output, merged at the end
	local := make([]map[classKey]uint32, len(in.outputs))
	var hasher classHasher
	var keys []classKey
	var small transforms.Selection
	read := make([]int, 0, len(in.leaves))    // leaves to read
	readPos := make([]int, 0, len(in.leaves)) // their positions in in.readCols
	for i, leaf := range in.leaves {
		if lean && i != in.timePos && i != in.subjectPos && !ruleCols[i] {
			continue
		}
		read = append(read, leaf)
		readPos = append(readPos, i)
	}
	if len(read) == 0 {
		// a dry run of a dataset without row rules: every row is kept
		counts[iRowsKept] = in.rgRows[rg]
		for i := range outCounts {
			outCounts[i][iKept] = in.rgRows[rg]
		}
		if !r.counting {
			r.rowsDone.Add(in.rgRows[rg])
		}
		return nil, counts, outCounts, nil
	}
	// The dataset's row rules decide which rows survive before the other
	// columns are decoded: the reader then skips the removed rows' values
	// instead of copying them (a retention sweep removes most rows). Only
	// without destination-level rules, which read more columns and keep
	// rows per destination.
	var filter *parquetio.RowFilter
	if !lean && !r.opt.readAll && in.ruleCount(r) > 0 && !in.hasOutputRules() {
		filter = r.rowFilter(in, read, readPos, counts, reasons)
	}
	// A string column stored dictionary-encoded is read as an Arrow
	// dictionary when its dictionary is no larger than a batch: arrow-go
	// hands every batch the whole chunk dictionary, so a larger one would
	// cost more to rebuild per batch than reading values densely.
	// A larger dictionary is read as one too, when deid's own reader reads
	// the row group (it hands every batch the same dictionary) and every
	// transform of the column can transform its entries lazily (see
	// transforms.DictionaryCache.LazyAbove): each entry is then transformed
	// once per row group, and the reader never copies values out of it.
	dict := map[int]bool{}
	leanRead := f.LeanReadable(rg, read)
	for k, leaf := range read {
		if isBinary(in.schema.Field(in.readCols[readPos[k]]).Type) && f.DictionaryEncoded(rg, leaf) {
			n, ok := f.DictionaryEntries(rg, leaf)
			switch {
			case ok && n <= r.opt.BatchSize:
				dict[leaf] = true
			case ok && leanRead && r.lazyColumn(in, readPos[k]):
				dict[leaf] = true
				if r.opt.lazyRead != nil {
					r.opt.lazyRead.Add(1)
				}
			}
		}
	}
	writers := make([]*partFile, len(in.outputs))
	defer func() {
		if err != nil {
			for _, w := range writers {
				if w != nil {
					w.discard()
				}
			}
		}
	}()
	// transformed dictionaries, per output and column: the batches of a
	// column chunk share its dictionary, which is transformed once
	caches := make([][]transforms.DictionaryCache, len(in.outputs))
	for i, out := range in.outputs {
		caches[i] = make([]transforms.DictionaryCache, len(out.cols))
		for ci := range caches[i] {
			caches[i][ci].LazyAbove = r.opt.BatchSize
		}
	}
	defer func() {
		for _, cs := range caches {
			for i := range cs {
				cs[i].Release()
			}
		}
	}()
	// the row filter's columns had their local times counted, on every row
	var counted []int
	if filter != nil {
		for _, k := range filter.Columns {
			counted = append(counted, readPos[k])
		}
	}
	var sel transforms.Selection
	outSel := make([]transforms.Selection, len(in.outputs))
	cols := make([]arrow.Array, len(in.leaves))
	filtered := make([]arrow.Array, len(in.leaves))
	// columns filtered by an output's own selection, when it has row rules
	own := make([]arrow.Array, len(in.leaves))
	err = f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: read, BatchSize: int64(r.opt.BatchSize), Dictionary: dict, Filter: filter},
		func(b arrow.RecordBatch) error {
			n := int(b.NumRows())
			clear(cols)
			for k := range read {
				cols[readPos[k]] = b.Column(k)
			}
			// wall-clock timestamps of a declared zone become instants
			converted, err := r.toInstants(in, cols, counted)
			defer releaseAll(converted)
			if err != nil {
				return err
			}
			sel.Reset(n)
			if filter == nil { // else the reader applied the rules
				futureKept, err := r.applyRowRules(in, cols, &sel)
				if err != nil {
					return err
				}
				for i, reason := range reasons {
					counts[i] += sel.Removed(reason)
				}
				counts[iFutureKept] += futureKept
				if !r.counting {
					r.rowsDone.Add(int64(n))
					r.progress(int(r.filesDone.Load()))
				}
			}
			counts[iRowsKept] += int64(sel.Kept())
			for oi, out := range in.outputs {
				oc := outCounts[oi]
				if r.counting && out.classes == nil {
					continue
				}
				if out.rules == nil {
					oc[iKept] += int64(sel.Kept())
					continue
				}
				unknown, err := out.rules.apply(r, in, cols, &sel, &outSel[oi])
				if err != nil {
					return err
				}
				for j, reason := range dreasons {
					oc[j] += outSel[oi].Removed(reason)
				}
				oc[iUnknown] += unknown
				oc[iKept] += int64(outSel[oi].Kept())
			}
			if sel.Kept() == 0 {
				return nil
			}
			// each column is filtered once, for all destinations
			clear(filtered)
			defer func() {
				for _, a := range filtered {
					if a != nil {
						a.Release()
					}
				}
			}()
			for oi, out := range in.outputs {
				if lean && out.classes == nil {
					continue
				}
				osel := &sel
				if out.rules != nil {
					osel = &outSel[oi]
					if osel.Kept() == 0 {
						continue
					}
				}
				// the columns to transform: all, or the quasi-identifiers
				want := out.qi
				if !lean {
					want = make([]int, len(out.cols))
					for ci := range want {
						want[ci] = ci
					}
				}
				arrays := make([]arrow.Array, len(want))
				fields := make([]arrow.Field, len(want))
				release := func() {
					for _, a := range arrays {
						if a != nil {
							a.Release()
						}
					}
				}
				releaseOwn := func() {
					for i, a := range own {
						if a != nil {
							a.Release()
							own[i] = nil
						}
					}
				}
				src := filtered
				if osel != &sel {
					src = own
				}
				// filter what the transforms read, each column once
				for _, ci := range want {
					oc := out.cols[ci]
					pos := []int{oc.pos}
					if _, ok := oc.bc.Transform.(transforms.SubjectAware); ok {
						pos = append(pos, in.subjectPos)
					}
					for _, p := range pos {
						if src[p] != nil {
							continue
						}
						fa, err := osel.Filter(mem, cols[p])
						if err != nil {
							release()
							releaseOwn()
							return fmt.Errorf("%s: filter column %q: %w", in.match.Location, in.schema.Field(in.readCols[p]).Name, err)
						}
						src[p] = fa
					}
				}
				// transform, the columns on two goroutines when a CPU is idle
				errs := make([]error, len(want))
				parallel.Each(len(want), r.spare(), func(wi int) {
					ci := want[wi]
					oc := out.cols[ci]
					var a arrow.Array
					var err error
					if sa, ok := oc.bc.Transform.(transforms.SubjectAware); ok {
						a, err = sa.ApplySubject(mem, src[oc.pos], src[in.subjectPos])
					} else if d, ok := src[oc.pos].(*array.Dictionary); ok && oc.bc.Spec.Name != "keep" {
						a, err = caches[oi][ci].Apply(mem, oc.bc.Transform, d)
					} else {
						a, err = oc.bc.Transform.Apply(mem, src[oc.pos])
					}
					if err != nil {
						errs[wi] = dataErrorf(in.match.Location, oc.name, "%s (%s): %w", oc.bc.Spec.Name, oc.bc.Pos, err)
						return
					}
					arrays[wi] = a
					fields[wi] = arrow.Field{Name: oc.name, Type: a.DataType(), Nullable: true}
				})
				for _, err := range errs {
					if err != nil {
						release()
						releaseOwn()
						return err
					}
				}
				releaseOwn()
				rows := osel.Kept()
				if out.classes != nil {
					qiArrays := arrays
					if !lean {
						qiArrays = make([]arrow.Array, len(out.qi))
						for j, ci := range out.qi {
							qiArrays[j] = arrays[ci]
						}
					}
					keys = hasher.keys(keys[:0], qiArrays)
					if r.counting {
						if local[oi] == nil {
							local[oi] = map[classKey]uint32{}
						}
						for _, k := range keys {
							local[oi][k]++
						}
						release()
						continue
					}
					small.Reset(len(keys))
					for i, k := range keys {
						if out.classes.small(k) {
							small.Drop(i, transforms.ReasonSmallClass)
						}
					}
					dropped := small.Removed(transforms.ReasonSmallClass)
					outCounts[oi][iSmall] += dropped
					outCounts[oi][iKept] -= dropped
					if dropped > 0 && !lean {
						for j, a := range arrays {
							fa, err := small.Filter(mem, a)
							if err != nil {
								release()
								return fmt.Errorf("%s: filter column %q: %w", in.match.Location, fields[j].Name, err)
							}
							a.Release()
							arrays[j] = fa
						}
					}
					rows = small.Kept()
				}
				if lean || rows == 0 {
					release()
					continue
				}
				rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrays, int64(rows))
				release()
				if writers[oi] == nil {
					var stream func() *parquetio.Splicer
					if head != nil {
						stream = head(oi)
					}
					w, err := r.newPart(rec, stream)
					if err != nil {
						rec.Release()
						return err
					}
					writers[oi] = w
				}
				err := writers[oi].pw.Write(rec)
				rec.Release()
				if err != nil {
					return fmt.Errorf("%s: encode output for %s: %w", in.match.Location, out.dst.Name, err)
				}
			}
			return nil
		})
	if err != nil {
		return nil, nil, nil, dataError(err)
	}
	for oi, m := range local {
		if m != nil {
			if err := in.outputs[oi].classes.merge(m); err != nil {
				return nil, nil, nil, err
			}
		}
	}
	parts = make([]*scratchPart, len(in.outputs))
	for i, w := range writers {
		if w == nil {
			continue
		}
		if err := w.close(); err != nil {
			for _, p := range parts[:i] {
				if p != nil {
					p.discard()
				}
			}
			return nil, nil, nil, fmt.Errorf("%s: finish part: %w", in.match.Location, err)
		}
		parts[i] = w.p
		writers[i] = nil
	}
	return parts, counts, outCounts, nil
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
	p := newScratchPart(r.scratch, &r.partMem)
	pw, err := parquetio.NewPartEncoder(p, first.Schema(), dict, r.opt.Writer, r.opt.Mem)
	if err != nil {
		p.discard()
		return nil, err
	}
	if fw, fast := pw.(*parquetio.FastPartWriter); fast {
		if !r.opt.noStream {
			p.head = head // its writer marks where the footer begins
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
