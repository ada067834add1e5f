package atlassim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
)

func TestStatusFaults(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter time.Duration
		wantRA     string
		code       string
	}{
		{429, 2 * time.Second, "2", "RATE_LIMITED"},
		{503, 1500 * time.Millisecond, "2", "SERVICE_UNAVAILABLE"},
		{500, 0, "", "UNEXPECTED_ERROR"},
		{502, time.Second, "", "BAD_GATEWAY"}, // Retry-After only on 429/503
		{504, 0, "", "GATEWAY_TIMEOUT"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			srv, base := start(t, atlassim.Config{})
			c := client(t, base, digestKey, nil)
			srv.Inject(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: tc.status, RetryAfter: tc.retryAfter, Times: 2})
			u := orgURL(base, org1, "/invoices")
			for i := range 2 {
				st, h, b := call(t, c, http.MethodGet, u, jsonType, nil)
				e := decodeErr(t, b)
				if st != tc.status || e.Error != tc.status || e.ErrorCode != tc.code || h.Get("Retry-After") != tc.wantRA {
					t.Fatalf("request %d: %d %s Retry-After %q", i+1, st, b, h.Get("Retry-After"))
				}
			}
			if st, _, _ := call(t, c, http.MethodGet, u, jsonType, nil); st != 200 {
				t.Fatalf("after Times=2: %d", st)
			}
			if n := srv.Requests(atlassim.OpListInvoices); n != 3 {
				t.Fatalf("Requests = %d, want 3", n)
			}
		})
	}
}

func TestFaultFIFOAndAnyOp(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	c := client(t, base, oauth, nil)
	srv.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.NotFound})
	srv.Inject(atlassim.Fault{Kind: atlassim.Status, Status: 500})
	srv.Inject(atlassim.Fault{Kind: atlassim.Status, Status: 502})
	pend := orgURL(base, org1, "/invoices/pending")
	if st, _, _ := call(t, c, http.MethodGet, pend, jsonType, nil); st != 500 {
		t.Fatalf("first any-op fault: %d, want 500", st)
	}
	if st, _, _ := call(t, c, http.MethodGet, pend, jsonType, nil); st != 502 {
		t.Fatalf("second any-op fault: %d, want 502", st)
	}
	if st, _, _ := call(t, c, http.MethodGet, pend, jsonType, nil); st != 200 {
		t.Fatalf("no fault left for pending: %d", st)
	}
	inv := srv.Invoices(org1)[0].ID
	st, _, b := call(t, c, http.MethodGet, orgURL(base, org1, "/invoices/"+inv+"/csv"), csvType, nil)
	if e := decodeErr(t, b); st != 404 || e.ErrorCode != "RESOURCE_NOT_FOUND" {
		t.Fatalf("NotFound fault: %d %s", st, b)
	}
	if n := srv.PendingFaults(); n != 0 {
		t.Fatalf("PendingFaults = %d", n)
	}
}

// fetch GETs url and returns what arrived before any error.
func fetch(t testing.TB, c *http.Client, url, accept string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", accept)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestCutFaults(t *testing.T) {
	type setup func(t *testing.T) (*atlassim.Server, string, *http.Client, bool)
	h1 := func(t *testing.T) (*atlassim.Server, string, *http.Client, bool) {
		srv, base := start(t, atlassim.Config{})
		return srv, base, client(t, base, oauth, nil), false
	}
	h2 := func(t *testing.T) (*atlassim.Server, string, *http.Client, bool) {
		srv, base, hc := atlassimtest.StartTLS(t, atlassim.Config{Now: fixedNow})
		return srv, base, client(t, base, digestKey, hc.Transport), true
	}
	for name, mk := range map[string]setup{"http1": h1, "http2": h2} {
		t.Run(name, func(t *testing.T) {
			srv, base, c, isH2 := mk(t)
			inv := srv.Invoices(org1)[3].ID
			u := orgURL(base, org1, "/invoices/"+inv+"/csv")
			_, full, err := fetch(t, c, u, csvType)
			if err != nil {
				t.Fatal(err)
			}

			srv.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Truncate, After: 1000})
			resp, got, err := fetch(t, c, u, csvType)
			if err == nil || resp == nil || resp.ContentLength != int64(len(full)) || string(got) != string(full[:len(got)]) || len(got) > 1000 {
				t.Fatalf("Truncate: err=%v, got %d bytes of %d", err, len(got), len(full))
			}
			if !isH2 && (!errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 1000) {
				t.Fatalf("Truncate over HTTP/1.1: %v after %d bytes, want unexpected EOF after 1000", err, len(got))
			}

			srv.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 500})
			resp, got, err = fetch(t, c, u, csvType)
			if err == nil || resp == nil || len(got) > 500 || string(got) != string(full[:len(got)]) {
				t.Fatalf("Reset: err=%v after %d bytes", err, len(got))
			}
			if !isH2 && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Reset over HTTP/1.1: %v, want connection reset", err)
			}
			if isH2 && !strings.Contains(err.Error(), "stream error") {
				t.Fatalf("Reset over HTTP/2: %v, want a stream error", err)
			}

			// The server still answers normally afterwards.
			if _, again, err := fetch(t, c, u, csvType); err != nil || string(again) != string(full) {
				t.Fatalf("after faults: err=%v, %d bytes", err, len(again))
			}
		})
	}
}

func TestBodyFaults(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	c := client(t, base, oauth, nil)
	u := orgURL(base, org1, "/invoices?itemsPerPage=3")
	_, want, err := fetch(t, c, u, jsonType)
	if err != nil {
		t.Fatal(err)
	}

	const delay = 40 * time.Millisecond
	srv.Inject(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.SlowBody, Delay: delay})
	t0 := time.Now()
	_, got, err := fetch(t, c, u, jsonType)
	if err != nil || string(got) != string(want) {
		t.Fatalf("SlowBody: err=%v, body differs", err)
	}
	if el := time.Since(t0); el < 3*delay { // 4 chunks, a pause after each
		t.Fatalf("SlowBody took %s, want at least %s", el, 3*delay)
	}

	srv.Inject(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.WrongMediaType})
	resp, got, err := fetch(t, c, u, jsonType)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(got), "<html>") {
		t.Fatalf("WrongMediaType: %v %v %q", err, resp.Header, got)
	}

	srv.Inject(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.MalformedJSON})
	resp, got, err = fetch(t, c, u, jsonType)
	var v any
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != jsonType || json.Unmarshal(got, &v) == nil {
		t.Fatalf("MalformedJSON: %v %d %q", err, resp.StatusCode, got)
	}
	if !strings.HasPrefix(string(want), string(got)) {
		t.Fatalf("MalformedJSON body is not a cut of the real one: %q", got)
	}
}

func TestExpiredTokenFault(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	cc := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret, TokenURL: base + "/api/oauth/token"}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	get := func(bearer string) int {
		req, _ := http.NewRequest(http.MethodGet, orgURL(base, org1, "/invoices/pending"), nil)
		req.Header.Set("Accept", jsonType)
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	srv.Inject(atlassim.Fault{Kind: atlassim.ExpiredToken})
	if st := get(tok.AccessToken); st != 401 {
		t.Fatalf("with ExpiredToken: %d", st)
	}
	if st := get(tok.AccessToken); st != 401 {
		t.Fatalf("same token after ExpiredToken: %d, want 401 (token forgotten)", st)
	}
	tok2, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st := get(tok2.AccessToken); st != 200 {
		t.Fatalf("new token: %d", st)
	}

	// Digest: a 401 with a stale challenge.
	srv.Inject(atlassim.Fault{Kind: atlassim.ExpiredToken})
	st, h, _ := call(t, client(t, base, digestKey, nil), http.MethodGet, orgURL(base, org1, "/invoices/pending"), jsonType, nil)
	if st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), "stale=true") {
		t.Fatalf("digest ExpiredToken: %d %q", st, h.Get("WWW-Authenticate"))
	}
}

func TestNeverReadyFault(t *testing.T) {
	for _, op := range []string{atlassim.OpCreateUsage, atlassim.OpGetUsage} {
		t.Run(op, func(t *testing.T) {
			srv, base := start(t, atlassim.Config{ReadyAfterPolls: 1})
			c := client(t, base, oauth, nil)
			srv.Inject(atlassim.Fault{Op: op, Kind: atlassim.NeverReady})
			u := newQuery(t, c, base, org1)
			for i := range 5 {
				got102, _, _, err := poll(t, c, u, csvType)
				if !got102 || err == nil {
					t.Fatalf("poll %d: got102=%v err=%v", i+1, got102, err)
				}
			}
			other := newQuery(t, c, base, org1) // not affected
			poll(t, c, other, csvType)
			if got102, st, _, err := poll(t, c, other, csvType); got102 || err != nil || st != 200 {
				t.Fatalf("another query: got102=%v %d %v", got102, st, err)
			}
			if n := srv.Requests(atlassim.OpGetUsage); n != 7 {
				t.Fatalf("Requests(get usage) = %d, want 7", n)
			}
		})
	}
}

func TestTokenEndpointFault(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	srv.Inject(atlassim.Fault{Op: atlassim.OpOAuthToken, Kind: atlassim.Status, Status: 503, RetryAfter: time.Second})
	// AuthStyleInHeader: auto-detection would retry a failed attempt.
	cc := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret, TokenURL: base + "/api/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	if _, err := cc.Token(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("token with a 503 fault: %v", err)
	}
	if _, err := cc.Token(context.Background()); err != nil {
		t.Fatalf("token after the fault: %v", err)
	}
	if n := srv.Requests(atlassim.OpOAuthToken); n != 2 {
		t.Fatalf("Requests(oauthToken) = %d", n)
	}
}
