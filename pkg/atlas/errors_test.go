package atlas_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// An *Error reads as one line: the request when known, the status, the
// error code or else the status text, and the detail when there is one.
func TestErrorText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		e    atlas.Error
		want string
	}{
		{atlas.Error{StatusCode: 404, ErrorCode: "RESOURCE_NOT_FOUND", Detail: "no such invoice", Method: "GET", Path: "/api/atlas/v2/orgs/x/invoices/y"},
			"atlas: GET /api/atlas/v2/orgs/x/invoices/y: 404 RESOURCE_NOT_FOUND: no such invoice"},
		{atlas.Error{StatusCode: 503}, "atlas: 503 Service Unavailable"},
		{atlas.Error{StatusCode: 599}, "atlas: 599"},
		{atlas.Error{StatusCode: 429, ErrorCode: "RATE_LIMITED"}, "atlas: 429 RATE_LIMITED"},
		{atlas.Error{StatusCode: 400, Detail: "bad date"}, "atlas: 400 Bad Request: bad date"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// Each Is helper matches its statuses and no neighbour, through wrapping.
func TestStatusHelpers(t *testing.T) {
	t.Parallel()
	helpers := map[string]func(error) bool{
		"IsNotFound": atlas.IsNotFound, "IsUnauthorized": atlas.IsUnauthorized, "IsForbidden": atlas.IsForbidden,
		"IsRateLimited": atlas.IsRateLimited, "IsServerError": atlas.IsServerError,
	}
	matches := map[int]string{401: "IsUnauthorized", 403: "IsForbidden", 404: "IsNotFound", 429: "IsRateLimited",
		500: "IsServerError", 503: "IsServerError", 599: "IsServerError"}
	for _, status := range []int{400, 401, 402, 403, 404, 405, 428, 429, 430, 499, 500, 503, 599, 600} {
		err := fmt.Errorf("doing something: %w", &atlas.Error{StatusCode: status})
		for name, is := range helpers {
			if want := matches[status] == name; is(err) != want {
				t.Errorf("%s(%d) = %v, want %v", name, status, !want, want)
			}
		}
	}
	for name, is := range helpers {
		if is(errors.New("atlas: 500")) {
			t.Errorf("%s matches an error that is not an *Error", name)
		}
	}
}

// decodeError reads ApiError bodies and OAuth error bodies, and keeps their
// text to one bounded line.
func TestDecodeErrorBodies(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("d", 1024)
	for _, tc := range []struct {
		name, body    string
		code, detail  string
		reason        string
		badRequestLen int
	}{
		{name: "no error field", body: `{"errorCode":"UNEXPECTED_ERROR","detail":"x"}`, code: "UNEXPECTED_ERROR", detail: "x"},
		{name: "OAuth", body: `{"error":"invalid_client","error_description":"bad client"}`, code: "invalid_client", detail: "bad client"},
		{name: "errorCode wins over the OAuth code", body: `{"error":"invalid_client","errorCode":"X"}`, code: "X"},
		{name: "detail at its bound", body: `{"error":400,"detail":"` + long + `"}`, detail: long},
		{name: "detail over its bound", body: `{"error":400,"detail":"` + long + `é"}`, detail: long + "..."},
		{name: "cut inside a rune", body: `{"error":400,"detail":"` + long[1:] + `é"}`, detail: long[1:] + "..."},
		{name: "control characters", body: `{"error":400,"detail":"a\tb\u007fc\r\nd e"}`, detail: "a b c  d e"},
		{name: "reason", body: `{"error":400,"reason":"Bad Request"}`, reason: "Bad Request"},
		{name: "not JSON", body: `<html>`},
	} {
		e := atlas.DecodeError(400, []byte(tc.body))
		if e.StatusCode != 400 || e.ErrorCode != tc.code || e.Detail != tc.detail || e.Reason != tc.reason {
			t.Errorf("%s: got code %q detail %q reason %q; want %q %q %q", tc.name, e.ErrorCode, e.Detail, e.Reason, tc.code, tc.detail, tc.reason)
		}
	}
}
