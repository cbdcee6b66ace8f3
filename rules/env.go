package rules

import (
	"fmt"
	"strings"
)

// LookupEnv looks up an environment variable; os.LookupEnv has this shape.
type LookupEnv func(name string) (string, bool)

// expandEnv substitutes ${NAME} and ${NAME:-default} in one scalar value:
//   - ${NAME} is the variable's value; an unset variable is an error;
//   - ${NAME:-default} is the default when NAME is unset or empty;
//   - $$ is a literal $; any other $ is kept as it is.
//
// Substitution happens after YAML parsing, on the scalar's text, so a value
// can never inject YAML structure: whatever a variable holds stays one string.
func expandEnv(s string, lookup LookupEnv) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
			continue
		case '{':
		default:
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ in %q", s)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("invalid variable reference ${%s}: names are letters, digits and _, not starting with a digit", expr)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && (!ok || v == ""):
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %s is not set (set it, or give a default: ${%s:-value})", name, name)
		}
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
