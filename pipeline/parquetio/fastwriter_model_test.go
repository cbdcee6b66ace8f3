package parquetio

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
)

// This file is the FastPartWriter tests' model: batches are generated from
// Go values (nil for NULL; string for utf8 and binary, int32 for int32 and
// date32, int64 for int64 and timestamps, float32, float64, bool), and files
// are read back into the same form by readers that share no code with the
// writer.

// tcol is a test column: the schema's field type and whether batches bring
// Arrow dictionary arrays for it (0 never, 1 always, 2 at random).
type tcol struct {
	name     string
	typ      arrow.DataType
	dictArrs int
}

func (c tcol) valueType() arrow.DataType {
	if dt, ok := c.typ.(*arrow.DictionaryType); ok {
		return dt.ValueType
	}
	return c.typ
}

func tschema(cols []tcol) *arrow.Schema {
	fs := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fs[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
	}
	return arrow.NewSchema(fs, nil)
}

// tgen generates batches and their expected values.
type tgen struct {
	r      *rand.Rand
	mem    memory.Allocator
	pool   []string
	big    int // 1 MiB values still to generate
	shared map[string]arrow.Array
	// noNullEntries: dictionaries have no NULL entry (arrow cannot write one)
	noNullEntries bool
	// tame: timestamps and dates DuckDB can convert, valid UTF-8 only
	tame bool
}

func newTgen(seed uint64, mem memory.Allocator, tame ...bool) *tgen {
	g := &tgen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), mem: mem, shared: map[string]arrow.Array{}}
	g.tame = len(tame) > 0 && tame[0]
	g.pool = []string{"", "杭州市", "延边朝鲜族自治州", "\xff\xfe\xfd", "a\x00b", "zzzz", "A", "a"}
	if g.tame {
		g.pool[3] = "\u00ff"
	}
	for len(g.pool) < 120 {
		g.pool = append(g.pool, fmt.Sprintf("v%03d-%x", len(g.pool), g.r.Uint32()))
	}
	return g
}

func (g *tgen) release() {
	for _, a := range g.shared {
		a.Release()
	}
}

func (g *tgen) randString() string {
	switch x := g.r.IntN(100); {
	case x < 60:
		return g.pool[g.r.IntN(len(g.pool))]
	case x < 90 || g.big == 0:
		b := make([]byte, g.r.IntN(40))
		for i := range b {
			b[i] = byte(g.r.Uint32()) // invalid UTF-8 included
			if g.tame {
				b[i] = 'a' + b[i]%26
			}
		}
		return string(b)
	}
	g.big--
	return strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
}

var (
	specialInts   = []int64{math.MinInt64, math.MaxInt64, 0, -1, 1, math.MinInt32, math.MaxInt32}
	specialFloats = []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, math.MaxFloat64,
		-math.MaxFloat64, math.SmallestNonzeroFloat64, math.Float64frombits(0x7ff8000000000001)}
	specialFloat32s = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.Copysign(0, -1)), 0, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32}
)

// value returns a random non-null value of Arrow type dt.
func (g *tgen) value(dt arrow.DataType) any {
	r := g.r
	x := r.IntN(100)
	switch dt.ID() {
	case arrow.STRING, arrow.BINARY:
		return g.randString()
	case arrow.DATE32, arrow.TIMESTAMP:
		if g.tame {
			if dt.ID() == arrow.DATE32 {
				return int32(r.IntN(100_000) - 50_000)
			}
			return int64(r.IntN(2e12) - 1e12)
		}
	}
	switch dt.ID() {
	case arrow.INT32, arrow.DATE32:
		switch {
		case x < 10:
			return int32(specialInts[r.IntN(len(specialInts))])
		case x < 50:
			return int32(r.IntN(50) - 25)
		}
		return int32(r.Uint32())
	case arrow.INT64, arrow.TIMESTAMP:
		switch {
		case x < 10:
			return specialInts[r.IntN(len(specialInts))]
		case x < 50:
			return int64(r.IntN(50)) * 3_600_000
		}
		return int64(r.Uint64())
	case arrow.FLOAT32:
		switch {
		case x < 15:
			return specialFloat32s[r.IntN(len(specialFloat32s))]
		case x < 50:
			return float32(r.IntN(100)) / 4
		}
		return float32(r.NormFloat64() * 1e6)
	case arrow.FLOAT64:
		switch {
		case x < 15:
			return specialFloats[r.IntN(len(specialFloats))]
		case x < 50:
			return float64(r.IntN(3000)) / 100
		}
		return r.NormFloat64() * 1e9
	case arrow.BOOL:
		return x < 30
	}
	panic(dt)
}

// nullRate picks a batch's NULL pattern: none, all, or a random share.
func (g *tgen) nullRate() float64 {
	switch g.r.IntN(6) {
	case 0, 1, 2:
		return 0
	case 3:
		return 1
	}
	return g.r.Float64() * 0.6
}

func buildArray(mem memory.Allocator, dt arrow.DataType, vals []any) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for _, v := range vals {
		if v == nil {
			b.AppendNull()
			continue
		}
		switch b := b.(type) {
		case *array.StringBuilder:
			b.Append(v.(string))
		case *array.BinaryBuilder:
			b.Append([]byte(v.(string)))
		case *array.Int32Builder:
			b.Append(v.(int32))
		case *array.Date32Builder:
			b.Append(arrow.Date32(v.(int32)))
		case *array.Int64Builder:
			b.Append(v.(int64))
		case *array.TimestampBuilder:
			b.Append(arrow.Timestamp(v.(int64)))
		case *array.Float32Builder:
			b.Append(v.(float32))
		case *array.Float64Builder:
			b.Append(v.(float64))
		case *array.BooleanBuilder:
			b.Append(v.(bool))
		default:
			panic(fmt.Sprintf("builder %T", b))
		}
	}
	return b.NewArray()
}

// sliced builds vals as a slice of a longer array half of the time, so that
// arrays with offsets are written too.
func (g *tgen) sliced(build func([]any) arrow.Array, vals []any, filler func() any) arrow.Array {
	if g.r.IntN(2) == 0 {
		return build(vals)
	}
	pre, post := g.r.IntN(9), g.r.IntN(5)
	all := make([]any, 0, pre+len(vals)+post)
	for i := 0; i < pre; i++ {
		all = append(all, filler())
	}
	all = append(all, vals...)
	for i := 0; i < post; i++ {
		all = append(all, filler())
	}
	whole := build(all)
	defer whole.Release()
	return array.NewSlice(whole, int64(pre), int64(pre+len(vals)))
}

func (g *tgen) denseColumn(c tcol, n int) (arrow.Array, []any) {
	dt := c.valueType()
	rate := g.nullRate()
	vals := make([]any, n)
	for i := range vals {
		if rate == 0 || g.r.Float64() >= rate {
			vals[i] = g.value(dt)
		}
	}
	filler := func() any { // sliced away: no 1 MiB value
		if g.r.IntN(3) == 0 {
			return nil
		}
		big := g.big
		g.big = 0
		defer func() { g.big = big }()
		return g.value(dt)
	}
	return g.sliced(func(v []any) arrow.Array { return buildArray(g.mem, dt, v) }, vals, filler), vals
}

// dictionary returns a dictionary for column c: the column's shared object,
// a copy of it, or a fresh one, some with a NULL entry.
func (g *tgen) dictionary(c tcol) arrow.Array {
	dt := c.valueType()
	fresh := func(n int) arrow.Array {
		big := g.big
		g.big = 0 // 1 MiB values go to dense arrays
		defer func() { g.big = big }()
		seen := map[string]bool{}
		var vals []any
		for len(vals) < n {
			s := g.randString()
			if len(s) > 100 || seen[s] {
				continue
			}
			seen[s] = true
			vals = append(vals, s)
		}
		if !g.noNullEntries && g.r.IntN(4) == 0 {
			vals[g.r.IntN(len(vals))] = nil // a NULL entry
		}
		return buildArray(g.mem, dt, vals)
	}
	sh, ok := g.shared[c.name]
	if !ok {
		sh = fresh(90)
		g.shared[c.name] = sh
	}
	switch x := g.r.IntN(10); {
	case x < 5:
		sh.Retain()
		return sh
	case x < 7: // equal contents, another object
		return buildArray(g.mem, dt, arrowValues(sh))
	}
	return fresh(1 + g.r.IntN(110))
}

func appendIndex(b array.Builder, k int) {
	switch b := b.(type) {
	case *array.Int8Builder:
		b.Append(int8(k))
	case *array.Int16Builder:
		b.Append(int16(k))
	case *array.Uint16Builder:
		b.Append(uint16(k))
	case *array.Int32Builder:
		b.Append(int32(k))
	case *array.Uint32Builder:
		b.Append(uint32(k))
	case *array.Int64Builder:
		b.Append(int64(k))
	default:
		panic(fmt.Sprintf("index builder %T", b))
	}
}

func (g *tgen) dictColumn(c tcol, n int) (arrow.Array, []any) {
	dict := g.dictionary(c)
	defer dict.Release()
	entries := arrowValues(dict)
	idxType := arrow.DataType(arrow.PrimitiveTypes.Int32)
	if dt, ok := c.typ.(*arrow.DictionaryType); ok {
		idxType = dt.IndexType
	} else {
		idxType = []arrow.DataType{arrow.PrimitiveTypes.Int32, arrow.PrimitiveTypes.Int16, arrow.PrimitiveTypes.Uint32,
			arrow.PrimitiveTypes.Int64}[g.r.IntN(4)]
	}
	// values reference a part of the dictionary only
	used := 1 + g.r.IntN(len(entries))
	rate := g.nullRate()
	keys := make([]any, n) // entry index or nil
	vals := make([]any, n)
	for i := range keys {
		if rate == 0 || g.r.Float64() >= rate {
			k := g.r.IntN(used)
			keys[i], vals[i] = k, entries[k]
		}
	}
	build := func(ks []any) arrow.Array {
		ib := array.NewBuilder(g.mem, idxType)
		defer ib.Release()
		for _, k := range ks {
			if k == nil {
				ib.AppendNull()
			} else {
				appendIndex(ib, k.(int))
			}
		}
		idx := ib.NewArray()
		defer idx.Release()
		return array.NewDictionaryArray(&arrow.DictionaryType{IndexType: idxType, ValueType: c.valueType()}, idx, dict)
	}
	return g.sliced(build, keys, func() any { return g.r.IntN(used) }), vals
}

// batch returns a record batch of n rows and its columns' expected values.
func (g *tgen) batch(cols []tcol, n int) (arrow.RecordBatch, [][]any) {
	arrs := make([]arrow.Array, len(cols))
	vals := make([][]any, len(cols))
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		if c.dictArrs == 1 || c.dictArrs == 2 && g.r.IntN(2) == 0 {
			arrs[i], vals[i] = g.dictColumn(c, n)
		} else {
			arrs[i], vals[i] = g.denseColumn(c, n)
		}
		fields[i] = arrow.Field{Name: c.name, Type: arrs[i].DataType(), Nullable: true}
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, int64(n))
	for _, a := range arrs {
		a.Release()
	}
	return rec, vals
}

// arrowValues converts an Arrow array to model values.
func arrowValues(arr arrow.Array) []any {
	out := make([]any, arr.Len())
	if d, ok := arr.(*array.Dictionary); ok {
		dict := arrowValues(d.Dictionary())
		for i := range out {
			if d.IsValid(i) {
				out[i] = dict[d.GetValueIndex(i)]
			}
		}
		return out
	}
	for i := range out {
		if arr.IsNull(i) {
			continue
		}
		switch a := arr.(type) {
		case *array.String:
			out[i] = strings.Clone(a.Value(i))
		case *array.Binary:
			out[i] = string(a.Value(i))
		case *array.Int32:
			out[i] = a.Value(i)
		case *array.Date32:
			out[i] = int32(a.Value(i))
		case *array.Int64:
			out[i] = a.Value(i)
		case *array.Timestamp:
			out[i] = int64(a.Value(i))
		case *array.Float32:
			out[i] = a.Value(i)
		case *array.Float64:
			out[i] = a.Value(i)
		case *array.Boolean:
			out[i] = a.Value(i)
		default:
			panic(fmt.Sprintf("array %T", a))
		}
	}
	return out
}

// readOurs reads every column of a file with deid's reader (page CRCs
// verified), the byte-array columns as Arrow dictionaries when asDict.
func readOurs(t testing.TB, mem memory.Allocator, path string, asDict bool) (*arrow.Schema, [][]any) {
	t.Helper()
	f, err := openPath(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := f.Schema().NumFields()
	cols := make([]int, n)
	dict := map[int]bool{}
	for i := range cols {
		cols[i] = i
		if asDict && f.Schema().Field(i).Type.ID() == arrow.STRING || asDict && f.Schema().Field(i).Type.ID() == arrow.BINARY {
			dict[i] = true
		}
	}
	out := make([][]any, n)
	for rg := 0; rg < f.NumRowGroups(); rg++ {
		err := f.ReadRowGroup(context.Background(), rg, ReadOptions{Columns: cols, BatchSize: 777, Dictionary: dict},
			func(rec arrow.RecordBatch) error {
				for j := 0; j < n; j++ {
					out[j] = append(out[j], arrowValues(rec.Column(j))...)
				}
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
	return f.Schema(), out
}

// readParquetGo reads every column of a Parquet file with parquet-go, which
// also verifies page CRCs.
func readParquetGo(t testing.TB, data []byte, types []arrow.DataType) [][]any {
	t.Helper()
	pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]any, len(types))
	buf := make([]parquet.Row, 100)
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				if len(row) != len(types) {
					t.Fatalf("parquet-go row of %d values", len(row))
				}
				for _, v := range row {
					c := v.Column()
					out[c] = append(out[c], parquetGoValue(v, types[c]))
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rows.Close()
	}
	return out
}

func parquetGoValue(v parquet.Value, dt arrow.DataType) any {
	if v.IsNull() {
		return nil
	}
	if d, ok := dt.(*arrow.DictionaryType); ok {
		dt = d.ValueType
	}
	switch dt.ID() {
	case arrow.STRING, arrow.BINARY:
		return string(v.ByteArray())
	case arrow.INT32, arrow.DATE32:
		return v.Int32()
	case arrow.INT64, arrow.TIMESTAMP:
		return v.Int64()
	case arrow.FLOAT32:
		return v.Float()
	case arrow.FLOAT64:
		return v.Double()
	case arrow.BOOL:
		return v.Boolean()
	}
	panic(dt)
}

func sameValue(a, b any) bool {
	switch a := a.(type) {
	case float32:
		b, ok := b.(float32)
		return ok && math.Float32bits(a) == math.Float32bits(b)
	case float64:
		b, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(b)
	}
	return a == b
}

func show(v any) string {
	if s, ok := v.(string); ok && len(s) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", s[:40], len(s))
	}
	return fmt.Sprintf("%#v", v)
}

// compareColumns reports the first difference of every column.
func compareColumns(t testing.TB, what string, names []string, want, got [][]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d columns, want %d", what, len(got), len(want))
	}
	for j := range want {
		if len(got[j]) != len(want[j]) {
			t.Errorf("%s: column %s: %d values, want %d", what, names[j], len(got[j]), len(want[j]))
			continue
		}
		for i := range want[j] {
			if !sameValue(want[j][i], got[j][i]) {
				t.Errorf("%s: column %s row %d: got %s, want %s", what, names[j], i, show(got[j][i]), show(want[j][i]))
				break
			}
		}
	}
}

// expectStats computes a chunk's statistics from its values: null count and,
// unless every value is NULL (or NaN), min and max encoded as Parquet
// stores them.
func expectStats(vals []any) (nulls int64, mn, mx []byte, has bool) {
	var lo, hi any
	less := func(a, b any) bool {
		switch a := a.(type) {
		case string:
			return a < b.(string) // Go compares strings bytewise, unsigned
		case int32:
			return a < b.(int32)
		case int64:
			return a < b.(int64)
		case float32:
			return a < b.(float32)
		case float64:
			return a < b.(float64)
		case bool:
			return !a && b.(bool)
		}
		panic(a)
	}
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			nulls++
			continue
		case float32:
			if x != x {
				continue
			}
		case float64:
			if x != x {
				continue
			}
		}
		if lo == nil || less(v, lo) {
			lo = v
		}
		if hi == nil || less(hi, v) {
			hi = v
		}
	}
	if lo == nil {
		return nulls, nil, nil, false
	}
	enc := func(v any, isMax bool) []byte {
		switch v := v.(type) {
		case string:
			return []byte(v)
		case int32:
			return binary.LittleEndian.AppendUint32(nil, uint32(v))
		case int64:
			return binary.LittleEndian.AppendUint64(nil, uint64(v))
		case float32:
			if v == 0 && isMax {
				v = 0
			} else if v == 0 {
				v = float32(math.Copysign(0, -1))
			}
			return binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))
		case float64:
			if v == 0 && isMax {
				v = 0
			} else if v == 0 {
				v = math.Copysign(0, -1)
			}
			return binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))
		case bool:
			if v {
				return []byte{1}
			}
			return []byte{0}
		}
		panic(v)
	}
	return nulls, enc(lo, false), enc(hi, true), true
}
