package report

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Build identifies the deid binary that wrote a document (a run report, a
// manifest, a retain report): the main module's version, the VCS revision
// it was built from and the Go toolchain. Every document records it as its
// "deid" member, inside the bytes a signature covers, so an auditor knows
// which deid made a report and which deid renders its page the same way.
//
// A binary built with `go build` in a git checkout records its revision (and
// whether the checkout had uncommitted changes); one built otherwise (`go
// test`, -buildvcs=false, a source tree without .git) records none, and its
// version may be "(devel)": both are reported as they are, never guessed.
type Build struct {
	// Version is the main module's version: a tag (v1.2.3), a
	// pseudo-version derived from the revision, or "(devel)".
	Version string `json:"version"`
	// Revision is the VCS revision (a git commit hash); empty when the
	// binary records none.
	Revision string `json:"revision,omitempty"`
	// Modified is true when the working tree had uncommitted changes at
	// build time: Revision alone does not say what was built.
	Modified bool `json:"modified,omitempty"`
	// Go is the Go toolchain's version (go1.26.8).
	Go string `json:"go"`
}

// Unknown is what a document records when deid cannot tell its version.
const Unknown = "unknown"

var (
	buildOnce sync.Once
	build     Build
)

// CurrentBuild returns the Build of the running binary, read once from
// runtime/debug.ReadBuildInfo. Without build information (a binary built
// without module support) the version is "unknown".
func CurrentBuild() Build {
	buildOnce.Do(func() {
		info, ok := debug.ReadBuildInfo()
		build = BuildFromInfo(info, ok)
	})
	return build
}

// BuildFromInfo derives a Build from build information as
// runtime/debug.ReadBuildInfo returns it (ok false: none).
func BuildFromInfo(info *debug.BuildInfo, ok bool) Build {
	b := Build{Version: Unknown, Go: runtime.Version()}
	if !ok || info == nil {
		return b
	}
	if info.GoVersion != "" {
		b.Go = info.GoVersion
	}
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// IsZero reports whether b records nothing: a document written by a deid
// older than the Build field.
func (b Build) IsZero() bool { return b == Build{} }

// String describes the build in one line: `v1.2.3 (revision 0123abcd…,
// modified) go1.26.8`; a document without one is "a deid that recorded no
// version".
func (b Build) String() string {
	if b.IsZero() {
		return "a deid that recorded no version"
	}
	var s strings.Builder
	s.WriteString(b.Version)
	if b.Revision != "" {
		fmt.Fprintf(&s, " (revision %s", b.Revision)
		if b.Modified {
			s.WriteString(", modified")
		}
		s.WriteString(")")
	} else {
		s.WriteString(" (no VCS revision recorded)")
	}
	if b.Go != "" {
		s.WriteString(" " + b.Go)
	}
	return s.String()
}

// BuildPtr returns a pointer to a copy of the running binary's Build, for
// the documents' optional "deid" member.
func BuildPtr() *Build {
	b := CurrentBuild()
	return &b
}

// PageMismatch explains why a stored page differs from the page this deid
// renders of the report written by build recorded (nil: none recorded),
// naming the recorded build rather than guessing: the same build renders
// the same page, so only an edit explains a difference then.
func PageMismatch(recorded *Build) string {
	cur := CurrentBuild()
	switch {
	case recorded == nil:
		return fmt.Sprintf("it was edited, or rendered by the deid that wrote the report, which recorded no version, and this deid (%s) renders it otherwise", cur)
	case *recorded == cur && cur.Revision != "" && !cur.Modified:
		return fmt.Sprintf("it was edited: this deid (%s) wrote the report and renders it otherwise", cur)
	case *recorded == cur:
		return fmt.Sprintf("it was edited, or rendered by another build that records the same version (%s: without a clean revision, builds are not told apart)", cur)
	}
	return fmt.Sprintf("it was edited, or rendered by the deid that wrote the report (%s), which renders it otherwise than this deid (%s)", recorded, cur)
}
