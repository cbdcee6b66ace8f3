package output

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/deidproject/deid/pipeline/lock"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
)

// A job is one destination output folder: its reports live in
// <output>/_reports/<run id>/report.json, one per published run. Each report
// records the SHA-256 of the previous report of the job (the one the
// manifest named when the run published: the last committed run), so the
// reports form a hash chain from the newest, which the manifest names, back
// to the first. Each report also records the SHA-256 of every file it wrote
// and is signed with the policy's audit key. CheckReports verifies all of it.

// ErrCheck is matched by the error CheckReports' caller gets when a check
// found a problem; the command line maps it to its own exit status.
var ErrCheck = errors.New("check failed")

// ReportLocation is where a run's report of a job lives.
func ReportLocation(output, runID string) string {
	return storage.Join(output, ReportsDir, runID, "report.json")
}

// reportRuns lists the run ids that have a report.json in the job's
// _reports folder, sorted.
func reportRuns(ctx context.Context, s storage.Store, output string) ([]string, error) {
	dir := storage.Join(output, ReportsDir)
	var ids []string
	err := s.List(ctx, dir+sep(dir), func(a storage.Attrs) error {
		rel, err := storage.Rel(dir, a.Location)
		if err != nil {
			return err
		}
		if id, file, ok := strings.Cut(rel, "/"); ok && file == "report.json" {
			ids = append(ids, id)
		}
		return nil
	})
	sort.Strings(ids)
	return ids, err
}

func sep(loc string) string {
	if storage.IsURI(loc) {
		return "/"
	}
	return string(filepath.Separator)
}

// PreviousReport returns the chain link to the report of the last run that
// committed to the job: the one its manifest names.
func PreviousReport(ctx context.Context, s storage.Store, output string) (*report.Chain, error) {
	m, err := ReadManifest(ctx, s, output)
	if errors.Is(err, storage.ErrNotExist) {
		return &report.Chain{}, nil
	}
	if err != nil {
		return nil, err
	}
	id, ok := reportRunID(m.Report)
	if !ok {
		return nil, fmt.Errorf("%s: the manifest names %q as its report, not %s/<run id>/report.json", storage.Join(output, ManifestName), m.Report, ReportsDir)
	}
	b, err := storage.ReadFile(ctx, s, ReportLocation(output, id))
	if err != nil {
		return nil, fmt.Errorf("read the previous report of %s: %w", output, err)
	}
	sum := sha256.Sum256(b)
	return &report.Chain{Previous: id, PreviousSHA256: hex.EncodeToString(sum[:])}, nil
}

// reportRunID returns the run id of a manifest's report path.
func reportRunID(rel string) (string, bool) {
	rest, ok := strings.CutPrefix(rel, ReportsDir+"/")
	id, ok2 := strings.CutSuffix(rest, "/report.json")
	return id, ok && ok2 && id != "" && !strings.ContainsAny(id, `/\`)
}

// CheckOptions say what CheckReports trusts.
type CheckOptions struct {
	// PublicKey is the Ed25519 public key reports must be signed with (see
	// report.PublicKeyHex). Nil checks the chain and the outputs only and
	// says that signatures were not checked.
	PublicKey ed25519.PublicKey
}

// CheckResult is what CheckReports found.
type CheckResult struct {
	// Output is the job's folder.
	Output string `json:"output"`
	// Reports are the run ids checked, oldest first.
	Reports []string `json:"reports"`
	// Files counts the output files whose hashes were checked.
	Files int `json:"files"`
	// SignaturesChecked is false when no public key was given.
	SignaturesChecked bool `json:"signatures_checked"`
	// Problems name each report or file that no longer matches.
	Problems []Problem `json:"problems"`
	// Builds are the deid builds that wrote the reports checked, by run id
	// (a report written before deid recorded its build has none);
	// ManifestBuild is the one that wrote the manifest last.
	Builds        map[string]report.Build `json:"builds,omitempty"`
	ManifestBuild *report.Build           `json:"manifest_deid,omitempty"`
}

// Problem is one mismatch: the report or file concerned and what is wrong.
type Problem struct {
	// Report is the report's location, when the problem is about one.
	Report string `json:"report,omitempty"`
	// File is the output file's location, when the problem is about one.
	File string `json:"file,omitempty"`
	Msg  string `json:"message"`
}

func (p Problem) String() string {
	loc := p.Report
	if p.File != "" {
		loc = p.File
	}
	return loc + ": " + p.Msg
}

// OK reports whether nothing was found.
func (c *CheckResult) OK() bool { return len(c.Problems) == 0 }

// CheckReports walks the reports of the job whose output folder is output
// and verifies each report's signature, the hash chain between consecutive
// reports, and that every output file is the one its newest report recorded;
// it also flags files no report wrote, a manifest that names a missing
// report, a verify.json whose signature fails, and a report.html that does
// not show what its report (and verification) say. The error is for failures to read; what does not match is in the
// result's Problems.
func CheckReports(ctx context.Context, s storage.Store, output string, opt CheckOptions) (*CheckResult, error) {
	res := &CheckResult{Output: output, Reports: []string{}, Problems: []Problem{}, SignaturesChecked: opt.PublicKey != nil}
	ids, err := reportRuns(ctx, s, output)
	if err != nil {
		return nil, fmt.Errorf("list the reports of %s: %w", output, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no reports in %s (is it a destination's output folder?): %w", output, storage.Join(output, ReportsDir), storage.ErrNotExist)
	}
	problem := func(rep, file, format string, args ...any) {
		res.Problems = append(res.Problems, Problem{Report: rep, File: file, Msg: fmt.Sprintf(format, args...)})
	}
	type entry struct {
		loc, sha string
		run      *report.Run // nil when unreadable
	}
	entries := map[string]*entry{}
	for _, id := range ids {
		loc := ReportLocation(output, id)
		data, err := storage.ReadFile(ctx, s, loc)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		e := &entry{loc: loc, sha: hex.EncodeToString(sum[:])}
		entries[id] = e
		if opt.PublicKey != nil {
			if _, err := report.Verify(data, opt.PublicKey); err != nil {
				problem(loc, "", "%v", err)
			}
		}
		// an untrusted report is still followed, so that the reports before
		// it are checked too
		e.run, _, err = report.Parse(data)
		if err != nil {
			if opt.PublicKey == nil || !errors.Is(err, report.ErrTampered) {
				problem(loc, "", "%v", err)
			}
			continue
		}
		if e.run.RunID != id {
			problem(loc, "", "the report is of run %s but lies in the folder of run %s", e.run.RunID, id)
		}
		if b := e.run.Deid; b != nil {
			if res.Builds == nil {
				res.Builds = map[string]report.Build{}
			}
			res.Builds[id] = *b
		}
		// verify.json, when deid verify ran: signed like the report
		verLoc := storage.Join(storage.Dir(loc), "verify.json")
		switch vb, err := storage.ReadFile(ctx, s, verLoc); {
		case errors.Is(err, storage.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", verLoc, err)
		default:
			if opt.PublicKey != nil {
				if _, _, err := report.VerifyJSON(vb, opt.PublicKey, "the verification"); err != nil {
					problem(loc, verLoc, "%v", err)
				}
			}
			if e.run.Verification, err = report.ParseVerification(vb); err != nil {
				problem(loc, verLoc, "%v", err)
			}
		}
		// the page an auditor reads must show what the report says
		htmlLoc := storage.Join(storage.Dir(loc), "report.html")
		page, err := storage.ReadFile(ctx, s, htmlLoc)
		switch {
		case errors.Is(err, storage.ErrNotExist):
			problem(loc, htmlLoc, "report.html is missing (deid report render %s rebuilds it)", loc)
		case err != nil:
			return nil, fmt.Errorf("read %s: %w", htmlLoc, err)
		default:
			want, err := e.run.HTML()
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(page, want) {
				problem(loc, htmlLoc, "report.html does not show what report.json says: %s (deid report render %s rebuilds it)", report.PageMismatch(e.run.Deid), loc)
			}
		}
	}
	// the newest report is the one the manifest names
	var head string
	m, err := ReadManifest(ctx, s, output)
	switch {
	case errors.Is(err, storage.ErrNotExist):
		problem("", storage.Join(output, ManifestName), "the manifest is missing")
	case err != nil:
		problem("", storage.Join(output, ManifestName), "%v", err)
	default:
		res.ManifestBuild = m.Deid
		id, ok := reportRunID(m.Report)
		switch {
		case !ok:
			problem("", storage.Join(output, ManifestName), "the manifest names %q as its report, not %s/<run id>/report.json", m.Report, ReportsDir)
		case entries[id] == nil:
			problem("", storage.Join(output, ManifestName), "the manifest names the report of run %s, which is missing", id)
		default:
			head = id
		}
	}
	if head == "" { // the report no other report names as its previous
		named := map[string]bool{}
		for _, e := range entries {
			if e.run != nil && e.run.Chain != nil {
				named[e.run.Chain.Previous] = true
			}
		}
		for _, id := range ids {
			if !named[id] {
				head = id
			}
		}
	}
	// walk the chain back from the newest report
	var chain []string
	visited := map[string]bool{}
	for id := head; id != "" && !visited[id]; {
		visited[id] = true
		chain = append(chain, id)
		e := entries[id]
		if e.run == nil {
			break
		}
		c := e.run.Chain
		switch {
		case c == nil:
			problem(e.loc, "", "the report records no previous report (not published by a deid that chains reports)")
		case c.Previous == "":
		case entries[c.Previous] == nil:
			problem(e.loc, "", "the report follows run %s, whose report is missing", c.Previous)
		case visited[c.Previous]:
			problem(e.loc, "", "the report follows run %s, which comes after it: the chain loops", c.Previous)
		case entries[c.Previous].sha != c.PreviousSHA256:
			p := entries[c.Previous]
			problem(p.loc, "", "the report was changed after the next report (run %s) recorded it: SHA-256 %s, recorded %s", id, p.sha, c.PreviousSHA256)
		}
		if c == nil || entries[c.Previous] == nil {
			break
		}
		id = c.Previous
	}
	for _, id := range ids {
		if !visited[id] {
			problem(entries[id].loc, "", "the report is not in the chain that ends at the newest report (of run %s): it was inserted, or a report after it was removed", head)
		}
	}
	// oldest first; the newest report that wrote a file is the one to match
	res.Reports = []string{}
	type recorded struct {
		report, sha string
		size        int64
	}
	latest := map[string]recorded{}
	for i := len(chain) - 1; i >= 0; i-- {
		e := entries[chain[i]]
		res.Reports = append(res.Reports, chain[i])
		if e.run == nil {
			continue
		}
		for _, d := range e.run.Destinations {
			for _, f := range d.Files {
				if err := CheckOutputPath(f.Path); err != nil {
					problem(e.loc, "", "the report records a file outside the output: %v", err)
					continue
				}
				latest[f.Path] = recorded{report: e.loc, sha: f.SHA256, size: f.Bytes}
			}
			for _, p := range d.Deleted { // (deid retain: every row of the file erased)
				delete(latest, p)
			}
		}
	}
	if journal := storage.Join(output, RetainDir, RetainJournal); Exists(ctx, s, journal) {
		problem("", journal, "an interrupted deid retain run awaits completion here: run deid retain with its policy, then check again")
	}
	if ids, err := StagingRuns(ctx, s, output); err == nil {
		for _, id := range ids {
			if _, ok, err := ReadCommitRecord(ctx, s, CommitStagingDir(output, id), id); err == nil && ok {
				problem("", storage.Join(CommitStagingDir(output, id), CommitRecordName),
					"the commit of run %s stopped after its commit point, a crash, not tampering: the next deid run, retain or report merge on this output completes it; then check again", id)
			}
		}
	}
	// the files as they are now
	present := map[string]bool{}
	err = s.List(ctx, output+sep(output), func(a storage.Attrs) error {
		rel, err := storage.Rel(output, a.Location)
		if err != nil {
			return err
		}
		if filepath.Separator == '\\' && !storage.IsURI(output) {
			rel = filepath.ToSlash(rel) // elsewhere a backslash is a name's character
		}
		if ownState(rel) {
			return nil
		}
		present[rel] = true
		if _, ok := latest[rel]; !ok {
			problem("", a.Location, "no report records this file")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", output, err)
	}
	paths := make([]string, 0, len(latest))
	for p := range latest {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rec, loc := latest[p], storage.Join(output, p)
		if !present[p] {
			problem(rec.report, loc, "the file is missing")
			continue
		}
		got, n, err := HashObject(ctx, s, loc)
		if err != nil {
			return nil, err
		}
		res.Files++
		if got != rec.sha {
			problem(rec.report, loc, "the file changed since the report recorded it: SHA-256 %s (%d bytes), recorded %s (%d bytes)", got, n, rec.sha, rec.size)
		}
	}
	return res, nil
}

// ownState reports whether rel, a path in an output, is deid's state
// rather than an output file: the manifest, reports, staging, locks, and
// deid retain's work folder and lock.
func ownState(rel string) bool {
	if rel == ManifestName {
		return true
	}
	first, _, _ := strings.Cut(rel, "/")
	return first == ReportsDir || first == StagingDir || first == lock.Dir || first == RetainDir || first == RetainDir+".lock" || first == ShardsDir
}

// Exists reports whether an object is at loc.
func Exists(ctx context.Context, s storage.Store, loc string) bool {
	_, err := s.Stat(ctx, loc)
	return err == nil
}

// HashObject returns the hex SHA-256 and size of an object.
func HashObject(ctx context.Context, s storage.Store, loc string) (string, int64, error) {
	r, err := s.Open(ctx, loc)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", loc, err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(r, 0, r.Size()))
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", loc, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
