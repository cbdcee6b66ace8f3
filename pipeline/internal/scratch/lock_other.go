//go:build !unix

package scratch

import "os"

// lock takes no lock on this system.
func lock(*os.File) (bool, error) { return true, nil }

// locks reports whether this system has the locks stale folders are told
// by: without them no other job's folder is ever removed.
const locks = false
