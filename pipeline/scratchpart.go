package pipeline

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// A part (one row group's output for one destination, encoded) waits in
// memory until it is spliced into the output, as long as the parts in
// memory stay within the run's budget; a part that would go over it moves
// to a file in the scratch directory. Writing a part to disk and reading it
// back for the splice cost about 5% of a retention sweep in system calls.

// defaultPartMemory bounds the bytes of parts held in memory at once.
const defaultPartMemory = 64 << 20

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
type scratchPart struct {
	budget *partBudget
	dir    string
	chunks [][]byte // the bytes, while in memory
	held   int64    // bytes reserved from the budget
	size   int64
	f      *os.File // once moved to disk
	bw     *bufio.Writer
}

func newScratchPart(dir string, budget *partBudget) *scratchPart {
	return &scratchPart{dir: dir, budget: budget}
}

// Write appends to the part.
func (p *scratchPart) Write(b []byte) (int, error) {
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

// ReadAt reads from the finished part.
func (p *scratchPart) ReadAt(b []byte, off int64) (int, error) {
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
	p.chunks = nil
	p.budget.give(p.held)
	p.held = 0
}
