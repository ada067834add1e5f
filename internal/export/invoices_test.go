package export

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// listingAtlas lists the invoices it holds whatever the filters, as an Atlas
// that reads fromDate and toDate differently would, and records the options.
type listingAtlas struct {
	Atlas
	invoices []atlas.Invoice
	opts     []atlas.InvoiceListOptions
}

func (l *listingAtlas) ListInvoices(_ context.Context, _ string, opt *atlas.InvoiceListOptions) ([]atlas.Invoice, error) {
	l.opts = append(l.opts, *opt)
	return l.invoices, nil
}

// The month's invoices are picked by their own startDate from a list asked
// with a month more on each side, and without linked invoices.
func TestInvoicesOfTheMonth(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	inv := func(id, start string) atlas.Invoice {
		return atlas.Invoice{ID: id, StatusName: "PAID", StartDate: at(start)}
	}
	a := &listingAtlas{invoices: []atlas.Invoice{
		inv("aaaaaaaaaaaaaaaaaaaaaaa1", "2024-07-01T00:00:00Z"),
		inv("aaaaaaaaaaaaaaaaaaaaaaa2", "2024-06-01T00:00:00Z"),
		inv("aaaaaaaaaaaaaaaaaaaaaaa3", "2024-05-31T23:59:59Z"),
		inv("aaaaaaaaaaaaaaaaaaaaaaa4", "2024-06-15T00:00:00Z"), // a second invoice of the month
		inv("aaaaaaaaaaaaaaaaaaaaaaa2", "2024-06-01T00:00:00Z"), // listed twice: kept once
	}}
	exp := newExporter(t, a)
	got, err := exp.invoices(context.Background(), Job{OrgID: orgA, Period: period.Month(2024, time.June)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "aaaaaaaaaaaaaaaaaaaaaaa2" || got[1].ID != "aaaaaaaaaaaaaaaaaaaaaaa4" {
		t.Errorf("invoices of 2024-06 = %+v, want ...2 and ...4", got)
	}
	if len(a.opts) != 1 {
		t.Fatalf("%d list calls", len(a.opts))
	}
	o := a.opts[0]
	if o.FromDate != "2024-05-01" || o.ToDate != "2024-08-01" || o.ViewLinkedInvoices == nil || *o.ViewLinkedInvoices {
		t.Errorf("listed with fromDate %s, toDate %s, viewLinkedInvoices %v; want 2024-05-01, 2024-08-01, false",
			o.FromDate, o.ToDate, o.ViewLinkedInvoices)
	}
}

// invoiceAtlas serves one invoice and its CSV.
type invoiceAtlas struct {
	listingAtlas
	csv string
}

func (a *invoiceAtlas) InvoiceCSV(context.Context, string, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(a.csv)), nil
}

// The manifest records an invoice's totals beside its CSV, and records them
// too when the CSV is unchanged and skipped, as for a manifest written
// before it had them.
func TestManifestRecordsInvoiceTotals(t *testing.T) {
	const id = "aaaaaaaaaaaaaaaaaaaaaaa1"
	june := period.Month(2024, time.June)
	a := &invoiceAtlas{
		listingAtlas: listingAtlas{invoices: []atlas.Invoice{{ID: id, StatusName: "PAID", StartDate: june.Start,
			SubtotalCents: 1300, CreditsCents: 50, SalesTaxCents: 100, AmountBilledCents: 1350}}},
		csv: "Invoice Number,1,\n\nDate,SKU,Amount\n2024-06-02,S,13.00\n2024-06-03,CREDIT,-0.50\n",
	}
	exp := newExporter(t, a)
	exp.Store = sink.NewDir(t.TempDir())
	ctx := context.Background()
	want := &Totals{SubtotalCents: 1300, CreditsCents: 50, SalesTaxCents: 100, AmountBilledCents: 1350}
	fetch := func() *Entry {
		t.Helper()
		res, err := exp.FetchInvoices(ctx, Job{OrgID: orgA, Period: june})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Reconciliations) != 1 || !res.Reconciliations[0].Reconciled {
			t.Fatalf("reconciliations %+v", res.Reconciliations)
		}
		m, err := exp.Manifest(ctx, orgA, june)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := m.Invoice(id)
		if !ok {
			t.Fatal("no manifest entry for the invoice")
		}
		return &e
	}
	if e := fetch(); !reflect.DeepEqual(e.Totals, want) {
		t.Errorf("totals %+v, want %+v", e.Totals, want)
	}

	// A manifest of before: no totals. The same CSV again is skipped, and
	// the totals recorded.
	m, _ := exp.Manifest(ctx, orgA, june)
	for i := range m.Objects {
		m.Objects[i].Totals = nil
	}
	if err := exp.writeManifest(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if e := fetch(); !reflect.DeepEqual(e.Totals, want) {
		t.Errorf("after a skip: totals %+v, want %+v", e.Totals, want)
	}
}
