package rules

import "fmt"

// CheckOutsideReads refuses (ErrPolicy) a file that a command line names
// for deid to write (flag names the option, e.g. "--report") when the file
// is, lies inside or contains a location the policy reads: a dataset's
// source folder, root or source file, an erasure, consent or hold list, a
// key file or the policy file. The locations are compared as Parse compares
// them and again as CheckLocations does (links resolved, folders compared
// by identity on disk), so neither a relative spelling nor a link leads the
// write onto the lake.
func (p *Policy) CheckOutsideReads(flag, file string) error {
	reads := readLocations(p)
	same := newSameFile().relation
	for _, how := range []struct {
		resolve resolver
		same    relate
	}{{lexicalPlaces, nil}, {resolvedPlaces, same}} {
		fps, err := how.resolve(file)
		if err != nil {
			return &Error{File: p.File, Msg: fmt.Sprintf("%s %q: cannot tell whether it overlaps what the policy reads: %v", flag, file, err)}
		}
		for _, r := range reads {
			rps, err := how.resolve(r.path)
			if err != nil {
				return &Error{File: p.File, Msg: fmt.Sprintf("%s %q: cannot tell whether it overlaps %s %q: %v", flag, file, r.what, r.path, err)}
			}
			if rel := placesRelation(fps, rps, how.same); rel != "" {
				return &Error{File: p.File, Path: r.key, Msg: fmt.Sprintf("%s %q %s %s %q, which the policy reads: deid never writes "+
					"there; choose a file outside every source folder and root, list, key file and the policy file", flag, file, rel, r.what, r.path)}
			}
		}
	}
	return nil
}

// placesRelation says how the first of places a that overlaps one of
// places b stands to it (relation, then same when set), or "".
func placesRelation(a, b []place, same relate) string {
	for _, pa := range a {
		for _, pb := range b {
			rel := relation(pa, pb)
			if rel == "" && same != nil {
				rel = same(pa, pb)
			}
			if rel != "" {
				return rel
			}
		}
	}
	return ""
}
