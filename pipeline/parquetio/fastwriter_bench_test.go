package parquetio

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func newRecord(sch *arrow.Schema, cols []arrow.Array, rows int64) arrow.RecordBatch {
	return array.NewRecordBatch(sch, cols, rows)
}

// browsingBatches builds a browsing-like table as deid outputs it: unique
// event ids, user pseudonyms (about 20K distinct), device pseudonyms as
// dictionary arrays sharing one 25K-entry dictionary, urls (about 50K
// distinct), hour-truncated event times, coordinates with 2 decimals (20%
// NULL) and cities as a dictionary of 321. dict is what WantsDictionary
// chooses from the first batch.
func browsingBatches(mem memory.Allocator, rows, batchRows int, seed uint64) (*arrow.Schema, []arrow.RecordBatch, map[string]bool) {
	r := rand.New(rand.NewPCG(seed, 0xb20))
	hex32 := func() string { return fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()) }
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	sch := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "device_id", Type: dictType, Nullable: true},
		{Name: "url", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_time", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "lat", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "lon", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "city", Type: dictType, Nullable: true},
	}, nil)
	users := make([]string, 20_000)
	for i := range users {
		users[i] = hex32()
	}
	urls := make([]string, 50_000)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://item.example.com/item.htm?id=%d&spm=a%d.%d", 500_000_000+r.IntN(1e8), r.IntN(10000), r.IntN(100))
	}
	stringArray := func(vals []string) arrow.Array {
		b := array.NewStringBuilder(mem)
		defer b.Release()
		b.AppendValues(vals, nil)
		return b.NewArray()
	}
	devVals := make([]string, 25_000)
	for i := range devVals {
		devVals[i] = hex32()
	}
	devices := stringArray(devVals)
	defer devices.Release()
	cityVals := make([]string, 321)
	for i := range cityVals {
		cityVals[i] = fmt.Sprintf("城市%03d市", i)
	}
	cities := stringArray(cityVals)
	defer cities.Release()
	const start = 1667260800000 // 2022-11-01T00:00:00Z
	var recs []arrow.RecordBatch
	for done := 0; done < rows; done += batchRows {
		n := min(batchRows, rows-done)
		b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{
			{Name: "event_id", Type: arrow.BinaryTypes.String}, {Name: "user_id", Type: arrow.BinaryTypes.String},
			{Name: "device_idx", Type: arrow.PrimitiveTypes.Int32}, {Name: "url", Type: arrow.BinaryTypes.String},
			{Name: "event_time", Type: sch.Field(4).Type}, {Name: "lat", Type: arrow.PrimitiveTypes.Float64},
			{Name: "lon", Type: arrow.PrimitiveTypes.Float64}, {Name: "city_idx", Type: arrow.PrimitiveTypes.Int32},
		}, nil))
		for i := 0; i < n; i++ {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff,
				r.Uint32()&0xfff, 0x8000|r.Uint32()&0x3fff, r.Uint64()&0xffffffffffff))
			b.Field(1).(*array.StringBuilder).Append(users[r.IntN(len(users))])
			if r.IntN(20) == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.Int32Builder).Append(int32(r.IntN(len(devVals))))
			}
			b.Field(3).(*array.StringBuilder).Append(urls[r.IntN(len(urls))])
			b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(start + int64(r.IntN(4*365*24))*3_600_000))
			if r.IntN(5) == 0 {
				b.Field(5).AppendNull()
				b.Field(6).AppendNull()
			} else {
				b.Field(5).(*array.Float64Builder).Append(float64(1816+r.IntN(3540)) / 100)
				b.Field(6).(*array.Float64Builder).Append(float64(7350+r.IntN(6127)) / 100)
			}
			b.Field(7).(*array.Int32Builder).Append(int32(r.IntN(len(cityVals))))
		}
		raw := b.NewRecordBatch()
		b.Release()
		dev := array.NewDictionaryArray(dictType, raw.Column(2), devices)
		city := array.NewDictionaryArray(dictType, raw.Column(7), cities)
		cols := []arrow.Array{raw.Column(0), raw.Column(1), dev, raw.Column(3), raw.Column(4), raw.Column(5), raw.Column(6), city}
		recs = append(recs, array.NewRecordBatch(sch, cols, int64(n)))
		dev.Release()
		city.Release()
		raw.Release()
	}
	dict := map[string]bool{}
	for i, f := range sch.Fields() {
		dict[f.Name] = WantsDictionary(recs[0].Column(i))
	}
	return sch, recs, dict
}

// BenchmarkPartWriters compares arrow's writer (PartWriter) with the
// FastPartWriter on a browsing-like part of 262,144 rows, with the default
// codec (zstd level 1) and, to show the encoders' own cost, uncompressed.
func BenchmarkPartWriters(b *testing.B) {
	const rows = 262_144
	mem := memory.NewGoAllocator()
	sch, recs, dict := browsingBatches(mem, rows, 65_536, 1)
	defer releaseAll(recs)
	b.Logf("dictionary columns: %v", dict)
	for _, bench := range []string{"arrow", "fast", "arrow-uncompressed", "fast-uncompressed"} {
		name, opt := bench, WriterOptions{}
		if n, ok := strings.CutSuffix(bench, "-uncompressed"); ok {
			name, opt.Codec = n, "none"
		}
		b.Run(bench, func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			for i := 0; i < b.N; i++ {
				buf.Reset()
				var err error
				if name == "arrow" {
					var w *PartWriter
					if w, err = NewPartWriter(&buf, sch, dict, opt, mem); err == nil {
						for _, r := range recs {
							if err = w.Write(r); err != nil {
								break
							}
						}
						if err == nil {
							err = w.Close()
						}
					}
				} else {
					var w *FastPartWriter
					if w, err = NewFastPartWriter(&buf, sch, dict, opt, mem); err == nil {
						for _, r := range recs {
							if err = w.Write(r); err != nil {
								break
							}
						}
						if cerr := w.Close(); err == nil {
							err = cerr
						}
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
			b.ReportMetric(float64(buf.Len()), "bytes")
		})
	}
}
