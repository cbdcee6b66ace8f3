package transforms

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// shiftDomain separates shift_date's HMAC inputs from pseudonymize's: the
// same key and subject never give a pseudonym and a shift from one digest.
var shiftDomain = []byte("deid shift_date v1")

var shiftDateSpec = &Spec{
	Name: "shift_date",
	Summary: "move every date and timestamp of one data subject by the same whole number of days, " +
		"between -max_days and +max_days and never 0, derived from the destination key and the row's subject " +
		"(HMAC-SHA256(key, \"deid shift_date v1\" + subject); integer subjects as decimal text): intervals " +
		"between one subject's events are kept exactly; a NULL subject, or a result outside the type's range, gives NULL",
	Inputs: []Kind{KindDate, KindTimestamp},
	Params: []ParamSpec{{Name: "max_days", Kind: ParamInt, Default: int64(30), Min: 1, Max: 3650,
		Doc: "largest shift in days, either way"}},
	Keyed:   true,
	Subject: true,
	Result:  ResultGeneralized,
	Example: "2026-10-31 of subject 1000000000 → 2026-10-15 (key 000102…1f: shift -16 days)",
	New:     newShiftDate,
	Describe: func(p Params) string {
		return fmt.Sprintf("date shifted by a per-subject keyed number of days in [-%d, +%d] (never 0): "+
			"intervals within one subject are exact, absolute dates are off by up to %d days", p.Int("max_days"), p.Int("max_days"), p.Int("max_days"))
	},
}

func newShiftDate(p Params, env Env) (Transform, error) {
	if len(env.Key) == 0 {
		return nil, errNoKey
	}
	return &shiftDate{max: p.Int("max_days"), states: newStatePool(env.Key)}, nil
}

type shiftDate struct {
	max    int64
	states *statePool
	hashes atomic.Int64 // HMACs computed, for tests of the once-per-subject promise
}

func (t *shiftDate) OutputType(in arrow.DataType) (arrow.DataType, error) {
	switch in.(type) {
	case *arrow.Date32Type, *arrow.TimestampType:
		return in, nil
	}
	return nil, fmt.Errorf("shift_date: %w %s (takes date32 or timestamp)", ErrUnsupportedType, in)
}

// Apply fails: the shift depends on the row's subject (see ApplySubject).
func (t *shiftDate) Apply(memory.Allocator, arrow.Array) (arrow.Array, error) {
	return nil, fmt.Errorf("shift_date: %w: the pipeline must call ApplySubject", ErrNeedsSubject)
}

// offset returns the shift for the subject whose bytes are s: the first 8
// bytes of the digest, big-endian, modulo 2·max, mapped onto
// [-max, -1] ∪ [1, max]. The modulo's bias is below 2^-50.
func (t *shiftDate) offset(st *hmacState, s []byte) int32 {
	st.n++
	st.h.Reset()
	st.h.Write(shiftDomain)
	st.h.Write(s)
	st.sum = st.h.Sum(st.sum[:0])
	k := int64(binary.BigEndian.Uint64(st.sum[:8]) % uint64(2*t.max))
	if k < t.max {
		return int32(k - t.max)
	}
	return int32(k - t.max + 1)
}

// ApplySubject shifts each value by its subject's offset.
func (t *shiftDate) ApplySubject(mem memory.Allocator, in, subject arrow.Array) (arrow.Array, error) {
	outType, err := t.OutputType(in.DataType())
	if err != nil {
		return nil, err
	}
	if subject == nil || subject.Len() != in.Len() {
		n := -1
		if subject != nil {
			n = subject.Len()
		}
		return nil, fmt.Errorf("shift_date: %w: %d subjects for %d values", ErrNeedsSubject, n, in.Len())
	}
	st := t.states.get()
	defer func() {
		t.hashes.Add(st.n)
		st.n = 0
		t.states.put(st)
	}()
	offs := make([]int32, in.Len()) // 0: NULL subject (a shift is never 0)
	if err := t.subjectOffsets(st, subject, offs); err != nil {
		return nil, err
	}
	n := in.Len()
	switch a := in.(type) {
	case *array.Date32:
		out := newFixedOut(mem, n, arrow.Date32SizeBytes)
		dst := arrow.Date32Traits.CastFromBytes(out.vals.Bytes())
		for i, v := range a.Date32Values() {
			if offs[i] == 0 || a.IsNull(i) {
				continue
			}
			s := int64(v) + int64(offs[i])
			if s < math.MinInt32 || s > math.MaxInt32 {
				continue
			}
			dst[i] = arrow.Date32(s)
			out.set(i)
		}
		return out.finish(outType), nil
	case *array.Timestamp:
		day := ticksPerDay(outType.(*arrow.TimestampType).Unit)
		out := newFixedOut(mem, n, arrow.TimestampSizeBytes)
		dst := arrow.TimestampTraits.CastFromBytes(out.vals.Bytes())
		for i, v := range a.TimestampValues() {
			if offs[i] == 0 || a.IsNull(i) {
				continue
			}
			d := int64(offs[i]) * day // |d| ≤ 3650 days of nanoseconds < 2^59
			if (d > 0 && int64(v) > math.MaxInt64-d) || (d < 0 && int64(v) < math.MinInt64-d) {
				continue
			}
			dst[i] = arrow.Timestamp(int64(v) + d)
			out.set(i)
		}
		return out.finish(outType), nil
	}
	return nil, fmt.Errorf("shift_date: %w %s", ErrUnsupportedType, in.DataType())
}

// subjectOffsets fills offs with each row's shift, 0 for a NULL subject,
// hashing each distinct subject of the batch (or dictionary entry) once.
func (t *shiftDate) subjectOffsets(st *hmacState, subject arrow.Array, offs []int32) error {
	if d, ok := subject.(*array.Dictionary); ok {
		dictOffs := make([]int32, d.Dictionary().Len())
		if err := t.subjectOffsets(st, d.Dictionary(), dictOffs); err != nil {
			return err
		}
		for i := range offs {
			if d.IsNull(i) {
				continue
			}
			j := d.GetValueIndex(i)
			if j < 0 || j >= len(dictOffs) {
				return fmt.Errorf("shift_date: subject dictionary index %d out of range [0, %d)", j, len(dictOffs))
			}
			offs[i] = dictOffs[j]
		}
		return nil
	}
	if src, ok := newByteStrings(subject); ok {
		seen := make(map[string]int32, min(len(offs), 4096))
		for i := range offs {
			if subject.IsNull(i) {
				continue
			}
			v := src.at(i)
			key := unsafeString(v) // aliases the subject's buffer, which outlives the map
			o, ok := seen[key]
			if !ok {
				o = t.offset(st, v)
				seen[key] = o
			}
			offs[i] = o
		}
		return nil
	}
	switch a := subject.(type) {
	case *array.Int64:
		shiftSubjects(t, st, a, a.Int64Values(), offs)
	case *array.Int32:
		shiftSubjects(t, st, a, a.Int32Values(), offs)
	case *array.Int16:
		shiftSubjects(t, st, a, a.Int16Values(), offs)
	case *array.Int8:
		shiftSubjects(t, st, a, a.Int8Values(), offs)
	case *array.Uint64:
		shiftSubjects(t, st, a, a.Uint64Values(), offs)
	case *array.Uint32:
		shiftSubjects(t, st, a, a.Uint32Values(), offs)
	case *array.Uint16:
		shiftSubjects(t, st, a, a.Uint16Values(), offs)
	case *array.Uint8:
		shiftSubjects(t, st, a, a.Uint8Values(), offs)
	default:
		return fmt.Errorf("shift_date: %w: subject column is %s, not an integer or string", ErrNeedsSubject, subject.DataType())
	}
	return nil
}

// shiftSubjects computes the offsets of integer subjects, hashed as their
// decimal text as pseudonymize hashes them.
func shiftSubjects[T integer](t *shiftDate, st *hmacState, subject arrow.Array, vals []T, offs []int32) {
	signed := T(0)-1 < 0
	seen := make(map[T]int32, min(len(vals), 4096))
	for i, v := range vals {
		if subject.IsNull(i) {
			continue
		}
		o, ok := seen[v]
		if !ok {
			if signed {
				st.num = strconv.AppendInt(st.num[:0], int64(v), 10)
			} else {
				st.num = strconv.AppendUint(st.num[:0], uint64(v), 10)
			}
			o = t.offset(st, st.num)
			seen[v] = o
		}
		offs[i] = o
	}
}
