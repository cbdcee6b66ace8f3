package pipeline

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

// DataError is a problem with one input file (or erasure list).
type DataError struct {
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
func (e *DataError) Error() string {
	if e.Location == "" {
		return e.Err.Error()
	}
	if e.Column != "" {
		return fmt.Sprintf("%s: column %s: %v", storage.QuoteLocation(e.Location), rules.QuoteName(e.Column), e.Err)
	}
	return fmt.Sprintf("%s: %v", storage.QuoteLocation(e.Location), e.Err)
}

// Unwrap returns the underlying error.
func (e *DataError) Unwrap() error { return e.Err }

// Is makes every DataError match ErrData.
func (e *DataError) Is(target error) bool { return target == ErrData }

func dataErrorf(location, column, format string, args ...any) error {
	return &DataError{Location: location, Column: column, Err: fmt.Errorf(format, args...)}
}

// dataError marks err, which already names its file, as a data error.
func dataError(err error) error {
	if err == nil || errors.Is(err, ErrData) {
		return err
	}
	return &DataError{Err: err}
}
