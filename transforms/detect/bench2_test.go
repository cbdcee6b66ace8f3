package detect

import (
	"testing"

	"github.com/deidproject/deid/transforms/detect/fake"
)

// benchTexts are 4,096 realistic values: generated sentences of every kind,
// personal data and look-alikes, plus search queries without any.
func benchTexts() [][]byte {
	g := fake.New(99)
	plain := []string{"华为 mate60 pro 手机壳 新款", "小米 蓝牙耳机 降噪", "苹果 15 256G 官方正品", "儿童保温杯 316不锈钢",
		"羽绒服 女 中长款 2026新款", "茅台 飞天 53度 500ml"}
	out := make([][]byte, 4096)
	for i := range out {
		if i%2 == 0 {
			out[i] = []byte(plain[i/2%len(plain)])
		} else {
			out[i] = []byte(g.AnySentence().Text)
		}
	}
	return out
}

// BenchmarkFind reports ns and allocations per value for each detector and
// for the default set (Scrub, including the rewrite), on benchTexts.
func BenchmarkFind(b *testing.B) {
	texts := benchTexts()
	n := 0
	for _, t := range texts {
		n += len(t)
	}
	perValue := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(texts)), "ns/value")
	}
	for _, in := range All() {
		d := in.New()
		b.Run(in.Name, func(b *testing.B) {
			buf := make([]Span, 0, 16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range texts {
					buf = d.Find(buf[:0], t)
				}
			}
			perValue(b)
		})
	}
	b.Run("default_set", func(b *testing.B) {
		set := DefaultSet()
		var buf Buffer
		out := make([]byte, 0, 1024)
		b.SetBytes(int64(n))
		b.ReportAllocs()
		for b.Loop() {
			for _, t := range texts {
				out = set.Scrub(out[:0], t, &buf)
			}
		}
		perValue(b)
	})
}
