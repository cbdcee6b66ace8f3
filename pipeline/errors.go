package pipeline

import "github.com/deidproject/deid/pipeline/dataerr"

// ErrData is matched (errors.Is) by errors the data causes (see dataerr).
// The command line maps it to exit code 3.
var ErrData = dataerr.ErrData

// DataError is a problem with one input file (or erasure list).
type DataError = dataerr.Error
