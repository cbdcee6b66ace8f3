package dataerr

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/deidproject/deid/rules"
)

// CheckColumnNames returns a data error naming the file at location when
// two or more of its columns are one name under rules.FoldName: exactly
// the same, or equal once Unicode-normalized and case-folded. Columns are
// found by name, so one of them would be read in place of the other.
func CheckColumnNames(location string, sch *arrow.Schema) error {
	names := make([]string, sch.NumFields())
	for i, f := range sch.Fields() {
		names[i] = f.Name
	}
	return CheckNames(location, names)
}

// CheckNames is CheckColumnNames on a list of column names (a CSV header).
func CheckNames(location string, names []string) error {
	groups := rules.CollidingNames(names)
	if len(groups) == 0 {
		return nil
	}
	var list []string
	for _, g := range groups {
		list = append(list, rules.QuoteNames(g))
	}
	return &Error{Location: location, Err: fmt.Errorf("%w: columns %s are one name (exactly, or once Unicode-normalized and case-folded): "+
		"columns are matched by name, so deid cannot tell them apart; rename or drop all but one before deid reads the file",
		ErrDuplicateColumns, strings.Join(list, "; "))}
}

// ErrDuplicateColumns is matched (errors.Is) by the data error of a file
// with two columns of one name (CheckColumnNames).
var ErrDuplicateColumns = errors.New("duplicate column names")
