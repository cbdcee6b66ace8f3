package parquetio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// magic opens and closes every Parquet file.
var magic = []byte("PAR1")

// Part is an encoded Parquet part: the output of a PartWriter.
type Part interface {
	io.ReaderAt
	Size() int64
}

// readFooter returns a part's decoded footer and the end of its data region.
func readFooter(p Part) (*format.FileMetaData, int64, error) {
	size := p.Size()
	if size < 12 {
		return nil, 0, fmt.Errorf("part of %d bytes is not Parquet", size)
	}
	var tail [8]byte
	if _, err := p.ReadAt(tail[:], size-8); err != nil {
		return nil, 0, err
	}
	if !bytes.Equal(tail[4:], magic) {
		return nil, 0, errors.New("part does not end in PAR1")
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n <= 0 || n > size-12 {
		return nil, 0, fmt.Errorf("part footer length %d out of range", n)
	}
	buf := make([]byte, n)
	if _, err := p.ReadAt(buf, size-8-n); err != nil {
		return nil, 0, err
	}
	md := new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), buf, md); err != nil {
		return nil, 0, fmt.Errorf("part footer: %w", err)
	}
	return md, size - 8 - n, nil
}

// Splice writes the parts to w as one Parquet file: their row groups in
// order, with every file offset in the footer moved to where the row group
// now lies. Column data is copied byte for byte. All parts must have the
// same schema; parts without row groups contribute nothing. It returns the
// total rows written.
func Splice(w io.Writer, parts []Part) (int64, error) {
	if len(parts) == 0 {
		return 0, errors.New("splice: no parts")
	}
	s := NewSplicer(w)
	for _, p := range parts {
		if err := s.Add(p); err != nil {
			return 0, err
		}
	}
	return s.Close()
}

// Splicer is Splice one part at a time: a caller whose parts finish one by
// one writes each as soon as those before it are written, so that only the
// footer is left when the last one is done.
type Splicer struct {
	w      io.Writer
	merged *format.FileMetaData
	offset int64 // bytes written
	parts  int
}

// NewSplicer starts a file on w.
func NewSplicer(w io.Writer) *Splicer { return &Splicer{w: w} }

// Add appends the row groups of part p after those of the parts added
// before it.
func (s *Splicer) Add(p Part) error {
	i := s.parts
	md, end, err := s.footer(p)
	if err != nil {
		return err
	}
	if err := s.writeMagic(); err != nil {
		return err
	}
	if len(md.RowGroups) == 0 {
		return nil
	}
	start := s.offset
	if _, err := io.Copy(s.w, io.NewSectionReader(p, int64(len(magic)), end-int64(len(magic)))); err != nil {
		return fmt.Errorf("splice part %d: %w", i, err)
	}
	s.offset += end - int64(len(magic))
	s.merge(md, start-int64(len(magic)))
	return nil
}

// StreamStart begins a part that its writer streams into the file (through
// Write) while it is being encoded, instead of handing it over whole: the
// part's bytes after its magic go to the file as they come, and
// AddStreamed then adds its row groups. It returns the file offset where
// those bytes start. No other part may be added until AddStreamed.
func (s *Splicer) StreamStart() (int64, error) {
	if err := s.writeMagic(); err != nil {
		return 0, err
	}
	return s.offset, nil
}

// Write writes the bytes of a streamed part (see StreamStart).
func (s *Splicer) Write(b []byte) (int, error) {
	n, err := s.w.Write(b)
	s.offset += int64(n)
	return n, err
}

// AddStreamed adds the row groups of part p, whose bytes after its magic
// were written from file offset start on (see StreamStart); p must still
// give its footer through ReadAt.
func (s *Splicer) AddStreamed(p Part, start int64) error {
	i := s.parts
	md, end, err := s.footer(p)
	if err != nil {
		return err
	}
	if start < int64(len(magic)) || start+end-int64(len(magic)) != s.offset {
		return fmt.Errorf("splice part %d: %d bytes streamed from offset %d, but the file is at %d", i, end-int64(len(magic)), start, s.offset)
	}
	s.merge(md, start-int64(len(magic)))
	return nil
}

// footer reads and checks the footer of the next part, whose row groups
// are all added: they must carry no page index or bloom filter
// (checkSpliceable).
func (s *Splicer) footer(p Part) (*format.FileMetaData, int64, error) {
	i := s.parts
	md, end, err := s.readNext(p)
	if err != nil {
		return nil, 0, err
	}
	for _, rg := range md.RowGroups {
		if err := checkSpliceable(&rg); err != nil {
			return nil, 0, fmt.Errorf("splice part %d: %w", i, err)
		}
	}
	if len(s.merged.RowGroups)+len(md.RowGroups) > math.MaxInt16+1 {
		return nil, 0, errors.New("splice: more than 32768 row groups")
	}
	return md, end, nil
}

// readNext reads the footer of the next part; the first one's becomes the
// file's (schema, key-value metadata such as the Arrow schema, writer),
// and every later one must have its Parquet schema (ErrSchemaMismatch).
func (s *Splicer) readNext(p Part) (*format.FileMetaData, int64, error) {
	i := s.parts
	s.parts++
	md, end, err := readFooter(p)
	if err != nil {
		return nil, 0, fmt.Errorf("splice part %d: %w", i, err)
	}
	if s.merged == nil {
		m := *md // the first part's footer, without its row groups
		m.RowGroups, m.NumRows = nil, 0
		s.merged = &m
	} else if !reflect.DeepEqual(s.merged.Schema, md.Schema) {
		return nil, 0, fmt.Errorf("splice part %d: %w", i, ErrSchemaMismatch)
	}
	return md, end, nil
}

// AddRowGroups appends row groups rowGroups of p (a part, or any Parquet
// file), in that order, each copied byte for byte. Their page indexes and
// bloom filters, which lie outside the row groups' bytes, are left out of
// the footer (both are optional in Parquet). With no row groups, p only
// gives the file its footer, when it is the first.
func (s *Splicer) AddRowGroups(p Part, rowGroups []int) error {
	i := s.parts
	md, _, err := s.readNext(p)
	if err != nil {
		return err
	}
	if err := s.writeMagic(); err != nil {
		return err
	}
	for _, k := range rowGroups {
		if k < 0 || k >= len(md.RowGroups) {
			return fmt.Errorf("splice part %d: no row group %d", i, k)
		}
		rg := md.RowGroups[k]
		rg.Columns = append([]format.ColumnChunk(nil), rg.Columns...)
		start, end, err := rowGroupRange(&rg, p.Size())
		if err != nil {
			return fmt.Errorf("splice part %d row group %d: %w", i, k, err)
		}
		if _, err := io.Copy(s.w, io.NewSectionReader(p, start, end-start)); err != nil {
			return fmt.Errorf("splice part %d row group %d: %w", i, k, err)
		}
		for j := range rg.Columns {
			c := &rg.Columns[j]
			c.OffsetIndexOffset, c.OffsetIndexLength, c.ColumnIndexOffset, c.ColumnIndexLength = 0, 0, 0, 0
			c.MetaData.BloomFilterOffset, c.MetaData.BloomFilterLength = 0, 0
		}
		shiftRowGroup(&rg, s.offset-start)
		rg.FileOffset = s.offset
		if len(s.merged.RowGroups) > math.MaxInt16 {
			return errors.New("splice: more than 32768 row groups")
		}
		rg.Ordinal = int16(len(s.merged.RowGroups))
		s.merged.RowGroups = append(s.merged.RowGroups, rg)
		s.merged.NumRows += rg.NumRows
		s.offset += end - start
	}
	return nil
}

// writeMagic opens the file, once.
func (s *Splicer) writeMagic() error {
	if s.offset > 0 {
		return nil
	}
	if _, err := s.w.Write(magic); err != nil {
		return err
	}
	s.offset = int64(len(magic))
	return nil
}

// merge adds md's row groups, their offsets moved by delta.
func (s *Splicer) merge(md *format.FileMetaData, delta int64) {
	for _, rg := range md.RowGroups {
		shiftRowGroup(&rg, delta)
		rg.Ordinal = int16(len(s.merged.RowGroups))
		s.merged.RowGroups = append(s.merged.RowGroups, rg)
		s.merged.NumRows += rg.NumRows
	}
}

// Close writes the footer and returns the rows of the file. At least one
// part must have been added.
func (s *Splicer) Close() (int64, error) {
	if s.merged == nil {
		return 0, errors.New("splice: no parts")
	}
	if err := writeFooter(s.w, s.merged); err != nil {
		return 0, fmt.Errorf("splice: %w", err)
	}
	return s.merged.NumRows, nil
}

// writeFooter ends a Parquet file: the encoded footer, its length and the
// closing magic. A chunk's min without its max (or max without min) is
// dropped first (pairStatistics).
func writeFooter(w io.Writer, md *format.FileMetaData) error {
	pairStatistics(md)
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), md)
	if err != nil {
		return fmt.Errorf("encode footer: %w", err)
	}
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], uint32(len(footer)))
	for _, b := range [][]byte{footer, tail[:], magic} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// shiftRowGroup moves every absolute file offset of rg by delta. Offsets of
// zero mean "absent" and stay zero.
func shiftRowGroup(rg *format.RowGroup, delta int64) {
	shift := func(off *int64) {
		if *off > 0 {
			*off += delta
		}
	}
	shift(&rg.FileOffset)
	for i := range rg.Columns {
		c := &rg.Columns[i]
		shift(&c.FileOffset)
		shift(&c.MetaData.DataPageOffset)
		shift(&c.MetaData.IndexPageOffset)
		shift(&c.MetaData.DictionaryPageOffset)
	}
}

// checkSpliceable refuses row groups with page indexes or bloom filters:
// those live outside the row group's bytes, which is all Splice copies.
// PartWriter writes neither.
func checkSpliceable(rg *format.RowGroup) error {
	for i := range rg.Columns {
		c := &rg.Columns[i]
		if c.OffsetIndexOffset != 0 || c.ColumnIndexOffset != 0 || c.MetaData.BloomFilterOffset != 0 {
			return errors.New("part has page indexes or bloom filters, which splicing does not carry")
		}
	}
	return nil
}
