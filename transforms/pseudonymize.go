package transforms

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"strconv"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var pseudonymizeSpec = &Spec{
	Name: "pseudonymize",
	Summary: "replace the value with a keyed pseudonym: lowercase hex of the first `bytes` bytes of " +
		"HMAC-SHA256(destination key, value); integers are hashed as their decimal text",
	Inputs: []Kind{KindString, KindInteger},
	Params: []ParamSpec{{
		Name: "bytes", Kind: ParamInt, Default: int64(16), Min: 8, Max: 32,
		Doc: "digest bytes kept; the pseudonym has twice as many hex characters",
	}},
	Keyed:   true,
	Result:  ResultPseudonym,
	Example: "867365051234648 → d234fbd235dce964fb710775975d5eeb (key 000102…1f)",
	New:     newPseudonymize,
	Describe: func(p Params) string {
		return fmt.Sprintf("keyed pseudonym: %d lowercase hex characters of HMAC-SHA256(destination key, value); "+
			"equal values give equal pseudonyms within this destination only", 2*p.Int("bytes"))
	},
}

// errNoKey is returned when a keyed transform is bound without a key.
var errNoKey = errors.New("needs the destination's key, and none is configured")

func newPseudonymize(p Params, env Env) (Transform, error) {
	if len(env.Key) == 0 {
		return nil, errNoKey
	}
	return &pseudonymize{n: int(p.Int("bytes")), states: newStatePool(env.Key)}, nil
}

// pseudonymize is WORKLOAD.md's P(m): hex(HMAC-SHA256(K, m)[:n]).
type pseudonymize struct {
	n      int
	states *statePool   // an HMAC is not safe for concurrent use
	hashes atomic.Int64 // HMACs computed, for tests of the once-per-distinct-value promise
}

// hmacState is one goroutine's HMAC with its scratch buffers.
// crypto/hmac keeps the key's inner and outer pad states precomputed, so
// Reset costs no compression.
type hmacState struct {
	h    hash.Hash
	sum  []byte // the full digest
	num  []byte // decimal text of an integer
	out  []byte // hex pseudonym
	n    int64  // HMACs computed since the state was taken from the pool
	seen batchDedup
}

func (st *hmacState) appendPseudonym(dst, v []byte, n int) []byte {
	st.n++
	st.h.Reset()
	st.h.Write(v)
	st.sum = st.h.Sum(st.sum[:0])
	return hex.AppendEncode(dst, st.sum[:n])
}

// HasForm reports whether v is of a pseudonym's form: 2·bytes lowercase
// hex characters (the same for string and integer inputs).
func (t *pseudonymize) HasForm(v []byte) bool {
	if len(v) != 2*t.n {
		return false
	}
	ok := byte(1)
	for _, c := range v {
		ok &= lowerHex[c] // no branch per byte: deid verify checks every pseudonym
	}
	return ok == 1
}

// lowerHex is 1 for the lowercase hex characters, else 0.
var lowerHex = func() (t [256]byte) {
	for _, c := range "0123456789abcdef" {
		t[c] = 1
	}
	return t
}()

// Form describes a pseudonym's form, for messages.
func (t *pseudonymize) Form() string {
	return fmt.Sprintf("%d lowercase hex characters", 2*t.n)
}

func (t *pseudonymize) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("pseudonymize", in, KindString, KindInteger); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (t *pseudonymize) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := t.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	st := t.states.get()
	defer func() {
		t.hashes.Add(st.n)
		st.n = 0
		t.states.put(st)
	}()
	if k, _ := KindOf(in.DataType()); k == KindInteger {
		return t.applyIntegers(mem, in, st)
	}
	return t.applyStrings(mem, in, st)
}

// applyStrings hashes each distinct value of a batch once.
func (t *pseudonymize) applyStrings(mem memory.Allocator, in arrow.Array, st *hmacState) (arrow.Array, error) {
	if d, ok := in.(*array.Dictionary); ok {
		return viaDictionary(mem, d, func(dict arrow.Array) (arrow.Array, error) { return t.applyStrings(mem, dict, st) })
	}
	src, ok := newByteStrings(in)
	if !ok {
		return nil, fmt.Errorf("pseudonymize: %w %s", ErrUnsupportedType, in.DataType())
	}
	n := in.Len()
	b := newStringBuilder(mem, n, (n-in.NullN())*2*t.n)
	st.seen.reset(n)
	for i := 0; i < n; i++ {
		if in.IsNull(i) {
			b.appendNull()
			continue
		}
		v := src.at(i)
		if j := st.seen.find(i, maphash.Bytes(st.seen.seed, v), func(j int) bool { return string(src.at(j)) == string(v) }); j >= 0 {
			b.appendCopy(j)
			continue
		}
		b.appendMapped(func(dst, v []byte) ([]byte, bool) { return st.appendPseudonym(dst, v, t.n), true }, v)
	}
	return b.finish()
}

// applyIntegers hashes the decimal text of each distinct value once per batch.
func (t *pseudonymize) applyIntegers(mem memory.Allocator, in arrow.Array, st *hmacState) (arrow.Array, error) {
	if d, ok := in.(*array.Dictionary); ok {
		return viaDictionary(mem, d, func(dict arrow.Array) (arrow.Array, error) { return t.applyIntegers(mem, dict, st) })
	}
	b := newStringBuilder(mem, in.Len(), (in.Len()-in.NullN())*2*t.n)
	switch a := in.(type) {
	case *array.Int64:
		pseudonymizeInts(t, b, st, a, a.Int64Values())
	case *array.Int32:
		pseudonymizeInts(t, b, st, a, a.Int32Values())
	case *array.Int16:
		pseudonymizeInts(t, b, st, a, a.Int16Values())
	case *array.Int8:
		pseudonymizeInts(t, b, st, a, a.Int8Values())
	case *array.Uint64:
		pseudonymizeInts(t, b, st, a, a.Uint64Values())
	case *array.Uint32:
		pseudonymizeInts(t, b, st, a, a.Uint32Values())
	case *array.Uint16:
		pseudonymizeInts(t, b, st, a, a.Uint16Values())
	case *array.Uint8:
		pseudonymizeInts(t, b, st, a, a.Uint8Values())
	default:
		b.release()
		return nil, fmt.Errorf("pseudonymize: %w %s", ErrUnsupportedType, in.DataType())
	}
	return b.finish()
}

type integer interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// pseudonymizeInts appends P(decimal text of v) for every value of vals,
// hashing each distinct value once.
func pseudonymizeInts[T integer](t *pseudonymize, b *stringBuilder, st *hmacState, in arrow.Array, vals []T) {
	signed := T(0)-1 < 0
	st.seen.reset(len(vals))
	for i, v := range vals {
		if in.IsNull(i) {
			b.appendNull()
			continue
		}
		if j := st.seen.find(i, hashInt(uint64(v)), func(j int) bool { return vals[j] == v }); j >= 0 {
			b.appendCopy(j)
			continue
		}
		if signed {
			st.num = strconv.AppendInt(st.num[:0], int64(v), 10)
		} else {
			st.num = strconv.AppendUint(st.num[:0], uint64(v), 10)
		}
		st.out = st.appendPseudonym(st.out[:0], st.num, t.n)
		b.appendBytes(st.out)
	}
}
