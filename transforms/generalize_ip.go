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
