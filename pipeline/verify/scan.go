package verify

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/deidproject/deid/pipeline/internal/classes"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms/detect"
)

// This file holds the scan of one row group of a published file: every
// check on its batches, tallied per task and recorded in row-group order.

// rgScan is what the checks found in one row group, recorded in
// row-group order (fileCheck.record).
type rgScan struct {
	found                   []map[string]int64 // per column, by detector
	misses                  []formMisses
	erasedRows, expiredRows int64
	rows                    int64
	classes                 map[classes.Key]uint32 // the risk check's, not yet in its tally
	counted                 bool                   // the risk check counted the row group's classes
	long, short             []hit                  // the identifier check's, in the order found
	overflow                bool                   // more than maxCandidates hits
}

// hit is a value the identifier filter says may be a source identifier
// (for a short one, its shortKey), and the column it is in.
type hit struct {
	key string
	col int
}

// scanner is one task's scan of a row group: its tallies and buffers.
type scanner struct {
	fc      *fileCheck
	sc      *rgScan
	seen    map[hit]bool
	buf     detect.Buffer
	matches []detect.Match
	key     []byte
	hasher  classes.Hasher
	keys    []classes.Key
	qi      []arrow.Array
	uses    []int64 // rows per dictionary entry
}

// scanRowGroup reads row group rg and runs every check on it.
func (fc *fileCheck) scanRowGroup(ctx context.Context, f *parquetio.File, rg int) (*rgScan, error) {
	n := fc.sch.NumFields()
	sn := &scanner{fc: fc, sc: &rgScan{found: make([]map[string]int64, n), misses: make([]formMisses, n)}, seen: map[hit]bool{}}
	if fc.qiCols != nil {
		sn.sc.classes, sn.sc.counted = map[classes.Key]uint32{}, true
	}
	base := fc.rgStart[rg]
	err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: fc.cols, BatchSize: int64(fc.vr.opt.BatchSize), Dictionary: fc.dictionaryColumns(f, rg)}, func(rec arrow.RecordBatch) error {
		sn.batch(rec, base+sn.sc.rows)
		sn.sc.rows += rec.NumRows()
		return sn.flushClasses(fc.vr.opt.TallyLimit / fc.vr.opt.Workers)
	})
	if err == nil {
		err = sn.flushClasses(0)
	}
	return sn.sc, err
}

// flushClasses adds the row group's class counts to the risk check's tally
// once they are more than limit (all of them, with 0), so that the classes
// held in memory stay about TallyLimit however many tasks count at once:
// the tally spills past that. Counts add in any order.
func (sn *scanner) flushClasses(limit int) error {
	fc, sc := sn.fc, sn.sc
	if len(sc.classes) == 0 || len(sc.classes) <= limit {
		return nil
	}
	fc.vr.mu.Lock()
	defer fc.vr.mu.Unlock()
	if err := fc.rc.tally.AddAll(sc.classes); err != nil {
		return fmt.Errorf("%s: %w", storage.QuoteLocation(fc.loc), err)
	}
	clear(sc.classes)
	return nil
}

// dictionaryColumns returns the columns of row group rg read as Arrow
// dictionaries (dictionaryRead): of the text columns scanned for values,
// all but the subject column, whose erased rows are counted one by one.
func (fc *fileCheck) dictionaryColumns(f *parquetio.File, rg int) map[int]bool {
	var cols []int
	for k, j := range fc.cols {
		if fc.text[k] && j != fc.subjectCol {
			cols = append(cols, j)
		}
	}
	return dictionaryRead(f, rg, cols, fc.vr.opt.BatchSize)
}

// dictionaryRead returns which of the text columns cols of row group rg to
// read as Arrow dictionaries, so that each distinct value is checked once
// a batch: those whose chunk is dictionary-encoded with at most a batch's
// entries (a batch holds the whole dictionary).
func dictionaryRead(f *parquetio.File, rg int, cols []int, batch int) map[int]bool {
	dict := map[int]bool{}
	for _, j := range cols {
		// j is a leaf: a nested field before it shifts the leaves from
		// the fields, and a leaf of a nested field is read as it is
		fi := f.LeafField(j)
		if fi < 0 {
			continue
		}
		switch f.Schema().Field(fi).Type.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY:
		default:
			continue
		}
		if !f.DictionaryEncoded(rg, j) {
			continue
		}
		if n, ok := f.DictionaryEntries(rg, j); ok && n <= batch {
			dict[j] = true
		}
	}
	return dict
}

// eachUsed calls fn with each entry of d's dictionary that a row of d
// refers to, and how many rows do; uses is its scratch space, returned for
// the next call.
func eachUsed(d *array.Dictionary, uses []int64, fn func(v []byte, n int64)) []int64 {
	dict := d.Dictionary()
	uses = slices.Grow(uses[:0], dict.Len())[:dict.Len()]
	clear(uses)
	for i := 0; i < d.Len(); i++ {
		if d.IsValid(i) {
			uses[d.GetValueIndex(i)]++
		}
	}
	eachTextIndexed(dict, func(e int, v []byte) {
		if n := uses[e]; n > 0 {
			fn(v, n)
		}
	})
	return uses
}

// record adds row group rg's scan to the file's findings, the
// destination's rows, the risk measure and the identifier candidates.
func (fc *fileCheck) record(rg int, sc *rgScan) error {
	vr, sch := fc.vr, fc.sch
	vr.mu.Lock()
	defer vr.mu.Unlock()
	fc.dv.Rows += sc.rows
	if sc.counted {
		fc.rc.rows += sc.rows
	}
	for _, h := range sc.long {
		if !vr.candidates.add([]byte(h.key), vr.room(), fc.dv, fc.loc, sch.Field(h.col).Name, rg) {
			vr.overflow = true
		}
	}
	for _, h := range sc.short {
		if !vr.short.add([]byte(h.key), vr.room(), fc.dv, fc.loc, sch.Field(h.col).Name, rg) {
			vr.overflow = true
		}
	}
	vr.overflow = vr.overflow || sc.overflow
	if sc.expiredRows > 0 {
		fc.find("retention", sch.Field(fc.timeCol).Name, rg, sc.expiredRows, "%d rows older than the retention cut-off (%s before %s)", sc.expiredRows, fc.b.Dataset.Retention.Keep, fc.cutNow.Format(time.RFC3339))
	}
	if sc.erasedRows > 0 {
		fc.find("erasure", fc.b.Dataset.Subject, rg, sc.erasedRows, "%d rows of subjects on the dataset's erasure lists", sc.erasedRows)
	}
	for j, m := range sc.misses {
		if m.n > 0 {
			fc.find("pseudonym", sch.Field(j).Name, rg, m.n, "%s", m.message(fc.forms[j], sch.Field(j).Type))
		}
	}
	for j, byDetector := range sc.found {
		for _, name := range sortedKeys(byDetector) {
			fc.find("pii", sch.Field(j).Name, rg, byDetector[name], "%d values the %s detector recognises, where the policy says none may remain", byDetector[name], name)
		}
	}
	return nil
}

// batch runs every check on one batch, whose first row is row base of the
// file.
func (sn *scanner) batch(rec arrow.RecordBatch, base int64) {
	fc, sc := sn.fc, sn.sc
	for k, j := range fc.cols {
		col := rec.Column(k)
		if form := fc.forms[j]; form != nil {
			sc.misses[j].check(col, form, base)
		}
		switch j {
		case fc.timeCol:
			sc.expiredRows += countBefore(col, fc.cut)
		case fc.subjectCol:
			eachText(col, func(v []byte) {
				if fc.gone[string(v)] {
					sc.erasedRows++
				}
			})
		}
		if !fc.text[k] {
			continue
		}
		switch {
		case col.DataType().ID() == arrow.DICTIONARY:
			sn.dictionary(j, col.(*array.Dictionary))
		case fc.forms[j] != nil:
			form := fc.forms[j]
			eachText(col, func(v []byte) {
				if form.HasForm(v) {
					sn.whole(j, v) // a pseudonym is one word: itself
				} else {
					sn.value(j, v, 1)
				}
			})
		default:
			eachText(col, func(v []byte) { sn.value(j, v, 1) })
		}
	}
	if fc.qiCols != nil {
		sn.qi = sn.qi[:0]
		for _, j := range fc.qiCols {
			sn.qi = append(sn.qi, rec.Column(slices.Index(fc.cols, j)))
		}
		sn.keys = sn.hasher.Keys(sn.keys[:0], sn.qi)
		for _, k := range sn.keys {
			sc.classes[k] = classes.SatAdd(sc.classes[k], 1)
		}
	}
}

// dictionary runs the pii and identifier checks on the dictionary entries
// the rows of d refer to, each once, counted as many times as rows refer
// to it.
func (sn *scanner) dictionary(j int, d *array.Dictionary) {
	sn.uses = eachUsed(d, sn.uses, func(v []byte, n int64) { sn.value(j, v, n) })
}

// value runs the pii and identifier checks on value v of column j, found
// in n rows.
func (sn *scanner) value(j int, v []byte, n int64) {
	fc, sc, ids := sn.fc, sn.sc, sn.fc.vr.ids
	if set := fc.sets[j]; set != nil {
		sn.matches = set.Find(sn.matches[:0], v, &sn.buf)
		for _, mt := range sn.matches {
			if sc.found[j] == nil {
				sc.found[j] = map[string]int64{}
			}
			sc.found[j][set.Detectors()[mt.Detector].Name()] += n
		}
	}
	if fc.exempt[j] {
		return
	}
	if len(v) < minIdentifierLen {
		// a short whole value, in a column written from an identifier
		// column: compared with that column's own values
		if src := fc.shortSource[j]; src != "" && len(v) > 0 {
			sn.key = shortKey(sn.key, src, v)
			if ids.has(sn.key) {
				sc.short = sn.hit(sc.short, sn.key, j)
			}
		}
		return
	}
	if len(v) < ids.minLen || ids.minLen == 0 {
		return // shorter than every long source value: no word of it is one
	}
	words(v, ids.mayHaveLength, func(w []byte) {
		if ids.has(w) {
			sc.long = sn.hit(sc.long, w, j)
		}
	})
}

// whole runs the checks on value v of column j, of the form its
// transform writes: when it is made only of the characters identifiers are
// written with (a pseudonym is), its one word is itself.
func (sn *scanner) whole(j int, v []byte) {
	ids := sn.fc.vr.ids
	if fc := sn.fc; fc.sets[j] != nil || fc.exempt[j] || len(v) < minIdentifierLen || !oneWord(v) {
		sn.value(j, v, 1)
		return
	}
	if ids.mayHaveLength(len(v)) && ids.has(v) {
		sn.sc.long = sn.hit(sn.sc.long, v, j)
	}
}

// hit appends to hits value k of column j, unless the row group already
// has it, and up to maxCandidates.
func (sn *scanner) hit(hits []hit, k []byte, j int) []hit {
	if sn.seen[hit{string(k), j}] {
		return hits
	}
	if len(sn.sc.long)+len(sn.sc.short) >= maxCandidates {
		sn.sc.overflow = true
		return hits
	}
	h := hit{string(k), j}
	sn.seen[h] = true
	return append(hits, h)
}
