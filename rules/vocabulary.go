package rules

import (
	"fmt"
	"sort"
	"strings"
)

// Category groups semantic types by how identifying they are; purpose floors
// and default treatments are stated per category.
type Category string

// Categories of semantic types.
const (
	// DirectIdentifier identifies a person on its own (phone, resident ID).
	DirectIdentifier Category = "direct_identifier"
	// DeviceIdentifier identifies a device and through it a person (IMEI, OAID).
	DeviceIdentifier Category = "device_identifier"
	// QuasiIdentifier identifies in combination (IP, location, time, city).
	QuasiIdentifier Category = "quasi_identifier"
	// FreeText may contain anything, identifiers included (search queries, notes, URLs).
	FreeText Category = "free_text"
	// RecordID identifies a record, not a person (an event id, an order number).
	RecordID Category = "record_id"
	// Attribute is personal but not identifying on its own (an amount, an item).
	Attribute Category = "attribute"
	// NonPersonal carries no personal information.
	NonPersonal Category = "non_personal"
)

// SemanticType is what a column holds, independent of its storage type.
type SemanticType struct {
	// Name is the type's name in policies.
	Name string
	// Category says how identifying the type is.
	Category Category
	// Description says what such a column holds.
	Description string
	// Coarse marks a quasi-identifier that is already a generalised value
	// (a city, a calendar date, a gender): floors that ask for
	// generalisation accept it as it is.
	Coarse bool
	// Derivations are transforms that turn the identifier into an attribute
	// that no longer identifies (a resident ID into a birth year, an address
	// into its city); they meet any floor.
	Derivations []string
}

// coarse and derivations annotate the vocabulary below.
var (
	coarse      = []string{"city", "province", "gender", "device_model", "os_version", "date"}
	derivations = map[string][]string{
		"address":     {"generalize_address"},
		"resident_id": {"birth_year", "age_band"},
		"birth_date":  {"birth_year", "age_band"},
	}
)

// annotate sets Coarse and Derivations on the vocabulary's types.
func annotate(types []SemanticType) []SemanticType {
	for i := range types {
		types[i].Coarse = contains(coarse, types[i].Name)
		types[i].Derivations = derivations[types[i].Name]
	}
	return types
}

// vocabulary lists the semantic types a dataset may use to classify its
// columns, covering the fields the seeds' privacy policies name.
var vocabulary = annotate([]SemanticType{
	{Name: "account_id", Category: DirectIdentifier, Description: "user or member id of the platform"},
	{Name: "phone", Category: DirectIdentifier, Description: "phone number"},
	{Name: "email", Category: DirectIdentifier, Description: "e-mail address"},
	{Name: "person_name", Category: DirectIdentifier, Description: "a person's name (receiver, real name)"},
	{Name: "resident_id", Category: DirectIdentifier, Description: "PRC resident identity card number (18 characters)"},
	{Name: "passport", Category: DirectIdentifier, Description: "passport or other travel document number"},
	{Name: "bank_card", Category: DirectIdentifier, Description: "bank card number"},
	{Name: "taxpayer_id", Category: DirectIdentifier, Description: "taxpayer id / unified social credit code"},
	{Name: "address", Category: DirectIdentifier, Description: "postal or delivery address"},
	{Name: "payment_account", Category: DirectIdentifier, Description: "payment account id"},
	{Name: "imei", Category: DeviceIdentifier, Description: "IMEI or MEID"},
	{Name: "mac", Category: DeviceIdentifier, Description: "MAC address of the device"},
	{Name: "advertising_id", Category: DeviceIdentifier, Description: "IDFA or OAID"},
	{Name: "android_id", Category: DeviceIdentifier, Description: "Android ID"},
	{Name: "imsi", Category: DeviceIdentifier, Description: "IMSI of the SIM"},
	{Name: "iccid", Category: DeviceIdentifier, Description: "ICCID of the SIM"},
	{Name: "device_serial", Category: DeviceIdentifier, Description: "hardware serial number, GUID, OpenUDID"},
	{Name: "device_id", Category: DeviceIdentifier, Description: "an app-level device id of any of the kinds above"},
	{Name: "wifi_bssid", Category: QuasiIdentifier, Description: "BSSID of a Wi-Fi access point near the device"},
	{Name: "cell_id", Category: QuasiIdentifier, Description: "id of the mobile cell the device used"},
	{Name: "ip", Category: QuasiIdentifier, Description: "IP address"},
	{Name: "user_agent", Category: QuasiIdentifier, Description: "browser or app user agent"},
	{Name: "device_model", Category: QuasiIdentifier, Description: "device model"},
	{Name: "os_version", Category: QuasiIdentifier, Description: "operating system and version"},
	{Name: "timestamp", Category: QuasiIdentifier, Description: "time of an event"},
	{Name: "date", Category: QuasiIdentifier, Description: "calendar date of an event"},
	{Name: "birth_date", Category: QuasiIdentifier, Description: "date of birth"},
	{Name: "latitude", Category: QuasiIdentifier, Description: "latitude of a location"},
	{Name: "longitude", Category: QuasiIdentifier, Description: "longitude of a location"},
	{Name: "city", Category: QuasiIdentifier, Description: "city or prefecture"},
	{Name: "province", Category: QuasiIdentifier, Description: "province"},
	{Name: "gender", Category: QuasiIdentifier, Description: "gender"},
	{Name: "url", Category: FreeText, Description: "visited URL (query strings carry identifiers)"},
	{Name: "free_text", Category: FreeText, Description: "free text written by a person (search query, buyer's note, chat)"},
	{Name: "item_text", Category: Attribute, Description: "item title or description (written by sellers, not buyers)"},
	{Name: "invoice_title", Category: DirectIdentifier, Description: "invoice title (a person's or a company's name)"},
	{Name: "event_id", Category: RecordID, Description: "id of a log event"},
	{Name: "order_id", Category: RecordID, Description: "order number"},
	{Name: "amount", Category: Attribute, Description: "a money amount"},
	{Name: "quantity", Category: Attribute, Description: "a count"},
	{Name: "category", Category: Attribute, Description: "a product or page category"},
	{Name: "non_personal", Category: NonPersonal, Description: "data about no person"},
})

// SemanticTypes returns the vocabulary, sorted by name.
func SemanticTypes() []SemanticType {
	out := make([]SemanticType, len(vocabulary))
	copy(out, vocabulary)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupSemanticType returns the semantic type called name.
func LookupSemanticType(name string) (*SemanticType, error) {
	for i := range vocabulary {
		if vocabulary[i].Name == name {
			return &vocabulary[i], nil
		}
	}
	return nil, fmt.Errorf("unknown semantic type %q (see `deid schema` for the vocabulary; closest: %s)", name, closest(name))
}

// closest suggests up to three vocabulary names sharing a word with name.
func closest(name string) string {
	var out []string
	for _, w := range strings.FieldsFunc(name, func(r rune) bool { return r == '_' || r == '-' }) {
		for _, st := range vocabulary {
			if strings.Contains(st.Name, w) && len(out) < 3 && !contains(out, st.Name) {
				out = append(out, st.Name)
			}
		}
	}
	if len(out) == 0 {
		return "non_personal, free_text"
	}
	return strings.Join(out, ", ")
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
