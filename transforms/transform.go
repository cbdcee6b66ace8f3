// Package transforms is the pure compute of deid: column transforms that
// rewrite one Arrow array into another (pseudonymize, generalize, scrub, ...)
// and row filters that decide which rows of a batch survive (retention,
// erasure). It knows nothing of files, policies or storage: it never imports
// rules or pipeline (cmd/deid's TestLayoutRules checks it).
//
// Every transform is described by a Spec in an explicit registry (Registry):
// its name, typed parameters with defaults, a one-line summary and an
// example. The policy language (package rules), `deid validate`, `deid schema`
// and the transform table of docs/reference/transforms.md all read that one registry.
//
// Contract of a Transform (checked for every registered transform by one
// conformance test):
//   - Apply takes one Arrow array, plain or dictionary-encoded, and returns a
//     new array of the type OutputType reports, with the same length.
//   - NULL in gives NULL out. A transform may also turn a value it cannot
//     process into NULL (an unparsable IP address, say); it never passes such
//     a value through unchanged.
//   - The result depends only on the input values, the parameters and the key:
//     the same input gives the same output in every run, on every machine.
//   - The caller owns both arrays and releases them; Apply may return its
//     input retained when the transform is the identity (keep).
//   - Transforms are safe for concurrent use by several goroutines.
//
// A transform whose result depends on the row's data subject as well as on
// the value (shift_date) also implements SubjectAware; its Apply alone fails
// with ErrNeedsSubject.
package transforms

import (
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Transform rewrites one column of a record batch.
type Transform interface {
	// OutputType returns the type Apply produces for input of type in, or an
	// error (wrapping ErrUnsupportedType) when the transform cannot take it.
	OutputType(in arrow.DataType) (arrow.DataType, error)
	// Apply returns the transformed array. See the package documentation for
	// the contract on NULLs, determinism and ownership.
	Apply(mem memory.Allocator, in arrow.Array) (arrow.Array, error)
}

// SubjectAware is implemented by transforms that need each row's data subject
// besides its value: shift_date moves every date of one subject by the same
// keyed number of days, so it must know whose date each value is.
//
// The caller (the pipeline) passes the dataset's subject column (the column
// the policy names as the dataset's `subject`, e.g. user_id: an integer or a
// string column, plain or dictionary-encoded) from the same batch as in, with
// the same rows in the same order: subject.Len() == in.Len(), and rows removed
// by row filters are removed from both alike. What a NULL subject gives is the
// transform's to say (shift_date: NULL).
//
// Apply, called without a subject, returns an error wrapping ErrNeedsSubject:
// such a transform never falls back to a per-value result. The Spec of a
// SubjectAware transform has Subject set, so the policy language can demand
// that the dataset declare its subject. The rest of the Transform contract
// (ownership, NULLs, determinism, concurrency) holds for ApplySubject as for
// Apply. A SubjectAware transform does not map values independently, so
// DictionaryCache must not be used with it.
type SubjectAware interface {
	Transform
	// ApplySubject returns the transformed array for the values in and the
	// subjects of the same rows.
	ApplySubject(mem memory.Allocator, in, subject arrow.Array) (arrow.Array, error)
}

// OutputForm is implemented by transforms whose every non-NULL output value
// has one fixed form that can be told from a raw value: pseudonymize writes
// 2·bytes lowercase hex characters, whatever the input type. deid verify
// counts the values of a column such a transform wrote that are not of its
// form (a column of pseudonyms replaced by the raw ids, say). The
// conformance test checks every output of Apply against it, and that every
// transform whose Result is ResultPseudonym implements it.
type OutputForm interface {
	// HasForm reports whether v, an output value as its bytes, is of the
	// form Apply writes.
	HasForm(v []byte) bool
	// Form describes the form, for messages: "32 lowercase hex characters".
	Form() string
}

// ErrNeedsSubject is wrapped by the Apply of a SubjectAware transform (which
// needs ApplySubject instead) and by ApplySubject when the subject column
// cannot be used (another length, a type other than integer or string).
var ErrNeedsSubject = errors.New("needs the dataset's subject column")

// ErrUnsupportedType is wrapped by OutputType and Apply errors when a
// transform is bound to a column whose Arrow type it cannot process.
var ErrUnsupportedType = errors.New("unsupported column type")

// Env carries what a transform may need beyond its parameters when it is
// bound: the destination's secret key for keyed transforms, and the run's
// reference instant for transforms that compute with the current date.
type Env struct {
	// Key is the destination's secret. It is nil when the destination has no
	// key; keyed transforms then refuse to bind.
	Key []byte
	// Now is the run's reference instant: the value of `deid run --now`, or
	// the clock read once when the run started (the instant retention is
	// measured from). Transforms that depend on the current date (age_band
	// computes ages at Now) use it, never the clock, so a run is
	// deterministic for a given now. The zero time means "not given"; such
	// transforms then refuse to bind.
	Now time.Time
}

// Result says what a transform leaves of an identifier. The policy language
// uses it to enforce purpose floors and the manifest reports it.
type Result int

// Results, from the most to the least revealing.
const (
	// ResultRaw keeps the value as it is.
	ResultRaw Result = iota
	// ResultScrubbed keeps free text but replaces detected identifiers in it.
	ResultScrubbed
	// ResultGeneralized keeps a coarser form (a /24 network, an hour, a city).
	ResultGeneralized
	// ResultPseudonym replaces the value with a keyed hash: joinable by whoever
	// holds the key, not reversible without it.
	ResultPseudonym
	// ResultRemoved leaves nothing of the value (the column is dropped or NULL).
	ResultRemoved
)

// String returns the result's name as reports show it.
func (r Result) String() string {
	switch r {
	case ResultRaw:
		return "raw"
	case ResultScrubbed:
		return "scrubbed"
	case ResultGeneralized:
		return "generalized"
	case ResultPseudonym:
		return "pseudonym"
	case ResultRemoved:
		return "removed"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Kind is a family of Arrow types a transform accepts.
type Kind int

// Kinds of input columns.
const (
	KindString    Kind = iota // utf8, large utf8, binary, and dictionaries of them
	KindInteger               // signed and unsigned integers
	KindFloat                 // float32, float64
	KindTimestamp             // timestamps of any unit, with or without time zone
	KindDate                  // date32 (days since 1970-01-01)
	KindDecimal               // decimal128, decimal256
)

// String names the kind as documentation shows it.
func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInteger:
		return "integer"
	case KindFloat:
		return "float"
	case KindTimestamp:
		return "timestamp"
	case KindDate:
		return "date"
	case KindDecimal:
		return "decimal"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// KindOf returns the kind of an Arrow type, looking through dictionaries.
func KindOf(t arrow.DataType) (Kind, bool) {
	if d, ok := t.(*arrow.DictionaryType); ok {
		t = d.ValueType
	}
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
		return KindString, true
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return KindInteger, true
	case arrow.FLOAT32, arrow.FLOAT64:
		return KindFloat, true
	case arrow.TIMESTAMP:
		return KindTimestamp, true
	case arrow.DATE32:
		return KindDate, true
	case arrow.DECIMAL128, arrow.DECIMAL256:
		return KindDecimal, true
	}
	return 0, false
}

// checkKind returns an error wrapping ErrUnsupportedType unless t is one of kinds.
func checkKind(name string, t arrow.DataType, kinds ...Kind) error {
	k, ok := KindOf(t)
	if ok {
		for _, want := range kinds {
			if k == want {
				return nil
			}
		}
	}
	return fmt.Errorf("%s: %w %s (takes %s)", name, ErrUnsupportedType, t, kindList(kinds))
}

func kindList(kinds []Kind) string {
	s := ""
	for i, k := range kinds {
		if i > 0 {
			s += " or "
		}
		s += k.String()
	}
	return s
}
