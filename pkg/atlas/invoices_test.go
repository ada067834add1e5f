package atlas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// invoiceListServer serves total invoices in pages, recording each query.
func invoiceListServer(t *testing.T, total int, withCount bool) (*server, func() []url.Values) {
	var mu sync.Mutex
	var queries []url.Values
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/atlas/v2/orgs/"+testOrg+"/invoices" {
			t.Errorf("path %q", r.URL.Path)
		}
		q := r.URL.Query()
		mu.Lock()
		queries = append(queries, q)
		mu.Unlock()
		per, _ := strconv.Atoi(q.Get("itemsPerPage"))
		page, _ := strconv.Atoi(q.Get("pageNum"))
		type inv struct {
			ID                string `json:"id"`
			OrgID             string `json:"orgId"`
			StatusName        string `json:"statusName"`
			StartDate         string `json:"startDate"`
			AmountBilledCents int64  `json:"amountBilledCents"`
			CreditsCents      int64  `json:"creditsCents"`
		}
		res := struct {
			Results    []inv `json:"results"`
			TotalCount *int  `json:"totalCount,omitempty"`
		}{Results: []inv{}}
		for i := (page - 1) * per; i < page*per && i < total; i++ {
			res.Results = append(res.Results, inv{ID: fmt.Sprintf("%024x", i), OrgID: testOrg, StatusName: "PAID",
				StartDate: "2024-06-01T00:00:00Z", AmountBilledCents: 9007199254740993 + int64(i), CreditsCents: -2500})
		}
		if withCount {
			res.TotalCount = &total
		}
		b, _ := json.Marshal(res)
		writeJSON(w, http.StatusOK, string(b))
	})
	return srv, func() []url.Values { mu.Lock(); defer mu.Unlock(); return queries }
}

func TestListInvoicesPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		total     int
		withCount bool
		per       int
		requests  int
	}{
		{total: 1203, withCount: true, requests: 3},
		{total: 1000, withCount: true, requests: 2},  // totalCount reached: no empty third page
		{total: 1000, withCount: false, requests: 3}, // without a count, an empty page ends it
		{total: 0, withCount: true, requests: 1},
		{total: 7, withCount: false, per: 3, requests: 3},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d-%v-%d", tc.total, tc.withCount, tc.per), func(t *testing.T) {
			t.Parallel()
			srv, queries := invoiceListServer(t, tc.total, tc.withCount)
			c := newClient(t, srv.URL)
			var opt *atlas.InvoiceListOptions
			per := 500
			if tc.per != 0 {
				opt, per = &atlas.InvoiceListOptions{ItemsPerPage: tc.per}, tc.per
			}
			inv, err := c.ListInvoices(ctxTimeout(t, 5*time.Second), testOrg, opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(inv) != tc.total {
				t.Fatalf("got %d invoices, want %d", len(inv), tc.total)
			}
			for i, v := range inv {
				if v.ID != fmt.Sprintf("%024x", i) || v.AmountBilledCents != 9007199254740993+int64(i) || v.CreditsCents != -2500 ||
					!v.StartDate.Equal(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)) || v.OrgID != testOrg || v.StatusName != "PAID" {
					t.Fatalf("invoice %d = %+v", i, v)
				}
			}
			qs := queries()
			if len(qs) != tc.requests {
				t.Fatalf("%d requests, want %d", len(qs), tc.requests)
			}
			for i, q := range qs {
				if q.Get("pageNum") != strconv.Itoa(i+1) || q.Get("itemsPerPage") != strconv.Itoa(per) {
					t.Errorf("request %d query %v", i, q)
				}
			}
		})
	}
}

func TestListInvoicesOptions(t *testing.T) {
	t.Parallel()
	srv, queries := invoiceListServer(t, 1, true)
	c := newClient(t, srv.URL)
	no := false
	_, err := c.ListInvoices(ctxTimeout(t, 5*time.Second), testOrg, &atlas.InvoiceListOptions{
		FromDate: "2024-01-01", ToDate: "2024-07-01", StatusNames: []string{"PAID", "CLOSED"},
		ViewLinkedInvoices: &no, SortBy: "START_DATE", OrderBy: "asc", ItemsPerPage: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	q := queries()[0]
	want := url.Values{"fromDate": {"2024-01-01"}, "toDate": {"2024-07-01"}, "statusNames": {"PAID", "CLOSED"},
		"viewLinkedInvoices": {"false"}, "sortBy": {"START_DATE"}, "orderBy": {"asc"}, "itemsPerPage": {"50"}, "pageNum": {"1"}}
	if q.Encode() != want.Encode() {
		t.Errorf("query = %s, want %s", q.Encode(), want.Encode())
	}
}

// A server that never ends the list is cut off.
func TestListInvoicesPageBound(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, `{"results":[{"id":"`+testInv+`"}]}`)
	})
	c := newClient(t, srv.URL)
	_, err := c.ListInvoices(ctxTimeout(t, 20*time.Second), testOrg, &atlas.InvoiceListOptions{ItemsPerPage: 1})
	if err == nil || !strings.Contains(err.Error(), "pages") {
		t.Fatalf("error = %v, want a page bound error", err)
	}
	if n := srv.requests(); n != 200 {
		t.Errorf("server saw %d requests, want 200", n)
	}
}

func TestInvoiceCSVStream(t *testing.T) {
	t.Parallel()
	const body = "Invoice Number,666acb8787ba43606905dcae,\nBilling Period,\"June 1, 2024 - July 1, 2024\",\n\n" +
		"Date,Usage Date,Description,Note,Organization Name,Organization ID,Project,Project ID,SKU,Region,Cluster,Replica Set,Config Server,Application,Unit,Unit Price,Quantity,Discount Percent,Amount\n"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/atlas/v2/orgs/"+testOrg+"/invoices/"+testInv+"/csv" || r.Header.Get("Accept") != "application/vnd.atlas.2023-01-01+csv" {
			t.Errorf("%s Accept %q", r.URL.Path, r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+csv; charset=utf-8")
		_, _ = io.WriteString(w, body)
	})
	c := newClient(t, srv.URL)
	rc, err := c.InvoiceCSV(ctxTimeout(t, 5*time.Second), testOrg, testInv)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, err := io.ReadAll(rc); err != nil || string(got) != body {
		t.Errorf("body = %q, %v; want the bytes served", got, err)
	}
}

func TestErrorDecoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		ctype  string
		body   string
		want   atlas.Error
		is     func(error) bool
	}{
		{"api error", 404, "application/json", `{"error":404,"errorCode":"RESOURCE_NOT_FOUND","detail":"Invoice 1 not found","reason":"Not Found","parameters":["1"]}`,
			atlas.Error{StatusCode: 404, ErrorCode: "RESOURCE_NOT_FOUND", Detail: "Invoice 1 not found", Reason: "Not Found"}, atlas.IsNotFound},
		{"bad request detail", 400, "application/json", `{"error":400,"errorCode":"VALIDATION_ERROR","badRequestDetail":{"fields":[{"field":"startDate","description":"bad"}]}}`,
			atlas.Error{StatusCode: 400, ErrorCode: "VALIDATION_ERROR"}, func(err error) bool {
				var e *atlas.Error
				return errors.As(err, &e) && len(e.BadRequest) == 1 && e.BadRequest[0].Field == "startDate"
			}},
		{"html", 403, "text/html", `<html>Forbidden</html>`, atlas.Error{StatusCode: 403}, atlas.IsForbidden},
		{"empty", 401, "", ``, atlas.Error{StatusCode: 401}, atlas.IsUnauthorized},
		{"newlines stripped", 409, "application/json", `{"error":409,"errorCode":"X","detail":"a\nb"}`, atlas.Error{StatusCode: 409, ErrorCode: "X", Detail: "a b"}, func(err error) bool { return true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			c := newClient(t, srv.URL)
			_, err := c.InvoiceCSV(ctxTimeout(t, 5*time.Second), testOrg, testInv)
			var e *atlas.Error
			if !errors.As(err, &e) || !tc.is(err) {
				t.Fatalf("error = %v", err)
			}
			if e.StatusCode != tc.want.StatusCode || e.ErrorCode != tc.want.ErrorCode || e.Detail != tc.want.Detail || e.Reason != tc.want.Reason {
				t.Errorf("got %+v, want %+v", *e, tc.want)
			}
			if e.Method != http.MethodGet || e.Path != "/api/atlas/v2/orgs/"+testOrg+"/invoices/"+testInv+"/csv" {
				t.Errorf("Method/Path = %s %s", e.Method, e.Path)
			}
			if !strings.Contains(e.Error(), strconv.Itoa(tc.status)) {
				t.Errorf("Error() = %q", e.Error())
			}
		})
	}
}
