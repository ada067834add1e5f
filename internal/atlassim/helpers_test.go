package atlassim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/mongodb-forks/digest"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
)

const (
	jsonType = "application/vnd.atlas.2023-01-01+json"
	csvType  = "application/vnd.atlas.2023-01-01+csv"
)

var (
	org1 = atlassim.DefaultOrgs[0].ID
	org2 = atlassim.DefaultOrgs[1].ID
)

// fixedNow pins the calendar: invoices from 2024-06 to 2025-06 (pending).
func fixedNow() time.Time { return time.Date(2025, 6, 14, 10, 0, 0, 0, time.UTC) }

type scheme string

const (
	oauth     scheme = "oauth"
	digestKey scheme = "digest"
)

// client returns an http.Client authenticating with the default credentials.
func client(t testing.TB, base string, s scheme, tr http.RoundTripper) *http.Client {
	t.Helper()
	if tr == nil {
		tr = http.DefaultTransport.(*http.Transport).Clone()
	}
	switch s {
	case oauth:
		cc := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret, TokenURL: base + "/api/oauth/token"}
		ctx := context.WithValue(context.Background(), oauth2HTTPClient, &http.Client{Transport: tr, Timeout: 10 * time.Second})
		c := cc.Client(ctx)
		c.Timeout = 30 * time.Second
		return c
	case digestKey:
		return &http.Client{Transport: digest.NewTransportWithHTTPRoundTripper(atlassim.DefaultPublicKey, atlassim.DefaultPrivateKey, tr), Timeout: 30 * time.Second}
	}
	t.Fatalf("unknown scheme %q", s)
	return nil
}

// call makes one request and returns status, headers and body.
func call(t testing.TB, c *http.Client, method, url, accept string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if body != nil {
		req.Header.Set("Content-Type", jsonType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// poll GETs a usage token once and reports whether a 102 came first (seen
// through httptrace, since net/http never returns a 1xx as the response).
func poll(t testing.TB, c *http.Client, url, accept string) (got102 bool, status int, body []byte, err error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", accept)
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textprotoHeader) error {
		if code == http.StatusProcessing {
			got102 = true
		}
		return nil
	}}
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), trace))
	resp, err := c.Do(req)
	if err != nil {
		return got102, 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	return got102, resp.StatusCode, body, err
}

type apiErr struct {
	Detail    string `json:"detail"`
	Error     int    `json:"error"`
	ErrorCode string `json:"errorCode"`
	Reason    string `json:"reason"`
}

func decodeErr(t testing.TB, b []byte) apiErr {
	t.Helper()
	var e apiErr
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("ApiError body %q: %v", b, err)
	}
	return e
}

func start(t testing.TB, cfg atlassim.Config) (*atlassim.Server, string) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	return atlassimtest.Start(t, cfg)
}

func usageQuery() atlassim.UsageQuery {
	return atlassim.UsageQuery{StartDate: "2025-05-01", EndDate: "2025-06-01"}
}

func orgURL(base, org, rest string) string {
	return base + "/api/atlas/v2/orgs/" + org + rest
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
