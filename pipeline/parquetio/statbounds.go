package parquetio

import (
	"unicode/utf8"

	"github.com/parquet-go/parquet-go/format"
)

// DefaultStatisticsLimit is the default longest min or max a column chunk's
// statistics hold for a BYTE_ARRAY column (WriterOptions.StatisticsLimit).
// Values up to that length are written exactly; a longer min is cut to a
// prefix and a longer max to a prefix rounded up (see boundMin and boundMax),
// so that one huge value cannot put itself into the footer, which every
// reader decodes whole before reading anything (arrow-go refuses footers
// past 100 MiB of strings). URLs and user agents of ordinary logs stay
// exact.
const DefaultStatisticsLimit = 1024

// statLimit returns the limit that applies to o.
func (o WriterOptions) statLimit() int {
	if o.StatisticsLimit <= 0 {
		return DefaultStatisticsLimit
	}
	return o.StatisticsLimit
}

// statKey is what the statistics of a chunk keep of a value: its first
// limit+1 bytes. Cutting every value to a fixed length keeps the bytewise
// order (a ≤ b implies statKey(a) ≤ statKey(b)), so the min (max) of the
// keys is the key of the min (max), and boundMin and boundMax need no more
// than limit+1 bytes: a chunk never holds a copy of a huge value for its
// statistics.
func statKey(v []byte, limit int) []byte {
	if len(v) > limit+1 {
		return v[:limit+1]
	}
	return v
}

// utf8Cut returns where to cut v to at most limit bytes. For a UTF-8
// column it backs off to the start of the code point the limit falls in,
// so that a valid string stays valid; it cuts at the limit when no code
// point starts in the three bytes before it (the value is not UTF-8).
func utf8Cut(v []byte, limit int, text bool) int {
	if len(v) <= limit || !text {
		return min(len(v), limit)
	}
	for cut := limit; cut >= 0 && cut > limit-utf8.UTFMax; cut-- {
		if utf8.RuneStart(v[cut]) {
			return cut
		}
	}
	return limit
}

// boundMin returns the min statistic to write for a chunk whose least
// value is v (or its statKey): v itself when it has at most limit bytes,
// else a prefix of it, which sorts before v as the format allows for a
// truncated min. exact reports which.
func boundMin(v []byte, limit int, text bool) (b []byte, exact bool) {
	if len(v) <= limit {
		return v, true
	}
	return v[:utf8Cut(v, limit, text)], false
}

// boundMax returns the max statistic to write for a chunk whose greatest
// value is v (or its statKey): v itself when it has at most limit bytes,
// else a string of at most limit bytes that sorts after v bytewise (the
// order readers compare BYTE_ARRAY and UTF-8 statistics in). That is a
// prefix of v with its last byte that can be incremented incremented and
// the bytes after it dropped; for a UTF-8 column whose prefix is valid
// UTF-8, its last code point that has a successor is replaced by that
// successor (skipping the surrogates), so the bound stays valid UTF-8.
// ok is false when no such string exists (the prefix is all 0xFF bytes, or
// all U+10FFFF): the chunk then has no max. b never shares memory with v.
func boundMax(v []byte, limit int, text bool) (b []byte, exact, ok bool) {
	if len(v) <= limit {
		return v, true, true
	}
	p := append([]byte(nil), v[:utf8Cut(v, limit, text)]...)
	if text && utf8.Valid(p) {
		return incrementRunes(p)
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] != 0xFF {
			p[i]++
			return p[:i+1], false, true
		}
	}
	return nil, false, false
}

// incrementRunes replaces the last code point of the valid UTF-8 string p
// that has a successor, encoded in no more bytes than p has, by that
// successor and drops what follows it.
func incrementRunes(p []byte) ([]byte, bool, bool) {
	limit := len(p)
	for len(p) > 0 {
		r, size := utf8.DecodeLastRune(p)
		p = p[:len(p)-size]
		switch {
		case r == utf8.MaxRune:
			continue
		case r == 0xD7FF: // the next scalar value is past the surrogates
			r = 0xE000
		default:
			r++
		}
		if len(p)+utf8.RuneLen(r) > limit { // U+007F, U+07FF, U+FFFF: the successor is longer
			continue
		}
		return utf8.AppendRune(p, r), false, true
	}
	return nil, false, false
}

// boundMinMax returns the min and max statistics to write for a chunk whose
// least value is lo and greatest hi (or their statKeys), as boundMin and
// boundMax do, or ok false and neither when hi has no upper bound of at
// most limit bytes. A min without a max is never written: readers take the
// missing max for an empty one (arrow-go) or prune with half a range.
func boundMinMax(lo, hi []byte, limit int, text bool) (mn, mx []byte, ok bool) {
	mx, _, ok = boundMax(hi, limit, text)
	if !ok {
		return nil, nil, false
	}
	mn, _ = boundMin(lo, limit, text)
	return mn, mx, true
}

// pairStatistics drops the min and max of every column chunk in md that
// has one of them without the other, for the deprecated pair and the
// current pair alike. arrow-go's writer leaves out a BYTE_ARRAY bound past
// its size limit on its own, so a chunk whose max is long and min short
// would carry a min alone; statistics are optional, a half range is not.
func pairStatistics(md *format.FileMetaData) {
	for i := range md.RowGroups {
		cols := md.RowGroups[i].Columns
		for j := range cols {
			st := &cols[j].MetaData.Statistics
			if (st.MinValue == nil) != (st.MaxValue == nil) {
				st.MinValue, st.MaxValue = nil, nil
			}
			if (st.Min == nil) != (st.Max == nil) {
				st.Min, st.Max = nil, nil
			}
		}
	}
}
