package transforms

import (
	"net/netip"
	"testing"
)

// FuzzIPv4FastPath: the IPv4 path without netip gives exactly what netip
// gives, for every prefix length it serves, and serves every text netip
// reads as a plain IPv4 address.
func FuzzIPv4FastPath(f *testing.F) {
	for _, s := range []string{"120.229.1.7", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
		"1..2.3", ".1.2.3", "1.2.3.", "1.2.3.04", "::ffff:1.2.3.4", "1.2.3.4%eth0", " 1.2.3.4", "unknown", "-", "120.229.1.7, 10.12.3.4", "1.2.3.255"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := netip.ParseAddr(s)
		plain4 := err == nil && a.Is4() && a.Zone() == ""
		for keep := 0; keep <= 4; keep++ {
			fast, ok := appendIPv4Octets(nil, []byte(s), keep)
			if ok != plain4 {
				t.Fatalf("%q: fast path %v, netip reads a plain IPv4 address: %v", s, ok, plain4)
			}
			if !ok {
				continue
			}
			for _, bench := range []bool{true, false} {
				g := &generalizeIP{bench: bench, v4: 8 * keep, v6: 48}
				slow, ok := g.generalizeParsed(nil, []byte(s))
				if !ok || string(slow) != string(fast) {
					t.Fatalf("%q /%d (bench %v): fast %q, netip %q (%v)", s, 8*keep, bench, fast, slow, ok)
				}
			}
		}
	})
}
