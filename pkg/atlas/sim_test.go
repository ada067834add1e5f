package atlas_test

// Integration tests against the project's Atlas simulator (a real HTTP
// server validating against the OpenAPI subset, with both auth schemes,
// real 102s and injected faults), over loopback.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

var simOrg = atlassim.DefaultOrgs[0].ID

type authScheme struct {
	name string
	opt  atlas.Option
}

var schemes = []authScheme{
	{"serviceaccount", atlas.WithServiceAccount(atlassim.DefaultClientID, atlassim.DefaultClientSecret)},
	{"apikey", atlas.WithAPIKey(atlassim.DefaultPublicKey, atlassim.DefaultPrivateKey)},
}

// simNow pins the calendar: invoices 2023-07 .. 2024-06 closed or paid,
// 2024-07 pending.
func simNow() time.Time { return time.Date(2024, 7, 15, 12, 0, 0, 0, time.UTC) }

type sim struct {
	*atlassim.Server
	url string
	hc  *http.Client // nil for plain HTTP/1.1
}

func startSim(t *testing.T, tls bool, cfg atlassim.Config) *sim {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = simNow
	}
	if cfg.ReadyAfterPolls == 0 && cfg.ProcessingTime == 0 {
		cfg.ReadyAfterPolls = 2
	}
	if tls {
		s, u, hc := atlassimtest.StartTLS(t, cfg)
		return &sim{s, u, hc}
	}
	s, u := atlassimtest.Start(t, cfg)
	return &sim{Server: s, url: u}
}

func (s *sim) client(t *testing.T, auth authScheme, opts ...atlas.Option) *atlas.Client {
	t.Helper()
	all := []atlas.Option{auth.opt, atlas.WithRetry(quickRetry)}
	if s.hc != nil {
		all = append(all, atlas.WithHTTPClient(s.hc))
	}
	return newClient(t, s.url, append(all, opts...)...)
}

var simQuery = atlas.UsageQuery{StartDate: "2024-05-01", EndDate: "2024-07-01", Services: []string{"Clusters", "Data Transfer"}, GroupBy: "services"}

// simUsageQuery is q as the client sends it for simOrg.
func simUsageQuery(q atlas.UsageQuery) atlassim.UsageQuery {
	if len(q.Organizations) == 0 {
		q.Organizations = []string{simOrg}
	}
	return atlassim.UsageQuery{StartDate: q.StartDate, EndDate: q.EndDate, Organizations: q.Organizations, Projects: q.Projects,
		Clusters: q.Clusters, Services: q.Services, GroupBy: q.GroupBy, IncludePartialMatches: q.IncludePartialMatches}
}

// pollUsage polls until ready, at most max times, and returns the polls made.
func pollUsage(t *testing.T, c *atlas.Client, token string, f atlas.Format, max int) (*atlas.Usage, int) {
	t.Helper()
	for i := 1; i <= max; i++ {
		u, err := c.GetUsage(ctxTimeout(t, 10*time.Second), simOrg, token, f)
		if err != nil {
			t.Fatalf("GetUsage poll %d: %v", i, err)
		}
		if !u.Processing {
			return u, i
		}
	}
	t.Fatalf("still processing after %d polls", max)
	return nil, 0
}

func readAll(t *testing.T, rc io.ReadCloser) []byte {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

// eachTransport runs fn in parallel subtests, one per auth scheme over
// HTTP/1.1 and over HTTP/2 (TLS), each with a simulator of its own (cfg)
// and a client for it.
func eachTransport(t *testing.T, cfg atlassim.Config, fn func(t *testing.T, s *sim, c *atlas.Client)) {
	t.Helper()
	for _, tls := range []bool{false, true} {
		for _, auth := range schemes {
			name := auth.name + "/http1"
			if tls {
				name = auth.name + "/http2"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := startSim(t, tls, cfg)
				fn(t, s, s.client(t, auth))
			})
		}
	}
}

// Every operation, both auth schemes, HTTP/1.1 and HTTP/2 over TLS.
func TestSimOperations(t *testing.T) {
	t.Parallel()
	eachTransport(t, atlassim.Config{}, func(t *testing.T, s *sim, c *atlas.Client) {
		ctx := ctxTimeout(t, 30*time.Second)

		// Cost Explorer, CSV: two real 102s, then the result.
		tok, err := c.CreateUsageQuery(ctx, simOrg, simQuery)
		if err != nil {
			t.Fatalf("CreateUsageQuery: %v", err)
		}
		u, polls := pollUsage(t, c, tok, atlas.CSV, 5)
		if polls != 3 || s.Requests(atlassim.OpGetUsage) != 3 {
			t.Errorf("ready after %d polls, %d requests; want 3", polls, s.Requests(atlassim.OpGetUsage))
		}
		var want bytes.Buffer
		if err := s.WriteUsageCSV(&want, simOrg, simUsageQuery(simQuery)); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, u.Body); !bytes.Equal(got, want.Bytes()) || u.ContentType != "application/vnd.atlas.2023-01-01+csv" {
			t.Errorf("usage CSV: %d bytes (%s), want the simulator's %d", len(got), u.ContentType, want.Len())
		}

		// Cost Explorer, JSON.
		tok, err = c.CreateUsageQuery(ctx, simOrg, atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"})
		if err != nil {
			t.Fatal(err)
		}
		u, _ = pollUsage(t, c, tok, atlas.JSON, 5)
		var res struct {
			UsageDetails []struct {
				InvoiceID, OrganizationID, Service string
				UsageAmount                        json.Number
			} `json:"usageDetails"`
		}
		if err := json.Unmarshal(readAll(t, u.Body), &res); err != nil || len(res.UsageDetails) == 0 || res.UsageDetails[0].OrganizationID != simOrg {
			t.Errorf("usage JSON: %+v, %v", res, err)
		}
		if s.Requests(atlassim.OpCreateUsage) != 2 {
			t.Errorf("%d create requests, want 2", s.Requests(atlassim.OpCreateUsage))
		}

		// Invoices: all of them, then in pages of 5.
		wantInv := s.Invoices(simOrg)
		inv, err := c.ListInvoices(ctx, simOrg, nil)
		if err != nil {
			t.Fatalf("ListInvoices: %v", err)
		}
		checkInvoices(t, inv, wantInv)
		asc := &atlas.InvoiceListOptions{ItemsPerPage: 5, SortBy: "START_DATE", OrderBy: "asc"}
		inv, err = c.ListInvoices(ctx, simOrg, asc)
		if err != nil {
			t.Fatal(err)
		}
		checkInvoices(t, inv, wantInv)
		for i := 1; i < len(inv); i++ {
			if inv[i].StartDate.Before(inv[i-1].StartDate) {
				t.Errorf("not in ascending order at %d", i)
			}
		}
		pages := (len(wantInv) + 4) / 5
		if n := s.Requests(atlassim.OpListInvoices); n != 1+pages {
			t.Errorf("%d list requests, want %d", n, 1+pages)
		}
		paid, err := c.ListInvoices(ctx, simOrg, &atlas.InvoiceListOptions{StatusNames: []string{"PAID"}, FromDate: "2024-01-01"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paid {
			if p.StatusName != "PAID" || p.StartDate.Before(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("filtered list has %+v", p)
			}
		}

		pending, err := c.PendingInvoices(ctx, simOrg)
		if err != nil || len(pending) != 1 || pending[0].StatusName != "PENDING" || pending[0].StartDate.Month() != time.July {
			t.Fatalf("PendingInvoices = %+v, %v", pending, err)
		}

		// One invoice CSV: the exact bytes (internal/normalize reads them).
		closed := wantInv[len(wantInv)-2]
		rc, err := c.InvoiceCSV(ctx, simOrg, closed.ID)
		if err != nil {
			t.Fatalf("InvoiceCSV: %v", err)
		}
		got := readAll(t, rc)
		want.Reset()
		if err := s.WriteInvoiceCSV(&want, simOrg, closed.ID); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("invoice CSV: %d bytes, want %d", len(got), want.Len())
		}
		// Unknown ids are a typed 404.
		if _, err := c.InvoiceCSV(ctx, simOrg, strings.Repeat("0", 24)); !atlas.IsNotFound(err) {
			t.Errorf("unknown invoice: %v, want not found", err)
		}
		if _, err := c.GetUsage(ctx, simOrg, strings.Repeat("a", 64), atlas.CSV); !atlas.IsNotFound(err) {
			t.Errorf("unknown token: %v, want not found", err)
		}
		if _, err := c.PendingInvoices(ctx, strings.Repeat("0", 24)); !atlas.IsNotFound(err) {
			t.Errorf("unknown org: %v, want not found", err)
		}
	})
}

func checkInvoices(t *testing.T, got []atlas.Invoice, want []atlassim.Invoice) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d invoices, want %d", len(got), len(want))
	}
	byID := map[string]atlassim.Invoice{}
	for _, w := range want {
		byID[w.ID] = w
	}
	for _, g := range got {
		w, ok := byID[g.ID]
		if !ok || g.OrgID != w.OrgID || g.StatusName != w.Status || !g.StartDate.Equal(w.Start) || !g.EndDate.Equal(w.End) ||
			g.AmountBilledCents != w.AmountBilledCents || g.AmountPaidCents != w.AmountPaidCents || g.CreditsCents != w.CreditsCents ||
			g.SubtotalCents != w.SubtotalCents || g.SalesTaxCents != w.SalesTaxCents {
			t.Errorf("invoice %+v, want %+v", g, w)
		}
		delete(byID, g.ID)
	}
	if len(byID) != 0 {
		t.Errorf("missing invoices %v", byID)
	}
}

type env struct {
	s    *sim
	c    *atlas.Client
	auth authScheme
	inv  atlassim.Invoice // a closed invoice
}

// Each fault kind, with both auth schemes.
func TestSimFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault atlassim.Fault
		ready bool // queries are ready at once (no 102 takes the fault)
		opts  []atlas.Option
		run   func(t *testing.T, e env)
	}{
		{
			name:  "429 Retry-After honoured",
			fault: atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second},
			run: func(t *testing.T, e env) {
				start := time.Now()
				inv, err := e.c.ListInvoices(ctxTimeout(t, 10*time.Second), simOrg, nil)
				if err != nil || len(inv) != len(e.s.Invoices(simOrg)) {
					t.Fatalf("ListInvoices = %d, %v", len(inv), err)
				}
				if d := time.Since(start); d < time.Second {
					t.Errorf("retried after %s, want >= 1s", d)
				}
				wantRequests(t, e.s, atlassim.OpListInvoices, 2)
			},
		},
		{
			name:  "503 Retry-After honoured",
			fault: atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Status, Status: 503, RetryAfter: time.Second},
			run: func(t *testing.T, e env) {
				start := time.Now()
				rc, err := e.c.InvoiceCSV(ctxTimeout(t, 10*time.Second), simOrg, e.inv.ID)
				if err != nil {
					t.Fatal(err)
				}
				wantInvoiceCSV(t, e, rc)
				if d := time.Since(start); d < time.Second {
					t.Errorf("retried after %s, want >= 1s", d)
				}
				wantRequests(t, e.s, atlassim.OpGetInvoiceCSV, 2)
			},
		},
		{
			name:  "500 twice on create",
			fault: atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 500, Times: 2},
			run: func(t *testing.T, e env) {
				tok, err := e.c.CreateUsageQuery(ctxTimeout(t, 10*time.Second), simOrg, simQuery)
				if err != nil || atlas.ValidateToken(tok) != nil {
					t.Fatalf("CreateUsageQuery = %q, %v", tok, err)
				}
				wantRequests(t, e.s, atlassim.OpCreateUsage, 3)
			},
		},
		{
			name:  "502 then 504 on pending",
			fault: atlassim.Fault{Op: atlassim.OpPendingInvoice, Kind: atlassim.Status, Status: 502},
			run: func(t *testing.T, e env) {
				e.s.Inject(atlassim.Fault{Op: atlassim.OpPendingInvoice, Kind: atlassim.Status, Status: 504})
				if p, err := e.c.PendingInvoices(ctxTimeout(t, 10*time.Second), simOrg); err != nil || len(p) != 1 {
					t.Fatalf("PendingInvoices = %v, %v", p, err)
				}
				wantRequests(t, e.s, atlassim.OpPendingInvoice, 3)
			},
		},
		{
			name:  "429 beyond the budget",
			fault: atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Status, Status: 429, Times: 10},
			opts:  []atlas.Option{atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 3, MaxElapsed: 10 * time.Second, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond})},
			run: func(t *testing.T, e env) {
				_, err := e.c.GetUsage(ctxTimeout(t, 10*time.Second), simOrg, strings.Repeat("b", 64), atlas.CSV)
				var re *atlas.RetryError
				var ae *atlas.Error
				if !atlas.IsRateLimited(err) || !errors.As(err, &re) || !errors.As(err, &ae) || re.Attempts != 3 || ae.ErrorCode != "RATE_LIMITED" {
					t.Fatalf("error = %v, want a rate-limited *RetryError after 3 attempts", err)
				}
				wantRequests(t, e.s, atlassim.OpGetUsage, 3)
			},
		},
		{
			name:  "reset mid-body after hand-over",
			fault: atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 1000},
			run: func(t *testing.T, e env) {
				rc, err := e.c.InvoiceCSV(ctxTimeout(t, 10*time.Second), simOrg, e.inv.ID)
				if err != nil {
					t.Fatal(err)
				}
				n, err := io.Copy(io.Discard, rc)
				rc.Close()
				if !atlas.IsStreamBroken(err) || n != 1000 {
					t.Fatalf("read %d bytes, err %v; want a *StreamError after 1000", n, err)
				}
				wantRequests(t, e.s, atlassim.OpGetInvoiceCSV, 1)
			},
		},
		{
			name:  "reset mid-body of a JSON page is retried",
			fault: atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Reset, After: 100},
			run: func(t *testing.T, e env) {
				inv, err := e.c.ListInvoices(ctxTimeout(t, 10*time.Second), simOrg, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkInvoices(t, inv, e.s.Invoices(simOrg))
				wantRequests(t, e.s, atlassim.OpListInvoices, 2)
			},
		},
		{
			name:  "truncated usage body",
			fault: atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Truncate, After: 300},
			ready: true,
			run: func(t *testing.T, e env) {
				tok, err := e.c.CreateUsageQuery(ctxTimeout(t, 10*time.Second), simOrg, simQuery)
				if err != nil {
					t.Fatal(err)
				}
				u, polls := pollUsage(t, e.c, tok, atlas.CSV, 1)
				if polls != 1 {
					t.Fatalf("%d polls", polls)
				}
				n, err := io.Copy(io.Discard, u.Body)
				u.Body.Close()
				if !atlas.IsStreamBroken(err) || !errors.Is(err, io.ErrUnexpectedEOF) || n != 300 {
					t.Fatalf("read %d bytes, err %v; want io.ErrUnexpectedEOF after 300", n, err)
				}
			},
		},
		{
			name:  "truncated JSON page is retried",
			fault: atlassim.Fault{Op: atlassim.OpPendingInvoice, Kind: atlassim.Truncate, After: 50},
			run: func(t *testing.T, e env) {
				if p, err := e.c.PendingInvoices(ctxTimeout(t, 10*time.Second), simOrg); err != nil || len(p) != 1 {
					t.Fatalf("PendingInvoices = %v, %v", p, err)
				}
				wantRequests(t, e.s, atlassim.OpPendingInvoice, 2)
			},
		},
		{
			name:  "slow body beyond the client timeout",
			fault: atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.SlowBody, Delay: 300 * time.Millisecond},
			run: func(t *testing.T, e env) {
				hc := &http.Client{Timeout: 500 * time.Millisecond}
				if e.s.hc != nil {
					hc.Transport = e.s.hc.Transport
				}
				c := e.s.client(t, e.auth, atlas.WithHTTPClient(hc))
				rc, err := c.InvoiceCSV(ctxTimeout(t, 10*time.Second), simOrg, e.inv.ID)
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
				var ne net.Error
				if !atlas.IsStreamBroken(err) || !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("err = %v, want a *StreamError with a timeout", err)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("timeout took %s", d)
				}
				wantRequests(t, e.s, atlassim.OpGetInvoiceCSV, 1)
			},
		},
		{
			name:  "slow body within the timeout",
			fault: atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.SlowBody, Delay: 20 * time.Millisecond},
			run: func(t *testing.T, e env) {
				rc, err := e.c.InvoiceCSV(ctxTimeout(t, 10*time.Second), simOrg, e.inv.ID)
				if err != nil {
					t.Fatal(err)
				}
				wantInvoiceCSV(t, e, rc)
			},
		},
		{
			name:  "expired credentials are renewed once",
			fault: atlassim.Fault{Op: atlassim.OpPendingInvoice, Kind: atlassim.ExpiredToken},
			run: func(t *testing.T, e env) {
				if p, err := e.c.PendingInvoices(ctxTimeout(t, 10*time.Second), simOrg); err != nil || len(p) != 1 {
					t.Fatalf("PendingInvoices = %v, %v", p, err)
				}
				wantRequests(t, e.s, atlassim.OpPendingInvoice, 2)
				if e.auth.name == "serviceaccount" {
					wantRequests(t, e.s, atlassim.OpOAuthToken, 2)
				}
			},
		},
		{
			name:  "token endpoint 503",
			fault: atlassim.Fault{Op: atlassim.OpOAuthToken, Kind: atlassim.Status, Status: 503, RetryAfter: time.Second},
			run: func(t *testing.T, e env) {
				if _, err := e.c.PendingInvoices(ctxTimeout(t, 10*time.Second), simOrg); err != nil {
					t.Fatal(err)
				}
				if e.auth.name == "serviceaccount" {
					wantRequests(t, e.s, atlassim.OpOAuthToken, 2)
				} else if e.s.PendingFaults() != 1 {
					t.Errorf("digest auth used the token endpoint")
				}
			},
		},
		{
			name: "revoked credentials",
			run: func(t *testing.T, e env) {
				ctx := ctxTimeout(t, 10*time.Second)
				if _, err := e.c.PendingInvoices(ctx, simOrg); err != nil {
					t.Fatal(err)
				}
				if e.auth.name == "serviceaccount" {
					e.s.RevokeServiceAccount(atlassim.DefaultClientID)
				} else {
					e.s.RevokeAPIKey(atlassim.DefaultPublicKey)
				}
				_, err := e.c.PendingInvoices(ctx, simOrg)
				if !atlas.IsUnauthorized(err) || errors.Is(err, atlas.ErrTooManyAttempts) {
					t.Fatalf("error = %v, want unauthorized, not retried", err)
				}
				if strings.Contains(err.Error(), atlassim.DefaultClientSecret) || strings.Contains(err.Error(), atlassim.DefaultPrivateKey) {
					t.Errorf("error leaks a credential: %v", err)
				}
				if e.auth.name == "serviceaccount" {
					wantRequests(t, e.s, atlassim.OpOAuthToken, 2) // the first, and the refresh refused
				}
			},
		},
		{
			name:  "not found fault",
			fault: atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.NotFound},
			run: func(t *testing.T, e env) {
				_, err := e.c.InvoiceCSV(ctxTimeout(t, 10*time.Second), simOrg, e.inv.ID)
				var ae *atlas.Error
				if !atlas.IsNotFound(err) || !errors.As(err, &ae) || ae.ErrorCode != "RESOURCE_NOT_FOUND" {
					t.Fatalf("error = %v, want RESOURCE_NOT_FOUND", err)
				}
				wantRequests(t, e.s, atlassim.OpGetInvoiceCSV, 1)
			},
		},
		{
			name:  "never ready",
			fault: atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.NeverReady},
			run: func(t *testing.T, e env) {
				tok, err := e.c.CreateUsageQuery(ctxTimeout(t, 10*time.Second), simOrg, simQuery)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 6; i++ {
					u, err := e.c.GetUsage(ctxTimeout(t, 10*time.Second), simOrg, tok, atlas.CSV)
					if err != nil || !u.Processing {
						t.Fatalf("poll %d = %+v, %v; want Processing", i, u, err)
					}
				}
				wantRequests(t, e.s, atlassim.OpGetUsage, 6)
			},
		},
		{
			name:  "wrong media type",
			fault: atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.WrongMediaType},
			run: func(t *testing.T, e env) {
				_, err := e.c.InvoiceCSV(ctxTimeout(t, 10*time.Second), simOrg, e.inv.ID)
				var me *atlas.MediaTypeError
				if !errors.As(err, &me) || !strings.HasPrefix(me.Got, "text/html") {
					t.Fatalf("error = %v, want *MediaTypeError", err)
				}
				wantRequests(t, e.s, atlassim.OpGetInvoiceCSV, 1)
			},
		},
		{
			name:  "malformed JSON",
			fault: atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.MalformedJSON},
			run: func(t *testing.T, e env) {
				_, err := e.c.ListInvoices(ctxTimeout(t, 10*time.Second), simOrg, nil)
				var ae *atlas.AnswerError
				if !errors.As(err, &ae) || !strings.Contains(ae.Reason, "ends early") {
					t.Fatalf("error = %v, want an *AnswerError", err)
				}
				wantRequests(t, e.s, atlassim.OpListInvoices, 1)
			},
		},
	}
	for _, tc := range tests {
		for _, auth := range schemes {
			t.Run(tc.name+"/"+auth.name, func(t *testing.T) {
				t.Parallel()
				cfg := atlassim.Config{}
				if tc.ready {
					cfg.ProcessingTime = -1
				}
				s := startSim(t, false, cfg)
				if tc.fault.Kind != 0 {
					s.Inject(tc.fault)
				}
				invs := s.Invoices(simOrg)
				tc.run(t, env{s: s, c: s.client(t, auth, tc.opts...), auth: auth, inv: invs[len(invs)-2]})
			})
		}
	}
}

func wantRequests(t *testing.T, s *sim, op string, n int) {
	t.Helper()
	if got := s.Requests(op); got != n {
		t.Errorf("%s: %d requests, want %d", op, got, n)
	}
}

func wantInvoiceCSV(t *testing.T, e env, rc io.ReadCloser) {
	t.Helper()
	got := readAll(t, rc)
	var want bytes.Buffer
	if err := e.s.WriteInvoiceCSV(&want, simOrg, e.inv.ID); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("invoice CSV: %d bytes, want %d", len(got), want.Len())
	}
}

// The simulator's HTTP/2 variant sends each 102 with END_STREAM: two polls
// still processing, then the result.
func TestSimH2EndStream102(t *testing.T) {
	t.Parallel()
	s := startSim(t, true, atlassim.Config{Variants: []atlassim.Variant{atlassim.H2EndStream102}})
	c := s.client(t, schemes[0])
	tok, err := c.CreateUsageQuery(ctxTimeout(t, 10*time.Second), simOrg, simQuery)
	if err != nil {
		t.Fatal(err)
	}
	u, polls := pollUsage(t, c, tok, atlas.CSV, 5)
	var want bytes.Buffer
	if err := s.WriteUsageCSV(&want, simOrg, simUsageQuery(simQuery)); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, u.Body); polls != 3 || s.Requests(atlassim.OpGetUsage) != 3 || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("ready after %d polls (%d requests), %d bytes; want 3, 3, %d", polls, s.Requests(atlassim.OpGetUsage), len(got), want.Len())
	}
}
