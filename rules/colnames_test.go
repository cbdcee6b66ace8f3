package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestCollidingNames(t *testing.T) {
	cases := []struct {
		name  string
		names []string
		want  [][]string
	}{
		{"unique", []string{"phone", "email", "user_id"}, nil},
		{"exact", []string{"phone", "email", "phone"}, [][]string{{"phone", "phone"}}},
		{"case", []string{"Phone", "phone"}, [][]string{{"Phone", "phone"}}},
		{"upper case", []string{"USER_ID", "user_id"}, [][]string{{"USER_ID", "user_id"}}},
		{"full case folding", []string{"straße", "STRASSE"}, [][]string{{"straße", "STRASSE"}}},
		{"NFC and NFD", []string{"caf\u00e9", "cafe\u0301"}, [][]string{{"caf\u00e9", "cafe\u0301"}}},
		{"NFD and upper case", []string{"CAFE\u0301", "caf\u00e9"}, [][]string{{"CAFE\u0301", "caf\u00e9"}}},
		{"three ways", []string{"phone", "PHONE", "x", "Phone"}, [][]string{{"phone", "PHONE", "Phone"}}},
		{"two groups, by first position", []string{"b", "a", "B", "A"}, [][]string{{"b", "B"}, {"a", "A"}}},
		// compatibility forms are other names: NFC does not fold them
		{"full-width is another name", []string{"\uff50hone", "phone"}, nil},
		{"zero-width space is another name", []string{"phone\u200b", "phone"}, nil},
		// full case folding maps a ligature to its letters
		{"ligature folds", []string{"\ufb01le", "file"}, [][]string{{"\ufb01le", "file"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := CollidingNames(c.names); !reflect.DeepEqual(got, c.want) {
				t.Errorf("CollidingNames(%q) = %q, want %q", c.names, got, c.want)
			}
		})
	}
}

func TestQuoteNamesShowsInvisibleCharacters(t *testing.T) {
	got := QuoteNames([]string{"phone\u200b", "cafe\u0301", "caf\u00e9", "\uff50hone", "电话"})
	want := `"phone\u200b", "cafe\u0301", "café", "\uff50hone", "电话"`
	if got != want {
		t.Errorf("QuoteNames = %s, want %s", got, want)
	}
}

// TestPolicyColumnNamesCollide: two columns of a dataset that are one name
// after NFC and case folding are a positioned policy error at the second.
func TestPolicyColumnNamesCollide(t *testing.T) {
	cases := []struct {
		name, add, msg string
	}{
		{"case", "      AT: date\n", `column "AT" and column "at" (line 11)`},
		{"title case", "      At: date\n", `column "At" and column "at" (line 11)`},
		{"upper case of the subject", "      \"USER_ID\": date\n", `column "USER_ID" and column "user_id" (line 10)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			old := "      at: timestamp\n"
			src := strings.Replace(minimal, old, old+c.add, 1)
			_, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("want a policy error list, got %v", err)
			}
			for _, e := range list {
				if e.Line == 12 && e.Column == 7 && strings.Contains(e.Msg, c.msg) && strings.Contains(e.Msg, "case-folded") {
					return
				}
			}
			t.Errorf("want policy.yaml:12:7: ...%s..., got:\n%v", c.msg, err)
		})
	}
	t.Run("NFC and NFD", func(t *testing.T) {
		src := strings.Replace(minimal, "      at: timestamp\n", "      at: timestamp\n      \"caf\u00e9\": date\n      \"cafe\u0301\": date\n", 1)
		_, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
		if err == nil || !strings.Contains(err.Error(), `column "cafe\u0301" and column "café" (line 12)`) {
			t.Errorf("want the NFD name's collision with the NFC one, quoted, got %v", err)
		}
	})
	t.Run("distinct names stay accepted", func(t *testing.T) {
		src := strings.Replace(minimal, "      at: timestamp\n", "      at: timestamp\n      \"at\u200b\": date\n", 1)
		_, err := Parse("policy.yaml", []byte(src), env(map[string]string{"K": benchKeyHex}))
		if err != nil && strings.Contains(err.Error(), "case-folded") {
			t.Errorf("a zero-width space makes another name, got %v", err)
		}
	})
}
