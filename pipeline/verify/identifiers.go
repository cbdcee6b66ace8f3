package verify

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zeebo/xxh3"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/internal/engine"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// This file holds deid verify's identifier check: a Bloom filter over keyed
// hashes of the sources' identifier values (128-bit xxh3 with a random seed
// each run: the filter never leaves the process and every hit is confirmed
// exactly, so the hash need only be unpredictable, not a MAC; HMAC-SHA256
// cost nearly half of verify's time). A value of at least
// minIdentifierLen bytes is hashed as it is, and looked for in every output
// column, as a whole value or a word of a text; a shorter one is hashed with
// its column's name (shortKey), and looked for as a whole value only in the
// output column written from that source column.

// identifierSet is a Bloom filter over the keyed hashes of the values of
// the sources' identifier columns.
type identifierSet struct {
	plan    *rules.Plan
	opt     Options
	columns []string    // dataset.column, for messages
	blocks  [][8]uint64 // the filter: 512-bit blocks
	// exact holds, sorted, the 128-bit hashes of every value the filter
	// holds, when there are at most maxDistinctExact: a value that hits
	// the filter is a candidate only if its hash is there too, so a clean
	// output has no candidate and the sources are not read again
	exact   []xxh3.Uint128
	seed    uint64                     // random, per run
	lengths [maxLengthTracked + 1]bool // long values' lengths seen; the last: any longer
	minLen  int                        // the shortest long value's length (0: none)
}

// newIdentifierSet reads the sources' identifier columns into the filter.
func newIdentifierSet(ctx context.Context, plan *rules.Plan, opt Options) (*identifierSet, error) {
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	ids := &identifierSet{plan: plan, opt: opt, seed: binary.LittleEndian.Uint64(seed[:])}
	for _, src := range ids.sources() {
		for _, n := range src.names {
			ids.columns = append(ids.columns, src.ds.Name+"."+n)
		}
	}
	fb := &filterBuild{ctx: ctx, ids: ids, set: &hashSet{}}
	err := ids.scan(ctx, true, func() valueFunc {
		var key []byte
		var lengths [maxLengthTracked + 1]bool
		local := &hashSet{}
		return valueFunc{
			value: func(column string, v []byte) {
				if len(v) == 0 {
					return
				}
				if len(v) < minIdentifierLen {
					// a short value is looked for only in the output
					// column of its own source column, as a whole
					// value: keyed with the column's name
					key = shortKey(key, column, v)
					v = key
				} else {
					lengths[min(len(v), maxLengthTracked)] = true
				}
				h := ids.hash(v)
				if fb.direct.Load() {
					ids.add(h.Lo)
					return
				}
				local.add(h)
				if local.len() >= localDistinct {
					fb.flush(local)
				}
			},
			done: func() {
				fb.flush(local)
				fb.mu.Lock()
				defer fb.mu.Unlock()
				for n, seen := range lengths {
					ids.lengths[n] = ids.lengths[n] || seen
				}
			},
		}
	})
	if err == nil {
		err = fb.err
	}
	if err != nil {
		return nil, err
	}
	fb.finish()
	for n, seen := range ids.lengths {
		if seen {
			ids.minLen = n
			break
		}
	}
	return ids, nil
}

// shortKey appends to buf[:0] what a short value v of source column column
// (dataset.column) is filtered and confirmed as: a NUL, the column's name,
// a NUL and the value, which no value of the long path (at least
// minIdentifierLen bytes, looked for in any column) is hashed as unless it
// is one of those bytes exactly.
func shortKey(buf []byte, column string, v []byte) []byte {
	return append(append(append(append(buf[:0], 0), column...), 0), v...)
}

// eachFile opens every source file of every dataset with identifier
// columns, one after another, and calls fn with the identifier columns'
// indices and names (dataset.column).
func (ids *identifierSet) eachFile(ctx context.Context, fn func(f *parquetio.File, cols []int, names []string) error) error {
	for _, src := range ids.sources() {
		_, matches, err := storage.Glob(ctx, ids.opt.Store, src.ds.Source)
		if err != nil {
			return fmt.Errorf("dataset %q: %w", src.ds.Name, err)
		}
		for _, mt := range matches {
			f, cols, names, err := ids.open(ctx, mt.Location, src)
			if err != nil {
				return err
			}
			err = fn(f, cols, names)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// identifierSource is a dataset with identifier columns.
type identifierSource struct {
	ds    *rules.Dataset
	names []string
}

// sources returns the datasets with identifier columns, and theirs.
func (ids *identifierSet) sources() []identifierSource {
	var out []identifierSource
	for _, ds := range ids.plan.Datasets {
		var names []string
		for _, c := range ds.Columns {
			if c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier {
				names = append(names, c.Name)
			}
		}
		if len(names) > 0 {
			out = append(out, identifierSource{ds: ds, names: names})
		}
	}
	return out
}

// open opens source file loc of src and finds its identifier columns.
func (ids *identifierSet) open(ctx context.Context, loc string, src identifierSource) (*parquetio.File, []int, []string, error) {
	f, _, err := pqstore.Open(ctx, ids.opt.Store, loc, ids.opt.Mem)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := dataerr.CheckColumnNames(loc, f.Schema()); err != nil {
		f.Close() // a source column found by name could be the other one of its name
		return nil, nil, nil, err
	}
	var cols []int
	var found []string
	for _, n := range src.names {
		if j := f.LeafIndex(n); j >= 0 {
			cols = append(cols, j)
			found = append(found, src.ds.Name+"."+n)
		}
	}
	return f, cols, found, nil
}

// valueFunc is what a scan task calls: value with every value it reads,
// then done.
type valueFunc struct {
	value func(column string, v []byte)
	done  func()
}

// scan calls, on Options.Workers goroutines, the text of every value of the
// sources' identifier columns and the column's name (dataset.column). Each
// task (one column of one row group) gets its own valueFunc from newFunc.
// With wholeDictionaries, a dictionary-encoded column gives each entry of
// its dictionary once instead (one a row refers to or not: the filter may
// hold a value no row has, never miss one); without, the values of the
// rows, each distinct one at least once.
func (ids *identifierSet) scan(ctx context.Context, wholeDictionaries bool, newFunc func() valueFunc) error {
	var files []*engine.File
	open := &openFiles{}
	defer open.closeAll()
	for _, src := range ids.sources() {
		_, matches, err := storage.Glob(ctx, ids.opt.Store, src.ds.Source)
		if err != nil {
			return fmt.Errorf("dataset %q: %w", src.ds.Name, err)
		}
		for _, mt := range matches {
			files = append(files, ids.scanFile(mt.Location, src, open, wholeDictionaries, newFunc))
		}
	}
	pool := engine.Pool{Workers: ids.opt.Workers}
	return pool.Run(ctx, files)
}

// scanFile is the scan of one source file: a stage that opens it, then one
// whose tasks read a column of a row group each.
func (ids *identifierSet) scanFile(loc string, src identifierSource, open *openFiles, wholeDictionaries bool, newFunc func() valueFunc) *engine.File {
	return &engine.File{Name: loc, Finish: func(ctx context.Context, _ []engine.Output) (*engine.File, error) {
		f, cols, names, err := ids.open(ctx, loc, src)
		if err != nil {
			return nil, err
		}
		open.add(f)
		if len(cols) == 0 || f.NumRowGroups() == 0 {
			open.close(f)
			return nil, nil
		}
		return &engine.File{Name: loc, RowGroups: f.NumRowGroups() * len(cols),
			Task: func(ctx context.Context, t int, _ engine.Head) ([]engine.Piece, error) {
				rg, j := t/len(cols), t%len(cols)
				fn := newFunc()
				defer fn.done()
				var uses []int64
				var last arrow.Array // the dictionary given whole
				opt := parquetio.ReadOptions{Columns: cols[j : j+1], BatchSize: int64(ids.opt.BatchSize), Dictionary: dictionaryRead(f, rg, cols[j:j+1], ids.opt.BatchSize)}
				return nil, f.ReadRowGroup(ctx, rg, opt, func(rec arrow.RecordBatch) error {
					d, ok := rec.Column(0).(*array.Dictionary)
					switch {
					case ok && wholeDictionaries:
						if d.Dictionary() != last { // batches share the chunk's dictionary
							last = d.Dictionary()
							eachTextIndexed(last, func(_ int, v []byte) { fn.value(names[j], v) })
						}
					case ok:
						uses = eachUsed(d, uses, func(v []byte, _ int64) { fn.value(names[j], v) })
					default:
						eachText(rec.Column(0), func(v []byte) { fn.value(names[j], v) })
					}
					return nil
				})
			},
			Finish: func(context.Context, []engine.Output) (*engine.File, error) {
				open.close(f)
				return nil, nil
			}}, nil
	}}
}

// openFiles are the files a scan holds open, closed as each is done and,
// after a failure, all at once.
type openFiles struct {
	mu    sync.Mutex
	files map[*parquetio.File]bool
}

func (o *openFiles) add(f *parquetio.File) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.files == nil {
		o.files = map[*parquetio.File]bool{}
	}
	o.files[f] = true
}

func (o *openFiles) close(f *parquetio.File) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.files[f] {
		delete(o.files, f)
		f.Close()
	}
}

func (o *openFiles) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for f := range o.files {
		f.Close()
	}
	o.files = nil
}

// MinShortDistinct is how many distinct values shorter than
// minIdentifierLen of one source identifier column must appear, as whole
// values, in the output column the destination writes from that column (a
// dataset's column in a destination, over all its files checked) for the
// identifier check to report them. Only such columns are compared, and only
// with their own source column's values: a short value elsewhere (an
// amount, a bucket, a year, a record id) is no evidence, since the
// legitimate values of those columns share the small integers' space. In
// the columns compared, what the policy writes is never a short raw value:
// a pseudonym is 16 to 64 hex characters (a chance equality with a source
// value is impossible), a mask keeps its mask characters, redact writes one
// constant, birth_year writes years from 18-character resident ids. What
// remains is a transform's small set of labels coinciding with raw values;
// ten distinct coincidences with one column's own ids are well beyond such
// chance. Take a column of D distinct short values unrelated to the ids,
// uniform over the 90,000 five-digit ids of which the source holds M: it
// matches about D·M/90,000 of them, so with 150 labels and the sample's 120
// users 0.2, and ten or more with probability below 1e-13; a column of
// replaced ids matches every one of its distinct ids.
const MinShortDistinct = 10

// maxCandidates bounds the distinct output values kept for exact
// confirmation. Past it the identifier check fails as a whole; the
// candidates kept are the first recorded, in row-group order within a file
// but in the order files finish across them, so which later findings are
// listed may differ from run to run.
const maxCandidates = 1 << 20

// candidateAt is an output value that the identifier filter says may be a
// source identifier, where it was found; confirm settles it.
type candidateAt struct {
	dv             *report.Verification
	file, column   string
	rg             int
	sources        map[string]bool
	confirmedValue bool
}

// candidates holds the identifier check's hits by value (or by shortKey
// for short values), each with where it was found.
type candidates map[string][]*candidateAt

// add records that value k was found at (dv, file, column, rg), once per
// row group; it reports false, recording nothing, when there are already
// limit values and k is not one of them.
func (cs candidates) add(k []byte, limit int, dv *report.Verification, file, column string, rg int) bool {
	at := cs[string(k)]
	if at == nil && limit <= 0 {
		return false
	}
	if n := len(at); n > 0 && at[n-1].dv == dv && at[n-1].file == file && at[n-1].column == column && at[n-1].rg == rg {
		return true
	}
	cs[string(k)] = append(at, &candidateAt{dv: dv, file: file, column: column, rg: rg})
	return true
}

// room is how many more distinct candidates may be kept.
func (vr *verifier) room() int {
	return maxCandidates - len(vr.candidates) - len(vr.short)
}

// confirm reads the sources' identifier columns again and turns the
// candidates whose values are indeed raw source identifiers into findings,
// one per file, column and row group.
func (vr *verifier) confirm(ctx context.Context) error {
	if len(vr.candidates) == 0 && len(vr.short) == 0 {
		return nil
	}
	// the candidates' maps are only read here, by every task at once; a
	// hit, rare, is recorded under mu
	var mu sync.Mutex
	if err := vr.ids.scan(ctx, false, func() valueFunc {
		var key []byte
		return valueFunc{value: func(column string, v []byte) {
			if len(v) < minIdentifierLen {
				if len(v) > 0 && len(vr.short) > 0 {
					key = shortKey(key, column, v)
					if cs := vr.short[string(key)]; len(cs) > 0 {
						mu.Lock()
						for _, c := range cs {
							c.confirmedValue = true
						}
						mu.Unlock()
					}
				}
				return
			}
			if cs := vr.candidates[string(v)]; len(cs) > 0 {
				mu.Lock()
				for _, c := range cs {
					c.confirmedValue = true
					if c.sources == nil {
						c.sources = map[string]bool{}
					}
					c.sources[column] = true
				}
				mu.Unlock()
			}
		}, done: func() {}}
	}); err != nil {
		return err
	}
	type key struct {
		dv           *report.Verification
		file, column string
		rg           int
	}
	counts := map[key]int64{}
	sources := map[key]map[string]bool{}
	var order []key
	for _, cs := range vr.candidates {
		for _, c := range cs {
			if !c.confirmedValue {
				continue
			}
			k := key{c.dv, c.file, c.column, c.rg}
			if counts[k] == 0 {
				order = append(order, k)
				sources[k] = map[string]bool{}
			}
			counts[k]++
			for c := range c.sources {
				sources[k][c] = true
			}
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.rg, b.rg), strings.Compare(a.column, b.column)) < 0
	})
	for _, k := range order {
		k.dv.Findings = append(k.dv.Findings, report.Finding{Check: "identifier", File: k.file, Column: k.column, RowGroup: k.rg, Values: counts[k],
			Msg: fmt.Sprintf("%d distinct raw values of source identifier column %s", counts[k], rules.QuoteNames(sortedKeys(sources[k])))})
	}
	vr.confirmShort()
	return nil
}

// confirmShort turns the confirmed short whole values into findings, one
// per file, column and row group, where at least MinShortDistinct distinct
// values of one source column appear in the destination's output column
// written from it.
func (vr *verifier) confirmShort() {
	type column struct {
		dv     *report.Verification
		source string // dataset.column
	}
	type key struct {
		column
		file, name string
		rg         int
	}
	distinct := map[column]int64{}
	counts := map[key]int64{}
	for k, cs := range vr.short {
		if len(cs) == 0 || !cs[0].confirmedValue {
			continue
		}
		source, _, _ := strings.Cut(k[1:], "\x00") // shortKey: NUL, column, NUL, value
		seen := map[*report.Verification]bool{}    // the destinations this value is in
		for _, c := range cs {
			col := column{c.dv, source}
			if !seen[c.dv] {
				distinct[col]++
				seen[c.dv] = true
			}
			counts[key{col, c.file, c.column, c.rg}]++
		}
	}
	var order []key
	for k := range counts {
		if distinct[k.column] >= MinShortDistinct {
			order = append(order, k)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := order[i], order[j]
		return cmp.Or(strings.Compare(a.file, b.file), cmp.Compare(a.rg, b.rg), strings.Compare(a.name, b.name)) < 0
	})
	for _, k := range order {
		k.dv.Findings = append(k.dv.Findings, report.Finding{Check: "identifier", File: k.file, Column: k.name, RowGroup: k.rg, Values: counts[k],
			Msg: fmt.Sprintf("%d distinct raw values of source identifier column %s as whole values shorter than %d characters (%d in the destination's column; %d or more are a finding)",
				counts[k], rules.QuoteNames([]string{k.source}), minIdentifierLen, distinct[k.column], MinShortDistinct)})
	}
}
