// Package fake generates fake personal data of the kinds package detect
// finds, look-alikes that must not be found, and Chinese sentences with both
// planted in them together with the ground truth: where each planted value
// is and what kind it is.
//
// Everything is deterministic: a Gen made with New(seed) produces the same
// sequence for the same seed and the same calls. Values are valid by the
// same standards the detectors check (check characters, number plans,
// calendar dates) but are computed here independently, so that measuring
// the detectors against this package is a real cross-check. The numbers are
// made up; some may, by chance, be real.
//
// Typical use:
//
//	g := fake.New(42)
//	born := g.Date(time.Date(2012, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2018, 12, 31, 0, 0, 0, 0, time.UTC))
//	id := g.ResidentID(born, fake.Female) // a child's identity number
//	s, err := g.Sentence(fake.Phone)      // e.g. "麻烦放快递柜，电话138 1234 5678，谢谢"
//	for _, p := range s.Planted {         // the ground truth
//		fmt.Println(p.Kind, s.Text[p.Start:p.End])
//	}
//
// The API: New and NewRand make a generator; the value functions (Phone,
// PhoneSpelled, Email, ResidentID, ResidentIDSpelled, BankCard,
// BankCardSpelled, IMEI, IMEISpelled, USCC, IPv4, IPv6, MAC, Name, Address)
// return personal data, the spelling functions (SpellPhone, SpellCard,
// SpellIMEI, FullWidth) write a value in a given style, the look-alike
// functions (OrderNumber, Timestamp, Price, DateText, Hotline, NonMobile,
// Version, BadResidentID, BadBankCard, BadIMEI, BadUSCC) return what must
// not be detected, Value returns either by Kind, and Sentence, AnySentence
// and Fill plant them in text.
package fake

import (
	"fmt"
	"math/rand/v2"
)

// Kind names what a planted value is. The kinds of personal data that
// package detect finds are named as its detectors; the look-alike kinds are
// values that resemble them but are not personal data.
type Kind string

// Kinds of personal data.
const (
	Phone      Kind = "phone"       // mainland mobile number, in one of its spellings
	Email      Kind = "email"       // e-mail address
	ResidentID Kind = "resident_id" // 18-character resident identity number
	BankCard   Kind = "bank_card"   // payment card number
	IMEI       Kind = "imei"        // 15-digit IMEI
	USCC       Kind = "uscc"        // unified social credit code
	IP         Kind = "ip"          // IPv4 or IPv6 address
	MAC        Kind = "mac"         // MAC address
	Name       Kind = "name"        // Chinese person name (no detector finds these)
	Address    Kind = "address"     // Chinese postal address (no detector finds these)
)

// Kinds of look-alikes.
const (
	OrderNumber   Kind = "order_number"    // order and tracking numbers, long digit runs
	Timestamp     Kind = "timestamp"       // 20261101123045, epoch seconds and milliseconds
	Price         Kind = "price"           // ¥129.90, 1,299.00元
	DateText      Kind = "date"            // 2026-11-01, 2026年11月1日, 20261101
	Hotline       Kind = "hotline"         // 400-820-8820, 95588, landlines
	BadResidentID Kind = "bad_resident_id" // resident identity number with a wrong check character
	BadBankCard   Kind = "bad_bank_card"   // card number with a wrong Luhn digit
	BadIMEI       Kind = "bad_imei"        // IMEI with a wrong Luhn digit
	BadUSCC       Kind = "bad_uscc"        // credit code with a wrong check character
	NonMobile     Kind = "non_mobile"      // 11 digits that are not a mobile number
	Version       Kind = "version"         // version strings: v1.2.3, 1.2.3.4.5, 版本4.2.1.0
)

// PersonalKinds returns the kinds of personal data a detector of package
// detect finds, in the detectors' default order.
func PersonalKinds() []Kind {
	return []Kind{ResidentID, USCC, BankCard, IMEI, Email, Phone, IP, MAC}
}

// LookAlikeKinds returns the look-alike kinds.
func LookAlikeKinds() []Kind {
	return []Kind{OrderNumber, Timestamp, Price, DateText, Hotline, BadResidentID, BadBankCard, BadIMEI, BadUSCC,
		NonMobile, Version}
}

// LookAlike reports whether k is a look-alike kind, not personal data.
func (k Kind) LookAlike() bool {
	for _, l := range LookAlikeKinds() {
		if k == l {
			return true
		}
	}
	return false
}

// Gen generates fake values. It is not safe for concurrent use.
type Gen struct {
	r *rand.Rand
}

// New returns a generator seeded with seed.
func New(seed uint64) *Gen {
	return &Gen{r: rand.New(rand.NewPCG(seed, 0x6465696466616b65))} // "deidfake"
}

// Value returns a fresh value of kind k in one of its usual spellings,
// chosen at random: for a phone number "13812345678", "138 1234 5678",
// "+86-138-1234-5678", full-width "１３８１２３４５６７８", and so on.
func (g *Gen) Value(k Kind) (string, error) {
	switch k {
	case Phone:
		return g.PhoneSpelled(), nil
	case Email:
		return g.Email(), nil
	case ResidentID:
		return g.ResidentIDSpelled(), nil
	case BankCard:
		return g.BankCardSpelled(), nil
	case IMEI:
		return g.IMEISpelled(), nil
	case USCC:
		return g.USCC(), nil
	case IP:
		if g.r.IntN(3) == 0 {
			return g.IPv6(), nil
		}
		return g.IPv4(), nil
	case MAC:
		return g.MAC(), nil
	case Name:
		return g.Name(), nil
	case Address:
		return g.Address(), nil
	case OrderNumber:
		return g.OrderNumber(), nil
	case Timestamp:
		return g.Timestamp(), nil
	case Price:
		return g.Price(), nil
	case DateText:
		return g.DateText(), nil
	case Hotline:
		return g.Hotline(), nil
	case BadResidentID:
		return g.BadResidentID(), nil
	case BadBankCard:
		return g.BadBankCard(), nil
	case BadIMEI:
		return g.BadIMEI(), nil
	case BadUSCC:
		return g.BadUSCC(), nil
	case NonMobile:
		return g.NonMobile(), nil
	case Version:
		return g.Version(), nil
	}
	return "", fmt.Errorf("fake: unknown kind %q", k)
}

// pick returns a random element of l.
func pick[T any](g *Gen, l []T) T { return l[g.r.IntN(len(l))] }

// digits returns n random decimal digits.
func (g *Gen) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + g.r.IntN(10))
	}
	return string(b)
}

// chance reports true with probability p.
func (g *Gen) chance(p float64) bool { return g.r.Float64() < p }
