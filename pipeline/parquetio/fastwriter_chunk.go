package parquetio

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go/format"
)

// fastStats are a chunk's min and max, in the column type's order, over the
// values present. Byte strings are kept as their statKey: at most the
// statistics limit plus one byte.
type fastStats struct {
	has               bool
	minI, maxI        int64
	minF, maxF        float64 // NaN excluded
	minB, maxB        []byte
	sawTrue, sawFalse bool
}

func (s *fastStats) addBytes(mn, mx []byte, limit int) {
	mn, mx = statKey(mn, limit), statKey(mx, limit)
	if !s.has || bytes.Compare(mn, s.minB) < 0 {
		s.minB = append(s.minB[:0], mn...)
	}
	if !s.has || bytes.Compare(mx, s.maxB) > 0 {
		s.maxB = append(s.maxB[:0], mx...)
	}
	s.has = true
}

func (s *fastStats) addInts(mn, mx int64) {
	if !s.has || mn < s.minI {
		s.minI = mn
	}
	if !s.has || mx > s.maxI {
		s.maxI = mx
	}
	s.has = true
}

func (s *fastStats) addFloats(mn, mx float64) {
	if !s.has || mn < s.minF {
		s.minF = mn
	}
	if !s.has || mx > s.maxF {
		s.maxF = mx
	}
	s.has = true
}

func (s *fastStats) addBools(sawTrue, sawFalse bool) {
	s.sawTrue = s.sawTrue || sawTrue
	s.sawFalse = s.sawFalse || sawFalse
	s.has = s.sawTrue || s.sawFalse
}

func minMaxInt[T int32 | int64](v []T) (mn, mx T, ok bool) {
	if len(v) == 0 {
		return 0, 0, false
	}
	mn, mx = v[0], v[0]
	for _, x := range v[1:] {
		mn = min(mn, x)
		mx = max(mx, x)
	}
	return mn, mx, true
}

// minMaxFloat ignores NaNs; ok is false when there is no other value.
func minMaxFloat[T float32 | float64](v []T) (mn, mx float64, ok bool) {
	for _, x := range v {
		if x != x {
			continue
		}
		f := float64(x)
		if !ok {
			mn, mx, ok = f, f, true
			continue
		}
		if f < mn {
			mn = f
		}
		if f > mx {
			mx = f
		}
	}
	return mn, mx, ok
}

// statsPlain adds PLAIN-encoded fixed-width values to the statistics.
func (c *fastColumn) statsPlain(b []byte) {
	switch c.kind {
	case kindInt32:
		if mn, mx, ok := minMaxInt(castSlice[int32](b)); ok {
			c.stats.addInts(int64(mn), int64(mx))
		}
	case kindInt64:
		if mn, mx, ok := minMaxInt(castSlice[int64](b)); ok {
			c.stats.addInts(mn, mx)
		}
	case kindFloat32:
		if mn, mx, ok := minMaxFloat(castSlice[float32](b)); ok {
			c.stats.addFloats(mn, mx)
		}
	case kindFloat64:
		if mn, mx, ok := minMaxFloat(castSlice[float64](b)); ok {
			c.stats.addFloats(mn, mx)
		}
	}
}

// foldDictStats adds the chunk dictionary's entries, all of which some value
// of the chunk references, to the statistics.
func (c *fastColumn) foldDictStats() {
	if d := c.bdict; d != nil {
		if len(d.offs) == 0 {
			return
		}
		mn := d.value(0)
		mx := mn
		for id := 1; id < len(d.offs); id++ {
			b := d.value(uint32(id))
			if bytes.Compare(b, mn) < 0 {
				mn = b
			} else if bytes.Compare(b, mx) > 0 {
				mx = b
			}
		}
		c.stats.addBytes(mn, mx, c.opt.statLimit)
		return
	}
	vals := c.fdict.vals
	if c.width == 4 {
		b := make([]byte, 0, 4*len(vals))
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		c.statsPlain(b)
		return
	}
	c.statsPlain(asBytes(vals))
}

// statistics encodes the chunk's statistics. The deprecated min and max,
// defined by signed comparison, are set where that is the type's order.
func (c *fastColumn) statistics() format.Statistics {
	st := format.Statistics{NullCount: c.nullCount}
	s := &c.stats
	if !s.has {
		return st
	}
	var mn, mx []byte
	switch c.kind {
	case kindBytes:
		// bounded: no deprecated min and max (signed order is not the
		// order of byte strings) and no exactness flags (the thrift model
		// has none), as readers expect of a truncated bound
		text := c.dense.ID() == arrow.STRING
		// a max that cannot be bounded leaves the min out too
		if lo, hi, ok := boundMinMax(s.minB, s.maxB, c.opt.statLimit, text); ok {
			st.MinValue = append(make([]byte, 0, len(lo)), lo...)
			st.MaxValue = append(make([]byte, 0, len(hi)), hi...)
		}
		return st
	case kindInt32:
		mn = binary.LittleEndian.AppendUint32(nil, uint32(int32(s.minI)))
		mx = binary.LittleEndian.AppendUint32(nil, uint32(int32(s.maxI)))
	case kindInt64:
		mn = binary.LittleEndian.AppendUint64(nil, uint64(s.minI))
		mx = binary.LittleEndian.AppendUint64(nil, uint64(s.maxI))
	case kindFloat32, kindFloat64:
		lo, hi := s.minF, s.maxF
		if lo == 0 { // the spec: a zero min is written -0.0, a zero max +0.0
			lo = math.Copysign(0, -1)
		}
		if hi == 0 {
			hi = 0
		}
		if c.kind == kindFloat32 {
			mn = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(lo)))
			mx = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(hi)))
		} else {
			mn = binary.LittleEndian.AppendUint64(nil, math.Float64bits(lo))
			mx = binary.LittleEndian.AppendUint64(nil, math.Float64bits(hi))
		}
	case kindBool:
		mn, mx = []byte{0}, []byte{0}
		if !s.sawFalse {
			mn[0] = 1
		}
		if s.sawTrue {
			mx[0] = 1
		}
	}
	st.MinValue, st.MaxValue = mn, mx
	st.Min, st.Max = mn, mx
	return st
}

// seal ends the chunk: it cuts the last data page and encodes the
// dictionary page, without writing anything, so that the columns of a row
// group can be sealed at once.
func (c *fastColumn) seal() {
	c.cutPage()
	hasDict := c.dataPages[pagesDict] > 0
	c.dictPage = c.dictPage[:0]
	c.dictSize = 0
	if hasDict {
		var raw []byte
		var num int
		if d := c.bdict; d != nil {
			raw, num = d.plain, len(d.offs)
		} else {
			raw = getPageBuf()
			for _, v := range c.fdict.vals {
				if c.width == 4 {
					raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
				} else {
					raw = binary.LittleEndian.AppendUint64(raw, v)
				}
			}
			num = len(c.fdict.vals)
			defer putPageBuf(raw)
		}
		c.foldDictStats()
		c.dictPage, c.dictSize = c.appendPage(c.dictPage, true, raw, num, format.Plain)
	}
}

// flush writes the sealed chunk (dictionary page first) at p's position and
// returns its metadata; the column is then ready for the next row group.
func (c *fastColumn) flush(p *FastPartWriter) (format.ColumnChunk, error) {
	hasDict, dictSize := c.dataPages[pagesDict] > 0, c.dictSize
	start := p.pos
	if err := p.write(c.dictPage); err != nil {
		return format.ColumnChunk{}, err
	}
	dataOff := p.pos
	if err := p.write(c.chunk); err != nil {
		return format.ColumnChunk{}, err
	}
	md := format.ColumnMetaData{
		Type:                  c.phys,
		Encoding:              []format.Encoding{format.Plain, format.RLE},
		PathInSchema:          []string{c.name},
		Codec:                 c.opt.codec,
		NumValues:             c.numValues,
		TotalUncompressedSize: int64(dictSize) + c.uncompressed,
		TotalCompressedSize:   int64(len(c.dictPage) + len(c.chunk)),
		DataPageOffset:        dataOff,
		Statistics:            c.statistics(),
	}
	if hasDict {
		md.Encoding = []format.Encoding{format.RLEDictionary, format.Plain, format.RLE}
		md.DictionaryPageOffset = start
		md.EncodingStats = append(md.EncodingStats, format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1},
			format.PageEncodingStats{PageType: format.DataPage, Encoding: format.RLEDictionary, Count: c.dataPages[pagesDict]})
	}
	if n := c.dataPages[pagesPlain]; n > 0 {
		md.EncodingStats = append(md.EncodingStats, format.PageEncodingStats{PageType: format.DataPage, Encoding: format.Plain, Count: n})
	}
	c.resetChunk()
	return format.ColumnChunk{FileOffset: start, MetaData: md}, nil
}

func (c *fastColumn) resetChunk() {
	c.chunk = c.chunk[:0]
	if cap(c.chunk) > maxRowGroupBytes { // a chunk of huge values: not kept for reuse
		c.chunk = nil
	}
	c.dataPages = [2]int32{}
	c.coding = [2]pageCoding{}
	c.uncompressed, c.numValues, c.nullCount, c.pageNullBase = 0, 0, 0, 0
	c.stats = fastStats{minB: c.stats.minB[:0], maxB: c.stats.maxB[:0]}
	c.resetDict()
	c.dictMode = c.useDict
	for i := range c.remap {
		c.remap[i] = -1
	}
}

// release drops the input dictionary the column holds on to and gives its
// buffers back to the pool.
func (c *fastColumn) release() {
	if c.inDict != nil {
		c.inDict.Release()
		c.inDict = nil
	}
	if c.colBufs != nil {
		putColBufs(c.poolKey(), c.colBufs)
		c.colBufs, c.bdict, c.fdict = nil, nil, nil
	}
}
