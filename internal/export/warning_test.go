package export

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

const invA = "65ab0c1d2e3f4a5b6c7d8e9f"

// fileAtlas serves one usage result (CSV and JSON) and one invoice CSV as
// given; jsonErr, if set, is the answer to the JSON form.
type fileAtlas struct {
	countingAtlas
	usage, usageJSON, invoice string
	jsonErr                   error
	subtotal                  int64 // the invoice's subtotalCents and amountBilledCents
}

func (f *fileAtlas) GetUsage(_ context.Context, _, _ string, form atlas.Format) (*atlas.Usage, error) {
	if form == atlas.JSON {
		if f.jsonErr != nil {
			return nil, f.jsonErr
		}
		return &atlas.Usage{Body: io.NopCloser(strings.NewReader(f.usageJSON))}, nil
	}
	return &atlas.Usage{Body: io.NopCloser(strings.NewReader(f.usage))}, nil
}

func (f *fileAtlas) ListInvoices(context.Context, string, *atlas.InvoiceListOptions) ([]atlas.Invoice, error) {
	start := time.Date(2024, time.June, 1, 0, 0, 0, 0, time.UTC)
	return []atlas.Invoice{{ID: invA, OrgID: orgA, StatusName: "CLOSED", StartDate: start, EndDate: start.AddDate(0, 1, 0),
		SubtotalCents: f.subtotal, AmountBilledCents: f.subtotal}}, nil
}

func (f *fileAtlas) InvoiceCSV(context.Context, string, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(f.invoice)), nil
}

// A file that cannot be normalized is a warning: Atlas's file is stored byte
// for byte, no normalized file is written, and the step succeeds with the
// warning named on its result. A file that can is stored both ways. The
// usage CSV is stored as sent whatever its layout; its normalized form is
// made from the JSON form.
func TestNormalizeFailureKeepsTheRawFile(t *testing.T) {
	const (
		// The spec's example of the usage CSV: key/value lines, no header.
		kvUsage     = "Invoice ID,65ab0c1d2e3f4a5b6c7d8e9f\nService,Clusters\nUsage Amount,12.50\n\n"
		goodJSON    = `{"usageDetails":[{"service":"Clusters","usageAmount":12.50},{"service":"Storage","usageAmount":"0.25"},{"service":"Clusters","usageAmount":-2.00}]}`
		goodInvoice = "Invoice Number," + invA + ",\n\nDate,SKU,Amount\n2024-06-02,S,1.00\n"
	)
	for _, tc := range []struct {
		name, usageJSON, invoice string
		jsonErr                  error
		subtotal                 int64
		warnings                 []Warning
	}{
		{name: "both normalized", usageJSON: goodJSON, invoice: goodInvoice, subtotal: 100},
		{
			name: "usage JSON without usageDetails", usageJSON: `{"details":[]}`, invoice: goodInvoice, subtotal: 100,
			warnings: []Warning{{Name: tally.LayoutWarning, OrgID: orgA, Period: "2024-06", Step: "poll"}},
		},
		{
			name: "usage JSON refused", jsonErr: &atlas.Error{StatusCode: 406, ErrorCode: "INVALID_MEDIA_TYPE"}, invoice: goodInvoice, subtotal: 100,
			warnings: []Warning{{Name: UsageJSONUnavailable, OrgID: orgA, Period: "2024-06", Step: "poll"}},
		},
		{
			name: "invoice without an amount column, usage with a bad value", usageJSON: `{"usageDetails":[{"service":"Clusters","usageAmount":"lots"}]}`,
			invoice: "Invoice Number," + invA + ",\n\nDate,SKU,Total\n2024-06-02,S,1.00\n",
			warnings: []Warning{
				{Name: tally.ValueWarning, OrgID: orgA, Period: "2024-06", Step: "poll"},
				{Name: tally.LayoutWarning, OrgID: orgA, Period: "2024-06", Step: "fetch-invoice", InvoiceID: invA},
			},
		},
		{
			name: "an invoice record over 1 MiB", usageJSON: goodJSON, subtotal: 100,
			invoice:  "Date,SKU,Amount\n2024-06-02,\"" + strings.Repeat("x", normalize.MaxRecordBytes) + "\",1.00\n",
			warnings: []Warning{{Name: tally.TooLargeWarning, OrgID: orgA, Period: "2024-06", Step: "fetch-invoice", InvoiceID: invA}},
		},
		{
			name: "line items that do not add up", usageJSON: goodJSON, invoice: goodInvoice, subtotal: 101,
			warnings: []Warning{{Name: InvoiceUnreconciled, OrgID: orgA, Period: "2024-06", Step: "fetch-invoice", InvoiceID: invA}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exp := newExporter(t, &fileAtlas{usage: kvUsage, usageJSON: tc.usageJSON, jsonErr: tc.jsonErr, invoice: tc.invoice, subtotal: tc.subtotal})
			exp.Store = sink.NewDir(dir)
			ctx := context.Background()
			j, err := exp.Poll(ctx, Job{OrgID: orgA, Period: period.Month(2024, time.June), MaxAttempts: 3, Token: strings.Repeat("a", 64)})
			if err != nil {
				t.Fatal(err)
			}
			res, err := exp.FetchInvoices(ctx, j)
			if err != nil {
				t.Fatal(err)
			}
			var got []Warning
			for _, w := range res.Warnings {
				if !strings.Contains(w.Message, "normalize") && !strings.Contains(w.Message, "JSON") && !strings.Contains(w.Message, "apart") {
					t.Errorf("warning message %q does not say what failed", w.Message)
				}
				w.Message = ""
				got = append(got, w)
			}
			if !slices.Equal(got, tc.warnings) {
				t.Errorf("warnings = %+v, want %+v", got, tc.warnings)
			}
			p := period.Month(2024, time.June)
			stored := map[string]string{must(exp.Layout.Usage(orgA, p)): kvUsage, must(exp.Layout.Invoice(orgA, p, invA)): tc.invoice}
			normalized := map[string]bool{must(exp.Layout.NormalizedUsage(orgA, p)): true, must(exp.Layout.NormalizedInvoice(orgA, p, invA)): true}
			for _, w := range tc.warnings {
				if w.Name == InvoiceUnreconciled {
					continue
				}
				key := must(exp.Layout.NormalizedUsage(orgA, p))
				if w.InvoiceID != "" {
					key = must(exp.Layout.NormalizedInvoice(orgA, p, invA))
				}
				normalized[key] = false
			}
			var keys []string
			for _, o := range res.Objects {
				keys = append(keys, o.Key)
			}
			for key, raw := range stored {
				if b, err := os.ReadFile(filepath.Join(dir, key)); err != nil || string(b) != raw {
					t.Errorf("%s: %d bytes, %v; want Atlas's %d bytes", key, len(b), err, len(raw))
				}
				if !slices.Contains(keys, key) {
					t.Errorf("%s not among the objects %q", key, keys)
				}
			}
			for key, want := range normalized {
				_, err := os.Stat(filepath.Join(dir, key))
				if want != (err == nil) || want != slices.Contains(keys, key) {
					t.Errorf("%s: stat %v, among the objects: %v; want it written: %v", key, err, slices.Contains(keys, key), want)
				}
			}
			usageNormalized := normalized[must(exp.Layout.NormalizedUsage(orgA, p))]
			if usageNormalized {
				if res.UsageServices["Clusters"] != "10.50" || res.UsageServices["Storage"] != "0.25" || len(res.UsageServices) != 2 || j.UsageTotal != "10.75" {
					t.Errorf("usage services = %v, total %q; want Clusters 10.50, Storage 0.25, total 10.75", res.UsageServices, j.UsageTotal)
				}
			} else if res.UsageServices != nil || j.UsageTotal != "" {
				t.Errorf("usage services = %v, total %q for usage not normalized", res.UsageServices, j.UsageTotal)
			}
			// The manifest's record of the raw invoice says whether it
			// reconciled; one whose line items could not be read did not.
			m, err := exp.Manifest(ctx, orgA, p)
			if err != nil {
				t.Fatal(err)
			}
			invoiceRead := normalized[must(exp.Layout.NormalizedInvoice(orgA, p, invA))]
			reconciled := invoiceRead && tc.subtotal == 100
			if e, ok := m.Invoice(invA); !ok || e.Reconciled == nil || *e.Reconciled != reconciled {
				t.Errorf("manifest entry of the invoice %+v, %v; want reconciled %v", e, ok, reconciled)
			}
			if n := len(res.Reconciliations); n != map[bool]int{true: 1}[invoiceRead] {
				t.Fatalf("reconciliations %+v", res.Reconciliations)
			}
			if invoiceRead {
				r := res.Reconciliations[0]
				if r.Reconciled != reconciled || r.LineItems != "1.00" || r.DeltaCents != 100-tc.subtotal {
					t.Errorf("reconciliation %+v", r)
				}
				if usageNormalized && (r.Usage != "10.75" || r.UsageDelta != "9.75") {
					t.Errorf("usage beside the invoice: %q, delta %q; want 10.75, 9.75", r.Usage, r.UsageDelta)
				}
			}
		})
	}
}

// A transient failure of the usage's JSON form fails the step and writes
// neither object, so the state machine's retry finds nothing half done.
func TestUsageJSONTransientFailure(t *testing.T) {
	for name, err := range map[string]error{
		"5xx":          &atlas.Error{StatusCode: 503, ErrorCode: "SERVICE_UNAVAILABLE"},
		"rate limited": &atlas.Error{StatusCode: 429, ErrorCode: "RATE_LIMITED"},
		"deadline":     context.DeadlineExceeded,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			exp := newExporter(t, &fileAtlas{usage: "Service,Usage Amount\nClusters,1.00\n", jsonErr: err})
			exp.Store = sink.NewDir(dir)
			_, perr := exp.Poll(context.Background(), Job{OrgID: orgA, Period: period.Month(2024, time.June), MaxAttempts: 3, Token: strings.Repeat("a", 64)})
			if !transient(perr) {
				t.Fatalf("err = %v (%s), want a retryable name", perr, Name(perr))
			}
			var files []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, _ error) error {
				if d != nil && !d.IsDir() {
					files = append(files, p)
				}
				return nil
			})
			if len(files) != 0 {
				t.Errorf("files written: %v", files)
			}
		})
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// Strict: warnings become one Export.Warnings error that counts them by
// name and quotes the first; no warnings, no error.
func TestWarningsError(t *testing.T) {
	if err := WarningsError(nil); err != nil {
		t.Errorf("no warnings: %v", err)
	}
	ws := []Warning{
		{Name: InvoiceUnreconciled, Message: "1.00 apart", OrgID: orgA, Period: "2024-06", InvoiceID: invA},
		{Name: FocusUnavailable, Message: "404", OrgID: orgA, Period: "2024-06", InvoiceID: invA},
		{Name: InvoiceUnreconciled, Message: "2.00 apart", OrgID: orgA, Period: "2024-07", InvoiceID: invA},
	}
	err := WarningsError(ws)
	want := "3 warning(s) and warnings are set to fail the export (Focus.Unavailable x1, Invoice.Unreconciled x2); everything is stored; first: org " +
		orgA + ", 2024-06, invoice " + invA + ": Invoice.Unreconciled: 1.00 apart"
	if Name(err) != ExportWarnings || err.Error() != want {
		t.Errorf("err = %v (%s)\nwant %s", err, Name(err), want)
	}
}

// reportAtlas answers every report request with err.
type reportAtlas struct {
	countingAtlas
	err error
}

func (r *reportAtlas) CreateInvoiceReport(context.Context, string, string) (atlas.Report, error) {
	return atlas.Report{}, r.err
}

// FOCUS is an add-on: a report Atlas will not create (400, 403, 404) is a
// Focus.Unavailable warning and the job goes on to READY; any other answer
// still fails the step, by its name.
func TestFocusRefusedIsAWarning(t *testing.T) {
	for status, wantErr := range map[int]string{400: "", 403: "", 404: "", 401: AtlasUnauthorized, 429: AtlasRateLimited, 500: AtlasServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			exp := newExporter(t, &reportAtlas{err: &atlas.Error{StatusCode: status, ErrorCode: "NOPE", Detail: "not for this invoice"}})
			r := Result{OrgID: orgA, Period: period.Month(2024, time.June), Focus: true, Reports: []Report{{InvoiceID: invA, Month: "2024-06"}}}
			r, err := exp.SubmitFocus(context.Background(), r)
			if Name(err) != wantErr && !(wantErr == "" && err == nil) {
				t.Fatalf("err = %v (%s), want %q", err, Name(err), wantErr)
			}
			if wantErr != "" {
				return
			}
			if len(r.Warnings) != 1 || r.Warnings[0].Name != FocusUnavailable || r.Warnings[0].InvoiceID != invA || r.Warnings[0].Step != "focus-submit" ||
				!strings.Contains(r.Warnings[0].Message, "not for this invoice") || r.Reports[0].State != StateUnavailable {
				t.Fatalf("result %+v", r)
			}
			if r, err = exp.PollFocus(context.Background(), r); err != nil || r.Status != StatusReady {
				t.Errorf("poll: %v, status %s, want READY with nothing to poll", err, r.Status)
			}
			exp.Strict = true
			r.Attempt = 0
			if _, err := exp.PollFocus(context.Background(), r); Name(err) != ExportWarnings {
				t.Errorf("strict poll: %v, want %s", err, ExportWarnings)
			}
		})
	}
}
