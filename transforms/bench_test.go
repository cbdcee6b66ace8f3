package transforms

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// benchValues are 65,536 values shaped like the bench's browsing columns.
func benchValues(kind string) []*string {
	r := rand.New(rand.NewPCG(1, 1))
	out := make([]*string, 1<<16)
	for i := range out {
		var s string
		switch kind {
		case "imei": // about 1 in 40 rows per device, as in the bench
			s = fmt.Sprintf("86%013d", r.IntN(1600))
		case "ip":
			if r.IntN(10) == 0 {
				s = fmt.Sprintf("2408:8207:%x:%x::%x", r.IntN(65536), r.IntN(65536), r.IntN(65536))
			} else {
				s = fmt.Sprintf("%d.%d.%d.%d", 100+r.IntN(100), r.IntN(256), r.IntN(256), r.IntN(256))
			}
		case "url":
			s = fmt.Sprintf("https://item.example.com/item.htm?id=%d&spm=a%d.%d", r.IntN(1e9), r.IntN(1e4), r.IntN(1e4))
		case "phone":
			s = fmt.Sprintf("1%d%09d", 3+r.IntN(7), r.IntN(1e9))
		case "address":
			s = []string{"浙江省嘉兴市经开区南湖街道新华路", "北京市朝阳区建国路", "广东深圳南山区科技园路", "新疆伊犁州伊宁市解放路",
				"内蒙古自治区呼和浩特市新城区", "南山区科技园"}[r.IntN(6)] + fmt.Sprintf("%d号恒大名都%d幢%d室", r.IntN(999), r.IntN(30), r.IntN(3000))
		case "resident_id":
			d17 := fmt.Sprintf("%02d%04d%04d%02d%02d%03d", []int{11, 33, 44, 65}[r.IntN(4)], r.IntN(10000), 1950+r.IntN(57),
				1+r.IntN(12), 1+r.IntN(28), r.IntN(1000))
			sum := 0
			for i := 0; i < 17; i++ {
				sum += int(d17[i]-'0') * residentIDWeights[i]
			}
			s = d17 + string(residentIDCheck[sum%11])
		case "query":
			s = []string{"华为 mate60 pro 手机壳 新款", "联系13800138000", "小米 蓝牙耳机 a.b@qq.com", "苹果 15 256G 官方正品"}[r.IntN(4)] +
				fmt.Sprint(r.IntN(1000))
		}
		out[i] = &s
	}
	return out
}

// BenchmarkTransforms reports ns and allocations per value for each string
// transform on plain and dictionary input.
func BenchmarkTransforms(b *testing.B) {
	cases := []struct {
		label, name, data string
		params            map[string]any
	}{
		{"pseudonymize", "pseudonymize", "imei", nil},
		{"generalize_ip", "generalize_ip", "ip", map[string]any{"variant": "bench"}},
		{"url_strip", "url_strip", "url", nil},
		{"scrub", "scrub", "query", map[string]any{"detectors": []string{"email_bench", "phone_bench"}}},
		{"scrub_default", "scrub", "query", nil}, // every validating detector
		{"redact", "redact", "query", nil},
		{"mask", "mask", "phone", nil},
		{"generalize_address", "generalize_address", "address", nil},
		{"birth_year", "birth_year", "resident_id", nil},
		{"age_band", "age_band", "resident_id", nil},
	}
	mem := memory.NewGoAllocator()
	for _, c := range cases {
		vals := benchValues(c.data)
		tr := bind(b, c.name, c.params)
		for _, enc := range []string{"plain", "dict"} {
			var in arrow.Array
			if enc == "plain" {
				in = stringArray(mem, vals)
			} else {
				in = dictStringArray(b, mem, vals)
			}
			b.Run(c.label+"/"+enc, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					out, err := tr.Apply(mem, in)
					if err != nil {
						b.Fatal(err)
					}
					out.Release()
				}
				perValue(b, in.Len())
			})
			in.Release()
		}
	}
	// integer pseudonyms (user_id) and the numeric transforms
	ib := array.NewInt64Builder(mem)
	fb := array.NewFloat64Builder(mem)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"})
	r := rand.New(rand.NewPCG(2, 2))
	db := array.NewDate32Builder(mem)
	xb := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 12, Scale: 2})
	for i := 0; i < 1<<16; i++ {
		ib.Append(1_000_000_000 + int64(r.IntN(20000)))
		fb.Append(float64(18_160_000+r.Int64N(35_000_000)) / 1e6)
		tb.Append(arrow.Timestamp(1_700_000_000_000 + r.Int64N(1e11)))
		db.Append(arrow.Date32(-7300 + r.IntN(20000)))
		xb.Append(decimal128.FromI64(100 + int64(r.IntN(2_000_000))))
	}
	subjects, floats, timestamps, dates, decs := ib.NewArray(), fb.NewArray(), tb.NewArray(), db.NewArray(), xb.NewArray()
	for _, a := range []arrow.Array{subjects, floats, timestamps, dates, decs} {
		defer a.Release()
	}
	for _, b := range []interface{ Release() }{ib, fb, tb, db, xb} {
		b.Release()
	}
	bounds := map[string]any{"bounds": []float64{0, 50, 100, 500, 1000, 5000}}
	for _, c := range []struct {
		name   string
		params map[string]any
		in     arrow.Array
	}{
		{"pseudonymize", nil, subjects},
		{"round", nil, floats},
		{"truncate_time", nil, timestamps},
		{"null", nil, floats},
		{"bucket", bounds, floats},
		{"bucket", bounds, decs},
		{"shift_date", nil, timestamps},
		{"shift_date", nil, dates},
		{"birth_year", nil, dates},
		{"age_band", nil, dates},
	} {
		tr := bind(b, c.name, c.params)
		b.Run(c.name+"/"+c.in.DataType().String(), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out, err := benchApply(tr, mem, c.in, subjects)
				if err != nil {
					b.Fatal(err)
				}
				out.Release()
			}
			perValue(b, c.in.Len())
		})
	}
}

// benchApply applies tr, through ApplySubject when it needs the subject.
func benchApply(tr Transform, mem memory.Allocator, in, subjects arrow.Array) (arrow.Array, error) {
	if sa, ok := tr.(SubjectAware); ok {
		return sa.ApplySubject(mem, in, subjects)
	}
	return tr.Apply(mem, in)
}

// perValue reports the benchmark's time and allocations per value.
func perValue(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/value")
}
