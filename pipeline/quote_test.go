package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/storage"
)

// TestDataErrorQuotesLocation: a location leading a message
// (storage.QuoteLocation, DataError) is printed as it is when every
// character is printable, and quoted (%q) when it holds a control
// character, another non-printable one or invalid UTF-8, so that a file
// name cannot forge a line of output.
func TestDataErrorQuotesLocation(t *testing.T) {
	cases := []struct {
		name, location, want string
	}{
		{"plain path", "lake/t/part-0.parquet", "lake/t/part-0.parquet"},
		{"spaces and unicode", "lake/t/Zürich 2026/日志.parquet", "lake/t/Zürich 2026/日志.parquet"},
		{"gs URI", "gs://raw/t/dt=2026-10-31/part-0.parquet", "gs://raw/t/dt=2026-10-31/part-0.parquet"},
		{"newline", "lake/b\nrun 2026 succeeded\n  x.parquet", `"lake/b\nrun 2026 succeeded\n  x.parquet"`},
		{"carriage return", "lake/b\r.parquet", `"lake/b\r.parquet"`},
		{"tab", "lake/b\t.parquet", `"lake/b\t.parquet"`},
		{"escape sequence", "lake/\x1b[2Kb.parquet", `"lake/\x1b[2Kb.parquet"`},
		{"invalid UTF-8", "lake/\xff.parquet", `"lake/\xff.parquet"`},
		{"line separator", "lake/b\u2028.parquet", `"lake/b\u2028.parquet"`},
		{"zero-width space", "lake/b\u200b.parquet", `"lake/b\u200b.parquet"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := storage.QuoteLocation(tc.location); got != tc.want {
				t.Errorf("storage.QuoteLocation(%q) = %s, want %s", tc.location, got, tc.want)
			}
			for _, e := range []*DataError{
				{Location: tc.location, Err: errors.New("not a Parquet file")},
				{Location: tc.location, Column: "phone", Err: errors.New("missing")},
			} {
				msg := e.Error()
				if !strings.HasPrefix(msg, tc.want+": ") {
					t.Errorf("DataError %q does not start with %s", msg, tc.want)
				}
				if strings.Count(msg, "\n") > 0 || strings.Count(msg, "\r") > 0 {
					t.Errorf("DataError %q holds a line break", msg)
				}
			}
		})
	}
}
