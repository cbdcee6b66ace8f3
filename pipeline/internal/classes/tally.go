package classes

import (
	"bufio"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

// DefaultTallyLimit is how many classes a Tally holds in memory before
// it spills them to a sorted run: about 30 MB of map (56 bytes a class) and,
// while spilling, 12 MB of sorted entries.
const DefaultTallyLimit = 1 << 19

// Tally counts rows per class in bounded memory, for any number of
// classes: add sums counts in a map; once the map holds more than limit
// classes, its entries are sorted by key and written to a run file in dir,
// and the map starts again empty. each then merges the runs and what the map
// still holds into one stream in ascending key order, summing a class's
// counts across runs. Memory is the map (at most limit classes) plus a read
// buffer per run; disk is 20 bytes a class per run it appears in, and at
// maxRuns runs they are merged into one.
//
// A Tally is not safe for concurrent use; close removes its runs.
type Tally struct {
	// dir is where runs are written; empty means os.TempDir().
	dir string
	// limit is the most classes held in memory; 0 means DefaultTallyLimit.
	limit int

	counts map[Key]uint32
	// sorted is counts in key order, once each has been called: no add after
	sorted []classEntry
	runs   []string
	// spills counts the runs spilled from the map
	Spills int
}

// classEntry is one class and its number of rows.
type classEntry struct {
	key Key
	n   uint32
}

// A run is its entries in strictly ascending key order, each as the key
// (high then low half, big endian) and the count (big endian uint32), then
// a trailer: the number of entries (big endian uint64) and the CRC-32C of
// everything before it (big endian uint32).
const (
	runEntrySize   = 20
	runTrailerSize = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorruptRun is wrapped by the errors of a damaged run file.
var errCorruptRun = errors.New("corrupt class tally run")

func NewTally(dir string, limit int) *Tally {
	if limit <= 0 {
		limit = DefaultTallyLimit
	}
	return &Tally{dir: dir, limit: limit, counts: map[Key]uint32{}}
}

// Add adds n rows to the class k, spilling the map to a run when it holds
// more than limit classes.
func (t *Tally) Add(k Key, n uint32) error {
	if t.counts == nil {
		return errors.New("class tally: add after the counts were read")
	}
	t.counts[k] = SatAdd(t.counts[k], n)
	if len(t.counts) > t.limit {
		return t.spill()
	}
	return nil
}

// AddAll adds every count of m.
func (t *Tally) AddAll(m map[Key]uint32) error {
	for k, n := range m {
		if err := t.Add(k, n); err != nil {
			return err
		}
	}
	return nil
}

// sortedEntries returns the map's entries in ascending key order.
func (t *Tally) sortedEntries() []classEntry {
	es := make([]classEntry, 0, len(t.counts))
	for k, n := range t.counts {
		es = append(es, classEntry{k, n})
	}
	slices.SortFunc(es, func(a, b classEntry) int { return CompareKeys(a.key, b.key) })
	return es
}

// maxRuns is how many runs a tally keeps before merging them into one, so
// reading them never holds more than maxRuns+1 files open.
const maxRuns = 64

// spill writes the map as a run and empties it; at maxRuns runs, it merges
// them into one.
func (t *Tally) spill() error {
	w, err := createRun(t.dir)
	if err != nil {
		return err
	}
	for _, e := range t.sortedEntries() {
		if err := w.write(e); err != nil {
			return err
		}
	}
	if err := w.finish(); err != nil {
		return err
	}
	t.runs = append(t.runs, w.f.Name())
	t.Spills++
	clear(t.counts)
	if len(t.runs) < maxRuns {
		return nil
	}
	w, err = createRun(t.dir)
	if err != nil {
		return err
	}
	if err := mergeRuns(t.runs, nil, w.write); err != nil {
		w.abort()
		return err
	}
	if err := w.finish(); err != nil {
		return err
	}
	for _, name := range t.runs {
		os.Remove(name)
	}
	t.runs = []string{w.f.Name()}
	return nil
}

// Each calls fn with every class and its total count, in ascending key
// order; it can be called again, but add cannot be called after it. An
// error from fn stops it and is returned as is. A damaged run is an error
// wrapping errCorruptRun, which may come after fn was called for the
// classes before it (or, for a bad checksum, after every class): callers
// discard what they built when each fails.
func (t *Tally) Each(fn func(k Key, n uint32) error) error {
	if t.counts != nil {
		t.sorted = t.sortedEntries()
		t.counts = nil
	}
	return mergeRuns(t.runs, t.sorted, func(e classEntry) error { return fn(e.key, e.n) })
}

// mergeRuns calls fn with the classes of the runs and of mem (sorted), in
// ascending key order, each once with the sum of its counts.
func mergeRuns(runs []string, mem []classEntry, fn func(classEntry) error) error {
	h := make(runHeap, 0, len(runs)+1)
	defer func() {
		for _, r := range h {
			r.close()
		}
	}()
	if len(mem) > 0 {
		h = append(h, &runReader{mem: mem, cur: mem[0], pos: 1})
	}
	for _, name := range runs {
		r, err := openRun(name)
		if err != nil {
			return err
		}
		ok, err := r.next()
		if err != nil || !ok {
			r.close()
			if err != nil {
				return err
			}
			continue
		}
		h = append(h, r)
	}
	heap.Init(&h)
	for len(h) > 0 {
		e := classEntry{key: h[0].cur.key}
		for len(h) > 0 && h[0].cur.key == e.key {
			r := h[0]
			e.n = SatAdd(e.n, r.cur.n)
			ok, err := r.next()
			if err != nil {
				return err
			}
			if ok {
				heap.Fix(&h, 0)
			} else {
				heap.Pop(&h)
				r.close()
			}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// runWriter writes one run.
type runWriter struct {
	f   *os.File
	w   *bufio.Writer
	crc hash.Hash32
	n   uint64
	b   [runEntrySize]byte
}

func createRun(dir string) (*runWriter, error) {
	f, err := os.CreateTemp(dir, "classes-*.run")
	if err != nil {
		return nil, fmt.Errorf("class tally: %w", err)
	}
	crc := crc32.New(castagnoli)
	return &runWriter{f: f, w: bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<16), crc: crc}, nil
}

// write appends e; the entries must come in ascending key order. On an
// error the run is removed.
func (w *runWriter) write(e classEntry) error {
	binary.BigEndian.PutUint64(w.b[:8], e.key.Hi)
	binary.BigEndian.PutUint64(w.b[8:16], e.key.Lo)
	binary.BigEndian.PutUint32(w.b[16:], e.n)
	if _, err := w.w.Write(w.b[:]); err != nil {
		w.abort()
		return fmt.Errorf("class tally: write %s: %w", w.f.Name(), err)
	}
	w.n++
	return nil
}

// finish writes the trailer and closes the run; on an error it is removed.
func (w *runWriter) finish() error {
	_, err := w.w.Write(binary.BigEndian.AppendUint64(nil, w.n))
	if err == nil {
		err = w.w.Flush()
	}
	if err == nil {
		_, err = w.f.Write(binary.BigEndian.AppendUint32(nil, w.crc.Sum32()))
	}
	if err == nil {
		err = w.f.Close()
	}
	if err != nil {
		w.abort()
		return fmt.Errorf("class tally: write %s: %w", w.f.Name(), err)
	}
	return nil
}

// abort closes and removes the run.
func (w *runWriter) abort() {
	w.f.Close()
	os.Remove(w.f.Name())
}

// Len returns the number of classes, reading the runs when there are any.
func (t *Tally) Len() (int64, error) {
	if len(t.runs) == 0 {
		return int64(len(t.counts) + len(t.sorted)), nil
	}
	var n int64
	err := t.Each(func(Key, uint32) error { n++; return nil })
	return n, err
}

// Close removes the runs and frees the counts.
func (t *Tally) Close() error {
	var errs []error
	for _, name := range t.runs {
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("class tally: %w", err))
		}
	}
	t.runs, t.counts, t.sorted = nil, nil, nil
	return errors.Join(errs...)
}

// runReader reads one run in order: a file, or the tally's sorted
// in-memory entries (mem).
type runReader struct {
	name string
	f    *os.File
	r    *bufio.Reader
	crc  uint32
	left uint64 // entries not yet read from the file
	mem  []classEntry
	pos  int
	cur  classEntry
}

func openRun(name string) (*runReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("class tally: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("class tally: %w", err)
	}
	size := st.Size()
	if size < runTrailerSize || (size-runTrailerSize)%runEntrySize != 0 {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %d bytes is not a whole number of classes and a trailer", errCorruptRun, name, size)
	}
	return &runReader{name: name, f: f, r: bufio.NewReaderSize(f, 1<<15), left: uint64(size-runTrailerSize) / runEntrySize}, nil
}

// next reads the next entry into cur; at the end of a file it checks the
// trailer.
func (r *runReader) next() (bool, error) {
	if r.f == nil {
		if r.pos == len(r.mem) {
			return false, nil
		}
		r.cur = r.mem[r.pos]
		r.pos++
		return true, nil
	}
	var b [runEntrySize]byte
	if r.left == 0 {
		if _, err := io.ReadFull(r.r, b[:runTrailerSize]); err != nil {
			return false, fmt.Errorf("%w: %s: trailer: %w", errCorruptRun, r.name, unexpected(err))
		}
		r.crc = crc32.Update(r.crc, castagnoli, b[:8])
		if n := binary.BigEndian.Uint64(b[:8]); n != uint64(r.pos) {
			return false, fmt.Errorf("%w: %s: the trailer says %d classes, the file holds %d", errCorruptRun, r.name, n, r.pos)
		}
		if want := binary.BigEndian.Uint32(b[8:12]); want != r.crc {
			return false, fmt.Errorf("%w: %s: checksum %08x, the content gives %08x", errCorruptRun, r.name, want, r.crc)
		}
		return false, nil
	}
	if _, err := io.ReadFull(r.r, b[:]); err != nil {
		return false, fmt.Errorf("%w: %s: class %d: %w", errCorruptRun, r.name, r.pos, unexpected(err))
	}
	r.crc = crc32.Update(r.crc, castagnoli, b[:])
	e := classEntry{Key{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:16])}, binary.BigEndian.Uint32(b[16:])}
	if e.n == 0 || (r.pos > 0 && CompareKeys(r.cur.key, e.key) >= 0) {
		return false, fmt.Errorf("%w: %s: class %d is out of order or has no rows", errCorruptRun, r.name, r.pos)
	}
	r.cur = e
	r.pos++
	r.left--
	return true, nil
}

func (r *runReader) close() {
	if r.f != nil {
		r.f.Close()
	}
}

// runHeap orders run readers by their current key.
type runHeap []*runReader

func (h runHeap) Len() int { return len(h) }

func (h runHeap) Less(i, j int) bool { return CompareKeys(h[i].cur.key, h[j].cur.key) < 0 }

func (h runHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *runHeap) Push(x any) { *h = append(*h, x.(*runReader)) }

func (h *runHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
