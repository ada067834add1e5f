package statemachine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	billing "github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestEndToEnd runs the deployed definition in aws-local-stepfunctions with
// every Task state running the real handler code against the Atlas
// simulator, versitygw and Secrets Manager. (Not parallel: a World sets the
// AWS SDK's environment.)
func TestEndToEnd(t *testing.T) {
	const month = "2024-06"
	bothOrgs := func(w *e2e.World) any {
		// No orgIds: the plan takes both from ABX_ORG_IDS.
		return map[string]any{"period": month, "includePending": true}
	}
	firstOrg := func(w *e2e.World) any {
		return map[string]any{"orgIds": []string{w.Orgs[0]}, "period": month}
	}
	tests := []struct {
		name   string
		sim    atlassim.Config
		env    map[string]string
		faults []atlassim.Fault
		input  func(w *e2e.World) any

		wantErr      string
		wantCalls    map[string]int // handler calls per Task state
		wantRequests map[string]int // simulator requests per operation
		wantRetried  int
		minElapsed   time.Duration // the Retry-After waits the client must honour
		check        func(t *testing.T, w *e2e.World, res sfntest.Result)
	}{
		{
			name: "query processing for several polls, two orgs",
			// FOCUS reports come as .csv.gz files here (the spec's example);
			// expected() wants the plain CSV stored.
			sim:   atlassim.Config{ReadyAfterPolls: 3, ReportGzip: true},
			input: bothOrgs,
			// Per org: 3 polls answer PROCESSING (102), the 4th streams the
			// usage CSV and asks for its JSON form.
			wantCalls:    map[string]int{"Plan": 1, "Submit": 2, "Poll": 8, "FetchInvoices": 2},
			wantRequests: map[string]int{atlassim.OpCreateUsage: 2, atlassim.OpGetUsage: 10, atlassim.OpListInvoices: 2, atlassim.OpPendingInvoice: 2, atlassim.OpGetInvoiceCSV: 4},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				// One Wait before each of the 8 polls. local-sfn forwards a
				// nested Map's events asynchronously and may drop the last
				// few, so the count is a bound; the handler counts are exact.
				if n := res.Entered[statemachine.StateWait]; n == 0 || n > 8 {
					t.Errorf("WaitForUsage entered %d times, want 1 to 8 (one before each poll)", n)
				}
				sum := decodeSummary(t, res)
				if sum.Orgs != 2 || sum.Months != 1 || sum.Jobs != 2 || sum.Succeeded != 2 || sum.Failed != 0 || sum.Objects != 16 || sum.Unchanged != 0 {
					t.Errorf("summary = %s, want 2 orgs, 1 month, 2 jobs succeeded, 16 objects", res.Output)
				}
				outcomes := w.Outcomes(t, res)
				if len(outcomes) != 2 {
					t.Fatalf("outcomes list %d jobs, want 2", len(outcomes))
				}
				var listed []string
				var bytes int64
				for i, r := range outcomes {
					if r.OrgID != w.Orgs[i] || r.Period.Label() != month || r.Error != "" {
						t.Errorf("outcome %d = %s %s (error %q), want %s %s", i, r.OrgID, r.Period, r.Error, w.Orgs[i], month)
					}
					want := expected(t, w, r.OrgID, month, true)
					checkObjects(t, w, r.Objects, want)
					for _, o := range r.Objects {
						listed = append(listed, o.Key)
						bytes += o.Bytes
					}
					listed = append(listed, checkManifest(t, w, r.OrgID, month, want))
				}
				if sum.Bytes != bytes {
					t.Errorf("summary counts %d bytes, the outcomes %d", sum.Bytes, bytes)
				}
				slices.Sort(listed)
				if got := w.FinalKeys(t); !slices.Equal(got, listed) || len(got) != 18 {
					t.Errorf("bucket holds\n%s\nthe output lists\n%s", strings.Join(got, "\n"), strings.Join(listed, "\n"))
				}
			},
		},
		{
			name:   "invoice not found names the org",
			faults: []atlassim.Fault{{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.NotFound}},
			input:  bothOrgs,
			// Not retried; the other org's job still runs to the end.
			wantErr:      "Atlas.NotFound",
			wantCalls:    map[string]int{"Submit": 2, "Poll": 6, "FetchInvoices": 2},
			wantRequests: map[string]int{atlassim.OpGetInvoiceCSV: 3},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				// The fault hits whichever org asks first.
				var failed, other []string
				for _, org := range w.Orgs {
					if strings.Contains(res.Cause, "org "+org) {
						failed = append(failed, org)
					} else {
						other = append(other, org)
					}
				}
				if len(failed) != 1 {
					t.Fatalf("cause %q names %d orgs, want exactly one", res.Cause, len(failed))
				}
				if keys := w.KeysUnder(t, "invoices/org_id="+failed[0]+"/"); len(keys) != 0 {
					t.Errorf("invoices stored for the failed org: %v", keys)
				}
				want := expected(t, w, other[0], month, true)
				keys := w.KeysUnder(t, "invoices/org_id="+other[0]+"/")
				if len(keys) != 2 {
					t.Errorf("the other org's invoices = %v, want June's and July's", keys)
				}
				for _, k := range keys {
					if !bytes.Equal(w.Object(t, k), want[k].body) {
						t.Errorf("%s differs from what Atlas served", k)
					}
				}
			},
		},
		{
			name: "query never finishes",
			env:  map[string]string{"ABX_MAX_POLL_ATTEMPTS": "4"},
			// Polled once as never-ready, the query stays so.
			faults:       []atlassim.Fault{{Op: atlassim.OpGetUsage, Kind: atlassim.NeverReady}},
			input:        firstOrg,
			wantErr:      "Poll.AttemptsExhausted",
			wantCalls:    map[string]int{"Submit": 1, "Poll": 4, "FetchInvoices": 0},
			wantRequests: map[string]int{atlassim.OpGetUsage: 4, atlassim.OpListInvoices: 0},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				if !strings.Contains(res.Cause, "org "+w.Orgs[0]) || !strings.Contains(res.Cause, "after 4 polls") {
					t.Errorf("cause = %q, want the org and the 4 polls", res.Cause)
				}
				// A bound, as above: event counts of a nested Map may fall short.
				if n := res.Entered[statemachine.StateWait]; n == 0 || n > 4 {
					t.Errorf("WaitForUsage entered %d times, want 1 to 4", n)
				}
				if keys := w.FinalKeys(t); len(keys) != 0 {
					t.Errorf("objects stored: %v", keys)
				}
			},
		},
		{
			name: "429 burst beyond the client's budget",
			// The client makes 5 attempts (all 429) and gives up with
			// Atlas.RateLimited; the state machine's Retry calls the step
			// again, whose client meets the 6th 429, waits and succeeds.
			faults:       []atlassim.Fault{{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second, Times: 6}},
			input:        firstOrg,
			wantCalls:    map[string]int{"Submit": 1, "Poll": 3, "FetchInvoices": 2},
			wantRequests: map[string]int{atlassim.OpListInvoices: 7, atlassim.OpGetInvoiceCSV: 1},
			wantRetried:  1,
			// 4 waits before the client gives up, 1 in the retried step.
			minElapsed: 5 * time.Second,
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				if sum := decodeSummary(t, res); sum.Jobs != 1 || sum.Succeeded != 1 {
					t.Fatalf("summary = %s", res.Output)
				}
				checkObjects(t, w, w.Outcomes(t, res)[0].Objects, expected(t, w, w.Orgs[0], month, false))
			},
		},
		{
			name: "FOCUS report fails",
			// June's report is requested, then fails at its first poll: a
			// warning, the month's usage and invoice stored.
			faults:       []atlassim.Fault{{Op: atlassim.OpGetInvoiceReport, Kind: atlassim.ReportFailed}},
			input:        firstOrg,
			wantCalls:    map[string]int{"FetchInvoices": 1, statemachine.StateSubmitFocus: 1, statemachine.StatePollFocus: 1},
			wantRequests: map[string]int{atlassim.OpCreateInvoiceReport: 1, atlassim.OpGetInvoiceReport: 1, atlassim.OpDownloadReport: 0},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				sum := decodeSummary(t, res)
				out := w.Outcomes(t, res)
				if sum.Jobs != 1 || sum.Succeeded != 1 || sum.Warnings[export.FocusUnavailable] != 1 || len(out) != 1 {
					t.Fatalf("summary = %s", res.Output)
				}
				checkFocusUnavailable(t, w, out[0].Warnings, "focus-poll")
				want := expected(t, w, w.Orgs[0], month, false)
				for k := range want {
					if strings.HasPrefix(k, w.Layout.Prefix()+"/focus") {
						delete(want, k)
					}
				}
				checkObjects(t, w, out[0].Objects, want)
				if keys := w.KeysUnder(t, "focus/"); len(keys) != 0 {
					t.Errorf("FOCUS objects stored for a failed report: %v", keys)
				}
			},
		},
		{
			name: "FOCUS report fails, warnings strict",
			// The same, with StrictWarnings: everything is stored, then the
			// job's last step fails with Export.Warnings.
			env:          map[string]string{"ABX_STRICT_WARNINGS": "true"},
			faults:       []atlassim.Fault{{Op: atlassim.OpGetInvoiceReport, Kind: atlassim.ReportFailed}},
			input:        firstOrg,
			wantErr:      export.ExportWarnings,
			wantCalls:    map[string]int{"FetchInvoices": 1, statemachine.StateSubmitFocus: 1, statemachine.StatePollFocus: 1},
			wantRequests: map[string]int{atlassim.OpCreateInvoiceReport: 1, atlassim.OpGetInvoiceReport: 1, atlassim.OpDownloadReport: 0},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				inv := w.Invoice(t, w.Orgs[0], month)
				if !strings.Contains(res.Cause, export.FocusUnavailable) || !strings.Contains(res.Cause, inv.ID) {
					t.Errorf("cause = %q, want the warning's name and the invoice", res.Cause)
				}
				if keys := w.KeysUnder(t, "invoices/org_id="+w.Orgs[0]+"/"); len(keys) != 1 {
					t.Errorf("invoices stored: %v, want June's", keys)
				}
			},
		},
		{
			name: "FOCUS unavailable for the invoice",
			// Atlas refuses to create the report (400, 403 or 404 by month):
			// a warning, the month's usage and invoice stored.
			sim:          atlassim.Config{Variants: []atlassim.Variant{atlassim.FocusUnavailable}},
			input:        firstOrg,
			wantCalls:    map[string]int{"FetchInvoices": 1, statemachine.StateSubmitFocus: 1, statemachine.StatePollFocus: 1},
			wantRequests: map[string]int{atlassim.OpCreateInvoiceReport: 1, atlassim.OpGetInvoiceReport: 0, atlassim.OpDownloadReport: 0},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				sum := decodeSummary(t, res)
				out := w.Outcomes(t, res)
				if sum.Jobs != 1 || sum.Succeeded != 1 || len(out) != 1 {
					t.Fatalf("summary = %s", res.Output)
				}
				checkFocusUnavailable(t, w, out[0].Warnings, "focus-submit")
				if keys := w.KeysUnder(t, "invoices/org_id="+w.Orgs[0]+"/"); len(keys) != 1 {
					t.Errorf("invoices stored: %v, want June's", keys)
				}
			},
		},
		{
			name: "FOCUS download URL expired",
			// The first download is refused as expired: the report is
			// requested again, and its new URL downloads.
			faults:       []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.ExpiredURL}},
			input:        firstOrg,
			wantCalls:    map[string]int{"FetchInvoices": 1, statemachine.StateSubmitFocus: 1},
			wantRequests: map[string]int{atlassim.OpCreateInvoiceReport: 2, atlassim.OpDownloadReport: 2},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				if sum := decodeSummary(t, res); sum.Jobs != 1 || sum.Succeeded != 1 {
					t.Fatalf("summary = %s", res.Output)
				}
				checkObjects(t, w, w.Outcomes(t, res)[0].Objects, expected(t, w, w.Orgs[0], month, false))
				// The download host never saw Atlas credentials.
				for _, h := range w.Sim.DownloadRequests() {
					if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
						t.Errorf("a download request carried credentials: %v", h)
					}
				}
			},
		},
		{
			name:         "FOCUS reports turned off",
			env:          map[string]string{"ABX_FOCUS_REPORTS": "false"},
			input:        firstOrg,
			wantCalls:    map[string]int{"FetchInvoices": 1, statemachine.StateSubmitFocus: 0, statemachine.StatePollFocus: 0},
			wantRequests: map[string]int{atlassim.OpCreateInvoiceReport: 0},
			check: func(t *testing.T, w *e2e.World, res sfntest.Result) {
				if keys := w.KeysUnder(t, "focus/"); len(keys) != 0 {
					t.Errorf("FOCUS objects stored with FOCUS off: %v", keys)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e2e.New(t, e2e.Options{Sim: tt.sim, Env: tt.env})
			for _, f := range tt.faults {
				w.Sim.Inject(f)
			}
			start := time.Now()
			res := w.Run(t, tt.input(w))
			elapsed := time.Since(start)

			if res.Error != tt.wantErr {
				t.Fatalf("execution error = %q (cause %q), want %q", res.Error, res.Cause, tt.wantErr)
			}
			if tt.wantErr != "" && !strings.Contains(res.Cause, "org ") {
				t.Errorf("cause %q does not name an org", res.Cause)
			}
			for _, state := range slices.Sorted(maps.Keys(tt.wantCalls)) {
				if got := res.Calls[state]; got != tt.wantCalls[state] {
					t.Errorf("%s called %d times, want %d", state, got, tt.wantCalls[state])
				}
			}
			for _, op := range slices.Sorted(maps.Keys(tt.wantRequests)) {
				if got := w.Sim.Requests(op); got != tt.wantRequests[op] {
					t.Errorf("simulator saw %d %s requests, want %d", got, op, tt.wantRequests[op])
				}
			}
			if res.Retried != tt.wantRetried {
				t.Errorf("state machine retried %d times, want %d", res.Retried, tt.wantRetried)
			}
			if n := w.Sim.PendingFaults(); n != 0 {
				t.Errorf("%d injected faults never applied", n)
			}
			// A lower bound only, so it cannot flake.
			if elapsed < tt.minElapsed {
				t.Errorf("run took %v, less than the %v of Retry-After the simulator asked for", elapsed, tt.minElapsed)
			}
			if n := w.OpenUploads(t); n != 0 {
				t.Errorf("%d multipart uploads left open", n)
			}
			tt.check(t, w, res)
		})
	}
}

// stored is what an object should hold.
type stored struct {
	body []byte
	rows int64
}

// expected maps each key an org's job of month should write to what it
// should hold: the usage as Atlas served it and its normalized form, the
// month's invoice (and with pending the current month's pending one) raw and
// normalized, and the FOCUS report of each closed invoice.
func expected(t *testing.T, w *e2e.World, org, month string, pending bool) map[string]stored {
	t.Helper()
	p, err := billing.Parse(month, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	usage := w.ServedUsage(t, org, month)
	rows := int64(bytes.Count(usage, []byte{'\n'}) - 1) // the simulator's values hold no newline
	out := map[string]stored{
		w.UsageKey(t, org, month):                 {body: usage, rows: rows},
		must(t)(w.Layout.NormalizedUsage(org, p)): {body: normalized(t, w.ServedUsageJSON(t, org, month), normalize.UsageJSON), rows: rows},
	}
	months := []string{month}
	if pending {
		months = append(months, e2e.Now.Format("2006-01"))
	}
	for _, m := range months {
		inv := w.Invoice(t, org, m)
		mp, _ := billing.Parse(m, time.Time{})
		raw := w.ServedInvoice(t, org, inv.ID)
		out[w.InvoiceKey(t, org, m, inv.ID)] = stored{body: raw, rows: inv.Rows}
		lineItems := normalized(t, raw, func(dst io.Writer, src io.Reader) (tally.Stats, error) {
			return normalize.Invoice(dst, src, normalize.InvoiceInfo{ID: inv.ID, Status: inv.Status})
		})
		out[must(t)(w.Layout.NormalizedInvoice(org, mp, inv.ID))] = stored{body: lineItems, rows: inv.Rows}
		if inv.Status != "PENDING" {
			var focus bytes.Buffer
			if err := w.Sim.WriteFocusCSV(&focus, org, inv.ID); err != nil {
				t.Fatal(err)
			}
			out[must(t)(w.Layout.Focus(org, mp, inv.ID))] = stored{body: focus.Bytes(), rows: inv.Rows}
			out[must(t)(w.Layout.NormalizedFocus(org, mp, inv.ID))] = stored{body: normalized(t, focus.Bytes(), normalize.Focus), rows: inv.Rows}
		}
	}
	return out
}

// checkManifest checks that the manifest of an org's month lists exactly
// the objects its job wrote, as they are, and returns its key.
func checkManifest(t *testing.T, w *e2e.World, org, month string, want map[string]stored) string {
	t.Helper()
	p, _ := billing.Parse(month, time.Time{})
	key := must(t)(w.Layout.Manifest(org, p))
	var m export.Manifest
	if err := json.Unmarshal(w.Object(t, key), &m); err != nil {
		t.Fatalf("manifest %s: %v", key, err)
	}
	if m.Version != export.ManifestVersion || m.OrgID != org || m.BillingMonth != month || len(m.Objects) != len(want) {
		t.Errorf("manifest %s: version %d, %s %s, %d objects; want %d", key, m.Version, m.OrgID, m.BillingMonth, len(m.Objects), len(want))
	}
	for _, e := range m.Objects {
		exp, ok := want[e.Key]
		sum := sha256.Sum256(exp.body)
		h := w.S3.Head(t, w.Bucket, e.Key)
		if !ok || h == nil || e.SHA256 != hex.EncodeToString(sum[:]) || e.Bytes != int64(len(exp.body)) || e.Rows != exp.rows || e.ETag != aws.ToString(h.ETag) {
			t.Errorf("manifest entry %+v: not the object stored", e)
		}
		if strings.Contains(e.Key, "/invoices/") {
			i := slices.IndexFunc(w.Sim.Invoices(org), func(inv atlassim.Invoice) bool { return inv.ID == e.InvoiceID })
			if i < 0 {
				t.Fatalf("manifest entry %+v: no such invoice", e)
			}
			inv := w.Sim.Invoices(org)[i]
			if e.InvoiceStatus != inv.Status || e.InvoiceUpdated != inv.Updated.UTC().Format(time.RFC3339Nano) {
				t.Errorf("manifest entry %+v: want invoice status %s, updated %s", e, inv.Status, inv.Updated)
			}
		}
	}
	return key
}

// normalized is what internal/normalize makes of raw.
func normalized(t *testing.T, raw []byte, conv func(io.Writer, io.Reader) (tally.Stats, error)) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := conv(&b, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func must(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// checkObjects checks that objs, as the run's outcomes list them, are
// exactly want and that each is stored byte for byte as Atlas served it.
func checkObjects(t *testing.T, w *e2e.World, objs []sink.Object, want map[string]stored) {
	t.Helper()
	var got []string
	for _, o := range objs {
		got = append(got, o.Key)
		exp, ok := want[o.Key]
		if !ok {
			continue
		}
		sum := sha256.Sum256(exp.body)
		if o.Bucket != w.Bucket || o.Bytes != int64(len(exp.body)) || o.SHA256 != hex.EncodeToString(sum[:]) || o.Rows != exp.rows || o.Skipped {
			t.Errorf("listed %+v, want %d bytes, %d rows, sha256 %x in %s", o, len(exp.body), exp.rows, sum, w.Bucket)
		}
		if body := w.Object(t, o.Key); !bytes.Equal(body, exp.body) {
			t.Errorf("%s: stored %d bytes differ from the %d Atlas served", o.Key, len(body), len(exp.body))
		}
	}
	slices.Sort(got)
	if wantKeys := slices.Sorted(maps.Keys(want)); !slices.Equal(got, wantKeys) {
		t.Errorf("output lists\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantKeys, "\n"))
	}
}

// checkFocusUnavailable wants ws to be one Focus.Unavailable warning for
// June's invoice of the first org, given by step.
func checkFocusUnavailable(t *testing.T, w *e2e.World, ws []export.Warning, step string) {
	t.Helper()
	inv := w.Invoice(t, w.Orgs[0], "2024-06")
	if len(ws) != 1 {
		t.Fatalf("warnings = %+v, want one", ws)
	}
	got := ws[0]
	if got.Name != export.FocusUnavailable || got.OrgID != w.Orgs[0] || got.Period != "2024-06" || got.InvoiceID != inv.ID || got.Step != step || got.Message == "" {
		t.Errorf("warning = %+v, want %s for invoice %s of org %s at %s", got, export.FocusUnavailable, inv.ID, w.Orgs[0], step)
	}
	// One JSON log line per warning, which the template's metric filter counts.
	var logged []map[string]any
	for _, line := range strings.Split(w.Logs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == export.WarningLog {
			logged = append(logged, m)
		}
	}
	want := map[string]any{"level": "WARN", "msg": export.WarningLog, "name": export.FocusUnavailable, "org": w.Orgs[0], "period": "2024-06", "step": step, "invoice": inv.ID}
	if len(logged) != 1 {
		t.Fatalf("%d warning log lines, want 1:\n%s", len(logged), w.Logs())
	}
	for k, v := range want {
		if logged[0][k] != v {
			t.Errorf("warning log line %v: %s = %v, want %v", logged[0], k, logged[0][k], v)
		}
	}
}

func decodeSummary(t *testing.T, res sfntest.Result) summary {
	t.Helper()
	var sum summary
	if err := json.Unmarshal(res.Output, &sum); err != nil {
		t.Fatalf("decode output %s: %v", res.Output, err)
	}
	if sum.Jobs != sum.Succeeded+sum.Failed {
		t.Errorf("summary says %d jobs but %d succeeded and %d failed", sum.Jobs, sum.Succeeded, sum.Failed)
	}
	return sum
}

// TestChildWorkflow runs the org's child workflow (the Distributed Map's
// ItemProcessor, statemachine.Org) in aws-local-stepfunctions with the real
// handlers, for two orgs at once as the Map starts them, on the items the
// real Plan wrote: one org exports its three months through a burst of 429s
// (Atlas's per-org bucket enforced, and empty at the start: another client
// just spent it) that the Atlas client waits out; the other is unknown to
// Atlas and fails every month, which stops nothing of the first.
func TestChildWorkflow(t *testing.T) {
	// The bucket's clock 60 times real time: a Retry-After of 1 s refills it
	// with 100 requests.
	w := e2e.New(t, e2e.Options{Sim: atlassim.Config{RateLimit: &atlassim.RateLimit{Scale: 60, Drained: true}}})
	const unknown = "0123456789abcdef01234567" // ORG_NOT_FOUND
	good := w.Orgs[0]
	months := []string{"2024-04", "2024-05", "2024-06"}
	plan, err := w.H.Handler("fetch-invoice")(t.Context(), mustMarshal(t, map[string]any{
		"action": "plan", "execution": "child-e2e",
		"request": map[string]any{"orgIds": []string{good, unknown}, "startDate": "2024-04-01", "endDate": "2024-07-01"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(w.Object(t, plan.(export.Run).Plan), &items); err != nil || len(items) != 2 {
		t.Fatalf("plan items: %v (%d)", err, len(items))
	}

	var mu sync.Mutex
	var submitted []string // org/month of each Submit
	routes := w.Routes()
	submit := routes[statemachine.StateSubmit]
	routes[statemachine.StateSubmit] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		var c struct{ Job export.Job }
		if err := json.Unmarshal(in, &c); err == nil {
			mu.Lock()
			submitted = append(submitted, c.Job.OrgID+"/"+c.Job.Period.Label())
			mu.Unlock()
		}
		return submit(ctx, in)
	}
	def, err := statemachine.Org(e2e.Definition(t))
	if err != nil {
		t.Fatal(err)
	}
	opt := sfntest.Options{}
	opt.Node, opt.NodeModules = sfntest.Tools(t)
	results := make([]sfntest.Result, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = sfntest.Exec(t.Context(), t.TempDir(), def, item, routes.Handle, opt)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("org child %d: %v", i, err)
		}
	}

	type orgOut struct {
		OrgID  string       `json:"orgId"`
		Months []jobOutcome `json:"months"`
	}
	outs := make([]orgOut, len(results))
	for i, res := range results {
		// A child execution succeeds whatever its months did: the summary
		// counts them, and the Map goes on.
		if !res.Succeeded() {
			t.Fatalf("org child %d failed: %s: %s", i, res.Error, res.Cause)
		}
		if err := json.Unmarshal(res.Output, &outs[i]); err != nil || len(outs[i].Months) != 3 {
			t.Fatalf("org child %d output %s (%v): want the org and its 3 months", i, res.Output, err)
		}
		if bytes.Contains(res.Output, []byte(`"jobs"`)) {
			t.Errorf("org child %d's output carries its jobs", i)
		}
	}

	// The good org: every month, in order, stored as Atlas served it.
	if outs[0].OrgID != good {
		t.Fatalf("first child is %s", outs[0].OrgID)
	}
	var listed []string
	for i, m := range outs[0].Months {
		if m.Period.Month != months[i] || m.Error != "" {
			t.Errorf("%s %s: error %q: %s", good, m.Period.Month, m.Error, m.Cause)
		}
		var o e2e.Outcome
		b, _ := json.Marshal(m)
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		want := expected(t, w, good, months[i], false)
		checkObjects(t, w, o.Objects, want)
		for _, ob := range o.Objects {
			listed = append(listed, ob.Key)
		}
		listed = append(listed, checkManifest(t, w, good, months[i], want))
	}
	// The 429s never reached a step: the client waited out each Retry-After.
	if n := refused(w.Sim, good); n == 0 || results[0].Retried != 0 || results[0].Calls[statemachine.StateSubmit] != 3 {
		t.Errorf("good org: %d requests answered 429, %d state machine retries, %d Submit calls; want a burst the client absorbed", n, results[0].Retried, results[0].Calls[statemachine.StateSubmit])
	}

	// The unknown org: each month failed on its own, naming org and month.
	if outs[1].OrgID != unknown {
		t.Fatalf("second child is %s", outs[1].OrgID)
	}
	for i, m := range outs[1].Months {
		if m.Period.Month != months[i] || m.Error != export.AtlasNotFound || !strings.Contains(m.Cause, "org "+unknown+", "+months[i]) {
			t.Errorf("unknown org, month %d: %s %s: %s", i, m.Period.Month, m.Error, m.Cause)
		}
	}
	var goodOrder, unknownOrder []string
	for _, s := range submitted {
		org, month, _ := strings.Cut(s, "/")
		if org == good {
			goodOrder = append(goodOrder, month)
		} else {
			unknownOrder = append(unknownOrder, month)
		}
	}
	slices.Sort(goodOrder)
	slices.Sort(unknownOrder)
	if !slices.Equal(goodOrder, months) || !slices.Equal(unknownOrder, months) {
		t.Errorf("months submitted %v and %v, want each of each org's once", goodOrder, unknownOrder)
	}
	// Nothing stored but what the good org's outcomes list.
	slices.Sort(listed)
	if got := w.FinalKeys(t); !slices.Equal(got, listed) {
		t.Errorf("bucket holds\n%s\nthe outcomes list\n%s", strings.Join(got, "\n"), strings.Join(listed, "\n"))
	}
	if n := w.OpenUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

func mustMarshal(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func refused(sim *atlassim.Server, org string) int {
	_, n := sim.RateCounts(org)
	return n
}
