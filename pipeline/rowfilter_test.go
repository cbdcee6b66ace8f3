package pipeline

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRowFilterPushdown: letting the reader skip the values of the rows
// the dataset's row rules remove changes nothing: the outputs are the same
// bytes and the report the same counts as when every row is decoded first,
// whether the rules remove none, some, most or all of the rows, with small
// batches that split pages.
func TestRowFilterPushdown(t *testing.T) {
	for _, keep := range []string{"36500d", "365d", "30d", "1s"} {
		for _, batch := range []int{5, 1000, 0} {
			t.Run(fmt.Sprintf("keep=%s,batch=%d", keep, batch), func(t *testing.T) {
				outputs := make([]map[string][]byte, 2)
				var removed [2]any
				for i, readAll := range []bool{false, true} {
					dir := t.TempDir()
					text := samplePolicy(filepath.Join(sampleDir(t), "browsing", "*", "*.parquet"), filepath.Join(sampleDir(t), "erasure.parquet"), filepath.Join(dir, "out"))
					text = strings.Replace(text, "keep: 365d", "keep: "+keep, 1)
					plan := compile(t, dir, text)
					rep, err := Run(context.Background(), plan, Options{Workers: 2, BatchSize: batch, ScratchDir: t.TempDir(), RunID: "r", readAll: readAll})
					if err != nil {
						t.Fatal(err)
					}
					removed[i] = []any{rep.Datasets[0].RowsIn, rep.Datasets[0].Removed, rep.Destinations[0].RowsOut}
					outputs[i] = map[string][]byte{}
					root := filepath.Join(dir, "out", "browsing")
					filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
						if err == nil && !d.IsDir() {
							b, _ := os.ReadFile(p)
							outputs[i][strings.TrimPrefix(p, root)] = b
						}
						return err
					})
				}
				if !reflect.DeepEqual(removed[0], removed[1]) {
					t.Errorf("rows in, removed, out: %v skipping removed rows, %v decoding every row", removed[0], removed[1])
				}
				if len(outputs[1]) == 0 && keep != "1s" {
					t.Fatal("no output files")
				}
				if len(outputs[0]) != len(outputs[1]) {
					t.Fatalf("%d output files skipping removed rows, %d decoding every row", len(outputs[0]), len(outputs[1]))
				}
				for name, want := range outputs[1] {
					if got := outputs[0][name]; string(got) != string(want) {
						t.Errorf("%s differs: %d bytes skipping removed rows, %d decoding every row", name, len(got), len(want))
					}
				}
			})
		}
	}
}
