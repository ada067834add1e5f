package atlassim_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

const reportType = "application/vnd.atlas.2025-03-12+json"

const focusBody = `{"reportFormat":"CSV","reportType":"FOCUS"}`

type reportAnswer struct {
	DownloadURL       string `json:"downloadUrl"`
	ExpiresAt         string `json:"expiresAt"`
	FailureReason     string `json:"failureReason"`
	FormatSpecVersion string `json:"formatSpecVersion"`
	InvoiceID         string `json:"invoiceId"`
	ReportFormat      string `json:"reportFormat"`
	ReportID          string `json:"reportId"`
	ReportType        string `json:"reportType"`
	State             string `json:"state"`
}

// send makes one request with the given Accept and Content-Type.
func send(t testing.TB, c *http.Client, method, u, accept, ctype, body string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, b
}

func reportsURL(base, org, inv string) string { return orgURL(base, org, "/invoices/"+inv+"/reports") }

func createReport(t testing.TB, c *http.Client, base, inv string) reportAnswer {
	t.Helper()
	st, h, b := send(t, c, http.MethodPost, reportsURL(base, org1, inv), reportType, reportType, focusBody)
	if st != http.StatusCreated || h.Get("Content-Type") != reportType {
		t.Fatalf("create report: %d %s %s", st, h.Get("Content-Type"), b)
	}
	return decodeReport(t, b)
}

func getReport(t testing.TB, c *http.Client, base, inv, id string) reportAnswer {
	t.Helper()
	st, h, b := send(t, c, http.MethodGet, reportsURL(base, org1, inv)+"/"+id, reportType, "", "")
	if st != http.StatusOK || h.Get("Content-Type") != reportType {
		t.Fatalf("get report: %d %s %s", st, h.Get("Content-Type"), b)
	}
	return decodeReport(t, b)
}

func decodeReport(t testing.TB, b []byte) reportAnswer {
	t.Helper()
	var r reportAnswer
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report %s: %v", b, err)
	}
	return r
}

// plain is an HTTP client with no credentials, as a download must be made.
var plain = &http.Client{Timeout: 30 * time.Second}

// TestReportLifecycle: PENDING -> RUNNING -> SUCCEEDED by polls, then the
// download host serves the FOCUS CSV at the pre-signed URL; both auth schemes.
func TestReportLifecycle(t *testing.T) {
	for _, sc := range []scheme{oauth, digestKey} {
		t.Run(string(sc), func(t *testing.T) {
			srv, base := start(t, atlassim.Config{ReportReadyAfterPolls: 3, InvoiceRows: 500})
			c := client(t, base, sc, nil)
			inv := srv.Invoices(org1)[3]

			r := createReport(t, c, base, inv.ID)
			if r.State != "PENDING" || len(r.ReportID) != 24 || r.InvoiceID != inv.ID || r.ReportType != "FOCUS" ||
				r.ReportFormat != "CSV" || r.FormatSpecVersion != atlassim.FocusSpecVersion || r.DownloadURL != "" || r.ExpiresAt != "" {
				t.Fatalf("created %+v", r)
			}
			var states []string
			for range 5 {
				g := getReport(t, c, base, inv.ID, r.ReportID)
				states = append(states, g.State)
				if g.State == "SUCCEEDED" {
					r = g
					break
				}
				if g.DownloadURL != "" {
					t.Fatalf("%s report has a downloadUrl", g.State)
				}
			}
			if want := []string{"PENDING", "RUNNING", "RUNNING", "SUCCEEDED"}; !slices.Equal(states, want) {
				t.Fatalf("states %v, want %v", states, want)
			}
			dl := srv.DownloadBaseURL()
			if dl == "" || dl == base || !strings.HasPrefix(r.DownloadURL, dl+"/") {
				t.Fatalf("downloadUrl %q not on the download host %q (API %q)", r.DownloadURL, dl, base)
			}
			u, _ := url.Parse(r.DownloadURL)
			for _, p := range []string{"X-Amz-Algorithm", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature"} {
				if u.Query().Get(p) == "" {
					t.Errorf("downloadUrl has no %s", p)
				}
			}
			if u.Query().Get("X-Amz-Expires") != "900" {
				t.Errorf("X-Amz-Expires = %q, want the default 15m", u.Query().Get("X-Amz-Expires"))
			}
			exp, err := time.Parse(time.RFC3339, r.ExpiresAt)
			if err != nil || exp.Before(time.Now().Add(14*time.Minute)) {
				t.Errorf("expiresAt %q (%v)", r.ExpiresAt, err)
			}
			if again := getReport(t, c, base, inv.ID, r.ReportID); again != r {
				t.Errorf("a finished report changed: %+v", again)
			}

			st, h, b := send(t, plain, http.MethodGet, r.DownloadURL, "", "", "")
			var want bytes.Buffer
			if err := srv.WriteFocusCSV(&want, org1, inv.ID); err != nil {
				t.Fatal(err)
			}
			if st != 200 || h.Get("Content-Type") != "text/csv" || h.Get("Content-Length") != strconv.Itoa(want.Len()) || !bytes.Equal(b, want.Bytes()) {
				t.Fatalf("download: %d %s, %d bytes, want %d", st, h.Get("Content-Type"), len(b), want.Len())
			}

			// The list: newest first, never a downloadUrl.
			r2 := createReport(t, c, base, inv.ID)
			st, _, b = send(t, c, http.MethodGet, reportsURL(base, org1, inv.ID)+"?itemsPerPage=1", reportType, "", "")
			var page struct {
				Results    []reportAnswer `json:"results"`
				TotalCount int            `json:"totalCount"`
				Links      []struct{ Rel string }
			}
			if err := json.Unmarshal(b, &page); err != nil || st != 200 {
				t.Fatalf("list: %d %s %v", st, b, err)
			}
			if page.TotalCount != 2 || len(page.Results) != 1 || page.Results[0].ReportID != r2.ReportID || len(page.Links) != 2 || page.Links[1].Rel != "next" {
				t.Fatalf("list page 1: %s", b)
			}
			_, _, b = send(t, c, http.MethodGet, reportsURL(base, org1, inv.ID)+"?itemsPerPage=1&pageNum=2", reportType, "", "")
			if err := json.Unmarshal(b, &page); err != nil || len(page.Results) != 1 || page.Results[0].ReportID != r.ReportID ||
				page.Results[0].State != "SUCCEEDED" || page.Results[0].DownloadURL != "" || page.Results[0].ExpiresAt == "" {
				t.Fatalf("list page 2: %s", b)
			}
			for op, n := range map[string]int{atlassim.OpCreateInvoiceReport: 2, atlassim.OpGetInvoiceReport: 5, atlassim.OpListInvoiceReports: 2, atlassim.OpDownloadReport: 1} {
				if got := srv.Requests(op); got != n {
					t.Errorf("Requests(%s) = %d, want %d", op, got, n)
				}
			}
		})
	}
}

// TestReportTimes: by time, a report is PENDING in the first half of
// ReportProcessingTime, and SUCCEEDED at the first poll when it is negative.
func TestReportTimes(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Hour, "PENDING"}, {-1, "SUCCEEDED"}} {
		srv, base := start(t, atlassim.Config{ReportProcessingTime: tc.d})
		c := client(t, base, oauth, nil)
		inv := srv.Invoices(org1)[0].ID
		r := createReport(t, c, base, inv)
		if g := getReport(t, c, base, inv, r.ReportID); g.State != tc.want {
			t.Errorf("ReportProcessingTime %s: %s, want %s", tc.d, g.State, tc.want)
		}
	}
}

func TestReportFailedFault(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault atlassim.Fault
		polls int // GETs until FAILED
	}{
		{"on create (default op)", atlassim.Fault{Kind: atlassim.ReportFailed}, 3},
		{"on get", atlassim.Fault{Op: atlassim.OpGetInvoiceReport, Kind: atlassim.ReportFailed}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, base := start(t, atlassim.Config{ReportReadyAfterPolls: 2})
			c := client(t, base, digestKey, nil)
			inv := srv.Invoices(org1)[0].ID
			srv.Inject(tc.fault)
			r := createReport(t, c, base, inv)
			for i := 1; i <= tc.polls; i++ {
				r = getReport(t, c, base, inv, r.ReportID)
			}
			if r.State != "FAILED" || r.FailureReason == "" || r.DownloadURL != "" || r.ExpiresAt != "" {
				t.Fatalf("after %d polls: %+v, want FAILED with a reason", tc.polls, r)
			}
			if g := getReport(t, c, base, inv, r.ReportID); g.State != "FAILED" {
				t.Errorf("FAILED is not final: %+v", g)
			}
			if srv.PendingFaults() != 0 {
				t.Errorf("fault not used")
			}
		})
	}
}

// TestReportWithoutDownloadHost: a simulator nobody gave a download host
// fails its reports with a reason saying so.
func TestReportWithoutDownloadHost(t *testing.T) {
	srv, err := atlassim.New(atlassim.Config{Now: fixedNow, ReportProcessingTime: -1})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c := client(t, ts.URL, oauth, nil)
	inv := srv.Invoices(org1)[0].ID
	r := createReport(t, c, ts.URL, inv)
	if g := getReport(t, c, ts.URL, inv, r.ReportID); g.State != "FAILED" || !strings.Contains(g.FailureReason, "SetDownloadBaseURL") {
		t.Fatalf("%+v", g)
	}
	if err := srv.SetDownloadBaseURL("ftp://127.0.0.1:1"); err == nil {
		t.Error("SetDownloadBaseURL accepted ftp")
	}
	if _, err := atlassim.New(atlassim.Config{DownloadBaseURL: "http://127.0.0.1:1/path?x=1"}); err == nil {
		t.Error("New accepted a download base URL with a path and query")
	}
}

// TestReportSpecRejects: the report operations are validated against the
// spec's 2025-03-12 version like every other operation.
func TestReportSpecRejects(t *testing.T) {
	srv, base := start(t, atlassim.Config{ReportProcessingTime: -1})
	c := client(t, base, oauth, nil)
	inv := srv.Invoices(org1)[0].ID
	other := srv.Invoices(org1)[1].ID
	r := createReport(t, c, base, inv)
	reports := reportsURL(base, org1, inv)
	for _, tc := range []struct {
		name, method, url, accept, ctype, body string
		status                                 int
		code                                   string
		detail                                 []string
	}{
		{"create: accept of version 2023-01-01", "POST", reports, jsonType, reportType, focusBody, 406, "INVALID_VERSION_DATE", []string{reportType}},
		{"create: body of version 2023-01-01", "POST", reports, reportType, jsonType, focusBody, 400, "INVALID_REQUEST", []string{"Content-Type", jsonType}},
		{"create: plain json body", "POST", reports, reportType, "application/json", focusBody, 400, "INVALID_REQUEST", []string{"Content-Type"}},
		{"get: accept of version 2023-01-01", "GET", reports + "/" + r.ReportID, jsonType, "", "", 406, "INVALID_VERSION_DATE", []string{"getOrgInvoiceReport"}},
		{"list: accept of version 2023-01-01", "GET", reports, jsonType, "", "", 406, "INVALID_VERSION_DATE", []string{"listOrgInvoiceReports"}},
		{"unknown report type", "POST", reports, reportType, reportType, `{"reportFormat":"CSV","reportType":"USAGE"}`, 400, "VALIDATION_ERROR", []string{"reportType", "USAGE"}},
		{"unknown format", "POST", reports, reportType, reportType, `{"reportFormat":"PARQUET","reportType":"FOCUS"}`, 400, "VALIDATION_ERROR", []string{"reportFormat"}},
		{"missing report type", "POST", reports, reportType, reportType, `{"reportFormat":"CSV"}`, 400, "VALIDATION_ERROR", []string{"reportType"}},
		{"unsupported FOCUS version", "POST", reports, reportType, reportType, `{"reportFormat":"CSV","reportType":"FOCUS","formatSpecVersion":"1.2"}`, 400, "VALIDATION_ERROR", []string{"formatSpecVersion"}},
		{"bad itemsPerPage", "GET", reports + "?itemsPerPage=501", reportType, "", "", 400, "VALIDATION_ERROR", []string{"itemsPerPage"}},
		{"bad org id", "GET", base + "/api/atlas/v2/orgs/NOT-AN-ORG/invoices/" + inv + "/reports", reportType, "", "", 400, "VALIDATION_ERROR", []string{"orgId"}},
		{"unknown invoice", "POST", reportsURL(base, org1, "0123456789abcdef01234567"), reportType, reportType, focusBody, 404, "RESOURCE_NOT_FOUND", nil},
		{"unknown report", "GET", reports + "/0123456789abcdef01234567", reportType, "", "", 404, "RESOURCE_NOT_FOUND", nil},
		{"report of another invoice", "GET", reportsURL(base, org1, other) + "/" + r.ReportID, reportType, "", "", 404, "RESOURCE_NOT_FOUND", nil},
		{"report of another org", "GET", reportsURL(base, org2, inv) + "/" + r.ReportID, reportType, "", "", 404, "RESOURCE_NOT_FOUND", nil},
		{"wrong method", "DELETE", reports + "/" + r.ReportID, reportType, "", "", 405, "METHOD_NOT_ALLOWED", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, h, b := send(t, c, tc.method, tc.url, tc.accept, tc.ctype, tc.body)
			e := decodeErr(t, b)
			if st != tc.status || e.ErrorCode != tc.code || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %s, want %d %s", st, h.Get("Content-Type"), b, tc.status, tc.code)
			}
			for _, d := range tc.detail {
				if !strings.Contains(e.Detail, d) {
					t.Errorf("detail %q does not name %q", e.Detail, d)
				}
			}
		})
	}
}

type s3Err struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string
	Message   string
	RequestID string `xml:"RequestId"`
}

func decodeS3(t testing.TB, b []byte) s3Err {
	t.Helper()
	var e s3Err
	if err := xml.Unmarshal(b, &e); err != nil {
		t.Fatalf("S3 error body %q: %v", b, err)
	}
	return e
}

// readyReport creates a report and polls it to SUCCEEDED.
func readyReport(t testing.TB, srv *atlassim.Server, base string) (reportAnswer, *http.Client) {
	t.Helper()
	c := client(t, base, oauth, nil)
	inv := srv.Invoices(org1)[0].ID
	r := createReport(t, c, base, inv)
	r = getReport(t, c, base, inv, r.ReportID)
	if r.State != "SUCCEEDED" {
		t.Fatalf("report %+v", r)
	}
	return r, c
}

// TestDownloadHost checks what the download host accepts: only the signed
// URL as issued, without credentials, before it expires.
func TestDownloadHost(t *testing.T) {
	srv, base := start(t, atlassim.Config{ReportProcessingTime: -1})
	r, _ := readyReport(t, srv, base)
	u, _ := url.Parse(r.DownloadURL)
	with := func(edit func(q url.Values, u *url.URL)) string {
		v := *u
		q := v.Query()
		edit(q, &v)
		v.RawQuery = q.Encode()
		return v.String()
	}
	other := strings.Replace(u.Path, r.ReportID, strings.Repeat("0", 24), 1)
	for _, tc := range []struct {
		name, method, url string
		header            http.Header
		status            int
		code, message     string
	}{
		{"as issued", "GET", r.DownloadURL, nil, 200, "", ""},
		{"with an Authorization header", "GET", r.DownloadURL, http.Header{"Authorization": {"Bearer abc"}}, 400, "InvalidArgument", "Only one auth mechanism allowed"},
		{"with a cookie", "GET", r.DownloadURL, http.Header{"Cookie": {"session=1"}}, 200, "", ""},
		{"no signature", "GET", with(func(q url.Values, _ *url.URL) { q.Del("X-Amz-Signature") }), nil, 403, "AccessDenied", "Access Denied"},
		{"no query", "GET", (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(), nil, 403, "AccessDenied", "Access Denied"},
		{"forged signature", "GET", with(func(q url.Values, _ *url.URL) { q.Set("X-Amz-Signature", strings.Repeat("ab", 32)) }), nil, 403, "SignatureDoesNotMatch", "signature"},
		{"longer expiry", "GET", with(func(q url.Values, _ *url.URL) { q.Set("X-Amz-Expires", "604800") }), nil, 403, "SignatureDoesNotMatch", "signature"},
		{"another object", "GET", with(func(_ url.Values, v *url.URL) { v.Path = other }), nil, 403, "SignatureDoesNotMatch", "signature"},
		{"POST", "POST", r.DownloadURL, nil, 405, "MethodNotAllowed", "method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, tc.url, nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s, want %d", resp.StatusCode, b, tc.status)
			}
			if tc.status == 200 {
				if !bytes.HasPrefix(b, []byte(strings.Join(atlassim.FocusColumns, ",")+"\n")) {
					t.Errorf("body starts %q", b[:min(len(b), 60)])
				}
				return
			}
			e := decodeS3(t, b)
			if resp.Header.Get("Content-Type") != "application/xml" || e.Code != tc.code || !strings.Contains(e.Message, tc.message) || e.RequestID == "" {
				t.Errorf("%s %+v, want %s %q", resp.Header.Get("Content-Type"), e, tc.code, tc.message)
			}
		})
	}
	// Every request was recorded with its headers, credentials included.
	got := srv.DownloadRequests()
	if len(got) != 9 || got[1].Get("Authorization") != "Bearer abc" || got[2].Get("Cookie") != "session=1" || got[0].Get("Authorization") != "" {
		t.Errorf("DownloadRequests: %d, %v", len(got), got)
	}
	if srv.Requests(atlassim.OpDownloadReport) != 9 {
		t.Errorf("Requests(download) = %d", srv.Requests(atlassim.OpDownloadReport))
	}
}

func TestDownloadExpiry(t *testing.T) {
	t.Run("ttl", func(t *testing.T) {
		srv, base := start(t, atlassim.Config{ReportProcessingTime: -1, ReportURLTTL: time.Nanosecond})
		r, c := readyReport(t, srv, base)
		if q, _ := url.ParseQuery(r.DownloadURL[strings.Index(r.DownloadURL, "?")+1:]); q.Get("X-Amz-Expires") != "1" {
			t.Errorf("X-Amz-Expires = %q, want 1 (whole seconds, at least 1)", q.Get("X-Amz-Expires"))
		}
		st, h, b := send(t, plain, http.MethodGet, r.DownloadURL, "", "", "")
		if e := decodeS3(t, b); st != 403 || h.Get("Content-Type") != "application/xml" || e.Code != "AccessDenied" || e.Message != "Request has expired" {
			t.Fatalf("%d %s", st, b)
		}
		// The report expired with its URL: it leaves the list.
		_, _, b = send(t, c, http.MethodGet, reportsURL(base, org1, r.InvoiceID), reportType, "", "")
		if !strings.Contains(string(b), `"results":[]`) {
			t.Errorf("list still shows the expired report: %s", b)
		}
	})
	t.Run("fault", func(t *testing.T) {
		srv, base := start(t, atlassim.Config{ReportProcessingTime: -1})
		r, _ := readyReport(t, srv, base)
		srv.Inject(atlassim.Fault{Kind: atlassim.ExpiredURL})
		st, _, b := send(t, plain, http.MethodGet, r.DownloadURL, "", "", "")
		if e := decodeS3(t, b); st != 403 || e.Message != "Request has expired" {
			t.Fatalf("%d %s", st, b)
		}
		if st, _, _ := send(t, plain, http.MethodGet, r.DownloadURL, "", "", ""); st != 200 {
			t.Fatalf("after the fault: %d", st)
		}
	})
}

func TestDownloadFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  atlassim.Fault
		status int
		code   string
		ra     string
	}{
		{"503", atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 503, RetryAfter: time.Second}, 503, "SlowDown", "1"},
		{"500", atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 500}, 500, "InternalError", ""},
		{"not found", atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.NotFound}, 404, "NoSuchKey", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, base := start(t, atlassim.Config{ReportProcessingTime: -1})
			r, c := readyReport(t, srv, base)
			// An any-op fault is not for the download host.
			srv.Inject(atlassim.Fault{Kind: atlassim.Status, Status: 502})
			srv.Inject(tc.fault)
			st, h, b := send(t, plain, http.MethodGet, r.DownloadURL, "", "", "")
			if e := decodeS3(t, b); st != tc.status || e.Code != tc.code || h.Get("Retry-After") != tc.ra {
				t.Fatalf("%d %s Retry-After %q", st, b, h.Get("Retry-After"))
			}
			if st, _, _ := send(t, plain, http.MethodGet, r.DownloadURL, "", "", ""); st != 200 {
				t.Fatalf("second download: %d", st)
			}
			if st, _, _ := send(t, c, http.MethodGet, orgURL(base, org1, "/invoices/pending"), jsonType, "", ""); st != 502 {
				t.Fatalf("the any-op fault did not wait for an API request: %d", st)
			}
		})
	}
	t.Run("truncate", func(t *testing.T) {
		srv, base := start(t, atlassim.Config{ReportProcessingTime: -1})
		r, _ := readyReport(t, srv, base)
		srv.Inject(atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.Truncate, After: 100})
		resp, err := plain.Get(r.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 100 || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("read %d bytes, %v", n, err)
		}
	})
}

// TestFocusCSV: one FOCUS row per invoice line item, in order, whose
// BilledCost adds up in cents to the invoice's line items.
func TestFocusCSV(t *testing.T) {
	srv, err := atlassim.New(atlassim.Config{Now: fixedNow, InvoiceRows: 3000})
	if err != nil {
		t.Fatal(err)
	}
	inv := srv.Invoices(org2)[4]
	var focus, invoice bytes.Buffer
	if err := srv.WriteFocusCSV(&focus, org2, inv.ID); err != nil {
		t.Fatal(err)
	}
	if err := srv.WriteInvoiceCSV(&invoice, org2, inv.ID); err != nil {
		t.Fatal(err)
	}
	fr := csv.NewReader(&focus)
	head, err := fr.Read()
	if err != nil || !slices.Equal(head, atlassim.FocusColumns) {
		t.Fatalf("header %q, %v", head, err)
	}
	col := map[string]int{}
	for i, c := range head {
		col[c] = i
	}
	ir := csv.NewReader(&invoice)
	ir.FieldsPerRecord = -1
	for {
		rec, err := ir.Read()
		if err != nil {
			t.Fatalf("invoice CSV has no line-item header: %v", err)
		}
		if slices.Equal(rec, atlassim.InvoiceColumns) {
			break
		}
	}
	var rows, credits, billed int64
	for {
		f, err := fr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		line, err := ir.Read()
		if err != nil {
			t.Fatalf("FOCUS row %d has no invoice line: %v", rows+1, err)
		}
		rows++
		c := parseCents(t, f[col["BilledCost"]])
		if c != parseCents(t, line[18]) || f[col["SkuId"]] != line[8] || f[col["SubAccountId"]] != line[7] || f[col["ChargeDescription"]] != line[2] ||
			f[col["BillingAccountId"]] != org2 || f[col["BillingAccountName"]] != atlassim.DefaultOrgs[1].Name ||
			!strings.HasPrefix(f[col["ChargePeriodStart"]], line[1]+"T") || f[col["BillingPeriodStart"]] != inv.Start.Format(time.RFC3339) {
			t.Fatalf("row %d: FOCUS %q does not match line item %q", rows, f, line)
		}
		billed += c
		if f[col["ChargeCategory"]] == "Credit" {
			credits++
			if c >= 0 || f[col["PricingQuantity"]] != "" {
				t.Errorf("row %d: credit %q", rows, f)
			}
		} else if f[col["ChargeCategory"]] != "Usage" || parseCents(t, f[col["ListCost"]]) < c || f[col["ConsumedQuantity"]] != line[16] {
			t.Errorf("row %d: usage %q", rows, f)
		}
	}
	if _, err := ir.Read(); err != io.EOF {
		t.Errorf("invoice CSV has line items beyond the FOCUS rows: %v", err)
	}
	if rows != inv.Rows || credits == 0 {
		t.Errorf("%d rows (%d credits), want %d with some credits", rows, credits, inv.Rows)
	}
	if want := inv.SubtotalCents - inv.CreditsCents; billed != want {
		t.Errorf("BilledCost sums to %d cents, want %d", billed, want)
	}
}
