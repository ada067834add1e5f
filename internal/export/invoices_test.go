package export

import (
	"context"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
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
