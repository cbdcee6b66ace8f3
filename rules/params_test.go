package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// numbersPolicy edits minimal so that user_id is bucketed with the given
// treatment.
func numbersPolicy(treatment string) string {
	// a non-personal column, so that no purpose floor applies
	src := strings.Replace(minimal, "user_id: account_id", "user_id: non_personal", 1)
	return strings.Replace(src, "user_id: pseudonymize", "user_id: "+treatment, 1)
}

// TestListParams: integer and number lists decode from YAML sequences into
// the Go types the registry documents, with positioned errors.
func TestListParams(t *testing.T) {
	p, err := Parse("p.yaml", []byte(numbersPolicy("{transform: bucket, bounds: [-1e3, 0, 99.5, 1_000]}")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Destinations[0].Datasets[0].Columns[0].Params.Floats("bounds")
	if want := []float64{-1000, 0, 99.5, 1000}; !reflect.DeepEqual(got, want) {
		t.Errorf("bounds %v, want %v", got, want)
	}
	p, err = Parse("p.yaml", []byte(numbersPolicy("{transform: age_band, bands: [0, 18, 65]}")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Destinations[0].Datasets[0].Columns[0].Params.Ints("bands"); !reflect.DeepEqual(got, []int64{0, 18, 65}) {
		t.Errorf("bands %v", got)
	}

	const path = "destinations.out.datasets.logs.columns.user_id"
	for _, c := range []struct {
		treatment string
		col       int
		path, msg string
	}{
		// line 24 is "          user_id: {transform: …"; the mapping opens at column 20
		{"{transform: bucket, bounds: [0, x]}", 52, path + ".bounds[1]", `"x" is not a number`},
		{"{transform: bucket, bounds: [0, 0x10]}", 52, path + ".bounds[1]", `"0x10" is not a number`},
		{"{transform: bucket, bounds: [0, .inf]}", 52, path + ".bounds[1]", `".inf" is not a number`},
		{"{transform: bucket, bounds: [5, 1]}", 48, path + ".bounds", "strictly ascending: 1 follows 5"},
		{"{transform: bucket, bounds: []}", 48, path + ".bounds", "must not be empty"},
		{"{transform: bucket, bounds: 5}", 48, path + ".bounds", "must be a list"},
		{"{transform: age_band, bands: [0, 1.5]}", 53, path + ".bands[1]", `"1.5" is not an integer`},
		{"{transform: age_band, bands: [0, 300]}", 49, path + ".bands", "between 0 and 200"},
		{"{transform: age_band, bands: [0, 18, 18]}", 49, path + ".bands", "strictly ascending"},
	} {
		_, err := Parse("policy.yaml", []byte(numbersPolicy(c.treatment)), env(nil))
		var list ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("%s: error %v", c.treatment, err)
		}
		found := false
		for _, e := range list {
			found = found || e.Line == 24 && e.Column == c.col && e.Path == c.path && strings.Contains(e.Msg, c.msg)
		}
		if !found {
			t.Errorf("%s: want policy.yaml:24:%d: %s: ...%s...; got %v", c.treatment, c.col, c.path, c.msg, err)
		}
	}
}

// TestSubjectTransformNeedsSubject: shift_date is refused on a dataset that
// names no subject column.
func TestSubjectTransformNeedsSubject(t *testing.T) {
	src := strings.NewReplacer("    subject: user_id\n", "", "at: {transform: truncate_time, unit: day}", "at: shift_date").Replace(minimal)
	_, err := Parse("policy.yaml", []byte(src), env(nil))
	if err == nil || !strings.Contains(err.Error(), "shift_date needs the data subject") ||
		!strings.Contains(err.Error(), "datasets.logs.subject") {
		t.Fatalf("error %v", err)
	}
	src = strings.Replace(minimal, "at: {transform: truncate_time, unit: day}", "at: {transform: shift_date, max_days: 10}", 1)
	if _, err := Parse("policy.yaml", []byte(src), env(nil)); err != nil {
		t.Fatal(err)
	}
}

// TestCompilePassesNow: transforms are bound with the run's reference
// instant, which age_band needs.
func TestCompilePassesNow(t *testing.T) {
	p, err := Parse("p.yaml", []byte(numbersPolicy("age_band")), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	lookup := env(map[string]string{"K": benchKeyHex})
	if _, err := Compile(p, CompileOptions{Lookup: lookup}); err == nil || !strings.Contains(err.Error(), "reference time") {
		t.Errorf("compiled age_band without a now: %v", err)
	}
	if _, err := Compile(p, CompileOptions{Now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Lookup: lookup}); err != nil {
		t.Fatal(err)
	}
}
