package export

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

const invA = "65ab0c1d2e3f4a5b6c7d8e9f"

// fileAtlas serves one usage CSV and one invoice CSV as given.
type fileAtlas struct {
	countingAtlas
	usage, invoice string
}

func (f *fileAtlas) GetUsage(context.Context, string, string, atlas.Format) (*atlas.Usage, error) {
	return &atlas.Usage{Body: io.NopCloser(strings.NewReader(f.usage))}, nil
}

func (f *fileAtlas) ListInvoices(context.Context, string, *atlas.InvoiceListOptions) ([]atlas.Invoice, error) {
	start := time.Date(2024, time.June, 1, 0, 0, 0, 0, time.UTC)
	return []atlas.Invoice{{ID: invA, OrgID: orgA, StatusName: "CLOSED", StartDate: start, EndDate: start.AddDate(0, 1, 0)}}, nil
}

func (f *fileAtlas) InvoiceCSV(context.Context, string, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(f.invoice)), nil
}

// A file that cannot be normalized is a warning: Atlas's file is stored byte
// for byte, no normalized file is written, and the step succeeds with the
// warning named on its result. A file that can is stored both ways.
func TestNormalizeFailureKeepsTheRawFile(t *testing.T) {
	const (
		goodUsage   = "Service,Usage Amount\nClusters,12.50\nStorage,0.25\nClusters,-2.00\n"
		goodInvoice = "Invoice Number," + invA + ",\n\nDate,SKU,Amount\n2024-06-02,S,1.00\n"
	)
	for _, tc := range []struct {
		name, usage, invoice string
		warnings             []Warning
	}{
		{name: "both normalized", usage: goodUsage, invoice: goodInvoice},
		{
			name: "usage without an amount column", usage: "Service,Cost\nClusters,1.00\n", invoice: goodInvoice,
			warnings: []Warning{{Name: normalize.LayoutWarning, OrgID: orgA, Period: "2024-06"}},
		},
		{
			name: "invoice without an amount column, usage with a bad value", usage: "Service,Usage Amount\nClusters,lots\n",
			invoice: "Invoice Number," + invA + ",\n\nDate,SKU,Total\n2024-06-02,S,1.00\n",
			warnings: []Warning{
				{Name: normalize.ValueWarning, OrgID: orgA, Period: "2024-06"},
				{Name: normalize.LayoutWarning, OrgID: orgA, Period: "2024-06", InvoiceID: invA},
			},
		},
		{
			name: "an invoice record over 1 MiB", usage: goodUsage,
			invoice:  "Date,SKU,Amount\n2024-06-02,\"" + strings.Repeat("x", normalize.MaxRecordBytes) + "\",1.00\n",
			warnings: []Warning{{Name: normalize.TooLargeWarning, OrgID: orgA, Period: "2024-06", InvoiceID: invA}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exp := newExporter(t, &fileAtlas{usage: tc.usage, invoice: tc.invoice})
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
				if !strings.Contains(w.Message, "normalize: ") {
					t.Errorf("warning message %q does not say what failed", w.Message)
				}
				w.Message = ""
				got = append(got, w)
			}
			if !slices.Equal(got, tc.warnings) {
				t.Errorf("warnings = %+v, want %+v", got, tc.warnings)
			}
			p := period.Month(2024, time.June)
			stored := map[string]string{must(exp.Layout.Usage(orgA, p)): tc.usage, must(exp.Layout.Invoice(orgA, p, invA)): tc.invoice}
			normalized := map[string]bool{must(exp.Layout.NormalizedUsage(orgA, p)): true, must(exp.Layout.NormalizedInvoice(orgA, p, invA)): true}
			for _, w := range tc.warnings {
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
			if wantTotals := normalized[must(exp.Layout.NormalizedUsage(orgA, p))]; wantTotals {
				if res.UsageServices["Clusters"] != "10.50" || res.UsageServices["Storage"] != "0.25" || len(res.UsageServices) != 2 {
					t.Errorf("usage services = %v, want Clusters 10.50, Storage 0.25", res.UsageServices)
				}
			} else if res.UsageServices != nil {
				t.Errorf("usage services = %v for usage not normalized", res.UsageServices)
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
