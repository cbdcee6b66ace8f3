package retain

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/transforms"
)

// This file holds how deid retain settles row groups without reading them:
// from the statistics of the time and subject columns, and from the subject
// column's bloom filter where the file has one.

// timeStats reads the time column's statistics of row group rg.
func timeStats(f *parquetio.File, c ruleCols, rg int) transforms.TimeStats {
	tt := c.timeType.(*arrow.TimestampType)
	s := transforms.TimeStats{Unit: tt.Unit, Local: tt.TimeZone == "", Rows: f.RowGroupRows(rg), Nulls: -1}
	cc, err := f.ColumnChunk(rg, c.time)
	if err != nil {
		return s
	}
	if ok, err := cc.StatsSet(); !ok || err != nil {
		return s
	}
	stats, err := cc.Statistics()
	if err != nil || stats == nil {
		return s
	}
	if stats.HasNullCount() {
		s.Nulls = stats.NullCount()
	}
	if is, ok := stats.(*metadata.Int64Statistics); ok && is.HasMinMax() && f.Physical(c.time) == parquet.Types.Int64 {
		s.HasMinMax, s.Min, s.Max = true, is.Min(), is.Max()
	}
	return s
}

// subjectsMayMatch reports whether row group rg can hold a subject of set:
// first from the subject column's integer statistics (strings settle
// nothing), then from its bloom filter where the file has one. bloom
// reports that the bloom filter settled it (may is then false). A bloom
// filter's false positive only costs decoding the subject column.
func (d *dataset) subjectsMayMatch(f *parquetio.File, c ruleCols, rg int, set *transforms.SubjectSet) (may, bloom bool) {
	if set == nil || set.Len() == 0 {
		return false, false
	}
	if !statsMayMatch(f, c, rg, set) {
		return false, false
	}
	hashes := d.subjectHashes(f, c, set)
	if hashes == nil {
		return true, false // the column's type gives no exact hash
	}
	may = true
	found, err := f.VisitBloomFilter(rg, c.subject, func(bf metadata.BloomFilter) error {
		may = slices.ContainsFunc(hashes.hash(bf.Hasher()), bf.CheckHash)
		return nil
	})
	if err != nil {
		// an unreadable filter settles nothing: the column is decoded
		d.opt.Logger.Warn("ignoring the subject column's bloom filter", "file", f.Location(), "row_group", rg, "err", err)
		return true, false
	}
	return may, found && !may
}

// statsMayMatch reports whether row group rg can hold a subject of set,
// from the subject column's integer statistics (strings settle nothing).
func statsMayMatch(f *parquetio.File, c ruleCols, rg int, set *transforms.SubjectSet) bool {
	cc, err := f.ColumnChunk(rg, c.subject)
	if err != nil {
		return true
	}
	if ok, err := cc.StatsSet(); !ok || err != nil {
		return true
	}
	stats, err := cc.Statistics()
	if err != nil || stats == nil || !stats.HasMinMax() {
		return true
	}
	// an unsigned column's statistics are ordered as unsigned numbers and
	// stored in the signed physical type: read them back as unsigned
	lt, isInt := f.LogicalType(c.subject).(schema.IntLogicalType)
	unsigned := isInt && !lt.IsSigned()
	switch s := stats.(type) {
	case *metadata.Int64Statistics:
		if unsigned {
			lo, hi := uint64(s.Min()), uint64(s.Max())
			if hi > math.MaxInt64 {
				return true // beyond the ids a subject set holds: settle nothing
			}
			return set.AnyIntBetween(int64(lo), int64(hi))
		}
		return set.AnyIntBetween(s.Min(), s.Max())
	case *metadata.Int32Statistics:
		if unsigned {
			return set.AnyIntBetween(int64(uint32(s.Min())), int64(uint32(s.Max())))
		}
		return set.AnyIntBetween(int64(s.Min()), int64(s.Max()))
	}
	return true
}

// bloomHashes are a subject set's ids as one column type stores them, and
// their hashes as Parquet bloom filters hash such values.
type bloomHashes struct {
	set   *transforms.SubjectSet
	kind  string // physical type and signedness the values are for
	i64   []int64
	i32   []int32
	bytes []parquet.ByteArray
	once  sync.Once
	sums  []uint64 // made with the first filter's hasher
}

// hash returns the ids' hashes. Parquet specifies one hash (XXH64 of the
// plain-encoded value: 4 or 8 little-endian bytes for integers, the bytes
// for strings), the only one arrow-go reads filters with, so the hashes
// made with one filter's hasher serve every filter.
func (b *bloomHashes) hash(h metadata.Hasher) []uint64 {
	b.once.Do(func() {
		b.sums = make([]uint64, 0, len(b.i64)+len(b.i32)+len(b.bytes))
		b.sums = append(b.sums, metadata.GetHashes(h, b.i64)...)
		b.sums = append(b.sums, metadata.GetHashes(h, b.i32)...)
		b.sums = append(b.sums, metadata.GetHashes(h, b.bytes)...)
	})
	return b.sums
}

// subjectHashes returns set's ids as the subject column of f stores them,
// or nil when the column's type gives no exact hash (its bloom filter is
// then not used). Ids the column cannot hold (out of its integer range)
// are left out: no row can match them. They are kept for the next file of
// the same column type.
func (d *dataset) subjectHashes(f *parquetio.File, c ruleCols, set *transforms.SubjectSet) *bloomHashes {
	phys := f.Physical(c.subject)
	signed := true
	switch lt := f.LogicalType(c.subject).(type) {
	case nil, schema.NoLogicalType, *schema.NoLogicalType, schema.StringLogicalType, *schema.StringLogicalType:
	case schema.IntLogicalType:
		signed = lt.IsSigned()
	case *schema.IntLogicalType:
		signed = lt.IsSigned()
	default:
		return nil
	}
	kind := fmt.Sprint(phys, signed)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.hashes {
		if h.set == set && h.kind == kind {
			return h
		}
	}
	ints, strs := set.Values()
	h := &bloomHashes{set: set, kind: kind}
	switch {
	case phys == parquet.Types.ByteArray && !set.IsInteger():
		for _, s := range strs {
			h.bytes = append(h.bytes, parquet.ByteArray(s))
		}
	case phys == parquet.Types.Int64 && set.IsInteger():
		for _, v := range ints {
			if signed || v >= 0 { // uint64 ids above MaxInt64 are never on a list
				h.i64 = append(h.i64, v)
			}
		}
	case phys == parquet.Types.Int32 && set.IsInteger():
		for _, v := range ints {
			switch {
			case signed && v >= math.MinInt32 && v <= math.MaxInt32:
				h.i32 = append(h.i32, int32(v))
			case !signed && v >= 0 && v <= math.MaxUint32:
				h.i32 = append(h.i32, int32(uint32(v))) // stored as the same 32 bits
			}
		}
	default:
		return nil
	}
	d.hashes = append(d.hashes, h)
	return h
}

// mayErase reports whether row group rg, every row of which is inside
// retention by its statistics ts, may hold rows to erase or isolate: rows
// of a subject on an erasure list (by the subject column's statistics and
// bloom filter; bloom reports that the filter settled it) or,
// in the isolated part, rows past the legal minimum.
func (j *job) mayErase(rg int, ts transforms.TimeStats) (may, bloom bool) {
	f, c := j.f, j.cols
	if !j.rule.Isolated {
		if j.rule.Ended {
			return true, false // every row of an ended dataset goes
		}
		return j.d.subjectsMayMatch(f, c, rg, j.rule.Erasure)
	}
	// NULL times are inside the legal minimum: its clock has not started
	legal := transforms.RetainRule{Retention: true, Cutoff: j.rule.LegalCutoff}
	return !j.rule.LegalMinimum || c.time < 0 || legal.Classify(ts) != transforms.SpanInside, false
}
