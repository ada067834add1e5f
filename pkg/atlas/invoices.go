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

	// LineItems counts the line items the answer carried (pending invoices
	// carry them; lists do not). They are not kept: read the invoice's CSV.
	LineItems int
}

// wireInvoice is BillingInvoice / BillingInvoiceMetadata as sent.
type wireInvoice struct {
	ID, OrgID, StatusName                string
	StartDate, EndDate, Created, Updated string
	AmountBilledCents, AmountPaidCents   int64
	CreditsCents, SubtotalCents          int64
	SalesTaxCents, StartingBalanceCents  int64
	lineItems                            int
}

// field decodes the value of key into w if it is an invoice field, and
// skips it if not. Line items are counted and skipped, never held: a
// pending invoice carries them all.
func (w *wireInvoice) field(dec *json.Decoder, key string) error {
	if key == "lineItems" {
		n, err := skipArray(dec, "lineItems")
		w.lineItems = n
		return err
	}
	dst, ok := map[string]any{
		"id": &w.ID, "orgId": &w.OrgID, "statusName": &w.StatusName,
		"startDate": &w.StartDate, "endDate": &w.EndDate, "created": &w.Created, "updated": &w.Updated,
		"amountBilledCents": &w.AmountBilledCents, "amountPaidCents": &w.AmountPaidCents,
		"creditsCents": &w.CreditsCents, "subtotalCents": &w.SubtotalCents,
		"salesTaxCents": &w.SalesTaxCents, "startingBalanceCents": &w.StartingBalanceCents,
	}[key]
	if !ok {
		return skip(dec)
	}
	return dec.Decode(dst)
}

func (w wireInvoice) invoice() (Invoice, error) {
	if !isHex24(w.ID) {
		return Invoice{}, &AnswerError{Reason: fmt.Sprintf("an invoice without a valid id (%q)", clean(w.ID, 32))}
	}
	inv := Invoice{
		ID: w.ID, OrgID: w.OrgID, StatusName: w.StatusName,
		AmountBilledCents: w.AmountBilledCents, AmountPaidCents: w.AmountPaidCents,
		CreditsCents: w.CreditsCents, SubtotalCents: w.SubtotalCents, SalesTaxCents: w.SalesTaxCents,
		StartingBalanceCents: w.StartingBalanceCents, LineItems: w.lineItems,
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
			return inv, &AnswerError{Reason: fmt.Sprintf("invoice %s: %s %q is not an ISO 8601 time", w.ID, f.name, clean(f.s, 40))}
		}
		*f.t = t
	}
	return inv, nil
}

// invoiceAnswer is what readInvoices saw.
type invoiceAnswer struct {
	page       bool // "results" was there
	totalCount *int
	top        wireInvoice // the top-level object's invoice fields
}

// readInvoices reads a list page or a pending answer token by token: an
// object whose "results" holds invoices, each handed to add as soon as it is
// read (at most max of them), or an invoice object itself, left in top.
func readInvoices(dec *json.Decoder, max int, add func(Invoice) error) (invoiceAnswer, error) {
	var a invoiceAnswer
	err := object(dec, "the answer", func(key string) error {
		switch key {
		case "results":
			a.page = true
			if err := delim(dec, '[', "results"); err != nil {
				return err
			}
			for n := 0; dec.More(); n++ {
				if n == max {
					return &AnswerError{Reason: fmt.Sprintf("more than the %d invoices asked for", max)}
				}
				var w wireInvoice
				if err := object(dec, "an entry of results", func(key string) error { return w.field(dec, key) }); err != nil {
					return err
				}
				inv, err := w.invoice()
				if err != nil {
					return err
				}
				if err := add(inv); err != nil {
					return err
				}
			}
			_, err := dec.Token()
			return err
		case "totalCount":
			return dec.Decode(&a.totalCount)
		}
		return a.top.field(dec, key)
	})
	if err != nil {
		return a, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return a, &AnswerError{Reason: "more data after the answer"}
	}
	return a, nil
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
	// maxPageBody bounds a list page (500 invoices' metadata: about 0.5 MB).
	maxPageBody = 32 << 20
	// maxPending bounds the invoices of a pending answer (one per org, and
	// its linked ones).
	maxPending = 500
	// maxPendingBody bounds a pending answer, which carries every line item
	// of the month; it is decoded as a stream, so this bounds time, not memory.
	maxPendingBody = 1 << 30
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
	var out, page []Invoice
	var a invoiceAnswer
	for n := 1; ; n++ {
		q.Set("pageNum", strconv.Itoa(n))
		r := &request{method: http.MethodGet, path: "/orgs/" + orgID + "/invoices", query: q, accept: mediaJSON, limit: maxPageBody}
		if n > maxPages {
			return nil, &AnswerError{Method: r.method, Path: r.shown(), Reason: fmt.Sprintf("more than %d pages", maxPages)}
		}
		r.decode = func(dec *json.Decoder) (err error) {
			page = page[:0]
			a, err = readInvoices(dec, per, func(inv Invoice) error { page = append(page, inv); return nil })
			if err == nil && !a.page {
				err = &AnswerError{Reason: "not a page of invoices (no results)"}
			}
			return err
		}
		if _, err := c.send(ctx, r); err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < per || a.totalCount != nil && len(out) >= *a.totalCount {
			return out, nil
		}
	}
}

// PendingInvoices returns the invoices accruing charges this billing cycle
// (listOrgInvoicePending), usually one. The spec answers a page, some
// clients read one invoice object: both are accepted, anything else is an
// *AnswerError. Line items are counted (Invoice.LineItems), not kept.
func (c *Client) PendingInvoices(ctx context.Context, orgID string) ([]Invoice, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return nil, err
	}
	var out []Invoice
	r := &request{method: http.MethodGet, path: "/orgs/" + orgID + "/invoices/pending", accept: mediaJSON, limit: maxPendingBody}
	r.decode = func(dec *json.Decoder) error {
		out = out[:0]
		a, err := readInvoices(dec, maxPending, func(inv Invoice) error { out = append(out, inv); return nil })
		switch {
		case err != nil || a.page:
			return err
		case a.top.ID == "":
			return &AnswerError{Reason: "neither a page of invoices nor an invoice"}
		}
		inv, err := a.top.invoice()
		out = append(out, inv)
		return err
	}
	if _, err := c.send(ctx, r); err != nil {
		return nil, err
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
