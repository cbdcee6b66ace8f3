package output

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/report"
)

// TestCheckOutputPath: a manifest's or report's file path is accepted only
// in the clean, local, relative form a run publishes.
func TestCheckOutputPath(t *testing.T) {
	cases := []struct {
		name, path string
		ok         bool
	}{
		{"dataset file", "orders/orders.parquet", true},
		{"partition file", "device/dt=2026-10-30/part-0.parquet", true},
		{"dots inside a name", "orders/a..b.parquet", true},
		{"empty", "", false},
		{"dot", ".", false},
		{"dot dot", "..", false},
		{"parent", "../victim/data.parquet", false},
		{"deep parent", "../../../victim/data.parquet", false},
		{"up and out", "a/../../b", false},
		{"up and back in", "a/../b", false},
		{"absolute", "/abs", false},
		{"absolute lake file", "/tmp/lake/consent.csv", false},
		{"dot slash", "./x", false},
		{"trailing slash", "x/", false},
		{"double slash", "a//b", false},
		{"NUL", "a\x00b", false},
		{"backslash parent", `a\..\..\b`, filepath.Separator == '/'}, // one name outside Windows
		{"backslash", `a\b`, filepath.Separator == '/'},
		{"commit folder", "dt=1/.deid-commit/x.parquet", false},
		{"control character", "a\nb", false},
		{"gs URI", "gs://bucket/x.parquet", false},
		{"manifest", "_manifest.json", false},
		{"a report", "_reports/r1/report.json", false},
		{"retain journal", ".deid-retain/journal.json", false},
		{"retain lock", ".deid-retain.lock", false},
		{"shard report", ".deid-shards/r1/shard-0-of-2.json", false},
		{"staging", ".deid-staging/x.parquet", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckOutputPath(c.path)
			if (err == nil) != c.ok {
				t.Fatalf("CheckOutputPath(%q) = %v, want ok %v", c.path, err, c.ok)
			}
		})
	}
}

// TestCheckRunID: a run id names a folder, so it is one path segment.
func TestCheckRunID(t *testing.T) {
	cases := []struct {
		id string
		ok bool
	}{
		{"20261101T020000Z-1a2b3c4d", true},
		{"20261101T020000Z-1a2b3c4d-rederive-0", true},
		{"job-7f3c.uid_1", true},
		{"", false},
		{".", false},
		{"..", false},
		{"../x", false},
		{"a/b", false},
		{`a\b`, false},
		{"a b", false},
		{"a\x00b", false},
		{"a\tb", false},
		{strings.Repeat("x", 201), false},
	}
	for _, c := range cases {
		if err := CheckRunID(c.id); (err == nil) != c.ok {
			t.Errorf("CheckRunID(%q) = %v, want ok %v", c.id, err, c.ok)
		}
	}
}

// TestStatePathsAreDataErrors: a manifest or shard report with a bad path
// is refused as a data error naming the file.
func TestStatePathsAreDataErrors(t *testing.T) {
	m := &Manifest{Files: []*ManifestFile{{OutputFile: report.OutputFile{Path: "orders/a.parquet"}}, {OutputFile: report.OutputFile{Path: "../../lake/consent.csv"}}}}
	err := CheckManifestPaths("/out/x/_manifest.json", m)
	if !errors.Is(err, dataerr.ErrData) || !strings.Contains(err.Error(), "/out/x/_manifest.json") || !strings.Contains(err.Error(), "files[1]") {
		t.Errorf("manifest: %v", err)
	}
	rep := &report.Run{Destinations: []*report.Destination{{Name: "d", Files: []*report.OutputFile{{Path: "/etc/passwd"}}}}}
	err = CheckReportPaths("/out/x/.deid-shards/r/shard-1-of-2.json", rep)
	if !errors.Is(err, dataerr.ErrData) || !strings.Contains(err.Error(), "shard-1-of-2.json") {
		t.Errorf("shard report: %v", err)
	}
	m.Files = m.Files[:1]
	if err := CheckManifestPaths("m", m); err != nil {
		t.Errorf("good manifest: %v", err)
	}
}
