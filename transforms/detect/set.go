package detect

import (
	"fmt"
	"slices"
)

// Match is a span found by one of a Set's detectors.
type Match struct {
	Span
	// Detector is the index in the Set of the detector whose token replaces
	// the span.
	Detector int
}

// A Set runs several detectors over the same text in one pass and merges
// what they find.
//
// Every detector scans the original text; none sees another's tokens, so a
// token can never become part of a match and the result does not depend on
// the tokens' spelling. Matches of different detectors that overlap are
// merged into one match covering all of them (the union of their spans), so
// nothing a detector found is left partly visible. The merged match takes
// the token of the longest of them, which names the outer value (the e-mail
// address 13812345678@163.com, not the phone number in it); of equally long
// ones, the detector listed first wins (an 18-digit number that is both a
// valid resident identity number and a Luhn-valid card number reads
// [ID_CARD] in the default order). Matches that only touch stay apart.
//
// For the bench detectors in their reference order (email_bench,
// phone_bench) the result equals applying them one after the other, as the
// reference policy does: a phone_bench match never straddles an e-mail
// match, it lies inside one or apart from it (tests check this against the
// reference's own regular expressions).
//
// A Set is immutable and safe for concurrent use; the Buffer passed to its
// methods is not.
type Set struct {
	detectors []Detector
	tokens    []string
}

// NewSet returns a Set of the given detectors, in priority order.
func NewSet(ds ...Detector) *Set {
	s := &Set{detectors: slices.Clone(ds), tokens: make([]string, len(ds))}
	for i, d := range ds {
		s.tokens[i] = d.Token()
	}
	return s
}

// LookupSet returns the Set of the detectors registered under names, in
// that order.
func LookupSet(names []string) (*Set, error) {
	ds := make([]Detector, len(names))
	for i, n := range names {
		d, err := Lookup(n)
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	return NewSet(ds...), nil
}

// defaultNames is the default detector list, most specific first: the
// detectors that validate check characters (they rarely fire by chance) and
// whose values are longest, then e-mail, phone and the network addresses.
// With a Set the order only decides between matches of the same length
// (see Set).
var defaultNames = []string{"resident_id", "uscc", "bank_card", "imei", "email", "phone", "ip", "mac"}

// DefaultNames returns the names of the detectors the scrub transform uses
// when a policy lists none, in order.
func DefaultNames() []string { return slices.Clone(defaultNames) }

// DefaultSet returns the Set of the default detectors.
func DefaultSet() *Set {
	s, err := LookupSet(defaultNames)
	if err != nil {
		panic(fmt.Sprintf("detect: default detectors: %v", err)) // the registry and the list disagree: a bug
	}
	return s
}

// Detectors returns the Set's detectors in priority order.
func (s *Set) Detectors() []Detector { return slices.Clone(s.detectors) }

// Token returns the token that replaces m.
func (s *Set) Token(m Match) string { return s.tokens[m.Detector] }

// Buffer is scratch space for a Set's methods, reused between calls to avoid
// allocations. The zero value is ready to use. A Buffer must not be used by
// two goroutines at once.
type Buffer struct {
	spans   []Span
	matches []Match
}

// Find appends to dst the merged matches of the Set's detectors in text, in
// increasing order, non-overlapping and non-empty, and returns the extended
// slice. It allocates nothing once dst and buf have grown to fit. A nil buf
// is allowed and allocates.
func (s *Set) Find(dst []Match, text []byte, buf *Buffer) []Match {
	if buf == nil {
		buf = new(Buffer)
	}
	base := len(dst)
	sorted := true
	for k, d := range s.detectors {
		buf.spans = d.Find(buf.spans[:0], text)
		if len(buf.spans) > 0 && len(dst) > base && buf.spans[0].Start < dst[len(dst)-1].End {
			sorted = false
		}
		for _, sp := range buf.spans {
			dst = append(dst, Match{sp, k})
		}
	}
	ms := dst[base:]
	if !sorted {
		slices.SortFunc(ms, func(a, b Match) int {
			if a.Start != b.Start {
				return a.Start - b.Start
			}
			return a.Detector - b.Detector
		})
	}
	// merge overlapping matches; the longest (then the first-listed) names
	// the merged one
	n, bestLen := 0, 0
	for _, m := range ms {
		l := m.End - m.Start
		if n > 0 && m.Start < ms[n-1].End {
			last := &ms[n-1]
			last.End = max(last.End, m.End)
			if l > bestLen || (l == bestLen && m.Detector < last.Detector) {
				last.Detector, bestLen = m.Detector, l
			}
			continue
		}
		ms[n] = m
		n++
		bestLen = l
	}
	return dst[:base+n]
}

// Scrub appends to dst the text with every merged match replaced by its
// detector's token and returns the extended slice. It allocates nothing
// once dst and buf have grown to fit; a nil buf is allowed and allocates.
func (s *Set) Scrub(dst, text []byte, buf *Buffer) []byte {
	if buf == nil {
		buf = new(Buffer)
	}
	buf.matches = s.Find(buf.matches[:0], text, buf)
	prev := 0
	for _, m := range buf.matches {
		dst = append(dst, text[prev:m.Start]...)
		dst = append(dst, s.tokens[m.Detector]...)
		prev = m.End
	}
	return append(dst, text[prev:]...)
}
