// Package dataerr is the class of errors the data causes (a corrupt or
// unreadable file, an unclassified or missing column, a changed type, a
// malformed list), which the command line maps to exit code 3, apart from
// those of the machine or the policy, and the check every reader makes of
// a file's column names. It never imports the engine (pipeline) or
// transforms.
package dataerr

import (
	"errors"
	"fmt"

	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// ErrData is matched (errors.Is) by errors the data causes: a corrupt or
// unreadable file, a column the policy does not classify, a missing column,
// a type that changed, an erasure list of the wrong type. The command line
// maps it to exit code 3.
var ErrData = errors.New("data error")

// Error is a problem with one input file (or erasure list).
type Error struct {
	// Location is the file's location.
	Location string
	// Column is the column concerned, if any.
	Column string
	// Err says what is wrong.
	Err error
}

// Error formats the problem as `location: column "x": what`. The column
// is quoted (rules.QuoteName: Go's %q, escaped further when Unicode
// normalization would change it) so that names differing by case, by an
// invisible character or by normalization do not look alike; the
// location, a path leading the message, is quoted only when it holds a
// character that is not printable (storage.QuoteLocation).
func (e *Error) Error() string {
	if e.Location == "" {
		return e.Err.Error()
	}
	if e.Column != "" {
		return fmt.Sprintf("%s: column %s: %v", storage.QuoteLocation(e.Location), rules.QuoteName(e.Column), e.Err)
	}
	return fmt.Sprintf("%s: %v", storage.QuoteLocation(e.Location), e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every Error match ErrData.
func (e *Error) Is(target error) bool { return target == ErrData }

// Errorf is an Error about location (and column, if not empty).
func Errorf(location, column, format string, args ...any) error {
	return &Error{Location: location, Column: column, Err: fmt.Errorf(format, args...)}
}

// Mark marks err, which already names its file, as a data error; nil
// stays nil.
func Mark(err error) error {
	if err == nil || errors.Is(err, ErrData) {
		return err
	}
	return &Error{Err: err}
}
