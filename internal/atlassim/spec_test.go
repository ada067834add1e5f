package atlassim_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

// TestSpecRejects sends requests the spec (or the API's stated rules)
// rejects and checks the ApiError names the complaint.
func TestSpecRejects(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	c := client(t, base, oauth, nil)
	inv := srv.Invoices(org1)[0].ID
	usage := orgURL(base, org1, "/billing/costExplorer/usage")
	for _, tc := range []struct {
		name, method, url, accept, ctype, body string
		status                                 int
		code                                   string
		detail                                 []string // substrings of detail
	}{
		{"accept of another version", "GET", orgURL(base, org1, "/invoices/pending"), "application/vnd.atlas.2025-03-12+json", "", "", 406, "INVALID_VERSION_DATE", []string{"application/vnd.atlas.2023-01-01+json", "2025-03-12"}},
		{"accept json on csv path", "GET", orgURL(base, org1, "/invoices/"+inv+"/csv"), jsonType, "", "", 406, "INVALID_VERSION_DATE", []string{"getOrgInvoiceCsv", csvType}},
		{"plain json accept", "GET", orgURL(base, org1, "/invoices"), "application/json", "", "", 406, "INVALID_VERSION_DATE", nil},
		{"wrong content type", "POST", usage, jsonType, "application/json", `{"startDate":"2025-05-01","endDate":"2025-06-01"}`, 400, "INVALID_REQUEST", []string{"Content-Type", "application/json"}},
		{"bad org id", "GET", base + "/api/atlas/v2/orgs/NOT-AN-ORG-ID-123456789/invoices", jsonType, "", "", 400, "VALIDATION_ERROR", []string{`parameter "orgId" in path`, "regular expression"}},
		{"bad invoice id", "GET", orgURL(base, org1, "/invoices/zz12"), jsonType, "", "", 400, "VALIDATION_ERROR", []string{`parameter "invoiceId" in path`}},
		{"short token", "GET", usage + "/abc", jsonType, "", "", 400, "VALIDATION_ERROR", []string{`parameter "token" in path`}},
		{"bad itemsPerPage", "GET", orgURL(base, org1, "/invoices?itemsPerPage=501"), jsonType, "", "", 400, "VALIDATION_ERROR", []string{`parameter "itemsPerPage" in query`}},
		{"bad status name", "GET", orgURL(base, org1, "/invoices?statusNames=LATE"), jsonType, "", "", 400, "VALIDATION_ERROR", []string{`parameter "statusNames" in query`}},
		{"unknown service", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-01","endDate":"2025-06-01","services":["Coffee"]}`, 400, "VALIDATION_ERROR", []string{"request body", "services", "Coffee"}},
		{"unknown groupBy", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-01","endDate":"2025-06-01","groupBy":"teams","services":["Atlas"]}`, 400, "VALIDATION_ERROR", []string{"groupBy"}},
		{"missing endDate", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-01"}`, 400, "VALIDATION_ERROR", []string{"endDate"}},
		{"bad project id", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-01","endDate":"2025-06-01","projects":["xyz"]}`, 400, "VALIDATION_ERROR", []string{"projects"}},
		{"not a date", "POST", usage, jsonType, jsonType, `{"startDate":"May 2025","endDate":"2025-06-01"}`, 400, "VALIDATION_ERROR", []string{"startDate"}},
		{"date not first of month", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-02","endDate":"2025-06-01"}`, 400, "VALIDATION_ERROR", []string{"first day of a month"}},
		{"end before start", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-01","endDate":"2025-04-01"}`, 400, "VALIDATION_ERROR", []string{"after startDate"}},
		{"groupBy without filter", "POST", usage, jsonType, jsonType, `{"startDate":"2025-05-01","endDate":"2025-06-01","groupBy":"projects"}`, 400, "VALIDATION_ERROR", []string{"at least one filter value"}},
		{"unknown org", "GET", orgURL(base, "0123456789abcdef01234567", "/invoices"), jsonType, "", "", 404, "ORG_NOT_FOUND", []string{"0123456789abcdef01234567"}},
		{"unknown invoice", "GET", orgURL(base, org1, "/invoices/0123456789abcdef01234567"), jsonType, "", "", 404, "RESOURCE_NOT_FOUND", nil},
		{"unknown token", "GET", usage + "/" + strings.Repeat("ab", 32), jsonType, "", "", 404, "RESOURCE_NOT_FOUND", nil},
		{"unknown path", "GET", orgURL(base, org1, "/clusters"), jsonType, "", "", 404, "RESOURCE_NOT_FOUND", nil},
		{"wrong method", "DELETE", orgURL(base, org1, "/invoices"), jsonType, "", "", 405, "METHOD_NOT_ALLOWED", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = bytes.NewBufferString(tc.body)
			}
			req, _ := http.NewRequest(tc.method, tc.url, body)
			req.Header.Set("Accept", tc.accept)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			e := decodeErr(t, b)
			if resp.StatusCode != tc.status || e.Error != tc.status || e.ErrorCode != tc.code || e.Reason != http.StatusText(tc.status) {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, b, tc.status, tc.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, d := range tc.detail {
				if !strings.Contains(e.Detail, d) {
					t.Errorf("detail %q does not name %q", e.Detail, d)
				}
			}
			t.Logf("detail: %s", e.Detail)
		})
	}
}

// TestAcceptDefaults: no Accept or */* gets the JSON type (CSV-only paths: CSV).
func TestAcceptDefaults(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	c := client(t, base, digestKey, nil)
	inv := srv.Invoices(org1)[0].ID
	for _, tc := range []struct{ path, accept, want string }{
		{"/invoices/pending", "", jsonType},
		{"/invoices/" + inv, "*/*", jsonType},
		{"/invoices/" + inv + "/csv", "", csvType},
		{"/invoices/" + inv, "text/html, " + csvType + ";q=0.9", csvType},
	} {
		st, h, _ := call(t, c, http.MethodGet, orgURL(base, org1, tc.path), tc.accept, nil)
		if st != 200 || h.Get("Content-Type") != tc.want {
			t.Errorf("%s Accept %q: %d %s, want %s", tc.path, tc.accept, st, h.Get("Content-Type"), tc.want)
		}
	}
}
