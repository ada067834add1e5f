package atlassim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// TestReportResponseValidation: report answers are validated against
// InvoiceReportResponse of version 2025-03-12 before they leave.
func TestReportResponseValidation(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	path := "/api/atlas/v2/orgs/" + DefaultOrgs[0].ID + "/invoices/0123456789abcdef01234567/reports/89abcdef0123456789abcdef"
	const ok = `{"formatSpecVersion":"1.0","invoiceId":"0123456789abcdef01234567","reportFormat":"CSV","reportId":"89abcdef0123456789abcdef","reportType":"FOCUS","state":"SUCCEEDED","downloadUrl":"http://127.0.0.1:1/x.csv?X-Amz-Signature=ab","expiresAt":"2025-06-14T10:15:00Z"}`
	for _, tc := range []struct {
		name, ct, body string
		valid          bool
	}{
		{"real answer", "application/vnd.atlas.2025-03-12+json", ok, true},
		{"failed", "application/vnd.atlas.2025-03-12+json", `{"invoiceId":"0123456789abcdef01234567","reportId":"89abcdef0123456789abcdef","state":"FAILED","failureReason":"x","reportFormat":"CSV","reportType":"FOCUS"}`, true},
		{"unknown state", "application/vnd.atlas.2025-03-12+json", `{"reportId":"89abcdef0123456789abcdef","state":"DONE"}`, false},
		{"numeric state", "application/vnd.atlas.2025-03-12+json", `{"reportId":"89abcdef0123456789abcdef","state":2}`, false},
		{"bad report id", "application/vnd.atlas.2025-03-12+json", `{"reportId":"R1","state":"PENDING"}`, false},
		{"version 2023-01-01", typeJSON, ok, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			route, params, err := s.router.FindRoute(r)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			x := &exchange{s: s, w: &recorder{ResponseWriter: rec}, r: r, op: route.Operation.OperationID,
				input: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route}}
			x.sendJSON(http.StatusOK, tc.ct, []byte(tc.body))
			if tc.valid {
				if rec.Code != 200 || rec.Body.String() != tc.body {
					t.Fatalf("%d %s", rec.Code, rec.Body)
				}
				return
			}
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Code != 500 || e.ErrorCode != "SIMULATOR_INVALID_RESPONSE" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}
