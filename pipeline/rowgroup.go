package pipeline

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/internal/parallel"
	"github.com/deidproject/deid/pipeline/internal/scratch"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/transforms"
)

// rowGroupTask is the work of one row group, carried through the stages of
// processRowGroup: plan the read (planRead), then per batch apply the row
// rules (applyRules), transform per destination (transformOutput, and
// dropSmallClasses for min_k) and encode (encode); finish closes the parts.
type rowGroupTask struct {
	r    *runner
	in   *inputFile
	rg   int
	f    *parquetio.File
	head func(oi int) func() *parquetio.Splicer
	// lean: a dry run or min_k's counting pass reads and transforms only
	// what counting needs, and writes nothing
	lean bool

	reasons, dreasons []transforms.Reason
	// counts: removed per reason, future times kept, kept (see
	// processRowGroup); outCounts per output: removed per destination
	// reason, small class, unknown age, kept
	counts    []int64
	outCounts [][]int64

	// the read: leaves, their positions in in.readCols, the row filter the
	// reader applies (nil: applyRules does), the leaves read as Arrow
	// dictionaries, and the positions whose local times the filter counted
	read, readPos []int
	filter        *parquetio.RowFilter
	dict          map[int]bool
	counted       []int

	writers []*partFile                    // per output, once a row is encoded
	caches  [][]transforms.DictionaryCache // per output and column
	local   []map[classes.Key]uint32       // class counts of min_k's counting pass
	hasher  classes.Hasher
	keys    []classes.Key
	small   transforms.Selection

	sel    transforms.Selection   // the dataset's row rules
	outSel []transforms.Selection // per output with rules of its own
	// per batch, by position: the columns read, the columns filtered by sel
	// (once for all outputs), and those filtered by an output's own outSel
	cols, filtered, own []arrow.Array
}

func (t *rowGroupTask) iFutureKept() int { return len(t.reasons) }
func (t *rowGroupTask) iRowsKept() int   { return len(t.reasons) + 1 }
func (t *rowGroupTask) iSmall() int      { return len(t.dreasons) }
func (t *rowGroupTask) iUnknown() int    { return len(t.dreasons) + 1 }
func (t *rowGroupTask) iKept() int       { return len(t.dreasons) + 2 }

func (r *runner) newRowGroupTask(in *inputFile, rg int, f *parquetio.File, head func(oi int) func() *parquetio.Splicer) *rowGroupTask {
	t := &rowGroupTask{r: r, in: in, rg: rg, f: f, head: head, lean: r.dryRun || r.counting,
		reasons: transforms.Reasons(), dreasons: transforms.DestinationReasons()}
	t.counts = make([]int64, len(t.reasons)+2)
	t.outCounts = make([][]int64, len(in.outputs))
	for i := range in.outputs {
		t.outCounts[i] = make([]int64, len(t.dreasons)+3)
	}
	t.local = make([]map[classes.Key]uint32, len(in.outputs))
	return t
}

// planRead chooses the leaves to read, the row filter and the dictionary
// columns. It reports false when nothing needs reading (a dry run of a
// dataset without row rules): every row is then counted as kept.
func (t *rowGroupTask) planRead() bool {
	in, r := t.in, t.r
	ruleCols := map[int]bool{}
	for _, c := range rowRuleColumns(in.ds) {
		ruleCols[in.pos[c]] = true
	}
	for _, out := range in.outputs {
		for _, ci := range out.qi {
			ruleCols[out.cols[ci].pos] = true
		}
	}
	t.read = make([]int, 0, len(in.leaves))
	t.readPos = make([]int, 0, len(in.leaves))
	for i, leaf := range in.leaves {
		if t.lean && i != in.timePos && i != in.subjectPos && !ruleCols[i] {
			continue
		}
		t.read = append(t.read, leaf)
		t.readPos = append(t.readPos, i)
	}
	if len(t.read) == 0 {
		t.counts[t.iRowsKept()] = in.rgRows[t.rg]
		for i := range t.outCounts {
			t.outCounts[i][t.iKept()] = in.rgRows[t.rg]
		}
		if !r.counting {
			r.rowsDone.Add(in.rgRows[t.rg])
		}
		return false
	}
	// The dataset's row rules decide which rows survive before the other
	// columns are decoded: the reader then skips the removed rows' values
	// instead of copying them (a retention sweep removes most rows). Only
	// without destination-level rules, which read more columns and keep
	// rows per destination.
	if !t.lean && !r.opt.readAll && in.ruleCount(r) > 0 && !in.hasOutputRules() {
		t.filter = r.rowFilter(in, t.read, t.readPos, t.counts, t.reasons)
		for _, k := range t.filter.Columns {
			t.counted = append(t.counted, t.readPos[k]) // their local times were counted, on every row
		}
	}
	t.dict = t.dictionaryColumns()
	return true
}

// dictionaryColumns returns the leaves to read as Arrow dictionaries. A
// string column stored dictionary-encoded is read as one when its
// dictionary is no larger than a batch: arrow-go hands every batch the
// whole chunk dictionary, so a larger one would cost more to rebuild per
// batch than reading values densely. A larger dictionary is read as one
// too, when deid's own reader reads the row group (it hands every batch the
// same dictionary) and every transform of the column can transform its
// entries lazily (see transforms.DictionaryCache.LazyAbove): each entry is
// then transformed once per row group, and the reader never copies values
// out of it.
func (t *rowGroupTask) dictionaryColumns() map[int]bool {
	in, r := t.in, t.r
	dict := map[int]bool{}
	leanRead := t.f.LeanReadable(t.rg, t.read)
	for k, leaf := range t.read {
		if isBinary(in.schema.Field(in.readCols[t.readPos[k]]).Type) && t.f.DictionaryEncoded(t.rg, leaf) {
			n, ok := t.f.DictionaryEntries(t.rg, leaf)
			switch {
			case ok && n <= r.opt.BatchSize:
				dict[leaf] = true
			case ok && leanRead && r.lazyColumn(in, t.readPos[k]):
				dict[leaf] = true
				if r.opt.lazyRead != nil {
					r.opt.lazyRead.Add(1)
				}
			}
		}
	}
	return dict
}

// startBatches allocates what the batches share; release frees it, and
// discards the parts when the task failed.
func (t *rowGroupTask) startBatches() {
	n := len(t.in.outputs)
	t.writers = make([]*partFile, n)
	t.caches = make([][]transforms.DictionaryCache, n)
	for i, out := range t.in.outputs {
		t.caches[i] = make([]transforms.DictionaryCache, len(out.cols))
		for ci := range t.caches[i] {
			t.caches[i][ci].LazyAbove = t.r.opt.BatchSize
		}
	}
	t.outSel = make([]transforms.Selection, n)
	t.cols = make([]arrow.Array, len(t.in.leaves))
	t.filtered = make([]arrow.Array, len(t.in.leaves))
	t.own = make([]arrow.Array, len(t.in.leaves))
}

func (t *rowGroupTask) release(failed bool) {
	for _, cs := range t.caches {
		for i := range cs {
			cs[i].Release()
		}
	}
	if failed {
		for _, w := range t.writers {
			if w != nil {
				w.discard()
			}
		}
	}
}

// readOptions are the read planRead chose.
func (t *rowGroupTask) readOptions() parquetio.ReadOptions {
	return parquetio.ReadOptions{Columns: t.read, BatchSize: int64(t.r.opt.BatchSize), Dictionary: t.dict, Filter: t.filter}
}

// batch runs the stages on one decoded batch.
func (t *rowGroupTask) batch(b arrow.RecordBatch) error {
	clear(t.cols)
	for k := range t.read {
		t.cols[t.readPos[k]] = b.Column(k)
	}
	// wall-clock timestamps of a declared zone become instants
	converted, err := t.r.toInstants(t.in, t.cols, t.counted)
	defer releaseAll(converted)
	if err != nil {
		return err
	}
	if err := t.applyRules(int(b.NumRows())); err != nil {
		return err
	}
	if t.sel.Kept() == 0 {
		return nil
	}
	clear(t.filtered) // each column is filtered once, for all destinations
	defer releaseAll(t.filtered)
	for oi, out := range t.in.outputs {
		if t.lean && out.classes == nil {
			continue
		}
		osel := &t.sel
		if out.rules != nil {
			if osel = &t.outSel[oi]; osel.Kept() == 0 {
				continue
			}
		}
		arrays, fields, err := t.transformOutput(oi, osel)
		if err != nil {
			return err
		}
		rows := osel.Kept()
		if out.classes != nil {
			if t.r.counting {
				t.tally(oi, arrays)
				releaseAll(arrays)
				continue
			}
			if rows, err = t.dropSmallClasses(oi, arrays, fields); err != nil {
				releaseAll(arrays)
				return err
			}
		}
		if t.lean || rows == 0 {
			releaseAll(arrays)
			continue
		}
		if err := t.encode(oi, arrays, fields, rows); err != nil {
			return err
		}
	}
	return nil
}

// applyRules applies the dataset's row rules (unless the reader did) and
// each output's own, and counts what they removed.
func (t *rowGroupTask) applyRules(n int) error {
	r, in := t.r, t.in
	t.sel.Reset(n)
	if t.filter == nil { // else the reader applied the rules
		futureKept, err := r.applyRowRules(in, t.cols, &t.sel)
		if err != nil {
			return err
		}
		for i, reason := range t.reasons {
			t.counts[i] += t.sel.Removed(reason)
		}
		t.counts[t.iFutureKept()] += futureKept
		if !r.counting {
			r.rowsDone.Add(int64(n))
			r.progress(int(r.filesDone.Load()))
		}
	}
	t.counts[t.iRowsKept()] += int64(t.sel.Kept())
	for oi, out := range in.outputs {
		oc := t.outCounts[oi]
		if r.counting && out.classes == nil {
			continue
		}
		if out.rules == nil {
			oc[t.iKept()] += int64(t.sel.Kept())
			continue
		}
		unknown, err := out.rules.apply(r, in, t.cols, &t.sel, &t.outSel[oi])
		if err != nil {
			return err
		}
		for j, reason := range t.dreasons {
			oc[j] += t.outSel[oi].Removed(reason)
		}
		oc[t.iUnknown()] += unknown
		oc[t.iKept()] += int64(t.outSel[oi].Kept())
	}
	return nil
}

// transformOutput filters the columns output oi's transforms read by osel
// and transforms them: every column of the output, or its
// quasi-identifiers only when lean. The caller owns the arrays.
func (t *rowGroupTask) transformOutput(oi int, osel *transforms.Selection) ([]arrow.Array, []arrow.Field, error) {
	in, out := t.in, t.in.outputs[oi]
	want := out.qi
	if !t.lean {
		want = make([]int, len(out.cols))
		for ci := range want {
			want[ci] = ci
		}
	}
	src := t.filtered
	if osel != &t.sel {
		src = t.own
	}
	defer func() { // the columns of an output's own selection serve it only
		for i, a := range t.own {
			if a != nil {
				a.Release()
				t.own[i] = nil
			}
		}
	}()
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
			fa, err := osel.Filter(t.r.opt.Mem, t.cols[p])
			if err != nil {
				return nil, nil, fmt.Errorf("%s: filter column %q: %w", in.match.Location, in.schema.Field(in.readCols[p]).Name, err)
			}
			src[p] = fa
		}
	}
	arrays := make([]arrow.Array, len(want))
	fields := make([]arrow.Field, len(want))
	errs := make([]error, len(want))
	// the columns on two goroutines when a CPU is idle
	parallel.Each(len(want), t.r.spare(), func(wi int) {
		ci := want[wi]
		a, err := t.transformColumn(oi, ci, src)
		if err != nil {
			errs[wi] = err
			return
		}
		arrays[wi] = a
		fields[wi] = arrow.Field{Name: out.cols[ci].name, Type: a.DataType(), Nullable: true}
	})
	for _, err := range errs {
		if err != nil {
			releaseAll(arrays)
			return nil, nil, err
		}
	}
	return arrays, fields, nil
}

// transformColumn applies output oi's transform of column ci to its
// filtered values in src (by position).
func (t *rowGroupTask) transformColumn(oi, ci int, src []arrow.Array) (arrow.Array, error) {
	in, mem := t.in, t.r.opt.Mem
	oc := in.outputs[oi].cols[ci]
	var a arrow.Array
	var err error
	if sa, ok := oc.bc.Transform.(transforms.SubjectAware); ok {
		a, err = sa.ApplySubject(mem, src[oc.pos], src[in.subjectPos])
	} else if d, ok := src[oc.pos].(*array.Dictionary); ok && oc.bc.Spec.Name != "keep" {
		a, err = t.caches[oi][ci].Apply(mem, oc.bc.Transform, d)
	} else {
		a, err = oc.bc.Transform.Apply(mem, src[oc.pos])
	}
	if err != nil {
		return nil, dataerr.Errorf(in.match.Location, oc.name, "%s (%s): %w", oc.bc.Spec.Name, oc.bc.Pos, err)
	}
	return a, nil
}

// qiArrays returns the quasi-identifiers among output oi's transformed
// arrays.
func (t *rowGroupTask) qiArrays(oi int, arrays []arrow.Array) []arrow.Array {
	if t.lean {
		return arrays // only the quasi-identifiers were transformed
	}
	out := t.in.outputs[oi]
	qi := make([]arrow.Array, len(out.qi))
	for j, ci := range out.qi {
		qi[j] = arrays[ci]
	}
	return qi
}

// tally adds the classes of the batch's kept rows to output oi's counts
// (min_k's counting pass).
func (t *rowGroupTask) tally(oi int, arrays []arrow.Array) {
	t.keys = t.hasher.Keys(t.keys[:0], t.qiArrays(oi, arrays))
	if t.local[oi] == nil {
		t.local[oi] = map[classes.Key]uint32{}
	}
	for _, k := range t.keys {
		t.local[oi][k]++
	}
}

// dropSmallClasses removes, in place, the rows of classes smaller than
// output oi's min_k from its arrays (unless lean, which only counts), and
// returns the rows left.
func (t *rowGroupTask) dropSmallClasses(oi int, arrays []arrow.Array, fields []arrow.Field) (int, error) {
	out := t.in.outputs[oi]
	t.keys = t.hasher.Keys(t.keys[:0], t.qiArrays(oi, arrays))
	t.small.Reset(len(t.keys))
	for i, k := range t.keys {
		if out.classes.Small(k) {
			t.small.Drop(i, transforms.ReasonSmallClass)
		}
	}
	dropped := t.small.Removed(transforms.ReasonSmallClass)
	t.outCounts[oi][t.iSmall()] += dropped
	t.outCounts[oi][t.iKept()] -= dropped
	if dropped > 0 && !t.lean {
		for j, a := range arrays {
			fa, err := t.small.Filter(t.r.opt.Mem, a)
			if err != nil {
				return 0, fmt.Errorf("%s: filter column %q: %w", t.in.match.Location, fields[j].Name, err)
			}
			a.Release()
			arrays[j] = fa
		}
	}
	return t.small.Kept(), nil
}

// encode writes output oi's rows into its part, starting it with the
// first; it takes the arrays over.
func (t *rowGroupTask) encode(oi int, arrays []arrow.Array, fields []arrow.Field, rows int) error {
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrays, int64(rows))
	releaseAll(arrays)
	defer rec.Release()
	if t.writers[oi] == nil {
		var stream func() *parquetio.Splicer
		if t.head != nil {
			stream = t.head(oi)
		}
		w, err := t.r.newPart(rec, stream)
		if err != nil {
			return err
		}
		t.writers[oi] = w
	}
	if err := t.writers[oi].pw.Write(rec); err != nil {
		return fmt.Errorf("%s: encode output for %s: %w", t.in.match.Location, t.in.outputs[oi].dst.Name, err)
	}
	return nil
}

// finish merges min_k's class counts and closes the parts.
func (t *rowGroupTask) finish() ([]*scratch.Part, error) {
	for oi, m := range t.local {
		if m != nil {
			if err := t.in.outputs[oi].classes.Merge(m); err != nil {
				return nil, err
			}
		}
	}
	parts := make([]*scratch.Part, len(t.in.outputs))
	for i, w := range t.writers {
		if w == nil {
			continue
		}
		if err := w.close(); err != nil {
			for _, p := range parts[:i] {
				if p != nil {
					p.Discard()
				}
			}
			return nil, fmt.Errorf("%s: finish part: %w", t.in.match.Location, err)
		}
		parts[i] = w.p
		t.writers[i] = nil
	}
	return parts, nil
}
