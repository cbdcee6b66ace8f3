package transforms

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var generalizeAddressSpec = &Spec{
	Name: "generalize_address",
	Summary: "reduce a Chinese address to its province (`level: province`) or province and prefecture-level " +
		"city (`level: city`) in canonical full names: the address must start with a provincial-level division " +
		"(full name or short form: 广东省 or 广东, 内蒙古, 新疆, 香港) and, for the city, go on with a city of that " +
		"province (深圳市 or 深圳, 延边州), or start with a city's full name (深圳市…); municipalities, Hong Kong, Macao " +
		"and Taiwan are their own city; anything else gives NULL",
	Inputs: []Kind{KindString},
	Params: []ParamSpec{{Name: "level", Kind: ParamString, Default: "city", Enum: []string{"province", "city"},
		Doc: "what is kept"}},
	Result:  ResultGeneralized,
	Example: "广东深圳市南山区科技园路1号 → 广东省深圳市; 北京市朝阳区建国路88号 → 北京市; 南山区科技园 → NULL",
	New: func(p Params, _ Env) (Transform, error) {
		return &generalizeAddress{city: p.String("level") == "city"}, nil
	},
	Describe: func(p Params) string {
		if p.String("level") == "province" {
			return "province of the address (canonical full name, e.g. 广东省); NULL where the address did not start with one"
		}
		return "province and prefecture-level city of the address (canonical full names, e.g. 广东省深圳市; " +
			"a municipality alone, e.g. 北京市); NULL where they could not be read"
	},
}

type generalizeAddress struct{ city bool }

func (g *generalizeAddress) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("generalize_address", in, KindString); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (g *generalizeAddress) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := g.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	return mapStrings(mem, in, func(dst, v []byte) ([]byte, bool) {
		p, c := parseAddress(v, g.city)
		switch {
		case p == nil:
			return dst, false
		case !g.city || p.own:
			return append(dst, p.name...), true
		case c == nil:
			return dst, false
		}
		return append(dst, c.out...), true
	})
}

// parseAddress reads the provincial-level division an address starts with
// and, when wantCity is set, the city that follows it. p is nil when the
// address starts with neither a division nor a city's full name.
func parseAddress(v []byte, wantCity bool) (p *division, c *city) {
	v = skipSeparators(v)
	for _, prefix := range [...]string{"中华人民共和国", "中国"} {
		if strings.HasPrefix(unsafeString(v), prefix) {
			v = skipSeparators(v[len(prefix):])
			break
		}
	}
	a, rest := divisions.top.match(v)
	if a == nil {
		return nil, nil
	}
	if a.city != nil {
		return a.city.prov, a.city
	}
	p = a.prov
	if !wantCity || p.own {
		return p, nil
	}
	if a, _ := p.index.match(skipSeparators(rest)); a != nil {
		return p, a.city
	}
	return p, nil
}

// skipSeparators drops the spaces and punctuation found between the parts
// of an address.
func skipSeparators(v []byte) []byte {
	for len(v) > 0 {
		switch c := v[0]; c {
		case ' ', '\t', '\n', '\r', ',', '/', '-':
			v = v[1:]
			continue
		case 0xE3, 0xEF:
			r, size := utf8.DecodeRune(v)
			if r == '\u3000' || r == '，' || r == '、' || r == '／' {
				v = v[size:]
				continue
			}
		}
		return v
	}
	return v
}

// division is a provincial-level division.
type division struct {
	name  string
	code  int
	own   bool // its own city level: a municipality, an SAR, Taiwan
	index aliasIndex
	// cities are its prefecture-level divisions and directly governed
	// county-level units, in table order.
	cities []*city
}

// city is a prefecture-level division or a county-level unit governed
// directly by its province.
type city struct {
	name, short string
	direct      bool // county-level, governed directly by the province
	prov        *division
	out         []byte // province name + city name
}

// alias is one way of writing a division or a city.
type alias struct {
	text  string
	prov  *division
	city  *city
	short bool // a short form: rejected when a street name follows (北京路)
}

// aliasIndex finds the longest alias an address starts with. Aliases are
// grouped by their first byte pair, longest first.
type aliasIndex map[string][]alias

func (x aliasIndex) add(a alias) { x[a.text[:2]] = append(x[a.text[:2]], a) }

func (x aliasIndex) sort() {
	for _, l := range x {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].text) > len(l[j].text) })
	}
}

// match returns the longest alias v starts with, and the rest of v.
func (x aliasIndex) match(v []byte) (*alias, []byte) {
	if len(v) < 2 {
		return nil, v
	}
	l := x[unsafeString(v[:2])]
	for i := range l {
		a := &l[i]
		if !strings.HasPrefix(unsafeString(v), a.text) {
			continue
		}
		rest := v[len(a.text):]
		if a.short && startsStreet(rest) {
			continue
		}
		return a, rest
	}
	return nil, v
}

// startsStreet reports whether v starts with a character that makes the
// preceding place name part of a street's name (北京路, 中山街).
func startsStreet(v []byte) bool {
	r, _ := utf8.DecodeRune(v)
	return r == '路' || r == '街' || r == '巷' || r == '弄'
}

// divisionSet is the parsed divisionTable.
type divisionSet struct {
	provinces []*division
	top       aliasIndex // divisions, and cities by full name
	codes     [100]bool  // GB/T 2260 province codes in use
}

var divisions = mustParseDivisions(divisionTable)

// provinceCodes are the first two digits a resident identity number may
// start with.
var provinceCodes = divisions.codes

func mustParseDivisions(table string) *divisionSet {
	s, err := parseDivisions(table)
	if err != nil {
		panic(err)
	}
	return s
}

func parseDivisions(table string) (*divisionSet, error) {
	s := &divisionSet{top: aliasIndex{}}
	for n, line := range strings.Split(strings.TrimSpace(table), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, fmt.Errorf("division table line %d: too few fields", n+1)
		}
		code, err := strconv.Atoi(f[0])
		if err != nil || code < 10 || code > 99 || s.codes[code] {
			return nil, fmt.Errorf("division table line %d: bad or repeated code %q", n+1, f[0])
		}
		s.codes[code] = true
		p := &division{name: f[1], code: code, own: f[3] == "*", index: aliasIndex{}}
		s.provinces = append(s.provinces, p)
		s.top.add(alias{text: p.name, prov: p})
		short := f[2]
		s.top.add(alias{text: short, prov: p, short: true})
		switch {
		case strings.HasSuffix(p.name, "自治区"):
			if short+"自治区" != p.name {
				s.top.add(alias{text: short + "自治区", prov: p})
			}
		case strings.HasSuffix(p.name, "特别行政区"):
			s.top.add(alias{text: short + "特区", prov: p})
		}
		if p.own {
			continue
		}
		for _, tok := range f[3:] {
			c := &city{prov: p}
			if strings.HasPrefix(tok, "+") {
				c.direct = true
				tok = tok[1:]
			}
			c.name, c.short, _ = strings.Cut(tok, "=")
			if c.short == "" {
				for _, suffix := range []string{"市", "地区", "盟", "林区", "县"} {
					if strings.HasSuffix(c.name, suffix) {
						c.short = strings.TrimSuffix(c.name, suffix)
						break
					}
				}
			}
			if utf8.RuneCountInString(c.short) < 2 || c.short == c.name {
				return nil, fmt.Errorf("division table: %s has no usable short form", c.name)
			}
			c.out = []byte(p.name + c.name)
			p.cities = append(p.cities, c)
			p.index.add(alias{text: c.name, prov: p, city: c})
			p.index.add(alias{text: c.short, prov: p, city: c, short: true})
			s.top.add(alias{text: c.name, prov: p, city: c})
			if strings.HasSuffix(c.name, "自治州") {
				p.index.add(alias{text: c.short + "州", prov: p, city: c})
				s.top.add(alias{text: c.short + "州", prov: p, city: c})
			}
		}
		p.index.sort()
	}
	s.top.sort()
	return s, nil
}
