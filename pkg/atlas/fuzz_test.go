package atlas_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ";")
}

func FuzzUsageQueryValidate(f *testing.F) {
	f.Add("2024-06-01", "2024-07-01", "", "", "", "", "", false)
	f.Add("2024-06-01", "2025-01-01", testOrg, testOrg+";32b6e34b3d91647abb20e7b8", "", "Atlas;Data Transfer", "services", true)
	f.Add("2024-06-02", "2024-07-01", "", "", "", "", "", false)
	f.Add("2024-07-01", "2024-06-01", "", "", "", "", "", false)
	f.Add("2024-06-01", "2024-07-01", "../x", "", "", "", "", false)
	f.Add("2024-06-01", "2024-07-01", "", "", "", "", "projects", false)
	f.Add("2024-06-01", "2024-07-01", "", "", strings.ToUpper(testOrg), "Lunch", "regions", false)
	f.Fuzz(func(t *testing.T, start, end, orgs, projects, clusters, services, groupBy string, partial bool) {
		q := atlas.UsageQuery{StartDate: start, EndDate: end, Organizations: split(orgs), Projects: split(projects),
			Clusters: split(clusters), Services: split(services), GroupBy: groupBy, IncludePartialMatches: partial}
		err := q.Validate()
		if err != nil {
			var ve *atlas.ValidationError
			if !errors.As(err, &ve) || ve.Field == "" || ve.Reason == "" {
				t.Fatalf("Validate error %v is not a complete *ValidationError", err)
			}
			return
		}
		// Valid: the invariants hold, and the query survives a JSON round trip.
		s, err1 := time.Parse("2006-01-02", start)
		e, err2 := time.Parse("2006-01-02", end)
		if err1 != nil || err2 != nil || s.Day() != 1 || e.Day() != 1 || !e.After(s) {
			t.Fatalf("accepted dates %q %q", start, end)
		}
		for _, id := range slices.Concat(q.Organizations, q.Projects, q.Clusters) {
			if !hex24.MatchString(id) {
				t.Fatalf("accepted id %q", id)
			}
		}
		for _, svc := range q.Services {
			if !slices.Contains(atlas.Services, svc) {
				t.Fatalf("accepted service %q", svc)
			}
		}
		b, err := json.Marshal(q)
		if err != nil {
			t.Fatal(err)
		}
		var back atlas.UsageQuery
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
	})
}

var hex24 = regexp.MustCompile(`^[a-f0-9]{24}$`)

func FuzzValidateIDs(f *testing.F) {
	for _, s := range []string{testOrg, testToken, testInv, "", "../", strings.ToUpper(testOrg), testOrg + "\n", "%2e%2e%2f" + testToken[9:], testToken[:63] + "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := hex24.MatchString(s)
		if got := atlas.ValidateOrgID(s) == nil; got != want {
			t.Fatalf("ValidateOrgID(%q) ok=%v, want %v", s, got, want)
		}
		if got := atlas.ValidateInvoiceID(s) == nil; got != want {
			t.Fatalf("ValidateInvoiceID(%q) ok=%v, want %v", s, got, want)
		}
		if atlas.ValidateToken(s) == nil {
			// A valid token is a single, unescaped path segment.
			if len(s) != 64 || url.PathEscape(s) != s || strings.ContainsAny(s, "/.%?#") {
				t.Fatalf("ValidateToken accepted %q", s)
			}
		}
	})
}

func FuzzDecodeError(f *testing.F) {
	f.Add(404, []byte(`{"error":404,"errorCode":"RESOURCE_NOT_FOUND","detail":"x","reason":"Not Found","parameters":[{"a":1}]}`))
	f.Add(401, []byte(`{"error":"invalid_client","error_description":"bad"}`))
	f.Add(500, []byte(`<html>oops</html>`))
	f.Add(400, []byte(`{"error":400,"badRequestDetail":{"fields":[{"field":"a","description":"b"}]},"detail":null}`))
	f.Add(0, []byte(`{"error":99999999999999999999}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := atlas.DecodeError(status, body)
		if e == nil {
			t.Fatal("nil *Error")
		}
		if e.StatusCode != status {
			t.Fatalf("StatusCode %d, want the HTTP status %d", e.StatusCode, status)
		}
		msg := e.Error()
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("multi-line message %q", msg)
		}
		if len(e.Detail) > 1100 || len(e.ErrorCode) > 140 || len(e.Reason) > 300 {
			t.Fatalf("unbounded fields: %d %d %d", len(e.Detail), len(e.ErrorCode), len(e.Reason))
		}
	})
}
