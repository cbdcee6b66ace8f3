package pipeline

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/deidproject/deid/pipeline/output"
	"github.com/deidproject/deid/pipeline/report"
	"github.com/deidproject/deid/pipeline/storage"
	"github.com/deidproject/deid/rules"
)

const auditKeyHex = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"

// chainedJob runs the sample policy with an audit key three times into one
// output folder (day 1, day 2, day 2 again) and returns the folder and the
// run ids, oldest first.
func chainedJob(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	erasure := filepath.Join(sampleDir(t), "erasure.parquet")
	root := filepath.Join(sampleDir(t), "browsing")
	var ids []string
	for _, day := range []string{"2026-10-30", "2026-10-31", "2026-10-31"} {
		src := filepath.Join(root, "dt="+day, "*.parquet")
		text := strings.Replace(withRoot(samplePolicy(src, erasure, out), root), "keys:\n", "audit_key: hex:env:A\nkeys:\n", 1)
		path := filepath.Join(dir, "policy.yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		lookup := env(map[string]string{"K": testKeyHex, "A": auditKeyHex})
		p, err := rules.Load(path, lookup)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := rules.Compile(p, rules.CompileOptions{Now: testNow, Lookup: lookup})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := runPlan(t, plan, 2)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rep.RunID)
	}
	return out, ids
}

func auditPublic(t testing.TB, keyHex string) ed25519.PublicKey {
	b, err := hex.DecodeString(keyHex)
	if err != nil {
		t.Fatal(err)
	}
	return report.SigningKey(b).Public().(ed25519.PublicKey)
}

func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "out")
	for rel := range tree(t, src) {
		b, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755)
		if err := os.WriteFile(filepath.Join(dst, rel), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// resign rewrites the whole chain from the oldest report on: each report is
// edited by edit, re-chained to its rewritten predecessor and signed with
// key. This is what someone who can write the folder but does not hold the
// audit key can do at best.
func resign(t *testing.T, out string, ids []string, key []byte, edit func(*report.Run)) {
	t.Helper()
	prevSum := ""
	for i, id := range ids {
		loc := output.ReportLocation(out, id)
		b, err := os.ReadFile(loc)
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := report.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		edit(r)
		if i > 0 {
			r.Chain = &report.Chain{Previous: ids[i-1], PreviousSHA256: prevSum}
		}
		b, err = r.Signed(key, rules.Fingerprint(key))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(loc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		signed, _, err := report.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		page, err := signed.HTML()
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(filepath.Dir(loc), "report.html"), page, 0o644)
		sum := sha256.Sum256(b)
		prevSum = hex.EncodeToString(sum[:])
	}
}

// TestReportChain: a clean job passes, and each kind of tampering is caught
// and named: an edited report (newest or older), a chain rewritten and
// re-signed without the audit key, a changed, missing or extra output file,
// a removed report.
func TestReportChain(t *testing.T) {
	job, ids := chainedJob(t)
	pub := auditPublic(t, auditKeyHex)
	attacker := make([]byte, 32)
	for i := range attacker {
		attacker[i] = byte(200 - i)
	}
	newest, middle, first := output.ReportLocation(job, ids[2]), output.ReportLocation(job, ids[1]), output.ReportLocation(job, ids[0])
	edit := func(loc, re, repl string) func(t *testing.T, out string) {
		return func(t *testing.T, out string) {
			loc := strings.Replace(loc, job, out, 1)
			b, _ := os.ReadFile(loc)
			nb := regexp.MustCompile(re).ReplaceAll(b, []byte(repl))
			if string(nb) == string(b) {
				t.Fatalf("edit %q changed nothing in %s", re, loc)
			}
			os.WriteFile(loc, nb, 0o644)
		}
	}
	var outputFile string
	for _, rel := range keys(tree(t, job)) { // sorted: the first day's file
		if strings.HasSuffix(rel, ".parquet") && outputFile == "" {
			outputFile = rel
		}
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, out string)
		pub    ed25519.PublicKey
		want   []output.Problem // Report/File relative to the job folder
	}{
		{"clean", func(*testing.T, string) {}, pub, nil},
		{"clean without a public key", func(*testing.T, string) {}, nil, nil},
		{"edited newest report", edit(newest, `"rows_out": \d+`, `"rows_out": 1`), pub,
			[]output.Problem{{Report: newest, Msg: "the report was changed after it was signed"}}},
		{"edited older report", edit(first, `"erasure": \d+`, `"erasure": 0`), pub,
			[]output.Problem{{Report: first, Msg: "changed after it was signed"}, {Report: first, Msg: "changed after the next report (run " + ids[1] + ") recorded it"}}},
		{"edited older report, no public key", edit(middle, `"erasure": \d+`, `"erasure": 0`), nil,
			[]output.Problem{{Report: middle, Msg: "changed after the next report (run " + ids[2] + ") recorded it"}}},
		{"appended after the signature", edit(newest, `\n}\n$`, "\n}\n,\"outcome\": \"succeeded\"}\n"), pub,
			[]output.Problem{{Report: newest, Msg: "report does not match its signature"}}},
		{"signature removed", edit(newest, `,\n  "signature": \{[^}]*\}`, ""), pub,
			[]output.Problem{{Report: newest, Msg: "the report is not signed"}}},
		{"chain rewritten and re-signed", func(t *testing.T, out string) {
			resign(t, out, ids, attacker, func(r *report.Run) { r.Warnings = append(r.Warnings, "nothing to see") })
		}, pub, []output.Problem{{Report: first, Msg: "signed by another key"}, {Report: middle, Msg: "signed by another key"}, {Report: newest, Msg: "signed by another key"}}},
		{"changed output file", func(t *testing.T, out string) {
			p := filepath.Join(out, outputFile)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, pub, []output.Problem{{Report: first, File: filepath.Join(job, outputFile), Msg: "the file changed since the report recorded it"}}},
		{"missing output file", func(t *testing.T, out string) { os.Remove(filepath.Join(out, outputFile)) }, pub,
			[]output.Problem{{Report: first, File: filepath.Join(job, outputFile), Msg: "the file is missing"}}},
		{"extra output file", func(t *testing.T, out string) {
			os.WriteFile(filepath.Join(out, "browsing", "x.parquet"), []byte("PAR1"), 0o644)
		}, pub,
			[]output.Problem{{File: filepath.Join(job, "browsing", "x.parquet"), Msg: "no report records this file"}}},
		{"older report removed", func(t *testing.T, out string) { os.RemoveAll(filepath.Dir(strings.Replace(middle, job, out, 1))) }, pub,
			[]output.Problem{{Report: newest, Msg: "the report follows run " + ids[1] + ", whose report is missing"},
				{Report: first, Msg: "not in the chain"}}},
		{"edited page", edit(strings.Replace(newest, "report.json", "report.html", 1), `Outcome`, `Result`), pub,
			[]output.Problem{{Report: newest, File: strings.Replace(newest, "report.json", "report.html", 1), Msg: "report.html does not show what report.json says"}}},
		{"newest report removed", func(t *testing.T, out string) { os.RemoveAll(filepath.Dir(strings.Replace(newest, job, out, 1))) }, pub,
			[]output.Problem{{File: filepath.Join(job, output.ManifestName), Msg: "the manifest names the report of run " + ids[2] + ", which is missing"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := copyTree(t, job)
			c.tamper(t, out)
			res, err := output.CheckReports(context.Background(), storage.Local{}, out, output.CheckOptions{PublicKey: c.pub})
			if err != nil {
				t.Fatal(err)
			}
			if res.SignaturesChecked != (c.pub != nil) {
				t.Errorf("signatures checked: %v", res.SignaturesChecked)
			}
			if len(c.want) == 0 {
				if !res.OK() || len(res.Reports) != 3 || res.Files != 2 {
					t.Errorf("clean job: %+v", res)
				}
				return
			}
			if res.OK() {
				t.Fatal("tampering not caught")
			}
			for _, w := range c.want {
				found := false
				for _, p := range res.Problems {
					rel := func(s string) string { return strings.Replace(s, out, job, 1) }
					found = found || rel(p.Report) == w.Report && rel(p.File) == w.File && strings.Contains(p.Msg, w.Msg)
				}
				if !found {
					t.Errorf("want %s\ngot %v", w, res.Problems)
				}
			}
		})
	}
	// the rewritten chain is consistent: only the trusted key tells it apart
	out := copyTree(t, job)
	resign(t, out, ids, attacker, func(*report.Run) {})
	res, err := output.CheckReports(context.Background(), storage.Local{}, out, output.CheckOptions{PublicKey: auditPublic(t, hex.EncodeToString(attacker))})
	if err != nil || !res.OK() {
		t.Errorf("re-signed chain under the attacker's own key: %v %+v", err, res)
	}
}

// TestReportsChainAcrossRuns: each report names the report of the run that
// committed before it, and the first names none.
func TestReportsChainAcrossRuns(t *testing.T) {
	job, ids := chainedJob(t)
	prev := ""
	for _, id := range ids {
		b, err := os.ReadFile(output.ReportLocation(job, id))
		if err != nil {
			t.Fatal(err)
		}
		r, err := report.Verify(b, auditPublic(t, auditKeyHex))
		if err != nil {
			t.Fatal(err)
		}
		if r.Chain == nil || r.Chain.Previous != prev {
			t.Errorf("report %s: chain %+v, want previous %q", id, r.Chain, prev)
		}
		if r.Signature.KeyFingerprint != rules.Fingerprint(mustDecodeHex(t, auditKeyHex)) || strings.Contains(string(b), auditKeyHex) {
			t.Errorf("report %s: signature %+v", id, r.Signature)
		}
		prev = id
	}
}

func mustDecodeHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReportChainRandomTampering flips one byte at a seeded random place of
// a random report or output file, several times: every change is caught and
// the problem names the changed file.
func TestReportChainRandomTampering(t *testing.T) {
	job, _ := chainedJob(t)
	pub := auditPublic(t, auditKeyHex)
	var targets []string
	for _, rel := range keys(tree(t, job)) {
		if rel != output.ManifestName {
			targets = append(targets, rel)
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 12; i++ {
		out := copyTree(t, job)
		rel := targets[rng.IntN(len(targets))]
		p := filepath.Join(out, rel)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		at := rng.IntN(len(b))
		b[at] ^= byte(1 + rng.IntN(255))
		os.WriteFile(p, b, 0o644)
		res, err := output.CheckReports(context.Background(), storage.Local{}, out, output.CheckOptions{PublicKey: pub})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, pr := range res.Problems {
			found = found || pr.Report == p || pr.File == p
		}
		if strings.HasSuffix(p, "report.html") && !strings.Contains(fmt.Sprint(res.Problems), "report.html does not show what report.json says") {
			found = false
		}
		if !found {
			t.Errorf("byte %d of %s changed: problems %v", at, rel, res.Problems)
		}
	}
}
