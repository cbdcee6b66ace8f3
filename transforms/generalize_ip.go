package transforms

import (
	"fmt"
	"net/netip"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var generalizeIPSpec = &Spec{
	Name: "generalize_ip",
	Summary: "keep only the network part of an IP address (IPv4 /24, IPv6 /48 by default) in canonical text; " +
		"a value that is not one address becomes NULL",
	Inputs: []Kind{KindString},
	Params: []ParamSpec{
		{Name: "variant", Kind: ParamString, Default: "standard", Enum: []string{"standard", "bench"},
			Doc: "`bench`: the reference policy's exact rule (the text must be exactly what Go's netip.ParseAddr accepts, " +
				"no zone; IPv4-mapped IPv6 stays IPv6); `standard`: also trims surrounding spaces, drops a zone and " +
				"treats IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 address"},
		{Name: "ipv4_prefix", Kind: ParamInt, Default: int64(24), Min: 0, Max: 32, Doc: "bits of an IPv4 address kept"},
		{Name: "ipv6_prefix", Kind: ParamInt, Default: int64(48), Min: 0, Max: 128, Doc: "bits of an IPv6 address kept"},
	},
	Result:  ResultGeneralized,
	Example: "120.229.1.7 → 120.229.1.0; 2408:8207:1851:a::1 → 2408:8207:1851::",
	New: func(p Params, _ Env) (Transform, error) {
		return &generalizeIP{
			bench: p.String("variant") == "bench",
			v4:    int(p.Int("ipv4_prefix")),
			v6:    int(p.Int("ipv6_prefix")),
		}, nil
	},
	Describe: func(p Params) string {
		return fmt.Sprintf("network prefix of the address (IPv4 /%d, IPv6 /%d) in canonical text, rest zeroed; NULL where the source was not a valid address (%s variant)",
			p.Int("ipv4_prefix"), p.Int("ipv6_prefix"), p.String("variant"))
	},
}

type generalizeIP struct {
	bench  bool
	v4, v6 int
}

func (g *generalizeIP) OutputType(in arrow.DataType) (arrow.DataType, error) {
	if err := checkKind("generalize_ip", in, KindString); err != nil {
		return nil, err
	}
	return arrow.BinaryTypes.String, nil
}

func (g *generalizeIP) Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error) {
	if _, err := g.OutputType(in.DataType()); err != nil {
		return nil, err
	}
	return mapStrings(mem, in, g.generalize)
}

// generalize appends the generalized form of the address in v to dst.
func (g *generalizeIP) generalize(dst, v []byte) ([]byte, bool) {
	if !g.bench {
		v = trimASCIISpace(v)
	}
	if g.v4%8 == 0 {
		// most addresses in logs are IPv4: generalized without netip
		if out, ok := appendIPv4Octets(dst, v, g.v4/8); ok {
			return out, true
		}
	}
	return g.generalizeParsed(dst, v)
}

// appendIPv4Octets appends v's first keep octets and zeros for the others
// ("120.229.1.7", 3: "120.229.1.0"), when v is an IPv4 address in the form
// netip.ParseAddr accepts and prints: four decimal octets of at most 255,
// without leading zeros. Otherwise it reports false and appends nothing.
func appendIPv4Octets(dst, v []byte, keep int) ([]byte, bool) {
	if len(v) < 7 || len(v) > 15 {
		return dst, false
	}
	var ends [4]int // end of each octet in v
	octet, digits, val := 0, 0, 0
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
			if digits == 1 && val == 0 { // a leading zero
				return dst, false
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return dst, false
			}
		case c == '.' && digits > 0 && octet < 3:
			ends[octet] = i
			octet, digits, val = octet+1, 0, 0
		default:
			return dst, false
		}
	}
	if octet != 3 || digits == 0 {
		return dst, false
	}
	ends[3] = len(v)
	if keep == 0 {
		return append(dst, "0.0.0.0"...), true
	}
	dst = append(dst, v[:ends[keep-1]]...)
	for range 4 - keep {
		dst = append(dst, ".0"...)
	}
	return dst, true
}

// generalizeParsed generalizes v through netip.
func (g *generalizeIP) generalizeParsed(dst, v []byte) ([]byte, bool) {
	a, err := netip.ParseAddr(unsafeString(v))
	if err != nil {
		return dst, false
	}
	if a.Zone() != "" {
		if g.bench {
			return dst, false
		}
		a = a.WithZone("")
	}
	if !g.bench && a.Is4In6() {
		a = a.Unmap()
	}
	bits := g.v6
	if a.Is4() {
		bits = g.v4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return dst, false
	}
	return p.Addr().AppendTo(dst), true
}

func trimASCIISpace(v []byte) []byte {
	for len(v) > 0 && isASCIISpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isASCIISpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
