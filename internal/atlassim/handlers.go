package atlassim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
)

func (s *Server) createUsage(x *exchange) {
	var q UsageQuery
	if err := json.NewDecoder(x.r.Body).Decode(&q); err != nil {
		x.apiError(http.StatusBadRequest, "INVALID_JSON", "The request body is not valid JSON.")
		return
	}
	if _, _, err := q.period(); err != nil {
		x.apiError(http.StatusBadRequest, "VALIDATION_ERROR", err.Error())
		return
	}
	s.mu.Lock()
	s.querySeq++
	tok := hashID(64, "token", x.org, q.canonical(), strconv.FormatUint(s.querySeq, 10))
	s.queries[tok] = &query{
		org: x.org, q: q, created: time.Now(),
		neverReady: x.fault != nil && x.fault.Kind == NeverReady,
	}
	s.mu.Unlock()
	x.sendJSON(http.StatusAccepted, x.accept, jsonBody(map[string]string{"token": tok}))
}

func (s *Server) getUsage(x *exchange, tok string) {
	s.mu.Lock()
	q, ok := s.queries[tok]
	ok = ok && q.org == x.org
	ready := false
	if ok {
		if x.fault != nil && x.fault.Kind == NeverReady {
			q.neverReady = true
		}
		q.polls++
		switch {
		case q.neverReady:
		case s.cfg.ReadyAfterPolls > 0:
			ready = q.polls > s.cfg.ReadyAfterPolls
		default:
			ready = time.Since(q.created) >= s.cfg.ProcessingTime
		}
	}
	s.mu.Unlock()
	if !ok {
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No Cost Explorer query with this token exists for this organization.")
		return
	}
	if !ready {
		x.processing()
		return
	}
	if x.accept == typeCSV {
		var c countingWriter
		if err := s.WriteUsageCSV(&c, x.org, q.q); err != nil {
			x.apiError(http.StatusInternalServerError, "UNEXPECTED_ERROR", "Cannot produce the usage result.")
			return
		}
		x.sendStream(typeCSV, c.n, func(w io.Writer) error { return s.WriteUsageCSV(w, x.org, q.q) })
		return
	}
	var buf bytes.Buffer
	if err := s.WriteUsageJSON(&buf, x.org, q.q); err != nil {
		x.apiError(http.StatusInternalServerError, "UNEXPECTED_ERROR", "Cannot produce the usage result.")
		return
	}
	x.sendJSON(http.StatusOK, x.accept, buf.Bytes())
}

type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

type invoiceJSON struct {
	ID                   string        `json:"id"`
	OrgID                string        `json:"orgId"`
	StatusName           string        `json:"statusName"`
	StartDate            string        `json:"startDate"`
	EndDate              string        `json:"endDate"`
	Created              string        `json:"created"`
	Updated              string        `json:"updated"`
	AmountBilledCents    int64         `json:"amountBilledCents"`
	AmountPaidCents      int64         `json:"amountPaidCents"`
	CreditsCents         int64         `json:"creditsCents"`
	SubtotalCents        int64         `json:"subtotalCents"`
	SalesTaxCents        int64         `json:"salesTaxCents"`
	StartingBalanceCents int64         `json:"startingBalanceCents"`
	LinkedInvoices       []invoiceJSON `json:"linkedInvoices,omitempty"`
	Payments             []paymentJSON `json:"payments,omitempty"`
	Links                []link        `json:"links"`
}

type paymentJSON struct {
	ID                string `json:"id"`
	AmountBilledCents int64  `json:"amountBilledCents"`
	AmountPaidCents   int64  `json:"amountPaidCents"`
	Created           string `json:"created"`
	Currency          string `json:"currency"`
	SalesTaxCents     int64  `json:"salesTaxCents"`
	StatusName        string `json:"statusName"`
	SubtotalCents     int64  `json:"subtotalCents"`
	UnitPrice         string `json:"unitPrice"`
	Updated           string `json:"updated"`
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (x *exchange) invoiceJSON(inv Invoice, full bool) invoiceJSON {
	j := invoiceJSON{
		ID: inv.ID, OrgID: inv.OrgID, StatusName: inv.Status,
		StartDate: ts(inv.Start), EndDate: ts(inv.End), Created: ts(inv.Created), Updated: ts(inv.Updated),
		AmountBilledCents: inv.AmountBilledCents, AmountPaidCents: inv.AmountPaidCents,
		CreditsCents: inv.CreditsCents, SubtotalCents: inv.SubtotalCents, SalesTaxCents: inv.SalesTaxCents,
		Links: []link{{Href: baseURL(x.r) + "/api/atlas/v2/orgs/" + inv.OrgID + "/invoices/" + inv.ID, Rel: "self"}},
	}
	if full && inv.Status == "PAID" {
		j.Payments = []paymentJSON{{
			ID: hashID(24, "payment", inv.ID), AmountBilledCents: inv.AmountBilledCents, AmountPaidCents: inv.AmountPaidCents,
			Created: ts(inv.Updated), Updated: ts(inv.Updated), Currency: "USD", SalesTaxCents: inv.SalesTaxCents,
			StatusName: "PAID", SubtotalCents: inv.SubtotalCents, UnitPrice: "1",
		}}
	}
	return j
}

// page is a list answer: one page of results.
type page[T any] struct {
	Links      []link `json:"links"`
	Results    []T    `json:"results"`
	TotalCount *int   `json:"totalCount,omitempty"`
}

// pageOf is the page of all that itemsPerPage and pageNum ask for, each
// item shown by show, with the total unless includeCount=false.
func pageOf[T, J any](x *exchange, all []T, show func(T) J) page[J] {
	qv := x.r.URL.Query()
	perPage, n := intParam(qv, "itemsPerPage", 100), intParam(qv, "pageNum", 1)
	lo := min((n-1)*perPage, len(all))
	hi := min(lo+perPage, len(all))
	p := page[J]{Results: []J{}, Links: x.pageLinks(n, perPage, hi < len(all))}
	for _, v := range all[lo:hi] {
		p.Results = append(p.Results, show(v))
	}
	if qv.Get("includeCount") != "false" {
		total := len(all)
		p.TotalCount = &total
	}
	return p
}

func intParam(qv url.Values, name string, def int) int {
	if v, err := strconv.Atoi(qv.Get(name)); err == nil {
		return v
	}
	return def
}

func (s *Server) listInvoices(x *exchange) {
	qv := x.r.URL.Query()
	var from, to time.Time
	if !s.has(IgnoreDateFilters) {
		from, _ = time.Parse("2006-01-02", qv.Get("fromDate")) // format checked by the spec; zero if absent
		to, _ = time.Parse("2006-01-02", qv.Get("toDate"))
	}
	statuses := qv["statusNames"]
	var all []Invoice
	for _, inv := range s.Invoices(x.org) {
		if len(statuses) > 0 && !slices.Contains(statuses, inv.Status) {
			continue
		}
		if !from.IsZero() && inv.Start.Before(from) {
			continue
		}
		if !to.IsZero() && inv.End.After(to) {
			continue
		}
		all = append(all, inv)
	}
	byStart := qv.Get("sortBy") == "START_DATE"
	asc := qv.Get("orderBy") == "asc"
	slices.SortStableFunc(all, func(a, b Invoice) int {
		ka, kb := a.End, b.End
		if byStart {
			ka, kb = a.Start, b.Start
		}
		c := ka.Compare(kb)
		if !asc {
			c = -c
		}
		return c
	})
	res := pageOf(x, all, func(inv Invoice) invoiceJSON { return x.invoiceJSON(inv, false) })
	x.sendJSON(http.StatusOK, x.accept, jsonBody(res))
}

// pageLinks are the previous, self and next links of a list page.
func (x *exchange) pageLinks(page, perPage int, more bool) []link {
	qv := x.r.URL.Query()
	pageURL := func(n int) string {
		v := url.Values{}
		for k, vs := range qv {
			v[k] = vs
		}
		v.Set("pageNum", strconv.Itoa(n))
		v.Set("itemsPerPage", strconv.Itoa(perPage))
		return baseURL(x.r) + x.r.URL.Path + "?" + v.Encode()
	}
	var links []link
	if page > 1 {
		links = append(links, link{Href: pageURL(page - 1), Rel: "previous"})
	}
	links = append(links, link{Href: pageURL(page), Rel: "self"})
	if more {
		links = append(links, link{Href: pageURL(page + 1), Rel: "next"})
	}
	return links
}

func (s *Server) getInvoice(x *exchange, id string) {
	inv, ok := s.invoice(x.org, id)
	if !ok {
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", fmt.Sprintf("Cannot find invoice %s for organization %s.", id, x.org))
		return
	}
	if x.accept == typeCSV {
		x.sendStream(typeCSV, s.invoiceCSVSize(inv), func(w io.Writer) error { return s.writeInvoiceCSV(w, inv) })
		return
	}
	x.sendJSON(http.StatusOK, x.accept, jsonBody(x.invoiceJSON(inv, true)))
}

func (s *Server) pendingInvoices(x *exchange) {
	res := page[invoiceJSON]{Results: []invoiceJSON{}}
	for _, inv := range s.Invoices(x.org) {
		if inv.Status == "PENDING" {
			res.Results = append(res.Results, x.invoiceJSON(inv, true))
		}
	}
	n := len(res.Results)
	res.TotalCount = &n
	res.Links = []link{{Href: baseURL(x.r) + x.r.URL.Path, Rel: "self"}}
	body := jsonBody(res)
	if !s.has(PendingObject) || n != 1 {
		x.sendJSON(http.StatusOK, x.accept, body)
		return
	}
	// Validated as the page the spec declares, sent as its one invoice.
	x.w.Header().Set("Content-Type", x.accept)
	x.rateHeaders()
	if err := x.validateResponse(http.StatusOK, body); err != nil {
		x.invalidResponse(err)
		return
	}
	obj := jsonBody(res.Results[0])
	x.send(http.StatusOK, int64(len(obj)), obj, nil)
}
