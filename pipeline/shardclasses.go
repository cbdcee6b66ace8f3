package pipeline

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
	"time"

	"github.com/deidproject/deid/pipeline/storage"
)

// min_k in a sharded run: a class can span the files of several shards, so
// each shard counts the classes of its own files (pass 1), writes its
// counts beside the frozen input list, waits until every shard of the run
// has written its counts (a barrier), adds them up and only then drops the
// rows of classes below min_k (pass 2). Addition commutes, so every shard
// sees the counts a single run would and the merged outputs equal a single
// run's. The shards must therefore run at the same time: a shard that
// never writes its counts makes the others fail once Options.ShardWait
// expires, before anything is published.

// classesFormat opens a counts file: version 1 of the encoding below.
const classesFormat = "deid-classes/v1\n"

// DefaultShardWait is how long a shard of a run enforcing min_k waits for
// the other shards' class counts when Options.ShardWait is zero.
const DefaultShardWait = 30 * time.Minute

// classesLocation is where shard index of count writes its class counts:
// in the first destination's output, beside the frozen input list.
func classesLocation(s *Shard, firstOutput string, index int) string {
	return storage.Join(firstOutput, ShardsDir, s.Inputs.RunID, fmt.Sprintf("classes-%d-of-%d.bin", index, s.Count))
}

// classGroup is the counts of one (destination, dataset) as encoded: a
// run's tally, or (when tally is nil) counts.
type classGroup struct {
	dst, dataset string
	counts       map[classKey]uint32
	tally        *classTally
}

// len returns the number of classes of g.
func (g classGroup) len() (int64, error) {
	if g.tally != nil {
		return g.tally.len()
	}
	return int64(len(g.counts)), nil
}

// each calls fn for each class of g in ascending key order.
func (g classGroup) each(fn func(k classKey, n uint32) error) error {
	if g.tally != nil {
		return g.tally.each(fn)
	}
	for _, k := range slices.SortedFunc(maps.Keys(g.counts), compareKeys) {
		if err := fn(k, g.counts[k]); err != nil {
			return err
		}
	}
	return nil
}

// encodeClasses writes the counts of groups as: the format line; per group,
// in order of (destination, dataset): the destination and dataset names
// (uvarint length, bytes), the number of classes (uvarint), then each class
// in ascending key order as its 16-byte key (high, low; big endian) and its
// count (uvarint); a group with an empty destination name ends the list;
// then the CRC-32C (Castagnoli) of everything before it, big endian. About
// 17 to 20 bytes per class.
func encodeClasses(w io.Writer, groups []classGroup) error {
	slices.SortFunc(groups, func(a, b classGroup) int {
		if c := strings.Compare(a.dst, b.dst); c != 0 {
			return c
		}
		return strings.Compare(a.dataset, b.dataset)
	})
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	bw := bufio.NewWriter(io.MultiWriter(w, crc))
	var buf []byte
	buf = append(buf, classesFormat...)
	for _, g := range groups {
		if g.dst == "" {
			return errors.New("encode class counts: empty destination name")
		}
		n, err := g.len()
		if err != nil {
			return err
		}
		buf = appendString(buf, g.dst)
		buf = appendString(buf, g.dataset)
		buf = binary.AppendUvarint(buf, uint64(n))
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		err = g.each(func(k classKey, c uint32) error {
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

func compareKeys(a, b classKey) int {
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

// errCorruptClasses is wrapped by the errors of decodeClasses.
var errCorruptClasses = errors.New("corrupt class counts")

// decodeClasses reads a counts file of size bytes and calls fn for each
// class, in the file's order. fn may be called before a corruption later in
// the file is found: callers discard what they merged when it fails. It
// refuses a wrong format line, a bad checksum, keys out of order, zero
// counts, truncation and trailing bytes.
func decodeClasses(r io.Reader, size int64, fn func(dst, dataset string, k classKey, n uint32)) error {
	if size < int64(len(classesFormat))+4 {
		return fmt.Errorf("%w: %d bytes is too short", errCorruptClasses, size)
	}
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	br := bufio.NewReader(io.TeeReader(io.LimitReader(r, size-4), crc))
	head := make([]byte, len(classesFormat))
	if _, err := io.ReadFull(br, head); err != nil {
		return fmt.Errorf("%w: %w", errCorruptClasses, err)
	}
	if !bytes.Equal(head, []byte(classesFormat)) {
		return fmt.Errorf("%w: not a deid class counts file (format %q, want %q)", errCorruptClasses, head, classesFormat)
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
			return fmt.Errorf("%w: %w", errCorruptClasses, unexpected(err))
		}
		if dst == "" {
			break
		}
		dataset, err := readString()
		if err != nil {
			return fmt.Errorf("%w: %w", errCorruptClasses, unexpected(err))
		}
		group := dst + "\x00" + dataset
		if prevGroup != "" && group <= prevGroup {
			return fmt.Errorf("%w: destination %s, dataset %s out of order", errCorruptClasses, dst, dataset)
		}
		prevGroup = group
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("%w: %w", errCorruptClasses, unexpected(err))
		}
		var prev classKey
		var kb [16]byte
		for i := uint64(0); i < n; i++ {
			if _, err := io.ReadFull(br, kb[:]); err != nil {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d: %w", errCorruptClasses, dst, dataset, i, n, unexpected(err))
			}
			k := classKey{Hi: binary.BigEndian.Uint64(kb[:8]), Lo: binary.BigEndian.Uint64(kb[8:])}
			c, err := binary.ReadUvarint(br)
			if err != nil {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d: %w", errCorruptClasses, dst, dataset, i, n, unexpected(err))
			}
			if c == 0 || c > 1<<32-1 {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d has count %d", errCorruptClasses, dst, dataset, i, n, c)
			}
			if i > 0 && compareKeys(prev, k) >= 0 {
				return fmt.Errorf("%w: destination %s, dataset %s: class %d of %d out of order", errCorruptClasses, dst, dataset, i, n)
			}
			prev = k
			fn(dst, dataset, k, uint32(c))
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: trailing bytes after the last class", errCorruptClasses)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return fmt.Errorf("%w: checksum: %w", errCorruptClasses, unexpected(err))
	}
	if got, want := crc.Sum32(), binary.BigEndian.Uint32(sum[:]); got != want {
		return fmt.Errorf("%w: checksum %08x, the content gives %08x", errCorruptClasses, want, got)
	}
	return nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// exchangeClasses is the barrier of a sharded run enforcing min_k, between
// its two passes: it writes this shard's class counts, waits until every
// other shard has written its own, and finishes its counts with theirs
// (mergeClasses).
func (r *runner) exchangeClasses(ctx context.Context) error {
	s := r.opt.Shard
	first := r.plan.Destinations[0].Output
	log := r.opt.Logger
	var groups []classGroup
	for _, c := range r.classes {
		groups = append(groups, classGroup{dst: c.dst, dataset: c.dataset, tally: c.tally})
	}
	own := classesLocation(s, first, s.Index)
	w, err := r.opt.Store.Create(ctx, own)
	if err != nil {
		return fmt.Errorf("write %s: %w", own, err)
	}
	defer w.Abort()
	if err := encodeClasses(w, groups); err != nil {
		return fmt.Errorf("write %s: %w", own, err)
	}
	if _, err := w.Commit(); err != nil {
		return fmt.Errorf("write %s: %w", own, err)
	}
	log.Info("class counts written, waiting for the other shards", "location", own, "shards", s.Count)

	wait := r.opt.ShardWait
	if wait <= 0 {
		wait = DefaultShardWait
	}
	// the barrier's deadline is real time, not Options.Clock (fixed in tests)
	deadline := time.Now().Add(wait)
	pending := map[int]bool{}
	var others []shardClasses
	for i := 0; i < s.Count; i++ {
		if i != s.Index {
			pending[i] = true
			others = append(others, shardClasses{index: i, count: s.Count, loc: classesLocation(s, first, i)})
		}
	}
	delay, logged := 50*time.Millisecond, time.Now()
	for len(pending) > 0 {
		for _, i := range slices.Sorted(maps.Keys(pending)) {
			loc := classesLocation(s, first, i)
			if _, err := r.opt.Store.Stat(ctx, loc); err != nil {
				if errors.Is(err, storage.ErrNotExist) {
					continue
				}
				return fmt.Errorf("shard %d of %d: %s: %w", i, s.Count, loc, err)
			}
			delete(pending, i)
		}
		if len(pending) == 0 {
			break
		}
		if !time.Now().Before(deadline) {
			var missing []string
			for _, i := range slices.Sorted(maps.Keys(pending)) {
				missing = append(missing, fmt.Sprint(i))
			}
			return fmt.Errorf("min_k in a sharded run: after waiting %s, shard(s) %s of %d have not written their class counts in %s: "+
				"the shards of a run enforcing min_k must run at the same time (Indexed Job parallelism = completions, Cloud Run parallelism = task count); "+
				"nothing was published: rerun every shard at once: %w",
				wait, strings.Join(missing, ", "), s.Count, storage.Dir(own), ErrShardWait)
		}
		if time.Since(logged) >= time.Minute {
			logged = time.Now()
			log.Info("still waiting for the other shards' class counts", "missing", slices.Sorted(maps.Keys(pending)), "shards", s.Count, "deadline", deadline.UTC())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the other shards' class counts: %w", ctx.Err())
		case <-time.After(min(delay, max(time.Until(deadline), time.Millisecond))):
		}
		delay = min(delay*2, 5*time.Second)
	}
	if err := r.mergeClasses(ctx, others); err != nil {
		return err
	}
	log.Info("class counts of every shard merged", "shards", s.Count)
	return nil
}

// shardClasses names another shard's counts file.
type shardClasses struct {
	index, count int
	loc          string
}

// mergeClasses finishes this shard's counts (classCounts.finish) with the
// other shards' counts files: each file is read once, in step with this
// shard's tally, both in key order, and a class this shard holds gets the
// rows the others counted for it; classes only the others hold are skipped
// (the rows this shard may drop are its own). So memory stays bounded by
// the small classes this shard holds. A damaged file fails the run, so
// nothing finish built before the damage was found is used.
func (r *runner) mergeClasses(ctx context.Context, files []shardClasses) error {
	var curs []*classCursor
	defer func() {
		for _, c := range curs {
			c.close()
		}
	}()
	for _, f := range files {
		c, err := openClassCursor(ctx, r.opt.Store, f)
		if err != nil {
			return err
		}
		curs = append(curs, c)
	}
	for _, g := range slices.Sorted(maps.Keys(r.classes)) {
		err := r.classes[g].finish(func(k classKey) (uint32, error) {
			var n uint32
			for _, c := range curs {
				m, err := c.countOf(g, k)
				if err != nil {
					return 0, err
				}
				n = satAdd(n, m)
			}
			return n, nil
		})
		if err != nil {
			return err
		}
	}
	// read every file to its end: its checksum is checked there
	for _, c := range curs {
		if err := c.drain(); err != nil {
			return err
		}
	}
	return nil
}

// classCursor reads a counts file class by class, in the file's order of
// (destination + "\x00" + dataset, key).
type classCursor struct {
	f    shardClasses
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
	key   classKey
	n     uint32
}

func openClassCursor(ctx context.Context, s storage.Store, f shardClasses) (*classCursor, error) {
	src, err := s.Open(ctx, f.loc)
	if err != nil {
		return nil, fmt.Errorf("shard %d of %d: %s: %w", f.index, f.count, f.loc, err)
	}
	c := &classCursor{f: f, src: src}
	c.next, c.stop = iter.Pull(func(yield func(classRecord) bool) {
		stopped := false
		c.err = decodeClasses(io.NewSectionReader(src, 0, src.Size()), src.Size(), func(dst, dataset string, k classKey, n uint32) {
			if !stopped {
				stopped = !yield(classRecord{dst + "\x00" + dataset, k, n})
			}
		})
	})
	c.cur, c.ok = c.next()
	return c, nil
}

// countOf returns the rows the file counts for class k of group, skipping
// the classes before it; the calls must come in ascending (group, k) order.
func (c *classCursor) countOf(group string, k classKey) (uint32, error) {
	for c.ok {
		cmp := strings.Compare(c.cur.group, group)
		if cmp == 0 {
			cmp = compareKeys(c.cur.key, k)
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

// drain reads the rest of the file, to check its checksum.
func (c *classCursor) drain() error {
	for c.ok {
		c.cur, c.ok = c.next()
	}
	return c.failed()
}

// failed returns the error that ended the file, naming it.
func (c *classCursor) failed() error {
	if c.ok || c.err == nil {
		return nil
	}
	return fmt.Errorf("shard %d of %d: %s: %w: rerun the shard that wrote it, then this one", c.f.index, c.f.count, c.f.loc, c.err)
}

func (c *classCursor) close() {
	c.stop()
	c.src.Close()
}

func satAdd(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<32 - 1
}

// ErrShardWait is matched (errors.Is) by the error of a shard of a run
// enforcing min_k whose wait for the other shards' class counts expired.
var ErrShardWait = errors.New("the other shards' class counts did not arrive")
