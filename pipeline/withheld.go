package pipeline

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/lists"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
)

// Rows a children rule withheld, recorded with each published file, so that
// no later derivation of that file lets them through (issue 15).
//
// A children rule whose ages come from another dataset (age_from: {dataset:
// ...}) decides a row on data outside it: the subject's birth dates in the
// other dataset. Those can vanish (deid retain expires or erases the
// other dataset's rows) or change, and a file derived again from its
// cleaned input (deid retain re-derives partner outputs) or by a later run
// would then publish rows the first publication withheld as children's.
// So each published file's manifest entry records, as children_withheld,
// the keyed fingerprints of the rows the rule removed from it: one per
// subject and day the age is measured at (the calendar date of the event in
// the dataset's zone, or "no event time"). A row's age is a function of its
// subject's birth date and that day, so the pair identifies exactly the
// rows that were decided together; a subject who was a child at some
// events and an adult at later ones keeps the later rows. Every run that
// writes the file again (a re-derivation, a later run, a plan counting what
// it would write) reads the entry it replaces and removes the rows whose
// pair is recorded there, as children's, whatever their age is now, then
// records again what it withheld.
//
// A rule whose ages come from the row's own column needs no record: deid
// retain never changes a row it keeps, so the row carries the same age at
// every derivation.
//
// The fingerprint is the first 8 bytes of HMAC-SHA256 under the
// destination's key of a domain-separation label, the subject (typed) and
// the day: the recipient, who receives the output folder and its manifest,
// can neither invert it nor join it with anything without the key. A
// destination without a key records none (its re-derivation is still
// checked to publish no new row: deid retain refuses one). A key rotation
// makes the old records unmatchable; the rows they name then stay out only
// if the rule still withholds them.

// withheldLabel separates these fingerprints from every other use of the
// destination's key.
const withheldLabel = "deid children withheld v1\x00"

// withheldFile is what one output file's children rule withheld: before,
// as the manifest recorded it for the file this run replaces (read only),
// and now, as this run withholds it.
type withheldFile struct {
	key    []byte
	before map[uint64]bool
	mu     sync.Mutex
	now    map[uint64]bool
}

// withheldRecords are this run's withheldFile by destination and path.
type withheldRecords struct {
	mu    sync.Mutex
	files map[string]*withheldFile // destination name + "\x00" + path
	// before holds the manifests' records, by destination name + "\x00"
	// + path, read once per destination
	before map[string]map[uint64]bool
	read   map[string]bool
}

// loadWithheld reads, once per destination, the fingerprints the manifest
// records for the files of the dataset's outputs the children rule excludes.
func (r *runner) loadWithheld(ctx context.Context, ds *rules.Dataset) error {
	c := ds.Children
	if c == nil || c.FromDataset == "" {
		return nil
	}
	w := &r.withheld
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.before == nil {
		w.before, w.read = map[string]map[uint64]bool{}, map[string]bool{}
	}
	for _, dst := range r.plan.Destinations {
		if dst.Key == nil || !c.Excludes(dst.Name) || w.read[dst.Name] {
			continue
		}
		w.read[dst.Name] = true
		m, err := output.ReadManifest(ctx, r.opt.Store, dst.Output)
		if errors.Is(err, storage.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, f := range m.Files {
			if len(f.ChildrenWithheld) == 0 || f.KeyFingerprint != dst.Key.Fingerprint() {
				continue // another key's fingerprints match no row
			}
			set := make(map[uint64]bool, len(f.ChildrenWithheld))
			for _, s := range f.ChildrenWithheld {
				b, err := hex.DecodeString(s)
				if err != nil || len(b) != 8 {
					return dataerr.Errorf(storage.Join(dst.Output, output.ManifestName), "", "file %q: children_withheld holds %q, not a fingerprint of 16 hex digits", f.Path, s)
				}
				set[binary.BigEndian.Uint64(b)] = true
			}
			w.before[dst.Name+"\x00"+f.Path] = set
		}
	}
	return nil
}

// withheldFor returns the record of output out of in, or nil when its
// children rule takes no ages from another dataset or it has no key.
func (r *runner) withheldFor(in *inputFile, out *fileOutput) *withheldFile {
	c := in.ds.Children
	if c == nil || c.FromDataset == "" || out.dst.Key == nil || in.subjectPos < 0 {
		return nil
	}
	w := &r.withheld
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files == nil {
		w.files = map[string]*withheldFile{}
	}
	k := out.dst.Name + "\x00" + out.rel
	f := w.files[k]
	if f == nil {
		f = &withheldFile{key: out.dst.Key.Secret(), before: w.before[k], now: map[uint64]bool{}}
		w.files[k] = f
	}
	return f
}

// recorded returns, sorted, the fingerprints this run records for a
// destination's published file (nil for none).
func (r *runner) recorded(dst, path string) []string {
	w := &r.withheld
	w.mu.Lock()
	f := w.files[dst+"\x00"+path]
	w.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.now) == 0 {
		return nil
	}
	sums := make([]uint64, 0, len(f.now))
	for v := range f.now {
		sums = append(sums, v)
	}
	slices.Sort(sums)
	out := make([]string, len(sums))
	for i, v := range sums {
		out[i] = fmt.Sprintf("%016x", v)
	}
	return out
}

// withheldBatch fingerprints the rows of one batch for a withheldFile.
type withheldBatch struct {
	f       *withheldFile
	subject arrow.Array
	mac     hash.Hash
	buf     []byte
}

func (f *withheldFile) batch(subject arrow.Array) *withheldBatch {
	return &withheldBatch{f: f, subject: subject, mac: hmac.New(sha256.New, f.key)}
}

// sum is row i's fingerprint: subject and day, or false for a NULL subject.
func (b *withheldBatch) sum(i int, day int64, timed bool) (uint64, bool) {
	if b.subject.IsNull(i) {
		return 0, false
	}
	buf := append(b.buf[:0], withheldLabel...)
	if v, ok := transforms.IntValue(b.subject, i); ok {
		buf = strconv.AppendInt(append(buf, 'i'), v, 10)
	} else {
		buf = append(append(buf, 's'), lists.StringAt(b.subject, i)...)
	}
	buf = append(buf, 0)
	if timed {
		buf = strconv.AppendInt(append(buf, 'd'), day, 10)
	} else {
		buf = append(buf, '-')
	}
	b.buf = buf
	b.mac.Reset()
	b.mac.Write(buf)
	return binary.BigEndian.Uint64(b.mac.Sum(nil)[:8]), true
}

// hook sets the rule's Withheld (when the replaced file recorded any) and
// Note for this batch.
func (b *withheldBatch) hook(c *transforms.Children) {
	if len(b.f.before) > 0 {
		c.Withheld = func(i int, day int64, timed bool) bool {
			v, ok := b.sum(i, day, timed)
			return ok && b.f.before[v]
		}
	}
	c.Note = func(i int, day int64, timed bool) {
		if v, ok := b.sum(i, day, timed); ok {
			b.f.mu.Lock()
			b.f.now[v] = true
			b.f.mu.Unlock()
		}
	}
}
