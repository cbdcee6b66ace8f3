package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// TestSourceError: listing a source fails as data (ErrData, exit 3) when
// the source file is missing, names a folder without a glob or meets a
// link to nothing; other failures stay unexpected ones.
func TestSourceError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		data bool
		want string
	}{
		{"missing file", &fs.PathError{Op: "stat", Path: "lake/t.parquet", Err: fs.ErrNotExist}, true, "source file does not exist"},
		{"a folder", &storage.FolderError{Pattern: "lake/t"}, true, `"lake/t/*.parquet"`},
		{"a link to nothing", fmt.Errorf("list lake/t/: %w", &storage.DanglingLinkError{Link: "lake/t/b.parquet", Target: "gone"}), true, "which does not exist"},
		{"permission denied", &fs.PathError{Op: "open", Path: "lake/t", Err: fs.ErrPermission}, false, "permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := SourceError("t", "lake/t", tc.err)
			if errors.Is(err, ErrData) != tc.data {
				t.Errorf("errors.Is(ErrData) = %v, want %v: %v", !tc.data, tc.data, err)
			}
			if !strings.Contains(err.Error(), `dataset "t"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: does not name the dataset and say %q", err, tc.want)
			}
		})
	}
}
