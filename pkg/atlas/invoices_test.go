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

// The pending endpoint answers a page in the spec and one invoice object in
// some clients' reading: both are invoices; any other shape is an
// *AnswerError, never zero invoices.
func TestPendingInvoicesShapes(t *testing.T) {
	t.Parallel()
	inv := `{"id":"` + testInv + `","orgId":"` + testOrg + `","statusName":"PENDING","startDate":"2024-07-01T00:00:00Z",` +
		`"subtotalCents":1200,"lineItems":[{"sku":"A","totalPriceCents":700,"x":[{}]},{"sku":"B","totalPriceCents":500}],"links":[]}`
	many := `{"results":[` + strings.Repeat(`{"id":"`+testInv+`"},`, 500) + `{"id":"` + testInv + `"}]}`
	tests := []struct {
		name   string
		body   string
		n      int    // invoices
		reason string // of the *AnswerError, "" for none
	}{
		{name: "page", body: `{"links":[{"rel":"self"}],"results":[` + inv + `],"totalCount":1}`, n: 1},
		{name: "totalCount first", body: `{"totalCount":1,"results":[` + inv + `]}`, n: 1},
		{name: "empty page", body: `{"results":[],"totalCount":0}`, n: 0},
		{name: "object", body: inv, n: 1},
		{name: "empty object", body: `{}`, reason: "neither a page of invoices nor an invoice"},
		{name: "other object", body: `{"detail":"x","totalCount":1}`, reason: "neither a page of invoices nor an invoice"},
		{name: "array", body: `[` + inv + `]`, reason: "the answer is an array, not an object"},
		{name: "null", body: `null`, reason: "the answer is null, not an object"},
		{name: "entry without id", body: `{"results":[{}]}`, reason: "an invoice without a valid id"},
		{name: "object with a bad id", body: `{"id":"../x","lineItems":[]}`, reason: "an invoice without a valid id"},
		{name: "entry not an object", body: `{"results":[1]}`, reason: "an entry of results is a number, not an object"},
		{name: "results not an array", body: `{"results":{}}`, reason: "results is an object, not an array"},
		{name: "line items not an array", body: `{"id":"` + testInv + `","lineItems":{}}`, reason: "lineItems is an object, not an array"},
		{name: "bad date", body: `{"id":"` + testInv + `","startDate":"07/01/2024"}`, reason: "startDate \"07/01/2024\" is not an ISO 8601 time"},
		{name: "too many", body: many, reason: "more than the 500 invoices asked for"},
		{name: "cut", body: `{"results":[` + inv, reason: "the JSON ends early"},
		{name: "data after", body: inv + ` {}`, reason: "more data after the answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, tc.body) })
			c := newClient(t, srv.URL)
			got, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
			if tc.reason != "" {
				var ae *atlas.AnswerError
				if !errors.As(err, &ae) || !strings.Contains(ae.Reason, tc.reason) || ae.Path != "/api/atlas/v2/orgs/"+testOrg+"/invoices/pending" {
					t.Fatalf("PendingInvoices = %v, %v; want an *AnswerError saying %q", got, err, tc.reason)
				}
				if n := srv.requests(); n != 1 {
					t.Errorf("%d requests, want 1 (an unusable answer is not retried)", n)
				}
				return
			}
			if err != nil || len(got) != tc.n {
				t.Fatalf("PendingInvoices = %+v, %v; want %d invoices", got, err, tc.n)
			}
			if tc.n == 1 {
				want := atlas.Invoice{ID: testInv, OrgID: testOrg, StatusName: "PENDING", StartDate: time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC), SubtotalCents: 1200, LineItems: 2}
				if got[0] != want {
					t.Errorf("invoice = %+v, want %+v", got[0], want)
				}
			}
		})
	}
}

// A list page is a page: never more entries than asked for, each with an id.
func TestListInvoicesBadPages(t *testing.T) {
	t.Parallel()
	entry := `{"id":"` + testInv + `"}`
	tests := []struct {
		name, body, reason string
	}{
		{"more than asked", `{"results":[` + entry + `,` + entry + `,` + entry + `]}`, "more than the 2 invoices asked for"},
		{"entry without id", `{"results":[{"orgId":"` + testOrg + `"}]}`, "an invoice without a valid id"},
		{"no results", `{"totalCount":3}`, "not a page of invoices"},
		{"an invoice", entry, "not a page of invoices"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, tc.body) })
			c := newClient(t, srv.URL)
			got, err := c.ListInvoices(ctxTimeout(t, 5*time.Second), testOrg, &atlas.InvoiceListOptions{ItemsPerPage: 2})
			var ae *atlas.AnswerError
			if !errors.As(err, &ae) || !strings.Contains(ae.Reason, tc.reason) {
				t.Fatalf("ListInvoices = %v, %v; want an *AnswerError saying %q", got, err, tc.reason)
			}
		})
	}
}

// CSV answers come with the versioned type, text/csv or application/csv,
// with or without parameters; JSON ones with the versioned type or
// application/json. HTML (a proxy's page) is a *MediaTypeError.
func TestMediaTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ctype string
		csv   bool // a CSV answer reads
		json  bool // a JSON answer reads
	}{
		{"application/vnd.atlas.2023-01-01+csv", true, false},
		{"application/vnd.atlas.2023-01-01+csv; charset=utf-8", true, false},
		{"text/csv", true, false},
		{"Text/CSV; charset=UTF-8", true, false},
		{"application/csv;charset=utf-8", true, false},
		{"application/vnd.atlas.2023-01-01+json", false, true},
		{"application/json; charset=utf-8", false, true},
		{"text/html; charset=utf-8", false, false},
		{"text/plain", false, false},
		{"", false, false},
		{"text/csv; charset", false, false},
		{strings.Repeat("\x80", 200), false, false}, // not UTF-8, nowhere to cut: quoted as "..."
		{"text/html; " + strings.Repeat("x", 300), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.ctype, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{tc.ctype}
				if strings.HasSuffix(r.URL.Path, "/pending") {
					_, _ = io.WriteString(w, `{"results":[]}`)
					return
				}
				_, _ = io.WriteString(w, "a,b\n")
			})
			c := newClient(t, srv.URL)
			ctx := ctxTimeout(t, 5*time.Second)
			check := func(op string, ok bool, err error) {
				t.Helper()
				var me *atlas.MediaTypeError
				switch {
				case ok && err != nil:
					t.Errorf("%s: %v", op, err)
				case !ok && !errors.As(err, &me):
					t.Errorf("%s: error %v, want *MediaTypeError", op, err)
				case !ok && len(me.Got) > 128+len("..."):
					t.Errorf("%s: the error quotes %d bytes of the Content-Type", op, len(me.Got))
				}
			}
			u, err := c.GetUsage(ctx, testOrg, testToken, atlas.CSV)
			if err == nil {
				u.Body.Close()
			}
			check("GetUsage", tc.csv, err)
			rc, err := c.InvoiceCSV(ctx, testOrg, testInv)
			if err == nil {
				rc.Close()
			}
			check("InvoiceCSV", tc.csv, err)
			_, err = c.PendingInvoices(ctx, testOrg)
			check("PendingInvoices", tc.json, err)
		})
	}
}

// Any 2xx answer is the answer, from the API and from a download host; a
// 3xx is an *Error (redirects are not followed).
func TestStatusRange(t *testing.T) {
	t.Parallel()
	for _, status := range []int{200, 203, 299, 300} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/csv")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "a,b\n")
			})
			ctx := ctxTimeout(t, 5*time.Second)
			api, err := newClient(t, srv.URL).InvoiceCSV(ctx, testOrg, testInv)
			if err == nil {
				api.Close()
			}
			// The download host is never the API's: this client's API is elsewhere.
			c := newClient(t, "http://127.0.0.1:1", atlas.WithDownloadClient(srv.Client()))
			dl, err2 := c.DownloadReport(ctx, atlas.Report{DownloadURL: srv.URL + "/r.csv?X-Amz-Signature=feed"})
			if err2 == nil {
				dl.Close()
			}
			for what, err := range map[string]error{"InvoiceCSV": err, "DownloadReport": err2} {
				var e *atlas.Error
				switch {
				case status < 300 && err != nil:
					t.Errorf("%s: a %d is an error: %v", what, status, err)
				case status >= 300 && (!errors.As(err, &e) || e.StatusCode != status):
					t.Errorf("%s: a %d gave %v, want an *Error", what, status, err)
				}
			}
		})
	}
}

// itemsPerPage is 1 to 500 (0: the default, 500); anything else is refused
// before a request.
func TestListInvoicesPerPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		per  int
		sent string // "" for refused
	}{{0, "500"}, {1, "1"}, {500, "500"}, {501, ""}, {-1, ""}} {
		srv, queries := invoiceListServer(t, 1, true)
		_, err := newClient(t, srv.URL).ListInvoices(ctxTimeout(t, 5*time.Second), testOrg, &atlas.InvoiceListOptions{ItemsPerPage: tc.per})
		var ve *atlas.ValidationError
		switch {
		case tc.sent == "" && (!errors.As(err, &ve) || ve.Field != "itemsPerPage" || srv.requests() != 0):
			t.Errorf("ItemsPerPage %d: %v after %d requests, want a *ValidationError before any", tc.per, err, srv.requests())
		case tc.sent != "" && (err != nil || queries()[0].Get("itemsPerPage") != tc.sent):
			t.Errorf("ItemsPerPage %d: %v; want itemsPerPage=%s sent", tc.per, err, tc.sent)
		}
	}
}
