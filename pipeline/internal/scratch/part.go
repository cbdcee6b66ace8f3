// Package scratch holds the encoded parts of a run (one row group's output
// for one destination) until they are spliced into their output: in memory
// while a shared budget allows, then in a file of the scratch directory, or
// streamed straight into the output once the part's row group is the next to
// splice; and the jobs' scratch folders, each locked while its job runs so
// that one a killed job left is removed by the next (folder.go). It never
// imports the engine (pipeline), rules or transforms.
package scratch

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

// DefaultMemory bounds the bytes of parts held in memory at once. A
// 1M-row row group's part mostly goes to disk at 32 MiB, as it did at 64;
// the smaller bound leaves the run's heap limit more room (see
// docs/performance.md, "Memory").
const DefaultMemory = 32 << 20

// partChunk is the size of a part's memory chunks.
const partChunk = 1 << 20

// Budget counts the bytes of parts held in memory.
type Budget struct {
	Limit int64 // bytes; 0 means none may be held
	used  atomic.Int64
}

// take reserves n bytes, or reports false when that would pass the limit.
func (b *Budget) take(n int64) bool {
	if b.used.Add(n) > b.Limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *Budget) give(n int64) { b.used.Add(-n) }

// Used returns the bytes of parts held in memory now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Part is an encoded part: in memory chunks while the budget allows,
// then in a file of the scratch directory.
//
// A part whose row group becomes the next one to splice while it is being
// written (its task is the file's head) streams instead: what it holds past
// its magic goes into the output's Splicer, and so does everything written
// after, up to the footer, which it keeps for AddStreamed. The parts of a
// file's other tasks still wait in memory or on disk, but the head's part,
// which on a large file would most often have gone to disk, is written once.
type Part struct {
	budget *Budget
	dir    string
	chunks [][]byte // the bytes, while in memory
	held   int64    // bytes reserved from the budget
	size   int64
	f      *os.File // once moved to disk
	bw     *bufio.Writer

	// head, when set, returns the output's Splicer once the part may
	// stream into it, else nil (see StreamWhen)
	head     func() *parquetio.Splicer
	out      *parquetio.Splicer // set while streaming
	start    int64              // the output offset of the part's byte 4
	footer   []byte             // a streamed part's bytes from footerAt on
	footerAt int64              // -1 before BeginFooter
}

// partMagic is the length of the magic that opens every part; a streamed
// part leaves it out (the output has its own).
const partMagic = 4

// NewPart starts an empty part that spills to dir when budget is spent.
func NewPart(dir string, budget *Budget) *Part {
	return &Part{dir: dir, budget: budget, footerAt: -1}
}

// StreamWhen makes the part stream into the Splicer head returns once it
// returns one (its row group is then the next to splice).
func (p *Part) StreamWhen(head func() *parquetio.Splicer) { p.head = head }

// Streamed reports the Splicer the part streamed into, if it did, and the
// output offset of its first byte past the magic (for AddStreamed).
func (p *Part) Streamed() (*parquetio.Splicer, int64) { return p.out, p.start }

// Write appends to the part.
func (p *Part) Write(b []byte) (int, error) {
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
func (p *Part) reserve(n int) error {
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
func (p *Part) spill() error {
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
func (p *Part) startStream(s *parquetio.Splicer) error {
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
	p.Discard()
	p.out, p.start = s, start
	return nil
}

// BeginFooter tells the part that the writer's footer comes next: a
// streamed part keeps it for AddStreamed.
func (p *Part) BeginFooter() { p.footerAt = p.size }

// Finish flushes what the part holds to its file, if it has one.
func (p *Part) Finish() error {
	if p.bw != nil {
		if err := p.bw.Flush(); err != nil {
			return fmt.Errorf("scratch: %w", err)
		}
	}
	return nil
}

// Size is the part's length.
func (p *Part) Size() int64 { return p.size }

// ReadAt reads from the finished part; of a streamed part, only its footer.
func (p *Part) ReadAt(b []byte, off int64) (int, error) {
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

// Discard frees the part: its memory, or its file.
func (p *Part) Discard() {
	if p.f != nil {
		p.f.Close()
		os.Remove(p.f.Name())
		p.f = nil
	}
	p.chunks, p.bw, p.footer = nil, nil, nil
	p.budget.give(p.held)
	p.held = 0
}
