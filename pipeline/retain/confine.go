package retain

import (
	"fmt"

	"github.com/deidproject/deid/pipeline/dataerr"
	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

// A journal found at recovery is replayed only if every location in it is
// one the run that owns the root could have written: whoever can write to
// a dataset root or an output could otherwise plant a journal that moves
// any file over any other, or deletes it. The journal is checked as a
// whole, before its first action: one location out of place refuses all.
// (The locations are checked, not the journal's origin: an HMAC under the
// audit key over the journal would also refuse a journal of well-placed
// actions that no run wrote; that is a follow-up.)

// scope is what a journal in root's work folder may touch.
type scope struct {
	// root is the dataset root or the destination's output.
	root string
	// dataset is the journal's Dataset field as its run wrote it: the
	// dataset's name, or "destination <name>".
	dataset string
	// source is the dataset's source pattern, which its files match; empty
	// for an output.
	source string
}

// datasetScope is the scope of the journal in dataset ds's root.
func datasetScope(root string, ds *rules.RetainDataset) scope {
	return scope{root: root, dataset: ds.Name, source: ds.Source}
}

// outputScope is the scope of the journal in destination dst's output.
func outputScope(dst *rules.Destination) scope {
	return scope{root: dst.Output, dataset: "destination " + dst.Name}
}

// check returns a data error naming the journal at jloc and its first
// location out of scope, nil when every location is in it.
func (s scope) check(jloc string, j journal) error {
	refuse := func(format string, args ...any) error {
		return &dataerr.Error{Location: jloc, Err: fmt.Errorf(format+": not replayed, nothing changed; the journal was not written by deid retain for this policy: inspect the root and remove the journal by hand", args...)}
	}
	if err := output.CheckRunID(j.RunID); err != nil {
		return refuse("%w", err)
	}
	work := storage.Join(s.root, workDir)
	staging := storage.Join(work, j.RunID)
	for i, a := range j.Actions {
		if why := s.fileProblem(a.File, work); why != "" {
			return refuse("actions[%d]: file %q %s", i, a.File, why)
		}
		if a.Staged != "" && a.Delete {
			return refuse("actions[%d]: file %q is both replaced and deleted", i, a.File)
		}
		for _, p := range []struct{ what, loc, under string }{
			{"staged", a.Staged, staging}, {"anonymized_staged", a.AnonStaged, staging}, {"restricted_staged", a.IsoStaged, staging},
			{"anonymized", a.AnonFinal, storage.Join(s.root, anonFolder)}, {"restricted", a.IsoFinal, storage.Join(s.root, isoFolder)},
		} {
			if p.loc != "" && (!storage.Within(p.under, p.loc) || storage.Within(p.loc, p.under)) {
				return refuse("actions[%d]: %s %q is not inside %s", i, p.what, p.loc, p.under)
			}
		}
		if (a.AnonStaged == "") != (a.AnonFinal == "") || (a.IsoStaged == "") != (a.IsoFinal == "") {
			return refuse("actions[%d]: file %q: a staged part without its destination, or one without the other", i, a.File)
		}
		if s.source == "" && (a.AnonStaged != "" || a.IsoStaged != "") {
			return refuse("actions[%d]: file %q: an output's journal moves no anonymized or restricted rows", i, a.File)
		}
	}
	if j.Dataset != s.dataset {
		return refuse("the journal is for %q, the policy has %q here", j.Dataset, s.dataset)
	}
	return nil
}

// fileProblem says why loc may not be a journal action's file, "" if it
// may: it must lie inside the root, outside the work folder; a dataset's
// must also match its source pattern or lie in its restricted part.
func (s scope) fileProblem(loc, work string) string {
	switch {
	case !storage.Within(s.root, loc) || storage.Within(loc, s.root):
		return "is not inside " + s.root
	case storage.Within(work, loc):
		return "lies in the work folder " + work
	case s.source != "" && !storage.MatchPattern(s.source, loc) && !storage.Within(storage.Join(s.root, isoFolder), loc):
		return fmt.Sprintf("matches neither the source %q nor the restricted part", s.source)
	}
	return ""
}
