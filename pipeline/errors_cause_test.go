package pipeline_test

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline"
	"github.com/deidproject/deid/pipeline/lists"
	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/pqstore"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/transforms"
)

// TestDataErrorsKeepTheirCause: a data error wraps its cause with %w, so
// errors.Is sees both the class (ErrData, ErrCorrupt) and what went wrong.
func TestDataErrorsKeepTheirCause(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "erasure.csv")
	os.WriteFile(list, []byte("user_id\n12\"3\n"), 0o644) // a bare quote
	var ints []int64
	err := lists.ReadSubjectList(context.Background(), storage.Local{}, memory.DefaultAllocator,
		lists.SubjectList{What: "erasure list", Location: list, Column: "user_id"}, transforms.KindInteger, &ints, nil)
	if !errors.Is(err, pipeline.ErrData) || !errors.Is(err, csv.ErrBareQuote) {
		t.Errorf("a bare quote in a CSV list: %v; want ErrData wrapping csv.ErrBareQuote", err)
	}

	bad := filepath.Join(dir, "bad.parquet")
	os.WriteFile(bad, []byte("PAR1 not a footer PAR1"), 0o644)
	_, _, err = pqstore.Open(context.Background(), storage.Local{}, bad, memory.DefaultAllocator)
	if !errors.Is(err, parquetio.ErrCorrupt) {
		t.Fatalf("a corrupt file: %v; want ErrCorrupt", err)
	}
	var causes int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if e != parquetio.ErrCorrupt {
			causes++
		}
	}
	if causes == 0 {
		t.Errorf("a corrupt file's error %v wraps ErrCorrupt only, not the decoder's cause", err)
	}
}
