package atlassim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
)

// TestInvalidResponseIsCaught: an answer that breaks the spec never leaves
// the simulator as if it were valid; it becomes a 500 naming the violation.
func TestInvalidResponseIsCaught(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, ct string
		status         int
		body           string
	}{
		{"results not an array", "/api/atlas/v2/orgs/" + DefaultOrgs[0].ID + "/invoices", typeJSON, 200, `{"results":"nope"}`},
		{"bad invoice id", "/api/atlas/v2/orgs/" + DefaultOrgs[0].ID + "/invoices/pending", typeJSON, 200, `{"results":[{"id":"XYZ"}]}`},
		{"undeclared media type", "/api/atlas/v2/orgs/" + DefaultOrgs[0].ID + "/invoices", "application/xml", 200, `{"results":[]}`},
		{"undeclared success status", "/api/atlas/v2/orgs/" + DefaultOrgs[0].ID + "/invoices", typeJSON, 201, `{"results":[]}`},
		{"ApiError without errorCode", "/api/atlas/v2/orgs/" + DefaultOrgs[0].ID + "/invoices", typeAPIError, 404, `{"error":404}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			route, params, err := s.router.FindRoute(r)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			x := &exchange{s: s, w: &recorder{ResponseWriter: rec}, r: r, op: route.Operation.OperationID,
				input: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route}}
			x.sendJSON(tc.status, tc.ct, []byte(tc.body))
			var e apiError
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if rec.Code != 500 || e.ErrorCode != "SIMULATOR_INVALID_RESPONSE" || e.Detail == "" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestAppendCents(t *testing.T) {
	for c, want := range map[int64]string{0: "0.00", 5: "0.05", -5: "-0.05", 101839: "1018.39", -2500: "-25.00", 100: "1.00"} {
		if got := formatCents(c); got != want {
			t.Errorf("formatCents(%d) = %q, want %q", c, got, want)
		}
	}
}

func TestAppendField(t *testing.T) {
	for in, want := range map[string]string{"plain": "plain", "a,b": `"a,b"`, `say "hi"`: `"say ""hi"""`, " lead": `" lead"`, "Zürich": "Zürich", "": ""} {
		if got := string(appendField(nil, in)); got != want {
			t.Errorf("appendField(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.HasSuffix(string(appendRecord(nil, "a", "b,c", "")), "a,\"b,c\",\n") {
		t.Error("appendRecord")
	}
}
