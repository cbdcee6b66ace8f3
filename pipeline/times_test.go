package pipeline

import "testing"

// TestEmptiedWarning: the warning names what was emptied, the rule (or
// every rule with its share) and the counts, with thousands separators.
func TestEmptiedWarning(t *testing.T) {
	names := map[string]string{"retention": "retention keep 6min", "erasure": "erasure"}
	cases := []struct {
		name    string
		what    string
		removed map[string]int64
		rows    int64
		want    string
	}{
		{"one rule", "dataset", map[string]int64{"retention": 2000, "erasure": 0, "null_time": 0}, 2000,
			`dataset "orders": retention keep 6min removes every row (2,000 of 2,000)`},
		{"two rules", "dataset", map[string]int64{"retention": 1500, "erasure": 500}, 2000,
			`dataset "orders": its row rules remove every row (retention keep 6min 1,500, erasure 500 of 2,000)`},
		{"unnamed reason", "destination", map[string]int64{"child": 1234567}, 1234567,
			`destination "orders": child removes every row (1,234,567 of 1,234,567)`},
		{"no counts", "dataset", map[string]int64{}, 7, `dataset "orders": its row rules remove every row (7)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := EmptiedWarning(c.what, "orders", c.removed, c.rows, names); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -12345: "-12,345", 100000: "100,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %s, want %s", n, got, want)
		}
	}
}
