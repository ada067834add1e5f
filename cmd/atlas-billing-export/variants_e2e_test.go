package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// TestRunVariants exports one org-month with the built tool's run against a
// simulator serving each real form of Atlas's answers (atlassim.Variants),
// and checks what a user gets: every raw file byte for byte as the
// simulator served it, the normalized rows the same as from the spec's
// forms (the tags variant: those plus its tag columns in tags), the
// warnings by name, every invoice reconciled, and the exit status.
func TestRunVariants(t *testing.T) {
	// The spec's forms: the normalized rows every variant must give.
	spec := startExport(t, nil)
	tests := []struct {
		name     string
		variants []atlassim.Variant
		args     []string
		warnings []string // names, in order
		code     int
		noFocus  bool // no FOCUS files
	}{
		{name: "tags", variants: []atlassim.Variant{atlassim.Tags}},
		{name: "exponent", variants: []atlassim.Variant{atlassim.Exponent}},
		{name: "us-dates", variants: []atlassim.Variant{atlassim.USDates}},
		{name: "kv-usage", variants: []atlassim.Variant{atlassim.KeyValueUsage}},
		{name: "pending-object", variants: []atlassim.Variant{atlassim.PendingObject}},
		{name: "text-csv", variants: []atlassim.Variant{atlassim.TextCSV}},
		{name: "ignore-date-filters", variants: []atlassim.Variant{atlassim.IgnoreDateFilters}},
		{name: "focus-unavailable", variants: []atlassim.Variant{atlassim.FocusUnavailable}, warnings: []string{export.FocusUnavailable}, noFocus: true},
		{name: "focus-unavailable, strict", variants: []atlassim.Variant{atlassim.FocusUnavailable}, args: []string{"--strict"},
			warnings: []string{export.FocusUnavailable}, code: 1, noFocus: true},
		{name: "h2-102-end-stream", variants: []atlassim.Variant{atlassim.H2EndStream102}},
		{name: "all at once", variants: atlassim.Variants, warnings: []string{export.FocusUnavailable}, noFocus: true},
	}
	// The runs mostly wait between polls, as the state machine would: all
	// at once, then checked one by one.
	exports := make([]*variantExport, len(tests))
	for i, tc := range tests {
		exports[i] = startExport(t, tc.variants, tc.args...)
	}
	spec.finish(t)
	if spec.res.code != 0 || len(spec.summary.Warnings) != 0 {
		t.Fatalf("spec forms: exit %d, warnings %+v\n%s", spec.res.code, spec.summary.Warnings, spec.res.stderr)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := exports[i]
			ex.finish(t)
			if ex.res.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", ex.res.code, tc.code, ex.res.stderr)
			}
			var names []string
			for _, w := range ex.summary.Warnings {
				names = append(names, w.Name)
			}
			if !slices.Equal(names, tc.warnings) {
				t.Errorf("warnings %v, want %v: %+v", names, tc.warnings, ex.summary.Warnings)
			}
			if tc.code != 0 && !strings.Contains(lastLine(ex.res.stderr), "error: "+export.ExportWarnings+": ") {
				t.Errorf("stderr does not end with the %s error: %q", export.ExportWarnings, ex.res.stderr)
			}
			// The usage: the CSV and the JSON form once each, after a 102
			// for the HTTP/2 variant.
			wantGets := 2
			if slices.Contains(tc.variants, atlassim.H2EndStream102) {
				wantGets = 3
			}
			if n := ex.sim.Requests(atlassim.OpGetUsage); n != wantGets {
				t.Errorf("%d usage GETs, want %d", n, wantGets)
			}
			if len(ex.summary.Reconciliations) != 2 {
				t.Errorf("reconciliations %+v, want June's and July's invoices", ex.summary.Reconciliations)
			}
			for _, r := range ex.summary.Reconciliations {
				if !r.Reconciled {
					t.Errorf("invoice %s not reconciled: %+v", r.InvoiceID, r)
				}
			}

			// Raw files: what the simulator served, byte for byte.
			raw := ex.served(t)
			for key, want := range raw {
				if got := ex.file(t, key); !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes differ from the %d the simulator served", key, len(got), len(want))
				}
			}
			// Normalized files: the spec's rows; nothing else in the folder.
			wantKeys := slices.Sorted(func(yield func(string) bool) {
				for k := range raw {
					if !yield(k) {
						return
					}
				}
				for _, k := range spec.keys(t) {
					if isNormalized(k) && !(tc.noFocus && strings.HasPrefix(k, layout.NormalizedFocusFolder+"/")) && !yield(k) {
						return
					}
				}
			})
			if got := ex.keys(t); !slices.Equal(got, wantKeys) {
				t.Errorf("files\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantKeys, "\n"))
			}
			for _, key := range wantKeys {
				if !isNormalized(key) {
					continue
				}
				got, want := ex.rows(t, key), spec.rows(t, key)
				if slices.Contains(tc.variants, atlassim.Tags) && strings.HasPrefix(key, layout.NormalizedInvoiceFolder+"/") {
					got = checkTags(t, key, got, want)
				}
				if !slices.EqualFunc(got, want, sameRow) {
					t.Errorf("%s: %d normalized rows differ from the spec forms' %d", key, len(got), len(want))
				}
			}
		})
	}
}

// checkTags checks the tags column of an invoice's line items from the tags
// variant (a map of tag column to value, read as a JSON object, on every
// line item that has tags) and returns the rows with the spec forms' tags ({}), for the
// other columns to compare.
func checkTags(t *testing.T, key string, got, spec [][]string) [][]string {
	t.Helper()
	if len(got) == 0 || got[0][len(got[0])-1] != "tags" {
		t.Errorf("%s: no tags column: %v", key, got[:min(len(got), 1)])
		return got
	}
	tagged := 0
	out := make([][]string, len(got))
	for i, row := range got {
		out[i] = slices.Clone(row)
		if i == 0 {
			continue
		}
		var tags map[string]string
		if err := json.Unmarshal([]byte(row[len(row)-1]), &tags); err != nil {
			t.Errorf("%s line %d: tags %q: %v", key, i, row[len(row)-1], err)
			continue
		}
		for k, v := range tags {
			if !slices.Contains([]string{"Tags/environment", "Tags/team", "Tags/cost-center"}, k) || v == "" {
				t.Errorf("%s line %d: tag %q=%q, want one of the simulator's tag columns with a value", key, i, k, v)
			}
		}
		if len(tags) > 0 {
			tagged++
		}
		if i < len(spec) {
			out[i][len(row)-1] = spec[i][len(row)-1]
		}
	}
	if tagged == 0 {
		t.Errorf("%s: no line item has tags", key)
	}
	return out
}

// startExport starts an export of June 2024 and the pending July of the
// simulator's first org with run --json into a folder. Queries and reports
// are ready at once, but for the h2-102-end-stream variant, served over TLS
// with HTTP/2 (its 102s are HTTP/2 frames), whose first poll answers 102;
// the tool trusts the simulator's certificate through SSL_CERT_FILE.
func startExport(t *testing.T, variants []atlassim.Variant, extra ...string) *variantExport {
	t.Helper()
	cfg := atlassim.Config{
		FirstMonth: "2024-05", Variants: variants, ProcessingTime: -1, ReportProcessingTime: -1,
		Now: func() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) },
	}
	var env []string
	var sim *atlassim.Server
	var base string
	if slices.Contains(variants, atlassim.H2EndStream102) {
		cfg.ReadyAfterPolls = 1
		sim, base, _ = atlassimtest.StartTLS(t, cfg)
		env = append(env, "SSL_CERT_FILE="+certFile(t, base))
	} else {
		sim, base = atlassimtest.Start(t, cfg)
	}
	ex := &variantExport{sim: sim, variants: variants, org: sim.Orgs()[0].ID, dir: t.TempDir()}
	env = append(env,
		"MONGODB_ATLAS_CLIENT_ID="+atlassim.DefaultClientID,
		"MONGODB_ATLAS_CLIENT_SECRET="+atlassim.DefaultClientSecret,
		"MONGODB_ATLAS_BASE_URL="+base,
	)
	ex.run = start(t, env, append([]string{"run", "--org", ex.org, "--period", "2024-06", "--include-pending", "--json", "--out", ex.dir}, extra...)...)
	return ex
}

// finish waits for the export and reads its summary.
func (ex *variantExport) finish(t *testing.T) {
	t.Helper()
	ex.res = ex.run.wait(t)
	for _, line := range strings.Split(strings.TrimSpace(ex.res.stdout), "\n") {
		if strings.Contains(line, `"event":"summary"`) {
			if err := json.Unmarshal([]byte(line), &ex.summary); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ex.summary.Objects == nil {
		t.Fatalf("no summary: exit %d\nstdout %s\nstderr %s", ex.res.code, ex.res.stdout, ex.res.stderr)
	}
}

// sameRow compares normalized records by value: numbers as exact decimals
// (the normalizer keeps the digits Atlas gave, so 410.50 and 4.105E2 are
// 410.50 and 410.5), anything else as text.
func sameRow(a, b []string) bool {
	return slices.EqualFunc(a, b, func(x, y string) bool {
		if x == y {
			return true
		}
		rx, okx := new(big.Rat).SetString(x)
		ry, oky := new(big.Rat).SetString(y)
		return okx && oky && rx.Cmp(ry) == 0
	})
}

// certFile writes the certificate the TLS server at base presents (the
// httptest certificate, its own CA) as a PEM file.
func certFile(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{InsecureSkipVerify: true}) // only to read the certificate
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	path := filepath.Join(t.TempDir(), "sim.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: conn.ConnectionState().PeerCertificates[0].Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// variantExport is one run of the tool and what it wrote.
type variantExport struct {
	sim      *atlassim.Server
	variants []atlassim.Variant
	org      string
	dir      string // the --out folder: keys are paths under it
	run      *started
	res      result
	summary  struct {
		Objects  []struct{ Key string }
		Warnings []export.Warning
		// Reconciliations: run's, one per invoice.
		Reconciliations []struct {
			InvoiceID  string
			Reconciled bool
		}
	}
}

// served is every raw file the export must have stored, by key: what the
// simulator serves, byte for byte.
func (ex variantExport) served(t *testing.T) map[string][]byte {
	t.Helper()
	var lay layout.Layout // a folder's keys have no prefix
	june := period.Month(2024, time.June)
	out := map[string][]byte{}
	var usage bytes.Buffer
	if err := ex.sim.WriteUsageCSV(&usage, ex.org, atlassim.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"}); err != nil {
		t.Fatal(err)
	}
	out[key(t)(lay.Usage(ex.org, june))] = usage.Bytes()
	for _, inv := range ex.sim.Invoices(ex.org) {
		if inv.Month != "2024-06" && inv.Month != "2024-07" {
			continue
		}
		m := june
		if inv.Month == "2024-07" {
			m = june.Next()
		}
		var b bytes.Buffer
		if err := ex.sim.WriteInvoiceCSV(&b, ex.org, inv.ID); err != nil {
			t.Fatal(err)
		}
		out[key(t)(lay.Invoice(ex.org, m, inv.ID))] = b.Bytes()
		if inv.Status != "PENDING" && !slices.Contains(ex.variants, atlassim.FocusUnavailable) {
			var f bytes.Buffer
			if err := ex.sim.WriteFocusCSV(&f, ex.org, inv.ID); err != nil {
				t.Fatal(err)
			}
			out[key(t)(lay.Focus(ex.org, m, inv.ID))] = f.Bytes()
		}
	}
	return out
}

// key is a layout key, or the test's end.
func key(t *testing.T) func(string, error) string {
	return func(k string, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

func (ex variantExport) file(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ex.dir, filepath.FromSlash(key)))
	if err != nil {
		t.Error(err)
	}
	return b
}

// keys lists the files written (not the manifests), sorted.
func (ex variantExport) keys(t *testing.T) []string {
	t.Helper()
	root := ex.dir
	var keys []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "_manifests" {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		keys = append(keys, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	return keys
}

// rows reads a normalized file: its column names and records, as text.
func (ex variantExport) rows(t *testing.T, key string) [][]string {
	t.Helper()
	return testenv.ParquetRows(t, ex.file(t, key))
}

func isNormalized(key string) bool {
	for _, f := range []string{layout.NormalizedUsageFolder, layout.NormalizedInvoiceFolder, layout.NormalizedFocusFolder} {
		if strings.HasPrefix(key, f+"/") {
			return true
		}
	}
	return false
}
