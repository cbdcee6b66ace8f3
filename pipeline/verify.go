package pipeline

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/deidproject/deid/pipeline/parquetio"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
	"github.com/deidproject/deid/transforms"
	"github.com/deidproject/deid/transforms/detect"
)

// Verification: independent checks of published outputs against the policy,
// reading the outputs (and, for identifiers, the sources) again:
//
//   - schema: every output file has exactly the columns the policy promises
//     for its dataset in its destination;
//   - pii: no output column carries what the detectors recognise, where the
//     policy says none may remain: a scrubbed column is checked with its
//     scrub detectors; with Strict, every text column but pseudonyms is
//     checked with every validating detector (a pseudonym's 32 hex
//     characters often hold digit runs that look like phone numbers), but
//     the ip detector on generalize_ip's network prefixes;
//   - identifier: no raw value of a source identifier column (direct or
//     device identifiers) appears in any output column, as a whole value or
//     as a word of a text. The source values go into a Bloom filter over
//     keyed hashes (HMAC-SHA256 with the audit key, or a random key), whose
//     size is bounded by the sources' row counts (10 bits a row, about 1 %
//     false positives); output values that hit it are then confirmed exactly
//     by a second read of the sources' identifier columns, so only real
//     matches are reported. A column the policy deliberately keeps raw
//     (keep with allow) is exempt unless Strict;
//   - erasure: no row of a subject on the dataset's erasure lists, looked
//     for as the destination writes the subject column (its transform, a
//     pseudonym say, applied to the lists' ids);
//   - retention: no time before the retention cut-off, measured from the
//     now of the run that wrote the file (or VerifyOptions.Now), compared as
//     the destination writes the time column (kept or truncated).
//
// Findings name the destination, file, column and row group, and never the
// values themselves.

// VerifyOptions control Verify.
type VerifyOptions struct {
	Options
	// RunID limits the checks to the files that run wrote; empty checks
	// every file each destination's manifest lists.
	RunID string
	// Strict checks every text column with every validating detector.
	Strict bool
	// Now, when set, is the instant retention is measured from; by default
	// each file is checked against the now of the run that wrote it.
	Now time.Time
}

// VerifyResult is what Verify found, per destination.
type VerifyResult struct {
	Destinations []*report.Verification `json:"destinations"`
}

// OK reports whether no destination has a finding.
func (v *VerifyResult) OK() bool {
	for _, d := range v.Destinations {
		if len(d.Findings) > 0 {
			return false
		}
	}
	return true
}

// minIdentifierLen is the shortest value the identifier check looks for:
// shorter ones (small integers, codes) match by chance.
const minIdentifierLen = 6

// maxCandidates bounds the distinct output values kept for exact
// confirmation.
const maxCandidates = 1 << 20

// Verify checks the published outputs of the plan's destinations, and
// writes each destination's result beside the report of the run checked
// (_reports/<run id>/verify.json). The error is for failures to read; what
// does not match is in the result.
func Verify(ctx context.Context, plan *rules.Plan, opt VerifyOptions) (*VerifyResult, error) {
	opt.defaults()
	s := opt.Store
	ids, err := newIdentifierSet(ctx, plan, opt)
	if err != nil {
		return nil, err
	}
	res := &VerifyResult{}
	type candidateAt struct {
		dv             *report.Verification
		file, column   string
		rg             int
		sources        map[string]bool
		confirmedValue bool
	}
	candidates := map[string][]*candidateAt{}
	overflow := false
	erased := newErasedOutputs(plan, opt)
	for _, dst := range plan.Destinations {
		dv := &report.Verification{Format: report.VerificationFormatV1, Destination: dst.Name, Output: dst.Output, RunID: opt.RunID, Strict: opt.Strict,
			Checks: []string{"schema", "pii", "identifier", "erasure", "retention", "risk"}, Findings: []report.Finding{}}
		classes := map[string]*riskClasses{} // by dataset
		res.Destinations = append(res.Destinations, dv)
		m, err := ReadManifest(ctx, s, dst.Output)
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", dst.Name, err)
		}
		for _, mf := range m.Files {
			if opt.RunID != "" && mf.RunID != opt.RunID {
				continue
			}
			loc := storage.Join(dst.Output, mf.Path)
			dv.Files++
			find := func(check, column string, rg int, n int64, format string, args ...any) {
				dv.Findings = append(dv.Findings, report.Finding{Check: check, File: loc, Column: column, RowGroup: rg, Values: n, Msg: fmt.Sprintf(format, args...)})
			}
			b := dst.Binding(mf.Dataset)
			f, err := parquetio.Open(ctx, s, loc, opt.Mem)
			if err != nil {
				return nil, err
			}
			sch := f.Schema()
			// schema: the policy's output columns, no more, no fewer
			expected := map[string]*rules.BoundColumn{}
			if b == nil {
				find("schema", "", -1, 0, "dataset %s is not sent to destination %s by the policy", mf.Dataset, dst.Name)
			} else {
				for name, bc := range b.Columns {
					if !bc.Spec.Drops {
						expected[name] = bc
					}
				}
			}
			present := map[string]bool{}
			for _, fld := range sch.Fields() {
				present[fld.Name] = true
				if _, ok := expected[fld.Name]; !ok && b != nil {
					find("schema", fld.Name, -1, 0, "the policy promises no column %s in dataset %s of destination %s", fld.Name, mf.Dataset, dst.Name)
				}
			}
			for _, name := range sortedKeys(expected) {
				if !present[name] {
					find("schema", name, -1, 0, "the policy's column %s is missing", name)
				}
			}
			// the detectors each column is checked with
			sets := make([]*detect.Set, sch.NumFields())
			exempt := make([]bool, sch.NumFields())
			cols := make([]int, sch.NumFields())
			for j, fld := range sch.Fields() {
				cols[j] = j
				sets[j], exempt[j], err = columnChecks(expected[fld.Name], opt.Strict)
				if err != nil {
					f.Close()
					return nil, fmt.Errorf("%s: column %s: %w", loc, fld.Name, err)
				}
			}
			// erasure: the erased subjects as this destination writes them
			var gone map[string]bool
			subjectCol := -1
			if b != nil {
				gone, err = erased.forBinding(ctx, dst, b)
				if err != nil {
					f.Close()
					return nil, err
				}
				if idx := sch.FieldIndices(b.Dataset.Subject); gone != nil && len(idx) > 0 {
					subjectCol = idx[0] // a missing subject column is a schema finding
				}
			}
			// retention: no time before the cut-off, as the destination writes it
			timeCol, cut := -1, int64(0)
			cutNow := mf.Now
			if !opt.Now.IsZero() {
				cutNow = opt.Now
			}
			if b != nil {
				if j, c, ok, err := retentionBound(opt.Mem, b, sch, cutNow); err != nil {
					f.Close()
					return nil, fmt.Errorf("%s: %w", loc, err)
				} else if ok {
					timeCol, cut = j, c
				}
			}
			// risk: count the classes of the quasi-identifiers' values
			var rc *riskClasses
			var qiCols []int
			if b != nil && len(b.QuasiIdentifiers) > 0 {
				if rc = classes[mf.Dataset]; rc == nil {
					rc = &riskClasses{binding: b, counts: map[classKey]uint32{}}
					classes[mf.Dataset] = rc
				}
				for _, q := range b.QuasiIdentifiers {
					if idx := sch.FieldIndices(q); len(idx) > 0 {
						qiCols = append(qiCols, idx[0])
					}
				}
				if len(qiCols) != len(b.QuasiIdentifiers) {
					rc.incomplete = true
					qiCols = nil
				}
			}
			var buf detect.Buffer
			var matches []detect.Match
			for rg := 0; rg < f.NumRowGroups(); rg++ {
				found := make([]map[string]int64, sch.NumFields())
				var erasedRows, expiredRows int64
				err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: cols, BatchSize: int64(opt.BatchSize)}, func(rec arrow.RecordBatch) error {
					dv.Rows += rec.NumRows()
					if timeCol >= 0 {
						expiredRows += countBefore(rec.Column(timeCol), cut)
					}
					if qiCols != nil {
						rc.add(rec, qiCols)
					}
					if subjectCol >= 0 {
						eachText(rec.Column(subjectCol), func(v []byte) {
							if gone[string(v)] {
								erasedRows++
							}
						})
					}
					for j := range cols {
						set := sets[j]
						eachText(rec.Column(j), func(v []byte) {
							if set != nil {
								matches = set.Find(matches[:0], v, &buf)
								for _, mt := range matches {
									if found[j] == nil {
										found[j] = map[string]int64{}
									}
									found[j][set.Detectors()[mt.Detector].Name()]++
								}
							}
							if exempt[j] {
								return
							}
							words(v, func(w []byte) {
								if !ids.has(w) {
									return
								}
								k := string(w)
								if len(candidates) >= maxCandidates && candidates[k] == nil {
									overflow = true
									return
								}
								cs := candidates[k]
								if n := len(cs); n > 0 && cs[n-1].dv == dv && cs[n-1].file == loc && cs[n-1].column == sch.Field(j).Name && cs[n-1].rg == rg {
									return
								}
								candidates[k] = append(cs, &candidateAt{dv: dv, file: loc, column: sch.Field(j).Name, rg: rg})
							})
						})
					}
					return nil
				})
				if err != nil {
					f.Close()
					return nil, err
				}
				if expiredRows > 0 {
					find("retention", sch.Field(timeCol).Name, rg, expiredRows, "%d rows older than the retention cut-off (%s before %s)", expiredRows, b.Dataset.Retention.Keep, cutNow.Format(time.RFC3339))
				}
				if erasedRows > 0 {
					find("erasure", b.Dataset.Subject, rg, erasedRows, "%d rows of subjects on the dataset's erasure lists", erasedRows)
				}
				for j, byDetector := range found {
					for _, name := range sortedKeys(byDetector) {
						find("pii", sch.Field(j).Name, rg, byDetector[name], "%d values the %s detector recognises, where the policy says none may remain", byDetector[name], name)
					}
				}
			}
			f.Close()
		}
		for _, name := range sortedKeys(classes) {
			rc := classes[name]
			r := rc.result(name)
			dv.Risk = append(dv.Risk, r)
			where := storage.Join(dst.Output, name)
			if rc.incomplete {
				dv.Findings = append(dv.Findings, report.Finding{Check: "risk", File: where, RowGroup: -1,
					Msg: "some files lack a quasi-identifier column: the classes were counted on the others only"})
			}
			if r.MinK > 0 && r.Rows > 0 && r.K < int64(r.MinK) {
				dv.Findings = append(dv.Findings, report.Finding{Check: "risk", File: where, RowGroup: -1, Values: r.RowsBelow,
					Msg: fmt.Sprintf("k = %d, below min_k %d: %d classes of %d (%d rows) are smaller", r.K, r.MinK, r.ClassesBelow, r.Classes, r.RowsBelow)})
			}
		}
	}
	// exact confirmation: read the sources' identifier columns again
	if len(candidates) > 0 {
		if err := ids.scan(ctx, func(column string, v []byte) {
			for _, c := range candidates[string(v)] {
				c.confirmedValue = true
				if c.sources == nil {
					c.sources = map[string]bool{}
				}
				c.sources[column] = true
			}
		}); err != nil {
			return nil, err
		}
		type key struct {
			dv           *report.Verification
			file, column string
			rg           int
		}
		counts := map[key]int64{}
		sources := map[key]map[string]bool{}
		var order []key
		for _, cs := range candidates {
			for _, c := range cs {
				if !c.confirmedValue {
					continue
				}
				k := key{c.dv, c.file, c.column, c.rg}
				if counts[k] == 0 {
					order = append(order, k)
					sources[k] = map[string]bool{}
				}
				counts[k]++
				for c := range c.sources {
					sources[k][c] = true
				}
			}
		}
		sort.Slice(order, func(i, j int) bool {
			a, b := order[i], order[j]
			if a.file != b.file {
				return a.file < b.file
			}
			if a.rg != b.rg {
				return a.rg < b.rg
			}
			return a.column < b.column
		})
		for _, k := range order {
			k.dv.Findings = append(k.dv.Findings, report.Finding{Check: "identifier", File: k.file, Column: k.column, RowGroup: k.rg, Values: counts[k],
				Msg: fmt.Sprintf("%d distinct raw values of source identifier column %s", counts[k], strings.Join(sortedKeys(sources[k]), ", "))})
		}
	}
	for _, dv := range res.Destinations {
		if overflow {
			dv.Findings = append(dv.Findings, report.Finding{Check: "identifier", RowGroup: -1,
				Msg: fmt.Sprintf("more than %d distinct output values look like source identifiers; only those were confirmed", maxCandidates)})
		}
		sort.SliceStable(dv.Findings, func(i, j int) bool {
			a, b := dv.Findings[i], dv.Findings[j]
			if a.File != b.File {
				return a.File < b.File
			}
			return a.RowGroup < b.RowGroup
		})
	}
	// the result goes beside the report of the run checked, and into its page
	for _, dv := range res.Destinations {
		if err := publishVerification(ctx, s, plan, dv); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// publishVerification writes the destination's verification beside the
// report of the run checked (the manifest's last run by default), signed
// with the audit key when the policy has one, and renders that report's
// page again with the verification in it.
func publishVerification(ctx context.Context, s storage.Store, plan *rules.Plan, v *report.Verification) error {
	runID := v.RunID
	if runID == "" {
		m, err := ReadManifest(ctx, s, v.Output)
		if err != nil {
			return err
		}
		runID = m.RunID
	}
	b, err := v.JSON()
	if err != nil {
		return err
	}
	if k := plan.AuditKey; k != nil {
		if b, err = report.SignJSON(b, k.Secret(), k.Fingerprint()); err != nil {
			return err
		}
	}
	dir := storage.Join(v.Output, ReportsDir, runID)
	if err := storage.WriteFile(ctx, s, storage.Join(dir, "verify.json"), b); err != nil {
		return err
	}
	data, err := readAll(ctx, s, storage.Join(dir, "report.json"))
	if errors.Is(err, storage.ErrNotExist) {
		return nil // files of a run whose report is gone: nothing to render
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", storage.Join(dir, "report.json"), err)
	}
	r, _, err := report.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", storage.Join(dir, "report.json"), err)
	}
	if r.Verification, err = report.ParseVerification(b); err != nil {
		return err
	}
	page, err := r.HTML()
	if err != nil {
		return err
	}
	return storage.WriteFile(ctx, s, storage.Join(dir, "report.html"), page)
}

// columnChecks returns the detectors an output column is checked with, and
// whether the identifier check exempts it. bc is nil for a column the
// policy does not promise.
func columnChecks(bc *rules.BoundColumn, strict bool) (*detect.Set, bool, error) {
	if bc == nil {
		return detect.DefaultSet(), false, nil
	}
	result := bc.Spec.Result.String()
	if result == "pseudonym" || result == "removed" {
		return nil, false, nil
	}
	if bc.Spec.Name == "scrub" && !strict {
		names := bc.Params.Strings("detectors")
		if len(names) == 0 {
			names = detect.DefaultNames()
		}
		set, err := detect.LookupSet(names)
		return set, false, err
	}
	identifier := bc.Semantic != nil && (bc.Semantic.Category == rules.DirectIdentifier || bc.Semantic.Category == rules.DeviceIdentifier)
	if strict {
		names := detect.DefaultNames()
		if bc.Spec.Name == "generalize_ip" {
			// a network prefix is still written as an address, on purpose
			names = slices.DeleteFunc(names, func(n string) bool { return n == "ip" })
		}
		set, err := detect.LookupSet(names)
		return set, false, err
	}
	// a column the policy keeps raw on purpose (keep with allow)
	return nil, identifier && result == "raw" && bc.Allow != "", nil
}

// eachText calls fn with the text of every non-NULL value of a string,
// binary or integer array (integers as decimal text); other types have no
// text to check.
func eachText(a arrow.Array, fn func([]byte)) {
	var tmp []byte
	switch a := a.(type) {
	case *array.Dictionary:
		eachText(a.Dictionary(), fn)
	case *array.String:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn([]byte(a.Value(i)))
			}
		}
	case *array.LargeString:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn([]byte(a.Value(i)))
			}
		}
	case *array.Binary:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				fn(a.Value(i))
			}
		}
	case *array.Int64:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				tmp = strconv.AppendInt(tmp[:0], a.Value(i), 10)
				fn(tmp)
			}
		}
	case *array.Int32:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				tmp = strconv.AppendInt(tmp[:0], int64(a.Value(i)), 10)
				fn(tmp)
			}
		}
	}
}

// words calls fn with the value itself and, when it is longer, each run of
// the characters identifiers are written with (ASCII letters and digits and
// @ . _ + - :), of at least minIdentifierLen bytes.
func words(v []byte, fn func([]byte)) {
	if len(v) >= minIdentifierLen {
		fn(v)
	}
	start := -1
	for i := 0; i <= len(v); i++ {
		in := i < len(v) && isIdentByte(v[i])
		switch {
		case in && start < 0:
			start = i
		case !in && start >= 0:
			if i-start >= minIdentifierLen && i-start < len(v) {
				fn(v[start:i])
			}
			start = -1
		}
	}
}

func isIdentByte(c byte) bool {
	return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z' || c == '@' || c == '.' || c == '_' || c == '+' || c == '-' || c == ':'
}

// identifierSet is a Bloom filter over the keyed hashes of the values of
// the sources' identifier columns.
type identifierSet struct {
	plan    *rules.Plan
	opt     VerifyOptions
	columns []string // dataset.column, for messages
	bits    []uint64
	m       uint64
	mac     hash.Hash
	sum     []byte
}

const bloomHashes = 7

// newIdentifierSet reads the sources' identifier columns into the filter.
func newIdentifierSet(ctx context.Context, plan *rules.Plan, opt VerifyOptions) (*identifierSet, error) {
	key := make([]byte, 32)
	if plan.AuditKey != nil {
		key = plan.AuditKey.Secret()
	} else if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	ids := &identifierSet{plan: plan, opt: opt, mac: hmac.New(sha256.New, key)}
	for _, ds := range plan.Datasets {
		for _, c := range ds.Columns {
			if c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier {
				ids.columns = append(ids.columns, ds.Name+"."+c.Name)
			}
		}
	}
	// size: 10 bits per source row of every identifier column
	var rows int64
	if err := ids.eachFile(ctx, func(f *parquetio.File, cols []int, _ []string) error {
		rows += f.NumRows() * int64(len(cols))
		return nil
	}); err != nil {
		return nil, err
	}
	ids.m = uint64(max(rows*10, 1024))
	ids.bits = make([]uint64, (ids.m+63)/64)
	err := ids.scan(ctx, func(_ string, v []byte) {
		if len(v) < minIdentifierLen {
			return
		}
		h1, h2 := ids.hash(v)
		for i := uint64(0); i < bloomHashes; i++ {
			p := (h1 + i*h2) % ids.m
			ids.bits[p/64] |= 1 << (p % 64)
		}
	})
	return ids, err
}

func (ids *identifierSet) hash(v []byte) (uint64, uint64) {
	ids.mac.Reset()
	ids.mac.Write(v)
	ids.sum = ids.mac.Sum(ids.sum[:0])
	return binary.LittleEndian.Uint64(ids.sum), binary.LittleEndian.Uint64(ids.sum[8:]) | 1
}

// has reports whether v may be a source identifier value.
func (ids *identifierSet) has(v []byte) bool {
	if len(ids.columns) == 0 {
		return false
	}
	h1, h2 := ids.hash(v)
	for i := uint64(0); i < bloomHashes; i++ {
		p := (h1 + i*h2) % ids.m
		if ids.bits[p/64]&(1<<(p%64)) == 0 {
			return false
		}
	}
	return true
}

// eachFile opens every source file of every dataset with identifier
// columns and calls fn with the identifier columns' indices.
func (ids *identifierSet) eachFile(ctx context.Context, fn func(f *parquetio.File, cols []int, names []string) error) error {
	for _, ds := range ids.plan.Datasets {
		var names []string
		for _, c := range ds.Columns {
			if c.Type.Category == rules.DirectIdentifier || c.Type.Category == rules.DeviceIdentifier {
				names = append(names, c.Name)
			}
		}
		if len(names) == 0 {
			continue
		}
		_, matches, err := storage.Glob(ctx, ids.opt.Store, ds.Source)
		if err != nil {
			return fmt.Errorf("dataset %s: %w", ds.Name, err)
		}
		for _, mt := range matches {
			f, err := parquetio.Open(ctx, ids.opt.Store, mt.Location, ids.opt.Mem)
			if err != nil {
				return err
			}
			var cols []int
			var found []string
			for _, n := range names {
				if j := f.LeafIndex(n); j >= 0 {
					cols = append(cols, j)
					found = append(found, ds.Name+"."+n)
				}
			}
			err = fn(f, cols, found)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// scan calls fn with the text of every value of the sources' identifier
// columns and the column's name, dataset.column.
func (ids *identifierSet) scan(ctx context.Context, fn func(column string, v []byte)) error {
	return ids.eachFile(ctx, func(f *parquetio.File, cols []int, names []string) error {
		if len(cols) == 0 {
			return nil
		}
		for rg := 0; rg < f.NumRowGroups(); rg++ {
			err := f.ReadRowGroup(ctx, rg, parquetio.ReadOptions{Columns: cols, BatchSize: int64(ids.opt.BatchSize)}, func(rec arrow.RecordBatch) error {
				for j := range cols {
					eachText(rec.Column(j), func(v []byte) { fn(names[j], v) })
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// erasedOutputs holds, per destination and dataset, the erased subjects as
// the destination writes its subject column (the column's own transform
// applied to the erasure lists' ids), so that they can be looked for in the
// output whether the subject is kept or pseudonymized.
type erasedOutputs struct {
	r    *runner
	sets map[string]map[string]bool
}

func newErasedOutputs(plan *rules.Plan, opt VerifyOptions) *erasedOutputs {
	return &erasedOutputs{r: newRunner(plan, opt.Options, "verify"), sets: map[string]map[string]bool{}}
}

// forBinding returns the erased subjects as written, or nil when the
// dataset has no erasure list or the destination drops its subject column.
func (e *erasedOutputs) forBinding(ctx context.Context, dst *rules.Destination, b *rules.Binding) (map[string]bool, error) {
	ds := b.Dataset
	bc := b.Columns[ds.Subject]
	if len(ds.Erasure) == 0 || ds.Subject == "" || bc == nil || bc.Transform == nil {
		return nil, nil
	}
	k := dst.Name + "\x00" + ds.Name
	if set, ok := e.sets[k]; ok {
		return set, nil
	}
	// the ids' kind is the subject column's, read from a source file
	_, matches, err := storage.Glob(ctx, e.r.opt.Store, ds.Source)
	if err != nil || len(matches) == 0 {
		return nil, fmt.Errorf("dataset %s: no source file to tell the subject column's type (%v)", ds.Name, err)
	}
	f, err := parquetio.Open(ctx, e.r.opt.Store, matches[0].Location, e.r.opt.Mem)
	if err != nil {
		return nil, err
	}
	idx := f.Schema().FieldIndices(ds.Subject)
	var typ arrow.DataType
	if len(idx) > 0 {
		typ = f.Schema().Field(idx[0]).Type
	}
	f.Close()
	kind, ok := transforms.KindOf(typ)
	if !ok || (kind != transforms.KindInteger && kind != transforms.KindString) {
		return nil, fmt.Errorf("dataset %s: subject column %s: type %v", ds.Name, ds.Subject, typ)
	}
	var ints []int64
	var strs []string
	for _, l := range ds.Erasure {
		err = ReadSubjectList(ctx, e.r.opt.Store, e.r.opt.Mem, SubjectList{What: "erasure list", Location: l.List, Column: l.Column, Pos: l.Pos}, kind, &ints, &strs)
		if err != nil {
			return nil, err
		}
	}
	mem := e.r.opt.Mem
	var in arrow.Array
	if kind == transforms.KindInteger {
		bld := array.NewInt64Builder(mem)
		bld.AppendValues(ints, nil)
		in = bld.NewArray()
		bld.Release()
	} else {
		bld := array.NewStringBuilder(mem)
		bld.AppendValues(strs, nil)
		in = bld.NewArray()
		bld.Release()
	}
	defer in.Release()
	out, err := bc.Transform.Apply(mem, in)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: apply %s to the erased subjects: %w", ds.Name, bc.Spec.Name, err)
	}
	defer out.Release()
	set := map[string]bool{}
	eachText(out, func(v []byte) { set[string(v)] = true })
	e.sets[k] = set
	return set, nil
}

// retentionBound returns the output column of the dataset's retention time
// and the cut-off as the destination writes that column (kept, or floored
// by truncate_time: both keep the order of times), in the column's own
// units. ok is false when there is nothing to check: no retention, the
// column dropped or treated otherwise, or a type other than a timestamp
// with a time zone or a date.
func retentionBound(mem memory.Allocator, b *rules.Binding, sch *arrow.Schema, now time.Time) (int, int64, bool, error) {
	ds := b.Dataset
	if ds.Retention == nil {
		return 0, 0, false, nil
	}
	loc := ds.TimeZone
	if loc == nil {
		loc = time.UTC
	}
	cutoff := ds.Retention.Keep.Before(now, loc)
	name := ds.Retention.TimeColumn
	bc := b.Columns[name]
	idx := sch.FieldIndices(name)
	if bc == nil || bc.Transform == nil || len(idx) == 0 || (bc.Spec.Name != "keep" && bc.Spec.Name != "truncate_time") {
		return 0, 0, false, nil
	}
	switch typ := sch.Field(idx[0]).Type.(type) {
	case *arrow.TimestampType:
		if typ.TimeZone == "" {
			return 0, 0, false, nil
		}
		v, err := arrow.TimestampFromTime(cutoff, typ.Unit)
		if err != nil {
			return 0, 0, false, err
		}
		bld := array.NewTimestampBuilder(mem, typ)
		bld.Append(v)
		in := bld.NewArray()
		bld.Release()
		defer in.Release()
		out, err := bc.Transform.Apply(mem, in)
		if err != nil {
			return 0, 0, false, fmt.Errorf("apply %s to the retention cut-off: %w", bc.Spec.Name, err)
		}
		defer out.Release()
		ts, ok := out.(*array.Timestamp)
		if !ok || ts.IsNull(0) {
			return 0, 0, false, nil
		}
		return idx[0], int64(ts.Value(0)), true, nil
	case *arrow.Date32Type:
		y, m, d := cutoff.In(loc).Date()
		return idx[0], time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400, true, nil
	}
	return 0, 0, false, nil
}

// countBefore counts the non-NULL values of a timestamp or date array
// below cut.
func countBefore(a arrow.Array, cut int64) int64 {
	var n int64
	switch a := a.(type) {
	case *array.Timestamp:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) && int64(a.Value(i)) < cut {
				n++
			}
		}
	case *array.Date32:
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) && int64(a.Value(i)) < cut {
				n++
			}
		}
	}
	return n
}

// riskClasses counts rows per equivalence class of one binding's
// quasi-identifiers, over every file checked. A class is keyed as a run
// enforcing min_k keys it (classHasher), so both count the same classes
// (memory: one map entry per class, not per row).
type riskClasses struct {
	binding    *rules.Binding
	counts     map[classKey]uint32
	rows       int64
	incomplete bool
	h          classHasher
	keys       []classKey
	cols       []arrow.Array
}

func (rc *riskClasses) add(rec arrow.RecordBatch, cols []int) {
	rc.cols = rc.cols[:0]
	for _, j := range cols {
		rc.cols = append(rc.cols, rec.Column(j))
	}
	rc.keys = rc.h.keys(rc.keys[:0], rc.cols)
	for _, k := range rc.keys {
		rc.counts[k]++
	}
	rc.rows += int64(len(rc.keys))
}

func (rc *riskClasses) result(dataset string) *report.Risk {
	r := &report.Risk{Dataset: dataset, QuasiIdentifiers: rc.binding.QuasiIdentifiers, MinK: rc.binding.MinK, Threshold: rc.binding.MinK,
		Rows: rc.rows, Classes: int64(len(rc.counts)), RowsBySize: map[string]int64{}}
	if r.Threshold == 0 {
		r.Threshold = 5
	}
	for _, n := range rc.counts {
		k := int64(n)
		if r.K == 0 || k < r.K {
			r.K = k
		}
		if k == 1 {
			r.UniqueRows++
		}
		if k < int64(r.Threshold) {
			r.ClassesBelow++
			r.RowsBelow += k
		}
		for _, b := range report.RiskBuckets {
			if k >= b.Min && k <= b.Max {
				r.RowsBySize[b.Label] += k
			}
		}
	}
	return r
}
