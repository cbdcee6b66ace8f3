package storage

import "testing"

// TestWithin: a location is inside a root only after cleaning, relative
// and local; a URI only under the root's bucket and prefix.
func TestWithin(t *testing.T) {
	cases := []struct {
		name, root, loc string
		want            bool
	}{
		{"file", "/lake/orders", "/lake/orders/a.parquet", true},
		{"root itself", "/lake/orders", "/lake/orders", true},
		{"root with trailing slash", "/lake/orders/", "/lake/orders/a", true},
		{"deep", "/lake", "/lake/a/b/c", true},
		{"clean inside", "/lake/orders", "/lake/orders/x/../a", true},
		{"dot slash", "/lake/orders", "/lake/orders/./a", true},
		{"sibling", "/lake/orders", "/lake/ordersX/a", false},
		{"parent", "/lake/orders", "/lake/orders/../consent.csv", false},
		{"deep parent", "/lake/orders", "/lake/orders/a/../../../tmp/victim", false},
		{"elsewhere", "/out/partner_ads", "/tmp/rt/victim/z", false},
		{"relative under absolute", "/lake", "lake/a", false},
		{"relative escape to absolute", "out/x", "/tmp/victim", false},
		{"relative root", "out/x", "out/x/a", true},
		{"relative escape", "out/x", "out/y", false},
		{"NUL", "/lake", "/lake/a\x00b", false},
		{"empty", "/lake", "", false},
		{"URI under local root", "/lake", "gs://lake/a", false},
		{"gs file", "gs://b/lake", "gs://b/lake/a.parquet", true},
		{"gs bucket root", "gs://b", "gs://b/a", true},
		{"gs other bucket", "gs://b/lake", "gs://c/lake/a", false},
		{"gs bucket prefix", "gs://b/lake", "gs://bb/lake/a", false},
		{"gs sibling prefix", "gs://b/lake", "gs://b/lakeX/a", false},
		{"gs parent", "gs://b/lake", "gs://b/lake/../other/a", false},
		{"gs other scheme", "gs://b/lake", "s3://b/lake/a", false},
		{"local under gs root", "gs://b/lake", "/b/lake/a", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Within(c.root, c.loc); got != c.want {
				t.Errorf("Within(%q, %q) = %v, want %v", c.root, c.loc, got, c.want)
			}
		})
	}
}

// TestMatchPattern: the locations a Glob of the pattern would list.
func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pattern, loc string
		want         bool
	}{
		{"/lake/orders/*.parquet", "/lake/orders/a.parquet", true},
		{"/lake/orders/*.parquet", "/lake/orders/sub/a.parquet", false},
		{"/lake/orders/*.parquet", "/lake/orders/../consent.parquet", false},
		{"/lake/orders/*.parquet", "/lake/orders/_restricted/a.parquet", false},
		{"/lake/d/dt=*/*.parquet", "/lake/d/dt=2026-10-30/part-0.parquet", true},
		{"/lake/d/**/*.parquet", "/lake/d/a/b/c.parquet", true},
		{"/lake/orders/orders.parquet", "/lake/orders/orders.parquet", true},
		{"/lake/orders/orders.parquet", "/lake/orders/other.parquet", false},
		{"gs://b/lake/*.parquet", "gs://b/lake/a.parquet", true},
		{"gs://b/lake/*.parquet", "gs://b/lake/x/../a.parquet", true},
		{"gs://b/lake/*.parquet", "gs://c/lake/a.parquet", false},
	}
	for _, c := range cases {
		if got := MatchPattern(c.pattern, c.loc); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.pattern, c.loc, got, c.want)
		}
	}
}
