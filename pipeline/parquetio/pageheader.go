package parquetio

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file parses just enough of a Parquet page header (Thrift compact
// protocol) to verify page checksums and decode the page: its type, sizes,
// CRC, value count and encodings. Every other field (statistics among them)
// is skipped generically, so headers from any writer work.

// pageHeader is the part of a Parquet PageHeader that checksum
// verification and the lean reader need.
type pageHeader struct {
	pageType         int32
	uncompressedSize int32
	compressedSize   int32
	crc              uint32
	hasCRC           bool
	// dictValues is a dictionary page's number of entries (field 7.1).
	dictValues int32
	// dictEncoding is a dictionary page's encoding (field 7.2).
	dictEncoding int32
	// numValues, encoding, defEncoding and repEncoding come from a data
	// page header (field 5) or a v2 data page header (field 8).
	numValues   int32
	encoding    int32
	defEncoding int32
	repEncoding int32
	// v2 only: nulls, level lengths and whether the values are compressed.
	numNulls     int32
	defLevelsLen int32
	repLevelsLen int32
	uncompressed bool // is_compressed = false
	hasData      bool // a v1 or v2 data page header was present
}

// errShortHeader means the buffer ends inside the header: read more.
var errShortHeader = errors.New("page header continues past the buffer")

// maxHeaderDepth bounds struct nesting while skipping fields, so that a
// corrupt header cannot recurse without limit.
const maxHeaderDepth = 32

// compact protocol type ids
const (
	ctStop   = 0
	ctTrue   = 1
	ctFalse  = 2
	ctByte   = 3
	ctI16    = 4
	ctI32    = 5
	ctI64    = 6
	ctDouble = 7
	ctBinary = 8
	ctList   = 9
	ctSet    = 10
	ctMap    = 11
	ctStruct = 12
)

// compactReader reads Thrift compact protocol values from a byte slice.
type compactReader struct {
	b   []byte
	pos int
}

func (r *compactReader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errShortHeader
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *compactReader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b[r.pos:])
	switch {
	case n == 0:
		return 0, errShortHeader
	case n < 0:
		return 0, errors.New("malformed varint in page header")
	}
	r.pos += n
	return v, nil
}

func (r *compactReader) varint() (int64, error) {
	u, err := r.uvarint()
	return int64(u>>1) ^ -int64(u&1), err
}

func (r *compactReader) skipBytes(n uint64) error {
	if n > uint64(len(r.b)-r.pos) {
		return errShortHeader
	}
	r.pos += int(n)
	return nil
}

// skip skips one value of compact type t.
func (r *compactReader) skip(t byte, depth int) error {
	if depth > maxHeaderDepth {
		return errors.New("page header nests too deeply")
	}
	switch t {
	case ctTrue, ctFalse:
		return nil // in a field header the type carries the value
	case ctByte:
		_, err := r.byte()
		return err
	case ctI16, ctI32, ctI64:
		_, err := r.uvarint()
		return err
	case ctDouble:
		return r.skipBytes(8)
	case ctBinary:
		n, err := r.uvarint()
		if err != nil {
			return err
		}
		return r.skipBytes(n)
	case ctList, ctSet:
		h, err := r.byte()
		if err != nil {
			return err
		}
		size, et := uint64(h>>4), h&0x0f
		if size == 15 {
			if size, err = r.uvarint(); err != nil {
				return err
			}
		}
		if size > uint64(len(r.b)-r.pos) { // every element takes a byte at least
			return errShortHeader
		}
		for i := uint64(0); i < size; i++ {
			if err := r.skipElement(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case ctMap:
		size, err := r.uvarint()
		if err != nil || size == 0 {
			return err
		}
		kv, err := r.byte()
		if err != nil {
			return err
		}
		if size > uint64(len(r.b)-r.pos) {
			return errShortHeader
		}
		for i := uint64(0); i < size; i++ {
			if err := r.skipElement(kv>>4, depth+1); err != nil {
				return err
			}
			if err := r.skipElement(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case ctStruct:
		return r.skipStruct(depth + 1)
	}
	return fmt.Errorf("unknown Thrift type %d in page header", t)
}

// skipElement skips one element of a list, set or map. Unlike a field, whose
// header carries a bool's value, a bool element is a byte of its own, so
// every element consumes input: a corrupt count cannot spin without reading.
func (r *compactReader) skipElement(t byte, depth int) error {
	if t == ctTrue || t == ctFalse {
		_, err := r.byte()
		return err
	}
	return r.skip(t, depth)
}

func (r *compactReader) skipStruct(depth int) error {
	for {
		h, err := r.byte()
		if err != nil {
			return err
		}
		if h == ctStop {
			return nil
		}
		if h>>4 == 0 { // long form: the field id follows
			if _, err := r.varint(); err != nil {
				return err
			}
		}
		if err := r.skip(h&0x0f, depth); err != nil {
			return err
		}
	}
}

// parsePageHeader parses the page header at the start of b and returns it
// with its length in bytes, or errShortHeader when b ends inside it.
func parsePageHeader(b []byte) (pageHeader, int, error) {
	r := &compactReader{b: b}
	var h pageHeader
	var id int16
	var seenType, seenSize bool
	for {
		c, err := r.byte()
		if err != nil {
			return h, 0, err
		}
		if c == ctStop {
			break
		}
		t := c & 0x0f
		if delta := c >> 4; delta != 0 {
			id += int16(delta)
		} else {
			v, err := r.varint()
			if err != nil {
				return h, 0, err
			}
			id = int16(v)
		}
		if id >= 1 && id <= 4 && t == ctI32 {
			v, err := r.varint()
			if err != nil {
				return h, 0, err
			}
			switch id {
			case 1:
				h.pageType, seenType = int32(v), true
			case 2:
				h.uncompressedSize = int32(v)
			case 3:
				h.compressedSize, seenSize = int32(v), true
			case 4:
				h.crc, h.hasCRC = uint32(int32(v)), true
			}
			continue
		}
		if id == 7 && t == ctStruct {
			if err := r.dictionaryHeader(&h); err != nil {
				return h, 0, err
			}
			continue
		}
		if (id == 5 || id == 8) && t == ctStruct {
			if err := r.dataHeader(&h, id == 8); err != nil {
				return h, 0, err
			}
			continue
		}
		if err := r.skip(t, 1); err != nil {
			return h, 0, err
		}
	}
	if !seenType || !seenSize {
		return h, 0, errors.New("page header lacks its type or compressed size")
	}
	if h.compressedSize < 0 {
		return h, 0, fmt.Errorf("page header declares a negative size %d", h.compressedSize)
	}
	return h, r.pos, nil
}

// structI32 walks the fields of a struct, calling set for each i32 field
// and flag for each bool field; other fields are skipped.
func (r *compactReader) structI32(set func(id int16, v int32), flag func(id int16, v bool)) error {
	var id int16
	for {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c == ctStop {
			return nil
		}
		t := c & 0x0f
		if delta := c >> 4; delta != 0 {
			id += int16(delta)
		} else {
			v, err := r.varint()
			if err != nil {
				return err
			}
			id = int16(v)
		}
		switch {
		case t == ctI32:
			v, err := r.varint()
			if err != nil {
				return err
			}
			set(id, int32(v))
		case t == ctTrue || t == ctFalse:
			if flag != nil {
				flag(id, t == ctTrue)
			}
		default:
			if err := r.skip(t, 2); err != nil {
				return err
			}
		}
	}
}

// dictionaryHeader reads a DictionaryPageHeader struct: num_values (field
// 1) and encoding (field 2).
func (r *compactReader) dictionaryHeader(h *pageHeader) error {
	return r.structI32(func(id int16, v int32) {
		switch id {
		case 1:
			h.dictValues = v
		case 2:
			h.dictEncoding = v
		}
	}, nil)
}

// dataHeader reads a DataPageHeader (v1) or DataPageHeaderV2 struct.
func (r *compactReader) dataHeader(h *pageHeader, v2 bool) error {
	h.hasData = true
	if !v2 {
		return r.structI32(func(id int16, v int32) {
			switch id {
			case 1:
				h.numValues = v
			case 2:
				h.encoding = v
			case 3:
				h.defEncoding = v
			case 4:
				h.repEncoding = v
			}
		}, nil)
	}
	return r.structI32(func(id int16, v int32) {
		switch id {
		case 1:
			h.numValues = v
		case 2:
			h.numNulls = v
		case 4:
			h.encoding = v
		case 5:
			h.defLevelsLen = v
		case 6:
			h.repLevelsLen = v
		}
	}, func(id int16, v bool) {
		if id == 7 {
			h.uncompressed = !v
		}
	})
}
