package pipeline

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/pipeline/storage/gcstest"
)

// BenchmarkReadGCS compares reading the bench's 1M-row browsing file from
// local disk and from fake-gcs-server (in-process, over loopback HTTP, the
// real client): raw ranged reads of 1 MiB, and decoding every column of
// every row group as the pipeline does (footer and column chunks by range
// requests). MB/s is the file's size over the time.
//
//	go test ./pipeline -run XXX -bench ReadGCS -benchtime 3x
func BenchmarkReadGCS(b *testing.B) {
	input, _ := benchData(b, 1_000_000)
	ctx := context.Background()
	emu := gcstest.Start(b, []string{"lake"})
	g := gcstest.Store(b, emu.URL, storage.GCSOptions{})
	const remote = "gs://lake/browsing/part-0.parquet"
	f, err := os.Open(input)
	if err != nil {
		b.Fatal(err)
	}
	w, err := g.Create(ctx, remote)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(w, f); err != nil {
		b.Fatal(err)
	}
	f.Close()
	if _, err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, st := range []struct {
		name string
		s    storage.Store
		loc  string
	}{{"local", storage.Local{}, input}, {"gcs-emulator", g, remote}} {
		b.Run("ranged-1MiB/"+st.name, func(b *testing.B) {
			buf := make([]byte, 1<<20)
			for i := 0; i < b.N; i++ {
				r, err := st.s.Open(ctx, st.loc)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(r.Size())
				for off := int64(0); off < r.Size(); off += int64(len(buf)) {
					if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
				r.Close()
			}
		})
		b.Run("parquet/"+st.name, func(b *testing.B) {
			var rows int64
			for i := 0; i < b.N; i++ {
				pf, attrs, err := pqstore.Open(ctx, st.s, st.loc, memory.DefaultAllocator)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(attrs.Size)
				opt := parquetio.ReadOptions{BatchSize: 1 << 15}
				for c := 0; c < pf.Schema().NumFields(); c++ {
					opt.Columns = append(opt.Columns, c)
				}
				for rg := 0; rg < pf.NumRowGroups(); rg++ {
					err := pf.ReadRowGroup(ctx, rg, opt, func(rec arrow.RecordBatch) error {
						rows += rec.NumRows()
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				pf.Close()
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
