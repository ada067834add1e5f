package atlas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// Invoice is an invoice's metadata. Money is in cents.
type Invoice struct {
	ID         string
	OrgID      string
	StatusName string // PENDING, CLOSED, PAID, ... (InvoiceStatuses)

	StartDate, EndDate time.Time // billing period, end exclusive
	Created, Updated   time.Time

	AmountBilledCents    int64
	AmountPaidCents      int64
	CreditsCents         int64
	SubtotalCents        int64
	SalesTaxCents        int64
	StartingBalanceCents int64
}

// wireInvoice is BillingInvoice / BillingInvoiceMetadata as sent.
type wireInvoice struct {
	ID                   string `json:"id"`
	OrgID                string `json:"orgId"`
	StatusName           string `json:"statusName"`
	StartDate            string `json:"startDate"`
	EndDate              string `json:"endDate"`
	Created              string `json:"created"`
	Updated              string `json:"updated"`
	AmountBilledCents    int64  `json:"amountBilledCents"`
	AmountPaidCents      int64  `json:"amountPaidCents"`
	CreditsCents         int64  `json:"creditsCents"`
	SubtotalCents        int64  `json:"subtotalCents"`
	SalesTaxCents        int64  `json:"salesTaxCents"`
	StartingBalanceCents int64  `json:"startingBalanceCents"`
}

type invoicePage struct {
	Results    []wireInvoice `json:"results"`
	TotalCount *int          `json:"totalCount"`
}

func (w wireInvoice) invoice() (Invoice, error) {
	inv := Invoice{
		ID: w.ID, OrgID: w.OrgID, StatusName: w.StatusName,
		AmountBilledCents: w.AmountBilledCents, AmountPaidCents: w.AmountPaidCents,
		CreditsCents: w.CreditsCents, SubtotalCents: w.SubtotalCents, SalesTaxCents: w.SalesTaxCents,
		StartingBalanceCents: w.StartingBalanceCents,
	}
	for _, f := range []struct {
		name string
		s    string
		t    *time.Time
	}{{"startDate", w.StartDate, &inv.StartDate}, {"endDate", w.EndDate, &inv.EndDate},
		{"created", w.Created, &inv.Created}, {"updated", w.Updated, &inv.Updated}} {
		if f.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.s)
		if err != nil {
			return inv, fmt.Errorf("invoice %s: %s %q: %w", clean(w.ID, 32), f.name, clean(f.s, 40), err)
		}
		*f.t = t
	}
	return inv, nil
}

// InvoiceListOptions filters ListInvoices. Zero values use the API defaults,
// except ItemsPerPage, which defaults to the maximum (500) to save requests
// against the per-organization rate limit.
type InvoiceListOptions struct {
	FromDate, ToDate   string // YYYY-MM-DD
	StatusNames        []string
	ViewLinkedInvoices *bool
	SortBy, OrderBy    string // START_DATE|END_DATE, asc|desc
	ItemsPerPage       int    // 1..500
}

const (
	maxItemsPerPage = 500
	// maxPages bounds ListInvoices (500 x 200 = 100,000 invoices).
	maxPages = 200
)

func (o *InvoiceListOptions) query() (url.Values, int, error) {
	q := url.Values{}
	per := maxItemsPerPage
	if o == nil {
		q.Set("itemsPerPage", strconv.Itoa(per))
		return q, per, nil
	}
	if o.ItemsPerPage != 0 {
		if o.ItemsPerPage < 1 || o.ItemsPerPage > maxItemsPerPage {
			return nil, 0, &ValidationError{Field: "itemsPerPage", Reason: "must be 1..500"}
		}
		per = o.ItemsPerPage
	}
	q.Set("itemsPerPage", strconv.Itoa(per))
	for _, d := range []struct{ name, v string }{{"fromDate", o.FromDate}, {"toDate", o.ToDate}} {
		if d.v == "" {
			continue
		}
		if _, err := parseDate(d.name, d.v); err != nil {
			return nil, 0, err
		}
		q.Set(d.name, d.v)
	}
	for i, s := range o.StatusNames {
		if !slices.Contains(InvoiceStatuses, s) {
			return nil, 0, &ValidationError{Field: fmt.Sprintf("statusNames[%d]", i), Reason: fmt.Sprintf("%q is not an invoice status", clean(s, 32))}
		}
		q.Add("statusNames", s)
	}
	if o.ViewLinkedInvoices != nil {
		q.Set("viewLinkedInvoices", strconv.FormatBool(*o.ViewLinkedInvoices))
	}
	switch o.SortBy {
	case "":
	case "START_DATE", "END_DATE":
		q.Set("sortBy", o.SortBy)
	default:
		return nil, 0, &ValidationError{Field: "sortBy", Reason: "must be START_DATE or END_DATE"}
	}
	switch o.OrderBy {
	case "":
	case "asc", "desc":
		q.Set("orderBy", o.OrderBy)
	default:
		return nil, 0, &ValidationError{Field: "orderBy", Reason: "must be asc or desc"}
	}
	return q, per, nil
}

// ListInvoices lists the organization's invoices (listOrgInvoices) that
// match opt, reading every page, in the order Atlas sends them.
func (c *Client) ListInvoices(ctx context.Context, orgID string, opt *InvoiceListOptions) ([]Invoice, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return nil, err
	}
	q, per, err := opt.query()
	if err != nil {
		return nil, err
	}
	var out []Invoice
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("atlas: listing invoices of org %s: more than %d pages", orgID, maxPages)
		}
		q.Set("pageNum", strconv.Itoa(page))
		r := &request{method: http.MethodGet, path: "/orgs/" + orgID + "/invoices", query: q, accept: mediaJSON}
		res, err := c.send(ctx, r)
		if err != nil {
			return nil, err
		}
		var p invoicePage
		if err := json.Unmarshal(res.data, &p); err != nil {
			return nil, fmt.Errorf("atlas: %s %s (page %d): decoding answer: %w", r.method, r.shown(), page, err)
		}
		for _, w := range p.Results {
			inv, err := w.invoice()
			if err != nil {
				return nil, fmt.Errorf("atlas: %s %s (page %d): %w", r.method, r.shown(), page, err)
			}
			out = append(out, inv)
		}
		if len(p.Results) < per || p.TotalCount != nil && len(out) >= *p.TotalCount {
			return out, nil
		}
	}
}

// PendingInvoices returns the invoices accruing charges this billing cycle
// (listOrgInvoicePending), usually one.
func (c *Client) PendingInvoices(ctx context.Context, orgID string) ([]Invoice, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return nil, err
	}
	r := &request{method: http.MethodGet, path: "/orgs/" + orgID + "/invoices/pending", accept: mediaJSON}
	res, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	var p invoicePage
	if err := json.Unmarshal(res.data, &p); err != nil {
		return nil, fmt.Errorf("atlas: %s %s: decoding answer: %w", r.method, r.shown(), err)
	}
	out := make([]Invoice, 0, len(p.Results))
	for _, w := range p.Results {
		inv, err := w.invoice()
		if err != nil {
			return nil, fmt.Errorf("atlas: %s %s: %w", r.method, r.shown(), err)
		}
		out = append(out, inv)
	}
	return out, nil
}

// InvoiceCSV streams one invoice as CSV, as Atlas sent it (getOrgInvoiceCsv).
// The caller closes the body; a body that breaks is a *StreamError from Read.
func (c *Client) InvoiceCSV(ctx context.Context, orgID, invoiceID string) (io.ReadCloser, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return nil, err
	}
	if err := ValidateInvoiceID(invoiceID); err != nil {
		return nil, err
	}
	res, err := c.send(ctx, &request{
		method: http.MethodGet,
		path:   "/orgs/" + orgID + "/invoices/" + invoiceID + "/csv",
		accept: mediaCSV,
		stream: true,
	})
	if err != nil {
		return nil, err
	}
	return res.body, nil
}
