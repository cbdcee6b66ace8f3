package parquetio

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"sync"
)

// ErrChecksum is matched by errors about a page whose stored CRC does not
// match its bytes: the file is corrupt.
var ErrChecksum = errors.New("page checksum mismatch")

// maxPageHeader bounds how many bytes a page header may take.
const maxPageHeader = 16 << 20

// checkingReaderAt verifies the CRC32 of every page that carries one, on the
// bytes the Parquet reader itself reads, so verification costs no extra I/O.
// It knows the column chunks' byte ranges from the footer and feeds each
// chunk's bytes, in order, through a small state machine that walks page
// headers and bodies. A read that does not continue a chunk where the last
// one ended is passed through unverified; Finish then re-reads whatever part
// of a chunk was not verified, so every chunk that was read is checked.
type checkingReaderAt struct {
	r      io.ReaderAt
	chunks []*chunkCheck // sorted by start
}

// chunkCheck is the verification state of one column chunk.
type chunkCheck struct {
	mu         sync.Mutex
	start, end int64 // byte range of the chunk
	next       int64 // first byte not yet fed
	touched    bool  // the reader read from the chunk
	head       []byte
	remaining  int64 // body bytes left in the current page
	crc        uint32
	page       pageHeader
	pages      int
	err        error
	column     string
	rowGroup   int
}

// chunkRange is a column chunk's byte range, with names for messages.
type chunkRange struct {
	start, length int64
	rowGroup      int
	column        string
}

func newCheckingReaderAt(r io.ReaderAt, ranges []chunkRange) *checkingReaderAt {
	c := &checkingReaderAt{r: r}
	for _, rg := range ranges {
		if rg.length <= 0 {
			continue
		}
		c.chunks = append(c.chunks, &chunkCheck{start: rg.start, end: rg.start + rg.length, next: rg.start,
			column: rg.column, rowGroup: rg.rowGroup})
	}
	sort.Slice(c.chunks, func(i, j int) bool { return c.chunks[i].start < c.chunks[j].start })
	return c
}

// ReadAt reads from the underlying reader and feeds what it read to the
// chunks it belongs to. A checksum mismatch fails the read and returns no
// bytes, so the page it completes is never decoded, even by a buffered reader
// that keeps the bytes of a read that also returned an error.
func (c *checkingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if n <= 0 {
		return n, err
	}
	end := off + int64(n)
	i := sort.Search(len(c.chunks), func(i int) bool { return c.chunks[i].end > off })
	for ; i < len(c.chunks) && c.chunks[i].start < end; i++ {
		ck := c.chunks[i]
		lo, hi := max(off, ck.start), min(end, ck.end)
		if ferr := ck.feedAt(p[lo-off:hi-off], lo); ferr != nil {
			// no bytes: a buffered caller must not decode the bad page
			return 0, ferr
		}
	}
	return n, err
}

// feedAt feeds b, which starts at offset off of the file, when it continues
// the chunk's verified prefix.
func (ck *chunkCheck) feedAt(b []byte, off int64) error {
	ck.mu.Lock()
	defer ck.mu.Unlock()
	ck.touched = true
	if ck.err != nil {
		return ck.err
	}
	if off > ck.next || off+int64(len(b)) <= ck.next {
		return nil // a gap, or bytes already verified
	}
	b = b[ck.next-off:]
	ck.next += int64(len(b))
	ck.err = ck.feed(b)
	return ck.err
}

// feed advances the page state machine over b.
func (ck *chunkCheck) feed(b []byte) error {
	for len(b) > 0 {
		if ck.remaining > 0 {
			k := min(int64(len(b)), ck.remaining)
			ck.crc = crc32.Update(ck.crc, crc32.IEEETable, b[:k])
			ck.remaining -= k
			b = b[k:]
			if ck.remaining == 0 {
				if err := ck.endPage(); err != nil {
					return err
				}
			}
			continue
		}
		// a page header, possibly split across reads
		var buf []byte
		if len(ck.head) == 0 {
			buf = b
		} else {
			ck.head = append(ck.head, b...)
			buf = ck.head
		}
		h, n, err := parsePageHeader(buf)
		if errors.Is(err, errShortHeader) {
			if len(ck.head) == 0 {
				ck.head = append(ck.head, b...)
			}
			if len(ck.head) > maxPageHeader {
				return ck.errorf("page header larger than %d bytes", maxPageHeader)
			}
			return nil
		}
		if err != nil {
			// a malformed header is the decoder's to report, with more context;
			// stop verifying this chunk rather than guess
			ck.err = nil
			ck.next = ck.end
			return nil
		}
		rest := buf[n:]
		if len(ck.head) > 0 {
			rest = append([]byte(nil), rest...)
			ck.head = ck.head[:0]
		}
		ck.page, ck.crc, ck.remaining = h, 0, int64(h.compressedSize)
		ck.pages++
		if ck.remaining == 0 {
			if err := ck.endPage(); err != nil {
				return err
			}
		}
		b = rest
	}
	return nil
}

func (ck *chunkCheck) endPage() error {
	if ck.page.hasCRC && ck.crc != ck.page.crc {
		return ck.errorf("%w in page %d (stored CRC %08x, computed %08x)", ErrChecksum, ck.pages, ck.page.crc, ck.crc)
	}
	return nil
}

func (ck *chunkCheck) errorf(format string, args ...any) error {
	return fmt.Errorf("row group %d, column %q: "+format, append([]any{ck.rowGroup, ck.column}, args...)...)
}

// Finish verifies, by reading them again, the parts of row group rg's
// chunks that the reader touched but did not read in order. It returns the
// first problem found.
func (c *checkingReaderAt) Finish(rg int) error {
	for _, ck := range c.chunks {
		if ck.rowGroup != rg {
			continue
		}
		ck.mu.Lock()
		touched, next, end, err := ck.touched, ck.next, ck.end, ck.err
		ck.mu.Unlock()
		if err != nil {
			return err
		}
		if !touched || next >= end {
			continue
		}
		buf := make([]byte, min(end-next, 1<<20))
		for off := next; off < end; {
			m := min(int64(len(buf)), end-off)
			if _, err := c.r.ReadAt(buf[:m], off); err != nil && !errors.Is(err, io.EOF) {
				return ck.errorf("re-reading for checksum verification: %w", err)
			}
			if err := ck.feedAt(buf[:m], off); err != nil {
				return err
			}
			off += m
		}
	}
	return nil
}
