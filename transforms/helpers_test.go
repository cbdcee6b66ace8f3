package transforms

import (
	"encoding/hex"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// benchKey is the key of WORKLOAD.md's test vectors: 000102…1e1f.
var benchKey, _ = hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")

// checkedMem returns an allocator that fails the test if any Arrow memory is
// still allocated when the test ends.
func checkedMem(t testing.TB) *memory.CheckedAllocator {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func sp(s string) *string { return &s }

// stringArray builds a utf8 array; nil entries are NULL.
func stringArray(mem memory.Allocator, vals []*string) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else {
			b.Append(*v)
		}
	}
	return b.NewArray()
}

// dictStringArray builds the same values dictionary-encoded (int32 indices).
func dictStringArray(t testing.TB, mem memory.Allocator, vals []*string) arrow.Array {
	t.Helper()
	dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	b := array.NewDictionaryBuilder(mem, dt).(*array.BinaryDictionaryBuilder)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
		} else if err := b.AppendString(*v); err != nil {
			t.Fatal(err)
		}
	}
	return b.NewArray()
}

// strings reads a string-like array back; NULL becomes nil.
func readStrings(t testing.TB, a arrow.Array) []*string {
	t.Helper()
	out := make([]*string, a.Len())
	for i := range out {
		if a.IsNull(i) {
			continue
		}
		switch a := a.(type) {
		case *array.String:
			out[i] = sp(a.Value(i))
		case *array.Dictionary:
			out[i] = sp(a.Dictionary().(*array.String).Value(a.GetValueIndex(i)))
		default:
			t.Fatalf("readStrings: %T", a)
		}
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return "<NULL>"
	}
	return *s
}

// bind returns the registered transform name bound to params, the bench key
// and the suite's reference instant (conformanceNow).
func bind(t testing.TB, name string, params map[string]any) Transform {
	t.Helper()
	spec, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := spec.Bind(params, conformanceEnv)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// applyStrings runs tr on vals as a plain and as a dictionary array, checks
// that both give the same result, and returns it.
func applyStrings(t testing.TB, mem memory.Allocator, tr Transform, vals []*string) []*string {
	t.Helper()
	var results [2][]*string
	for k, mk := range []func() arrow.Array{
		func() arrow.Array { return stringArray(mem, vals) },
		func() arrow.Array { return dictStringArray(t, mem, vals) },
	} {
		in := mk()
		out, err := tr.Apply(mem, in)
		if err != nil {
			in.Release()
			t.Fatal(err)
		}
		if out.Len() != in.Len() {
			t.Fatalf("output length %d, input %d", out.Len(), in.Len())
		}
		if v, ok := out.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				t.Fatalf("output array invalid: %v", err)
			}
		}
		results[k] = readStrings(t, out)
		out.Release()
		in.Release()
	}
	for i := range vals {
		if deref(results[0][i]) != deref(results[1][i]) || (results[0][i] == nil) != (results[1][i] == nil) {
			t.Fatalf("value %q: plain input gives %q, dictionary input %q", deref(vals[i]), deref(results[0][i]), deref(results[1][i]))
		}
	}
	return results[0]
}
