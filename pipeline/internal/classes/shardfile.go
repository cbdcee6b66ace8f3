package classes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/deidproject/deid/pipeline/storage"
)

// classesFormat opens a counts file: version 1 of the encoding below.
const classesFormat = "deid-classes/v1\n"

// Group is the counts of one (destination, dataset) as encoded: a
// run's tally, or (when tally is nil) counts.
type Group struct {
	Dst, Dataset string
	Counts       map[Key]uint32
	Tally        *Tally
}

// len returns the number of classes of g.
func (g Group) len() (int64, error) {
	if g.Tally != nil {
		return g.Tally.Len()
	}
	return int64(len(g.Counts)), nil
}

// each calls fn for each class of g in ascending key order.
func (g Group) each(fn func(k Key, n uint32) error) error {
	if g.Tally != nil {
		return g.Tally.Each(fn)
	}
	for _, k := range slices.SortedFunc(maps.Keys(g.Counts), CompareKeys) {
		if err := fn(k, g.Counts[k]); err != nil {
			return err
		}
	}
	return nil
}

// Encode writes the counts of groups as: the format line; per group,
// in order of (destination, dataset): the destination and dataset names
// (uvarint length, bytes), the number of classes (uvarint), then each class
// in ascending key order as its 16-byte key (high, low; big endian) and its
// count (uvarint); a group with an empty destination name ends the list;
// then the CRC-32C (Castagnoli) of everything before it, big endian. About
// 17 to 20 bytes per class.
func Encode(w io.Writer, groups []Group) error {
	slices.SortFunc(groups, func(a, b Group) int {
		if c := strings.Compare(a.Dst, b.Dst); c != 0 {
			return c
		}
		return strings.Compare(a.Dataset, b.Dataset)
	})
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	var buf []byte
	buf = append(buf, classesFormat...)
	for _, g := range groups {
		if g.Dst == "" {
			return errors.New("encode class counts: empty destination name")
		}
		n, err := g.len()
		if err != nil {
			return err
		}
		buf = appendString(buf, g.Dst)
		buf = appendString(buf, g.Dataset)
		buf = binary.AppendUvarint(buf, uint64(n))
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		err = g.each(func(k Key, c uint32) error {
			buf = binary.BigEndian.AppendUint64(buf[:0], k.Hi)
			buf = binary.BigEndian.AppendUint64(buf, k.Lo)
			buf = binary.AppendUvarint(buf, uint64(c))
			_, err := bw.Write(buf)
			return err
		})
		if err != nil {
			return err
		}
		buf = buf[:0]
	}
	buf = appendString(buf, "")
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func CompareKeys(a, b Key) int {
	if a.Hi != b.Hi {
		if a.Hi < b.Hi {
			return -1
		}
		return 1
	}
	if a.Lo != b.Lo {
		if a.Lo < b.Lo {
			return -1
		}
		return 1
	}
	return 0
}

// ErrCorrupt is wrapped by the errors of Decode.
var ErrCorrupt = errors.New("corrupt class counts")

// Decode reads a counts file of size bytes and calls fn for each
// class, in the file's order. fn may be called before a corruption later in
// the file is found: callers discard what they merged when it fails. It
// refuses a wrong format line, a bad checksum, keys out of order, zero
// counts, truncation and trailing bytes.
func Decode(r io.Reader, size int64, fn func(dst, dataset string, k Key, n uint32)) error {
	if size < int64(len(classesFormat))+4 {
		return fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, size)
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	br := bufio.NewReader(io.TeeReader(io.LimitReader(r, size-4), crc))
	head := make([]byte, len(classesFormat))
	if _, err := io.ReadFull(br, head); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(head, []byte(classesFormat)) {
		return fmt.Errorf("%w: not a deid class counts file (format %q, want %q)", ErrCorrupt, head, classesFormat)
	}
	readString := func() (string, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return "", err
		}
		if n > 1<<16 {
			return "", fmt.Errorf("a name of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(br, b)
		return string(b), err
	}
	var prevGroup string
	for {
		dst, err := readString()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, unexpected(err))
		}
		if dst == "" {
			break
		}
		dataset, err := readString()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, unexpected(err))
		}
		group := dst + "\x00" + dataset
		if prevGroup != "" && group <= prevGroup {
			return fmt.Errorf("%w: destination %s, dataset %s out of order", ErrCorrupt, dst, dataset)
		}
		prevGroup = group
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCorrupt, unexpected(err))
		}
		var prev Key
		var kb [16]byte
		for i := uint64(0); i < n; i++ {
			if _, err := io.ReadFull(br, kb[:]); err != nil {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d: %w", ErrCorrupt, dst, dataset, i, n, unexpected(err))
			}
			k := Key{Hi: binary.BigEndian.Uint64(kb[:8]), Lo: binary.BigEndian.Uint64(kb[8:])}
			c, err := binary.ReadUvarint(br)
			if err != nil {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d: %w", ErrCorrupt, dst, dataset, i, n, unexpected(err))
			}
			if c == 0 || c > 1<<32-1 {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d has count %d", ErrCorrupt, dst, dataset, i, n, c)
			}
			if i > 0 && CompareKeys(prev, k) >= 0 {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d out of order", ErrCorrupt, dst, dataset, i, n)
			}
			prev = k
			fn(dst, dataset, k, uint32(c))
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: trailing bytes after the last class", ErrCorrupt)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return fmt.Errorf("%w: checksum: %w", ErrCorrupt, unexpected(err))
	}
	if got, want := crc.Sum32(), binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, the content gives %08x", ErrCorrupt, want, got)
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ShardFile names another shard's counts file.
type ShardFile struct {
	Index, Count int
	Loc          string
}

// Cursor reads a counts file class by class, in the file's order of
// (destination + "\x00" + dataset, key).
type Cursor struct {
	f    ShardFile
	src  storage.Reader
	next func() (classRecord, bool)
	stop func()
	err  error
	cur  classRecord
	ok   bool
}

// classRecord is one class of a counts file.
type classRecord struct {
	group string
	key   Key
	n     uint32
}

func OpenCursor(ctx context.Context, s storage.Store, f ShardFile) (*Cursor, error) {
	src, err := s.Open(ctx, f.Loc)
	if err != nil {
		return nil, fmt.Errorf("shard %d of %d: %s: %w", f.Index, f.Count, f.Loc, err)
	}
	c := &Cursor{f: f, src: src}
	c.next, c.stop = iter.Pull(func(yield func(classRecord) bool) {
		stopped := false
		c.err = Decode(io.NewSectionReader(src, 0, src.Size()), src.Size(), func(dst, dataset string, k Key, n uint32) {
			if !stopped {
				stopped = !yield(classRecord{dst + "\x00" + dataset, k, n})
			}
		})
	})
	c.cur, c.ok = c.next()
	return c, nil
}

// CountOf returns the rows the file counts for class k of group, skipping
// the classes before it; the calls must come in ascending (group, k) order.
func (c *Cursor) CountOf(group string, k Key) (uint32, error) {
	for c.ok {
		cmp := strings.Compare(c.cur.group, group)
		if cmp == 0 {
			cmp = CompareKeys(c.cur.key, k)
		}
		if cmp > 0 {
			break
		}
		n := c.cur.n
		c.cur, c.ok = c.next()
		if cmp == 0 {
			return n, nil
		}
	}
	return 0, c.failed()
}

// Drain reads the rest of the file, to check its checksum.
func (c *Cursor) Drain() error {
	for c.ok {
		c.cur, c.ok = c.next()
	}
	return c.failed()
}

// failed returns the error that ended the file, naming it.
func (c *Cursor) failed() error {
	if c.ok || c.err == nil {
		return nil
	}
	return fmt.Errorf("shard %d of %d: %s: %w: rerun the shard that wrote it, then this one", c.f.Index, c.f.Count, c.f.Loc, c.err)
}

func (c *Cursor) Close() {
	c.stop()
	c.src.Close()
}

func SatAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<32 - 1
}
