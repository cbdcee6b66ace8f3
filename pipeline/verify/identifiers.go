package verify

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/zeebo/xxh3"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
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
