package transforms

// The functions in this file are the bench's plain-Go reference policy,
// copied from shared/bench/duckdb-peer/reference.go (whose own tests check
// them against DuckDB on thousands of values). They are the oracle for this
// package's tests: expectations never come from deid's own code.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// RefPseudonym: lowercase hex of the first 16 bytes of HMAC-SHA256(key, value).
func RefPseudonym(key []byte, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// RefPseudonymUserID: the user id is hashed as its decimal text ("-12", "0", "1000000007").
func RefPseudonymUserID(key []byte, id int64) string {
	return RefPseudonym(key, strconv.FormatInt(id, 10))
}

// RefIP: IPv4 -> last octet 0; IPv6 -> /48 prefix in RFC 5952 text ending in "::";
// anything netip.ParseAddr rejects, or an address with a zone, -> NULL (ok=false).
func RefIP(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", false
	}
	if a.Is4() {
		b := a.As4()
		b[3] = 0
		return netip.AddrFrom4(b).String(), true
	}
	return netip.PrefixFrom(a, 48).Masked().Addr().String(), true
}

// RefURL: the longest prefix containing neither '?' nor '#'.
func RefURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}

var refEmail = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// RefRedact: e-mails -> [EMAIL], then maximal 11-digit runs 1[3-9]... -> [PHONE].
func RefRedact(s string) string {
	s = refEmail.ReplaceAllString(s, "[EMAIL]")
	var b strings.Builder
	i := 0
	for i < len(s) {
		if s[i] < '0' || s[i] > '9' {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		run := s[i:j]
		if len(run) == 11 && run[0] == '1' && run[1] >= '3' && run[1] <= '9' {
			b.WriteString("[PHONE]")
		} else {
			b.WriteString(run)
		}
		i = j
	}
	return b.String()
}

// RefHour truncates to the start of the UTC hour.
func RefHour(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }

// RefRound2: round-half-away-from-zero of x*100 in IEEE-754 double, divided by 100.
func RefRound2(x float64) float64 {
	y := math.Round(x*100) / 100
	if math.IsInf(y, 0) || math.IsNaN(y) {
		return x
	}
	return y
}
