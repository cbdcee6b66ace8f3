package transforms

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// conformanceParams gives the parameters a transform needs for the
// conformance suite when its defaults do not suffice.
var conformanceParams = map[string]map[string]any{
	"scrub":  {"detectors": []string{"email_bench", "phone_bench"}},
	"bucket": {"bounds": []float64{0, 100, 500}},
}

// conformanceNow is the run's reference instant in the suite.
var conformanceNow = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// conformanceEnv is what the suite binds every transform with.
var conformanceEnv = Env{Key: benchKey, Now: conformanceNow}

// sampleInputs builds one array per kind, each with NULLs, for the suite.
func sampleInputs(t *testing.T, mem memory.Allocator) map[string]arrow.Array {
	vals := append(edgeStrings(), sp("13800138000"), nil, sp("2408:8207:1851::1"), sp("11010519491231002X"),
		sp("广东省深圳市南山区科技园路1号"))
	ints := array.NewInt64Builder(mem)
	ints.AppendValues([]int64{1000000000, 0, -42, 7}, []bool{true, false, true, true})
	floats := array.NewFloat64Builder(mem)
	floats.AppendValues([]float64{116.405285, 0, -0.005}, []bool{true, false, true})
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"})
	ts.AppendValues([]arrow.Timestamp{1761955200123, 0, -1}, []bool{true, false, true})
	dates := array.NewDate32Builder(mem)
	dates.AppendValues([]arrow.Date32{7304, 0, -25567, 20758}, []bool{true, false, true, true})
	decs := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 12, Scale: 2})
	decs.AppendValues([]decimal128.Num{decimal128.FromI64(12850), decimal128.FromI64(0), decimal128.FromI64(-1)},
		[]bool{true, false, true})
	defer ints.Release()
	defer floats.Release()
	defer ts.Release()
	defer dates.Release()
	defer decs.Release()
	return map[string]arrow.Array{
		"string":      stringArray(mem, vals),
		"dict string": dictStringArray(t, mem, vals),
		"int64":       ints.NewArray(),
		"float64":     floats.NewArray(),
		"timestamp":   ts.NewArray(),
		"date32":      dates.NewArray(),
		"decimal128":  decs.NewArray(),
	}
}

// subjectsFor builds a subject column for n rows: integer ids, one of them
// NULL, some repeated.
func subjectsFor(mem memory.Allocator, n int) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	for i := 0; i < n; i++ {
		if i == 1 {
			b.AppendNull()
			continue
		}
		b.Append(int64(1_000_000_000 + i%3))
	}
	return b.NewArray()
}

// apply runs tr on in, through ApplySubject with the given subjects when tr
// is SubjectAware.
func apply(t *testing.T, tr Transform, mem memory.Allocator, in, subject arrow.Array) arrow.Array {
	t.Helper()
	if sa, ok := tr.(SubjectAware); ok {
		out, err := sa.ApplySubject(mem, in, subject)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	return mustApply(t, tr, mem, in)
}

// TestConformance checks the Transform contract for every registered
// transform on every input kind it accepts: declared output type, same
// length, NULL in gives NULL out, determinism, and no leaked Arrow memory.
// SubjectAware transforms are run through ApplySubject (a NULL subject must
// give NULL), and their Apply must refuse to work without a subject.
func TestConformance(t *testing.T) {
	for _, spec := range Registry() {
		t.Run(spec.Name, func(t *testing.T) {
			if spec.Summary == "" || spec.Example == "" || spec.Describe == nil {
				t.Errorf("registry entry lacks summary, example or description")
			}
			if spec.Drops {
				if spec.New != nil || spec.Result != ResultRemoved {
					t.Errorf("a dropping transform has a constructor or does not report removal")
				}
				return
			}
			mem := checkedMem(t)
			tr, params, err := spec.Bind(conformanceParams[spec.Name], conformanceEnv)
			if err != nil {
				t.Fatal(err)
			}
			if spec.Describe(params) == "" {
				t.Error("empty description")
			}
			if _, ok := tr.(SubjectAware); ok != spec.Subject {
				t.Errorf("implements SubjectAware: %v, but the spec's Subject is %v", ok, spec.Subject)
			}
			if spec.Keyed {
				if _, _, err := spec.Bind(conformanceParams[spec.Name], Env{Now: conformanceNow}); err == nil {
					t.Error("a keyed transform bound without a key")
				}
			}
			inputs := sampleInputs(t, mem)
			defer func() {
				for _, a := range inputs {
					a.Release()
				}
			}()
			accepted := 0
			for name, in := range inputs {
				outType, err := tr.OutputType(in.DataType())
				kind, _ := KindOf(in.DataType())
				if !accepts(spec, kind) {
					if err == nil {
						t.Errorf("%s: accepted %s, which its spec does not list", name, in.DataType())
					}
					continue
				}
				if err != nil {
					if name == "dict string" && spec.Name == "round" {
						continue
					}
					t.Errorf("%s: %v", name, err)
					continue
				}
				accepted++
				subject := subjectsFor(mem, in.Len())
				if _, ok := tr.(SubjectAware); ok {
					if out, err := tr.Apply(mem, in); !errors.Is(err, ErrNeedsSubject) {
						t.Errorf("%s: Apply without a subject gave %v", name, err)
						if out != nil {
							out.Release()
						}
					}
				}
				first := apply(t, tr, mem, in, subject)
				second := apply(t, tr, mem, in, subject)
				if !arrow.TypeEqual(first.DataType(), outType) {
					t.Errorf("%s: output type %s, OutputType said %s", name, first.DataType(), outType)
				}
				if first.Len() != in.Len() {
					t.Errorf("%s: %d values out of %d", name, first.Len(), in.Len())
				}
				for i := 0; i < in.Len(); i++ {
					if in.IsNull(i) && !first.IsNull(i) {
						t.Errorf("%s: NULL at %d became a value", name, i)
					}
					if spec.Subject && subject.IsNull(i) && !first.IsNull(i) {
						t.Errorf("%s: a value with a NULL subject at %d was not NULL", name, i)
					}
				}
				subject.Release()
				if !array.Equal(first, second) {
					t.Errorf("%s: two applications differ", name)
				}
				first.Release()
				second.Release()
			}
			if accepted == 0 {
				t.Error("accepted none of the sample inputs")
			}
		})
	}
}

func accepts(spec *Spec, k Kind) bool {
	if len(spec.Inputs) == 0 {
		return true
	}
	for _, in := range spec.Inputs {
		if in == k {
			return true
		}
	}
	return false
}

// TestRemovedResultsHoldNoInput: the transforms that report ResultRemoved
// but keep the column leave no input value in it.
func TestRemovedResultsHoldNoInput(t *testing.T) {
	mem := checkedMem(t)
	inputs := sampleInputs(t, mem)
	defer func() {
		for _, a := range inputs {
			a.Release()
		}
	}()
	in := inputs["string"].(*array.String)
	for _, spec := range Registry() {
		if spec.Drops || spec.Result != ResultRemoved {
			continue
		}
		tr, _, err := spec.Bind(conformanceParams[spec.Name], conformanceEnv)
		if err != nil {
			t.Fatal(err)
		}
		out := mustApply(t, tr, mem, in)
		got := readStrings(t, out)
		out.Release()
		for i := 0; i < in.Len(); i++ {
			if in.IsNull(i) || len(in.Value(i)) < 2 || got[i] == nil {
				continue
			}
			if strings.Contains(*got[i], in.Value(i)) {
				t.Errorf("%s: output %.40q holds the input %.40q", spec.Name, *got[i], in.Value(i))
			}
		}
	}
}

func mustApply(t *testing.T, tr Transform, mem memory.Allocator, in arrow.Array) arrow.Array {
	t.Helper()
	out, err := tr.Apply(mem, in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRemovalTransformsLeaveNoInput checks, for the transforms that promise to
// remove an identifier, that no input value survives as a substring of the
// output.
func TestRemovalTransformsLeaveNoInput(t *testing.T) {
	mem := checkedMem(t)
	ids := []*string{sp("867365051234648"), sp("13800138000"), sp("00000000-0000-0000-0000-000000000000"), sp("张三丰收")}
	out := applyStrings(t, mem, bind(t, "pseudonymize", nil), ids)
	for i, id := range ids {
		if strings.Contains(*out[i], *id) {
			t.Errorf("pseudonym %q contains the raw value %q", *out[i], *id)
		}
	}
	texts := []*string{sp("请联系13800138000或a.b@qq.com")}
	out = applyStrings(t, mem, bind(t, "scrub", conformanceParams["scrub"]), texts)
	for _, raw := range []string{"13800138000", "a.b@qq.com"} {
		if strings.Contains(*out[0], raw) {
			t.Errorf("scrubbed text %q still holds %q", *out[0], raw)
		}
	}
}
