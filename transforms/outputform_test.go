package transforms

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
)

// TestOutputForms: every transform whose result is a pseudonym declares
// its output's form (deid verify checks pseudonymized columns against it),
// and every value Apply writes, for every input kind it accepts and every
// digest length, is of that form.
func TestOutputForms(t *testing.T) {
	for _, spec := range Registry() {
		if spec.Drops {
			continue
		}
		params := []map[string]any{conformanceParams[spec.Name]}
		if spec.Name == "pseudonymize" {
			params = append(params, map[string]any{"bytes": int64(8)}, map[string]any{"bytes": int64(32)})
		}
		for _, p := range params {
			tr, _, err := spec.Bind(p, conformanceEnv)
			if err != nil {
				t.Fatal(err)
			}
			form, ok := tr.(OutputForm)
			if spec.Result == ResultPseudonym && !ok {
				t.Errorf("%s: a pseudonym transform declares no OutputForm", spec.Name)
			}
			if !ok {
				continue
			}
			mem := checkedMem(t)
			for name, in := range sampleInputs(t, mem) {
				if _, err := tr.OutputType(in.DataType()); err != nil {
					in.Release()
					continue
				}
				out := mustApply(t, tr, mem, in)
				s, isString := out.(*array.String)
				if !isString {
					t.Errorf("%s %v on %s: output %T, not text", spec.Name, p, name, out)
				}
				for i := 0; isString && i < s.Len(); i++ {
					if s.IsValid(i) && !form.HasForm([]byte(s.Value(i))) {
						t.Errorf("%s %v on %s: value %d (%q) is not of its form, %s", spec.Name, p, name, i, s.Value(i), form.Form())
					}
				}
				out.Release()
				in.Release()
			}
		}
	}
}

// TestPseudonymForm: what is and is not of a pseudonym's form.
func TestPseudonymForm(t *testing.T) {
	form := bind(t, "pseudonymize", nil).(OutputForm)
	if got := form.Form(); got != "32 lowercase hex characters" {
		t.Errorf("form %q", got)
	}
	good := "d234fbd235dce964fb710775975d5eeb"
	cases := []struct {
		name, v string
		want    bool
	}{
		{"pseudonym", good, true},
		{"all digits", "12345678901234567890123456789012", true},
		{"empty", "", false},
		{"short integer", "10001", false},
		{"one short", good[:31], false},
		{"one long", good + "0", false},
		{"upper case", strings.ToUpper(good), false},
		{"non-hex of the right length", "g" + good[1:], false},
		{"space", " " + good[1:], false},
		{"invalid UTF-8", "\xff" + good[1:], false},
		{"NUL", "\x00" + good[1:], false},
		{"16 bytes' worth of multibyte text", strings.Repeat("杭", 10) + "ab", false},
	}
	for _, c := range cases {
		if got := form.HasForm([]byte(c.v)); got != c.want {
			t.Errorf("%s: HasForm(%q) = %v, want %v", c.name, c.v, got, c.want)
		}
	}
	if f8 := bind(t, "pseudonymize", map[string]any{"bytes": int64(8)}).(OutputForm); !f8.HasForm([]byte(good[:16])) || f8.HasForm([]byte(good)) {
		t.Error("bytes 8: the form is 16 hex characters")
	}
}
