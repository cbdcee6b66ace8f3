package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/deidproject/deid/pipeline/parquetio"
)

// A part (one row group's output for one destination, encoded) waits in
// memory until it is spliced into the output, as long as the parts in
// memory stay within the run's budget; a part that would go over it moves
// to a file in the scratch directory. Writing a part to disk and reading it
// back for the splice cost about 5% of a retention sweep in system calls.

// defaultPartMemory bounds the bytes of parts held in memory at once. A
// 1M-row row group's part mostly goes to disk at 32 MiB, as it did at 64;
// the smaller bound leaves the run's heap limit more room (see
// docs/performance.md, "Memory").
const defaultPartMemory = 32 << 20

// partChunk is the size of a part's memory chunks.
const partChunk = 1 << 20

// partBudget counts the bytes of parts held in memory.
type partBudget struct {
	limit int64
	used  atomic.Int64
}

// take reserves n bytes, or reports false when that would pass the limit.
func (b *partBudget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *partBudget) give(n int64) { b.used.Add(-n) }

// scratchPart is an encoded part: in memory chunks while the budget allows,
// then in a file of the scratch directory.
//
// A part whose row group becomes the next one to splice while it is being
// written (its task is the file's head) streams instead: what it holds past
// its magic goes into the output's Splicer, and so does everything written
// after, up to the footer, which it keeps for AddStreamed. The parts of a
// file's other tasks still wait in memory or on disk, but the head's part,
// which on a large file would most often have gone to disk, is written once.
type scratchPart struct {
	budget *partBudget
	dir    string
	chunks [][]byte // the bytes, while in memory
	held   int64    // bytes reserved from the budget
	size   int64
	f      *os.File // once moved to disk
	bw     *bufio.Writer

	// head, when set, returns the output's Splicer once the part may
	// stream into it, else nil
	head     func() *parquetio.Splicer
	out      *parquetio.Splicer // set while streaming
	start    int64              // the output offset of the part's byte 4
	footer   []byte             // a streamed part's bytes from footerAt on
	footerAt int64              // -1 before BeginFooter
}

// partMagic is the length of the magic that opens every part; a streamed
// part leaves it out (the output has its own).
const partMagic = 4

func newScratchPart(dir string, budget *partBudget) *scratchPart {
	return &scratchPart{dir: dir, budget: budget, footerAt: -1}
}

// Write appends to the part.
func (p *scratchPart) Write(b []byte) (int, error) {
	if p.out == nil && p.head != nil && p.footerAt < 0 {
		if s := p.head(); s != nil {
			if err := p.startStream(s); err != nil {
				return 0, err
			}
		}
	}
	if p.out != nil {
		if p.footerAt >= 0 {
			p.footer = append(p.footer, b...)
			p.size += int64(len(b))
			return len(b), nil
		}
		skip := max(0, min(int64(len(b)), partMagic-p.size))
		n, err := p.out.Write(b[skip:])
		p.size += skip + int64(n)
		return int(skip) + n, err
	}
	if p.f == nil {
		if err := p.reserve(len(b)); err != nil {
			return 0, err
		}
	}
	if p.f != nil {
		n, err := p.bw.Write(b)
		p.size += int64(n)
		return n, err
	}
	n := len(b)
	for len(b) > 0 {
		last := len(p.chunks) - 1
		if last < 0 || len(p.chunks[last]) == cap(p.chunks[last]) {
			p.chunks = append(p.chunks, make([]byte, 0, partChunk))
			last++
		}
		c := p.chunks[last]
		k := min(len(b), cap(c)-len(c))
		p.chunks[last] = append(c, b[:k]...)
		b = b[k:]
	}
	p.size += int64(n)
	return n, nil
}

// reserve makes room in memory for n more bytes, or moves the part to disk.
func (p *scratchPart) reserve(n int) error {
	need := p.size + int64(n) - p.held
	if need <= 0 {
		return nil
	}
	grow := max(need, partChunk)
	if p.budget.take(grow) {
		p.held += grow
		return nil
	}
	return p.spill()
}

// spill moves the part's bytes to a file in the scratch directory.
func (p *scratchPart) spill() error {
	f, err := os.CreateTemp(p.dir, "part-*.parquet")
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	p.f, p.bw = f, bufio.NewWriterSize(f, 1<<20)
	for _, c := range p.chunks {
		if _, err := p.bw.Write(c); err != nil {
			return fmt.Errorf("scratch: %w", err)
		}
	}
	p.chunks = nil
	p.budget.give(p.held)
	p.held = 0
	return nil
}

// startStream moves what the part holds, past its magic, into the output
// and makes later writes go there too.
func (p *scratchPart) startStream(s *parquetio.Splicer) error {
	start, err := s.StreamStart()
	if err != nil {
		return err
	}
	if p.f != nil {
		if err := p.bw.Flush(); err != nil {
			return fmt.Errorf("scratch: %w", err)
		}
		if p.size > partMagic {
			if _, err := io.Copy(s, io.NewSectionReader(p.f, partMagic, p.size-partMagic)); err != nil {
				return err
			}
		}
	} else {
		for i, c := range p.chunks {
			if i == 0 {
				c = c[min(len(c), partMagic):]
			}
			if _, err := s.Write(c); err != nil {
				return err
			}
		}
	}
	p.discard()
	p.out, p.start = s, start
	return nil
}

// BeginFooter tells the part that the writer's footer comes next: a
// streamed part keeps it for AddStreamed.
func (p *scratchPart) BeginFooter() { p.footerAt = p.size }

// finish flushes what the part holds to its file, if it has one.
func (p *scratchPart) finish() error {
	if p.bw != nil {
		if err := p.bw.Flush(); err != nil {
			return fmt.Errorf("scratch: %w", err)
		}
	}
	return nil
}

// Size is the part's length.
func (p *scratchPart) Size() int64 { return p.size }

// ReadAt reads from the finished part; of a streamed part, only its footer.
func (p *scratchPart) ReadAt(b []byte, off int64) (int, error) {
	if p.out != nil {
		if off < p.footerAt || p.footerAt < 0 {
			return 0, fmt.Errorf("part: offset %d was streamed into the output", off)
		}
		n := 0
		if off-p.footerAt < int64(len(p.footer)) {
			n = copy(b, p.footer[off-p.footerAt:])
		}
		if n < len(b) {
			return n, io.EOF
		}
		return n, nil
	}
	if p.f != nil {
		return p.f.ReadAt(b, off)
	}
	if off < 0 {
		return 0, fmt.Errorf("part: negative offset %d", off)
	}
	n := 0
	for len(b) > 0 && off < p.size {
		c := p.chunks[off/partChunk]
		k := copy(b, c[off%partChunk:])
		b, off, n = b[k:], off+int64(k), n+k
	}
	if len(b) > 0 {
		return n, io.EOF
	}
	return n, nil
}

// discard frees the part: its memory, or its file.
func (p *scratchPart) discard() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
		p.f = nil
	}
	p.chunks, p.bw, p.footer = nil, nil, nil
	p.budget.give(p.held)
	p.held = 0
}
