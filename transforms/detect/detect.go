// Package detect finds personal data inside free text: identity numbers
// that carry check characters (resident identity numbers, bank cards, IMEIs,
// unified social credit codes), mobile phone numbers, e-mail addresses, IP
// and MAC addresses.
//
// A Detector reports byte spans; it never rewrites text itself. A Set runs
// several detectors in one pass, merges overlapping matches and replaces
// them with the detectors' tokens; the scrub transform (package transforms)
// uses one per column. Detectors validate what they can (check digits,
// number plans, calendar dates) so that look-alikes such as order numbers,
// timestamps and hotline numbers survive: the tests measure each detector's
// recall on planted values and its precision on look-alikes, both generated
// by package detect/fake.
//
// The validating detectors share one character model (text.go): full-width
// forms of ASCII characters count as those characters, numbers may be typed
// in digit groups separated by one kind of separator (a space, a dash or a
// dot, as in "110101 19841104 8310"), each detector accepting the groupings
// customary for its kind, and a match never
// touches a letter or digit outside it, while Chinese characters delimit
// values, since Chinese text has no spaces: "电话13812345678谢谢" holds a
// phone number, "订单138123456789012" does not.
//
// The two bench detectors, email_bench and phone_bench, reproduce the bench's
// reference policy byte for byte and deliberately do none of this.
//
// The package depends on the standard library only and is safe for concurrent
// use: detectors hold no mutable state.
package detect

import (
	"fmt"
	"sort"
)

// Span is the half-open byte range [Start, End) of a match in the scanned text.
type Span struct {
	Start, End int
}

// Detector finds one kind of personal data in text.
//
// Find appends to dst the spans of s that hold the detector's kind of data and
// returns the extended slice. Spans are non-overlapping, non-empty and in
// increasing order. Find never retains s or dst beyond the call and allocates
// nothing when dst has room.
type Detector interface {
	// Name is the registry name used in policies, e.g. "phone_bench".
	Name() string
	// Token is the replacement text for a match, e.g. "[PHONE]".
	Token() string
	// Find appends the spans of s that hold personal data to dst.
	Find(dst []Span, s []byte) []Span
}

// Info describes a registered detector for documentation and validation.
type Info struct {
	// Name is the policy name of the detector.
	Name string
	// Token replaces every match.
	Token string
	// Summary is one line saying what the detector matches.
	Summary string
	// Example is an input and its scrubbed form, "in → out".
	Example string
	// New returns the detector.
	New func() Detector
}

// registry lists every detector, in the order the documentation shows them.
// It is assembled here, explicitly, rather than by init-time registration.
var registry = []Info{
	{
		Name:    "resident_id",
		Token:   "[ID_CARD]",
		Summary: "18-character resident identity numbers (GB 11643): ISO 7064 MOD 11-2 check character (X or x), a real birth date in 1900-2100, a province code of GB/T 2260; plain or in 6-8-4 or 6-4-4-4 groups",
		Example: "身份证 110101 19841104 8310 → 身份证 [ID_CARD]",
		New:     func() Detector { return ResidentID{} },
	},
	{
		Name:    "uscc",
		Token:   "[USCC]",
		Summary: "unified social credit codes (GB 32100): 18 characters of 0-9 and A-Z without I, O, Z, S, V, with the mod-31 check character, the GB 11714 check of the organisation code and a province code; plain or in 2-6-9-1 or 4-4-4-4-2 groups",
		Example: "税号91350100M000100Y43 → 税号[USCC]",
		New:     func() Detector { return USCC{} },
	},
	{
		Name:    "bank_card",
		Token:   "[BANK_CARD]",
		Summary: "card numbers of 16-19 digits, plain or in groups of four, the last possibly shorter, with a Luhn check digit and an issuer prefix: UnionPay 62, Visa 4, Mastercard 51-55 and 2221-2720, ICBC 9558, BOC 601382, BoCom 601428",
		Example: "卡号6222 0200 0000 0007 → 卡号[BANK_CARD]",
		New:     func() Detector { return BankCard{} },
	},
	{
		Name:    "imei",
		Token:   "[IMEI]",
		Summary: "15-digit IMEIs with a Luhn check digit and an allocated reporting body (35, 86, 01, ...), plain or printed 2-6-6-1 or 8-6-1; may directly follow the label IMEI",
		Example: "IMEI:35-209900-176148-1 → IMEI:[IMEI]",
		New:     func() Detector { return IMEI{} },
	},
	{
		Name:    "email",
		Token:   "[EMAIL]",
		Summary: "e-mail addresses, also with the full-width ＠ and with non-ASCII letters in the local part (Han excepted, since Chinese text has no spaces); a domain of two or more labels ending in a TLD of two or more letters",
		Example: "邮箱zhang.san＠qq.com谢谢 → 邮箱[EMAIL]谢谢",
		New:     func() Detector { return Email{} },
	},
	{
		Name:    "phone",
		Token:   "[PHONE]",
		Summary: "mainland mobile numbers on assigned segments (13x, 15x, 18x, ...): 11 digits, 3-4-4 groups, +86/0086/86 prefixes, full-width digits; never part of a longer number",
		Example: "电话+86 138 1234 5678谢谢 → 电话[PHONE]谢谢",
		New:     func() Detector { return Phone{} },
	},
	{
		Name:    "ip",
		Token:   "[IP]",
		Summary: "IPv4 (no leading zeros, octets ≤ 255, not a version number such as 1.2.3.4.5 or v1.2.3.4) and IPv6 in every RFC 4291 text form, validated by net/netip",
		Example: "来自2408:8207:1851:a::1 → 来自[IP]",
		New:     func() Detector { return IP{} },
	},
	{
		Name:    "mac",
		Token:   "[MAC]",
		Summary: "MAC addresses: six hex pairs separated by ':' or '-', or Cisco's xxxx.xxxx.xxxx",
		Example: "MAC 00:1A:2B:3C:4D:5E → MAC [MAC]",
		New:     func() Detector { return MAC{} },
	},
	{
		Name:    "email_bench",
		Token:   "[EMAIL]",
		Summary: "e-mail addresses exactly as the bench's reference policy defines them: the ASCII pattern [A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}, leftmost-first, non-overlapping",
		Example: "mail a.b@qq.com now → mail [EMAIL] now",
		New:     func() Detector { return EmailBench{} },
	},
	{
		Name:    "phone_bench",
		Token:   "[PHONE]",
		Summary: "mainland mobile numbers exactly as the bench's reference policy defines them: a maximal run of exactly 11 ASCII digits matching 1[3-9][0-9]{9}",
		Example: "联系13800138000谢谢 → 联系[PHONE]谢谢",
		New:     func() Detector { return PhoneBench{} },
	},
}

// All returns the registered detectors' descriptions, in documentation order.
func All() []Info {
	out := make([]Info, len(registry))
	copy(out, registry)
	return out
}

// Lookup returns the detector registered under name.
func Lookup(name string) (Detector, error) {
	for _, in := range registry {
		if in.Name == name {
			return in.New(), nil
		}
	}
	return nil, fmt.Errorf("unknown detector %q (known: %s)", name, knownNames())
}

func knownNames() string {
	names := make([]string, len(registry))
	for i, in := range registry {
		names[i] = in.Name
	}
	sort.Strings(names)
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// Replace appends to dst the text s with every span replaced by token and
// returns the extended slice. Spans must be sorted and non-overlapping. To
// replace the matches of several detectors, use a Set.
func Replace(dst, s []byte, spans []Span, token string) []byte {
	prev := 0
	for _, sp := range spans {
		dst = append(dst, s[prev:sp.Start]...)
		dst = append(dst, token...)
		prev = sp.End
	}
	return append(dst, s[prev:]...)
}
