package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// This file holds the lean reader's page level: a column chunk's pages read
// through a window of the file with their CRCs checked, decompressed, and
// loaded (dictionary pages into the chunk's dictionary, data pages into
// levels and value sections ready to decode).

// chunkStream reads a column chunk's pages through a window of the file.
type chunkStream struct {
	r         io.ReaderAt
	base, end int64  // file offset of buf[0]; end of the chunk
	buf       []byte // buf[lo:hi] is read and not yet consumed
	lo, hi    int
}

// fill makes at least n bytes available, or every byte left in the chunk.
func (s *chunkStream) fill(n int) error {
	if s.hi-s.lo >= n {
		return nil
	}
	left := s.end - (s.base + int64(s.hi))
	if left <= 0 {
		return nil
	}
	want := int(min(int64(max(n, leanReadSize)), int64(s.hi-s.lo)+left))
	if len(s.buf) > 2*leanReadSize && want <= leanReadSize {
		// a large page (a dictionary's) is consumed: the rest of the chunk
		// does not need its window, and the run's heap is better off
		// without it
		nb := make([]byte, leanReadSize)
		s.hi = copy(nb, s.buf[s.lo:s.hi])
		s.buf = nb
	} else {
		copy(s.buf, s.buf[s.lo:s.hi])
		s.hi -= s.lo
	}
	s.base += int64(s.lo)
	s.lo = 0
	if want > len(s.buf) {
		nb := make([]byte, want)
		copy(nb, s.buf[:s.hi])
		s.buf = nb
	}
	m, err := s.r.ReadAt(s.buf[s.hi:want], s.base+int64(s.hi))
	s.hi += m
	if m < want-(s.hi-m) && err != nil {
		return fmt.Errorf("reading the column chunk at %d: %w", s.base+int64(s.hi), err)
	}
	return nil
}

// nextPage returns the next page's header and stored body, whose CRC it
// has verified, or io.EOF at the end of the chunk. The body is valid until
// the next call.
func (s *chunkStream) nextPage() (pageHeader, []byte, error) {
	if err := s.fill(256); err != nil {
		return pageHeader{}, nil, err
	}
	if s.lo == s.hi {
		return pageHeader{}, nil, io.EOF
	}
	for {
		h, n, err := parsePageHeader(s.buf[s.lo:s.hi])
		if errors.Is(err, errShortHeader) {
			avail := s.hi - s.lo
			if avail >= maxPageHeader || s.base+int64(s.hi) >= s.end {
				return h, nil, fmt.Errorf("deserializing page header failed: it runs past the end of the column chunk")
			}
			if err := s.fill(min(2*avail+256, maxPageHeader)); err != nil {
				return h, nil, err
			}
			continue
		}
		if err != nil {
			return h, nil, fmt.Errorf("deserializing page header failed: %w", err)
		}
		s.lo += n
		size := int(h.compressedSize)
		if int64(size) > s.end-(s.base+int64(s.lo)) {
			return h, nil, fmt.Errorf("a page of %d bytes runs past the end of the column chunk", size)
		}
		if err := s.fill(size); err != nil {
			return h, nil, err
		}
		body := s.buf[s.lo : s.lo+size]
		s.lo += size
		if h.hasCRC {
			if got := crc32.ChecksumIEEE(body); got != h.crc {
				return h, nil, fmt.Errorf("%w (stored CRC %08x, computed %08x)", ErrChecksum, h.crc, got)
			}
		}
		return h, body, nil
	}
}

var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxLeanPageBytes))
})

// decompress returns src decompressed into dst (reused), which must come
// to exactly size bytes.
func decompress(codec compress.Compression, dst, src []byte, size int) ([]byte, error) {
	if size < 0 || size > maxLeanPageBytes {
		return nil, fmt.Errorf("a page declares %d bytes uncompressed", size)
	}
	switch codec {
	case compress.Codecs.Uncompressed:
		if len(src) != size {
			return nil, fmt.Errorf("an uncompressed page of %d bytes declares %d", len(src), size)
		}
		return src, nil
	case compress.Codecs.Snappy:
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy page: %w", err)
		}
		if n != size {
			return nil, fmt.Errorf("snappy page: %d bytes declared, %d found", size, n)
		}
		if cap(dst) < n {
			dst = make([]byte, n)
		}
		out, err := s2.Decode(dst[:n], src)
		if err != nil {
			return nil, fmt.Errorf("snappy page: %w", err)
		}
		return out, nil
	case compress.Codecs.Zstd:
		d, err := zstdDecoder()
		if err != nil {
			return nil, err
		}
		if cap(dst) < size {
			dst = make([]byte, 0, size)
		}
		out, err := d.DecodeAll(src, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("zstd page: %w", err)
		}
		if len(out) != size {
			return nil, fmt.Errorf("zstd page: %d bytes declared, %d found", size, len(out))
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression %v is not supported by the lean reader", codec)
}

// nextDataPage loads the next data page, reading a dictionary page first
// when one comes.
func (c *leanColumn) nextDataPage() error {
	for {
		h, body, err := c.s.nextPage()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the column chunk ends after %d pages with %d rows still due", c.pages, c.rowsDue)
		}
		if err != nil {
			return fmt.Errorf("page %d: %w", c.pages+1, err)
		}
		c.pages++
		switch h.pageType {
		case pageDictionary:
			if err := c.loadDictionary(h, body); err != nil {
				return fmt.Errorf("dictionary page: %w", err)
			}
			continue
		case pageData, pageDataV2:
		default:
			continue // index pages and unknown pages carry no values
		}
		if !h.hasData {
			return fmt.Errorf("page %d: a data page without its data page header", c.pages)
		}
		if h.numValues < 0 || int64(h.numValues) > c.rowsDue {
			return fmt.Errorf("page %d declares %d values with %d rows due", c.pages, h.numValues, c.rowsDue)
		}
		if h.numValues == 0 {
			continue
		}
		if err := c.loadDataPage(h, body); err != nil {
			return fmt.Errorf("page %d: %w", c.pages, err)
		}
		return nil
	}
}

func (c *leanColumn) width() int {
	if c.kind == leanFixed4 {
		return 4
	}
	return 8
}

// keptDictBuffer is the largest decompressed dictionary page whose buffer
// is kept for the chunk's data pages.
const keptDictBuffer = 1 << 20

func (c *leanColumn) loadDictionary(h pageHeader, body []byte) error {
	if c.hasDict {
		return errors.New("a second dictionary page in one column chunk")
	}
	if h.dictEncoding != encPlain && h.dictEncoding != encPlainDict {
		return fmt.Errorf("dictionary encoding %d is not PLAIN", h.dictEncoding)
	}
	if h.dictValues < 0 {
		return fmt.Errorf("%d dictionary entries", h.dictValues)
	}
	raw, err := decompress(c.codec, c.dec, body, int(h.uncompressedSize))
	if err != nil {
		return err
	}
	n := int(h.dictValues)
	if c.kind == leanBytes {
		offs := make([]int32, n+1)
		data := make([]byte, 0, max(len(raw)-4*n, 0))
		p := 0
		for i := 0; i < n; i++ {
			if len(raw)-p < 4 {
				return fmt.Errorf("dictionary value %d: %w", i, errTruncated)
			}
			l := int(binary.LittleEndian.Uint32(raw[p:]))
			p += 4
			if l < 0 || l > len(raw)-p {
				return fmt.Errorf("dictionary value %d of %d bytes: %w", i, l, errTruncated)
			}
			data = append(data, raw[p:p+l]...)
			p += l
			offs[i+1] = int32(len(data))
		}
		c.dictOffs, c.dictData = offs, data
	} else {
		w := c.width()
		if len(raw) < n*w {
			return fmt.Errorf("%d dictionary values of %d bytes in %d bytes", n, w, len(raw))
		}
		c.dictData = append([]byte(nil), raw[:n*w]...)
	}
	if c.codec != compress.Codecs.Uncompressed && cap(raw) <= keptDictBuffer {
		// reused for the data pages; a larger buffer (a dictionary page of
		// megabytes) would be held for the chunk's life, per column and
		// worker, for pages a fraction of its size
		c.dec = raw
	}
	c.dictN, c.hasDict = n, true
	if c.dictOut {
		// the array shares the dictionary's memory: it is never changed
		// (a new page gets new slices), and a large dictionary held twice
		// per column and worker weighed on the heap limit
		d := array.NewData(c.valType, n, []*memory.Buffer{nil, memory.NewBufferBytes(asBytes(c.dictOffs[:n+1])), memory.NewBufferBytes(c.dictData)}, nil, 0, 0)
		c.dictArr = array.MakeFromData(d)
		d.Release()
	}
	return nil
}

// bytesArray builds a string or binary array over copies of offs and data.
func (c *leanColumn) bytesArray(typ arrow.DataType, n int, valid *memory.Buffer, nulls int, offs []int32, data []byte) arrow.Array {
	ob := memory.NewResizableBuffer(c.mem)
	ob.Resize(4 * (n + 1))
	copy(ob.Bytes(), asBytes(offs[:n+1]))
	db := memory.NewResizableBuffer(c.mem)
	db.Resize(len(data))
	copy(db.Bytes(), data)
	d := array.NewData(typ, n, []*memory.Buffer{valid, ob, db}, nil, nulls, 0)
	a := array.MakeFromData(d)
	d.Release()
	ob.Release()
	db.Release()
	return a
}

func (c *leanColumn) loadDataPage(h pageHeader, body []byte) error {
	n := int(h.numValues)
	var levels, values []byte
	if h.pageType == pageDataV2 {
		rl, dl := int(h.repLevelsLen), int(h.defLevelsLen)
		if rl != 0 {
			return fmt.Errorf("nonzero repetition level bytes (%d) in a flat column", rl)
		}
		if dl < 0 || dl > len(body) {
			return fmt.Errorf("definition levels of %d bytes in a %d-byte page", dl, len(body))
		}
		levels = body[:dl]
		rest := body[dl:]
		if h.uncompressed {
			values = rest
		} else {
			var err error
			if c.dec, err = decompress(c.codec, c.dec, rest, int(h.uncompressedSize)-dl); err != nil {
				return err
			}
			values = c.dec
		}
	} else {
		raw, err := decompress(c.codec, c.dec, body, int(h.uncompressedSize))
		if err != nil {
			return err
		}
		if c.codec != compress.Codecs.Uncompressed {
			c.dec = raw
		}
		values = raw
		if c.maxDef > 0 {
			if h.defEncoding != encRLE {
				return fmt.Errorf("definition levels encoded %d, not RLE", h.defEncoding)
			}
			if len(raw) < 4 {
				return fmt.Errorf("definition levels: %w", errTruncated)
			}
			l := int(binary.LittleEndian.Uint32(raw))
			if l < 0 || l > len(raw)-4 {
				return fmt.Errorf("definition levels of %d bytes: %w", l, errTruncated)
			}
			levels, values = raw[4:4+l], raw[4+l:]
		}
	}
	nonNull := n
	if c.maxDef > 0 {
		if nb := (n + 7) / 8; cap(c.valid) < nb {
			c.valid = make([]byte, nb)
		} else {
			c.valid = c.valid[:nb]
		}
		var err error
		if nonNull, err = decodeDefLevels(c.valid, levels, n); err != nil {
			return err
		}
	}
	c.enc, c.vals, c.vpos, c.ipos = h.encoding, values, 0, 0
	switch h.encoding {
	case encPlain:
		if c.kind != leanBytes && len(values) < nonNull*c.width() {
			return fmt.Errorf("%d values of %d bytes in %d bytes", nonNull, c.width(), len(values))
		}
	case encPlainDict, encRLEDict:
		if !c.hasDict {
			return errors.New("dictionary-encoded values without a dictionary page")
		}
		if len(values) < 1 && nonNull > 0 {
			return fmt.Errorf("dictionary indices: %w", errTruncated)
		}
		if cap(c.idx) < nonNull {
			c.idx = make([]int32, nonNull)
		}
		c.idx = c.idx[:nonNull]
		if nonNull > 0 {
			if err := hybridInt32(c.idx, values[1:], int(values[0]), nonNull); err != nil {
				return fmt.Errorf("dictionary indices: %w", err)
			}
			for _, x := range c.idx {
				if uint32(x) >= uint32(c.dictN) {
					return fmt.Errorf("dictionary index %d out of range for %d entries", x, c.dictN)
				}
			}
		}
	case encDeltaBinary, encDeltaLength:
		if (h.encoding == encDeltaBinary) == (c.kind == leanBytes) {
			return fmt.Errorf("encoding %d does not apply to this column", h.encoding)
		}
		if cap(c.ints) < nonNull {
			c.ints = make([]int64, nonNull)
		}
		c.ints = c.ints[:nonNull]
		p, err := decodeDelta(c.ints, values, nonNull)
		if err != nil {
			return err
		}
		if h.encoding == encDeltaLength {
			var sum int64
			for _, l := range c.ints {
				if l < 0 || l > math.MaxInt32 {
					return fmt.Errorf("a value length of %d", l)
				}
				sum += l
			}
			if sum > int64(len(values)-p) {
				return fmt.Errorf("values of %d bytes in %d: %w", sum, len(values)-p, errTruncated)
			}
			c.vpos = p
		}
	default:
		return fmt.Errorf("encoding %d is not supported by the lean reader", h.encoding)
	}
	c.left, c.slot = n, 0
	return nil
}
