package verify

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/zeebo/xxh3"

	"github.com/deidproject/deid/pipeline/dataerr"
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
	columns []string // dataset.column, for messages
	bits    []uint64
	m       uint64
	seed    uint64 // random, per run
	key     []byte // shortKey's
}

const bloomHashes = 7

// newIdentifierSet reads the sources' identifier columns into the filter.
func newIdentifierSet(ctx context.Context, plan *rules.Plan, opt Options) (*identifierSet, error) {
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	ids := &identifierSet{plan: plan, opt: opt, seed: binary.LittleEndian.Uint64(seed[:])}
	for _, ds := range plan.Datasets {
		for _, c := range ds.Columns {
			if c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier {
				ids.columns = append(ids.columns, ds.Name+"."+c.Name)
			}
		}
	}
	// size: 10 bits per source row of every identifier column
	var rows int64
	if err := ids.eachFile(ctx, func(f *parquetio.File, cols []int, _ []string) error {
		rows += f.NumRows() * int64(len(cols))
		return nil
	}); err != nil {
		return nil, err
	}
	ids.m = uint64(max(rows*10, 1024))
	ids.bits = make([]uint64, (ids.m+63)/64)
	err := ids.scan(ctx, func(column string, v []byte) {
		if len(v) == 0 {
			return
		}
		if len(v) < minIdentifierLen {
			// a short value is looked for only in the output column of
			// its own source column, as a whole value: keyed with the
			// column's name
			v = ids.shortKey(column, v)
		}
		h1, h2 := ids.hash(v)
		for i := uint64(0); i < bloomHashes; i++ {
			p := (h1 + i*h2) % ids.m
			ids.bits[p/64] |= 1 << (p % 64)
		}
	})
	return ids, err
}

// shortKey returns what a short value v of source column column
// (dataset.column) is filtered and confirmed as: a NUL, the column's name,
// a NUL and the value, which no value of the long path (at least
// minIdentifierLen bytes, looked for in any column) is hashed as unless it
// is one of those bytes exactly. It is valid until the next call.
func (ids *identifierSet) shortKey(column string, v []byte) []byte {
	ids.key = append(append(append(append(ids.key[:0], 0), column...), 0), v...)
	return ids.key
}

// hash returns the two hashes of v that the filter's probes combine.
func (ids *identifierSet) hash(v []byte) (uint64, uint64) {
	h := xxh3.Hash128Seed(v, ids.seed)
	return h.Lo, h.Hi | 1
}

// hasShort reports whether v, shorter than minIdentifierLen, may be a value
// of source column column (dataset.column).
func (ids *identifierSet) hasShort(column string, v []byte) bool {
	return ids.has(ids.shortKey(column, v))
}

// has reports whether v may be a source identifier value.
func (ids *identifierSet) has(v []byte) bool {
	if len(ids.columns) == 0 {
		return false
	}
	h1, h2 := ids.hash(v)
	for i := uint64(0); i < bloomHashes; i++ {
		p := (h1 + i*h2) % ids.m
		if ids.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// eachFile opens every source file of every dataset with identifier
// columns and calls fn with the identifier columns' indices.
func (ids *identifierSet) eachFile(ctx context.Context, fn func(f *parquetio.File, cols []int, names []string) error) error {
	for _, ds := range ids.plan.Datasets {
		var names []string
		for _, c := range ds.Columns {
			if c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier {
				names = append(names, c.Name)
			}
		}
		if len(names) == 0 {
			continue
		}
		_, matches, err := storage.Glob(ctx, ids.opt.Store, ds.Source)
		if err != nil {
			return fmt.Errorf("dataset %q: %w", ds.Name, err)
		}
		for _, mt := range matches {
			f, _, err := pqstore.Open(ctx, ids.opt.Store, mt.Location, ids.opt.Mem)
			if err != nil {
				return err
			}
			if err := dataerr.CheckColumnNames(mt.Location, f.Schema()); err != nil {
				f.Close() // a source column found by name could be the other one of its name
				return err
			}
			var cols []int
			var found []string
			for _, n := range names {
				if j := f.LeafIndex(n); j >= 0 {
					cols = append(cols, j)
					found = append(found, ds.Name+"."+n)
				}
			}
			err = fn(f, cols, found)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// scan calls fn with the text of every value of the sources' identifier
// columns and the column's name, dataset.column.
func (ids *identifierSet) scan(ctx context.Context, fn func(column string, v []byte)) error {
	return ids.eachFile(ctx, func(f *parquetio.File, cols []int, names []string) error {
		if len(cols) == 0 {
			return nil
		}
		for rg := 0; rg < f.NumRowGroups(); rg++ {
			err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: cols, BatchSize: int64(ids.opt.BatchSize)}, func(rec arrow.RecordBatch) error {
				for j := range cols {
					eachText(rec.Column(j), func(v []byte) { fn(names[j], v) })
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// minIdentifierLen is the shortest value the identifier check looks for in
// every output column, as a whole value or a word of a text: shorter ones
// (small integers, codes) match by chance.
const minIdentifierLen = 6

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
// confirmation.
const maxCandidates = 1 << 20

// words calls fn with the value itself and, when it is longer, each run of
// the characters identifiers are written with (ASCII letters and digits and
// @ . _ + - :), of at least minIdentifierLen bytes.
func words(v []byte, fn func([]byte)) {
	if len(v) >= minIdentifierLen {
		fn(v)
	}
	start := -1
	for i := 0; i <= len(v); i++ {
		in := i < len(v) && isIdentByte(v[i])
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if i-start >= minIdentifierLen && i-start < len(v) {
				fn(v[start:i])
			}
			start = -1
		}
	}
}

func isIdentByte(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '@' || c == '.' || c == '_' || c == '+' || c == '-' || c == ':'
}

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

	if err := vr.ids.scan(ctx, func(column string, v []byte) {
		if len(v) < minIdentifierLen {
			if len(v) > 0 && len(vr.short) > 0 {
				for _, c := range vr.short[string(vr.ids.shortKey(column, v))] {
					c.confirmedValue = true
				}
			}
			return
		}
		for _, c := range vr.candidates[string(v)] {
			c.confirmedValue = true
			if c.sources == nil {
				c.sources = map[string]bool{}
			}
			c.sources[column] = true
		}
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
		var last *report.Verification
		for _, c := range cs {
			col := column{c.dv, source}
			if c.dv != last { // the candidates of one value are in the order found: by destination
				distinct[col]++
				last = c.dv
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
