package scratch

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/internal/pqtest"
	"github.com/deidproject/deid/pipeline/parquetio"
)

// TestScratchPart: a part reads back what was written, byte for byte and at
// any offset, whether it stayed in memory, moved to disk before its first
// byte or midway; the budget is never passed and is given back, and a
// discarded part leaves no file.
func TestScratchPart(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name   string
		limit  int64
		size   int
		onDisk bool
	}{
		{"empty, in memory", 1 << 30, 0, false},
		{"in memory, one chunk", 1 << 30, 1000, false},
		{"in memory, chunks", 1 << 30, 3*partChunk + 17, false},
		{"no budget: on disk", -1, 5000, true},
		{"moved to disk midway", 2 * partChunk, 5*partChunk + 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			budget := &Budget{Limit: tc.limit}
			p := NewPart(dir, budget)
			want := make([]byte, tc.size)
			for i := range want {
				want[i] = byte(r.IntN(256))
			}
			for rest := want; len(rest) > 0; {
				k := min(len(rest), 1+r.IntN(300_000))
				if n, err := p.Write(rest[:k]); err != nil || n != k {
					t.Fatalf("write: %d, %v", n, err)
				}
				rest = rest[k:]
				if budget.used.Load() > max(tc.limit, 0) {
					t.Fatalf("%d bytes held, over the budget of %d", budget.used.Load(), tc.limit)
				}
			}
			if err := p.Finish(); err != nil {
				t.Fatal(err)
			}
			if p.Size() != int64(tc.size) || (p.f != nil) != tc.onDisk {
				t.Fatalf("size %d, on disk %v", p.Size(), p.f != nil)
			}
			got, err := io.ReadAll(io.NewSectionReader(p, 0, p.Size()))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes (%v), wrote %d", len(got), err, len(want))
			}
			for range 20 {
				if tc.size == 0 {
					break
				}
				off := r.IntN(tc.size)
				buf := make([]byte, r.IntN(tc.size-off)+1)
				if n, err := p.ReadAt(buf, int64(off)); err != nil || !bytes.Equal(buf[:n], want[off:off+n]) || n != len(buf) {
					t.Fatalf("ReadAt(%d, %d): %d, %v", len(buf), off, n, err)
				}
			}
			if n, err := p.ReadAt(make([]byte, 10), int64(tc.size)); n != 0 || err != io.EOF {
				t.Errorf("read past the end: %d, %v", n, err)
			}
			p.Discard()
			if budget.used.Load() != 0 {
				t.Errorf("%d bytes still held after discard", budget.used.Load())
			}
			if files, _ := os.ReadDir(dir); len(files) != 0 {
				t.Errorf("discard left %v", files)
			}
		})
	}
}

// TestScratchPartStreams: a part that becomes the next to splice while it
// is written (from its first byte, midway while in memory, midway after it
// moved to disk, or never) gives the same file as the same parts spliced
// whole, and holds no memory, budget or file once it streams.
func TestScratchPartStreams(t *testing.T) {
	mem := memory.NewGoAllocator()
	sch := arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "s", Type: arrow.BinaryTypes.String, Nullable: true}}, nil)
	r := rand.New(rand.NewPCG(5, 6))
	var recs []arrow.RecordBatch
	for range 9 {
		nb := array.NewInt64Builder(mem)
		sb := array.NewStringBuilder(mem)
		for range 20_000 {
			nb.Append(r.Int64())
			sb.Append(fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()))
		}
		recs = append(recs, array.NewRecordBatch(sch, []arrow.Array{nb.NewArray(), sb.NewArray()}, 20_000))
		nb.Release()
		sb.Release()
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	opt := parquetio.WriterOptions{MaxRowGroupRows: 16_384}
	// encode writes three parts (three batches each) through scratch parts;
	// part 1 streams from its streamAt-th write on (-1: never)
	encode := func(t *testing.T, limit int64, streamAt int, onDisk bool) []byte {
		var out bytes.Buffer
		sp := parquetio.NewSplicer(&out)
		budget := &Budget{Limit: limit}
		for part := 0; part < 3; part++ {
			p := NewPart(t.TempDir(), budget)
			writes := 0
			if part == 1 && streamAt >= 0 {
				p.head = func() *parquetio.Splicer {
					if writes++; writes > streamAt {
						if (p.f != nil) != onDisk {
							t.Errorf("on disk when it began to stream: %v", p.f != nil)
						}
						return sp
					}
					return nil
				}
			}
			w, err := parquetio.NewFastPartWriter(p, sch, map[string]bool{"s": true}, opt, mem)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs[3*part : 3*part+3] {
				if err := w.Write(rec); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := p.Finish(); err != nil {
				t.Fatal(err)
			}
			if streamed := p.out != nil; streamed != (part == 1 && streamAt >= 0) {
				t.Fatalf("part %d streamed: %v", part, streamed)
			}
			if p.out != nil && (p.f != nil || p.chunks != nil || p.held != 0) {
				t.Fatalf("a streamed part holds a file (%v), %d chunks, %d bytes of budget", p.f != nil, len(p.chunks), p.held)
			}
			if err := splice(sp, p); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if budget.used.Load() != 0 {
			t.Errorf("%d bytes of budget still held", budget.used.Load())
		}
		return out.Bytes()
	}
	want := encode(t, 1<<30, -1, false)
	for _, tc := range []struct {
		name     string
		limit    int64
		streamAt int
		onDisk   bool
	}{
		{"from the first write", 1 << 30, 0, false},
		{"midway, in memory", 1 << 30, 5, false},
		{"midway, on disk", -1, 5, true},
		{"midway, moved to disk before", partChunk, 10, true},
		{"never, on disk", -1, -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := encode(t, tc.limit, tc.streamAt, tc.onDisk); !bytes.Equal(got, want) {
				t.Errorf("%d bytes, want the %d of the parts spliced whole", len(got), len(want))
			}
		})
	}
	if n, err := pqtest.Rows(want); err != nil || n != 180_000 {
		t.Fatalf("parquet-go read %d rows of 180,000: %v", n, err)
	}
}

// splice adds p to sp as the engine does, then frees it.
func splice(sp *parquetio.Splicer, p *Part) error {
	defer p.Discard()
	if out, start := p.Streamed(); out != nil {
		return out.AddStreamed(p, start)
	}
	return sp.Add(p)
}
