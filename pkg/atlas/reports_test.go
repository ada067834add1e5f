package atlas_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// pollReport polls until the report is done, at most max times, and returns
// it with the states seen.
func pollReport(t *testing.T, c *atlas.Client, r atlas.Report, max int) (atlas.Report, []atlas.ReportState) {
	t.Helper()
	states := []atlas.ReportState{r.State}
	for range max {
		var err error
		r, err = c.GetInvoiceReport(ctxTimeout(t, 10*time.Second), simOrg, r.InvoiceID, r.ID)
		if err != nil {
			t.Fatalf("GetInvoiceReport: %v", err)
		}
		states = append(states, r.State)
		if r.State.Done() {
			return r, states
		}
	}
	t.Fatalf("report not done after %d polls: %v", max, states)
	return r, nil
}

// readyReport creates a report of inv and polls it to the end.
func readyReport(t *testing.T, c *atlas.Client, inv string) atlas.Report {
	t.Helper()
	r, err := c.CreateInvoiceReport(ctxTimeout(t, 10*time.Second), simOrg, inv)
	if err != nil {
		t.Fatalf("CreateInvoiceReport: %v", err)
	}
	r, _ = pollReport(t, c, r, 5)
	return r
}

func wantFocus(t *testing.T, s *sim, inv string, rc io.ReadCloser) {
	t.Helper()
	got := readAll(t, rc)
	var want bytes.Buffer
	if err := s.WriteFocusCSV(&want, simOrg, inv); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("FOCUS CSV: %d bytes, want the simulator's %d", len(got), want.Len())
	}
}

// Create, poll and download, both auth schemes, HTTP/1.1 and HTTP/2.
func TestSimReports(t *testing.T) {
	t.Parallel()
	eachTransport(t, atlassim.Config{ReportReadyAfterPolls: 2}, func(t *testing.T, s *sim, c *atlas.Client) {
		ctx := ctxTimeout(t, 30*time.Second)
		inv := s.Invoices(simOrg)[2].ID

		r, err := c.CreateInvoiceReport(ctx, simOrg, inv)
		if err != nil {
			t.Fatalf("CreateInvoiceReport: %v", err)
		}
		if r.State != atlas.ReportPending || atlas.ValidateReportID(r.ID) != nil || r.InvoiceID != inv || r.Type != "FOCUS" || r.Format != "CSV" || r.DownloadURL != "" {
			t.Fatalf("created %+v", r)
		}
		r, states := pollReport(t, c, r, 5)
		if want := []atlas.ReportState{"PENDING", "PENDING", "RUNNING", "SUCCEEDED"}; !slices.Equal(states, want) {
			t.Errorf("states %v, want %v", states, want)
		}
		if !strings.HasPrefix(r.DownloadURL, s.DownloadBaseURL()+"/") || strings.HasPrefix(r.DownloadURL, s.url) || time.Until(r.ExpiresAt) < 10*time.Minute {
			t.Fatalf("succeeded %+v (download host %s)", r, s.DownloadBaseURL())
		}
		if strings.Contains(r.String(), "X-Amz-Signature") {
			t.Errorf("String shows the signature: %s", r)
		}
		rc, err := c.DownloadReport(ctx, r)
		if err != nil {
			t.Fatalf("DownloadReport: %v", err)
		}
		wantFocus(t, s, inv, rc)
		for op, n := range map[string]int{atlassim.OpCreateInvoiceReport: 1, atlassim.OpGetInvoiceReport: 3, atlassim.OpDownloadReport: 1} {
			wantRequests(t, s, op, n)
		}
		if _, err := c.GetInvoiceReport(ctx, simOrg, inv, strings.Repeat("0", 24)); !atlas.IsNotFound(err) {
			t.Errorf("unknown report: %v, want not found", err)
		}
	})
}

// exchangeLog records, per host, the credentials each request carried as
// it left the client (below the digest transport, so Digest is seen too).
type exchangeLog struct {
	mu   sync.Mutex
	rt   http.RoundTripper
	seen []seenRequest
}

type seenRequest struct{ host, auth, cookie string }

func (l *exchangeLog) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.seen = append(l.seen, seenRequest{req.URL.Host, req.Header.Get("Authorization"), req.Header.Get("Cookie")})
	l.mu.Unlock()
	return l.rt.RoundTrip(req)
}

func (l *exchangeLog) to(host string) []seenRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []seenRequest
	for _, s := range l.seen {
		if s.host == host {
			out = append(out, s)
		}
	}
	return out
}

// The download host gets no Authorization header and no cookie, while the
// Atlas host did get both (so the check is not vacuous).
func TestSimReportDownloadCarriesNoCredentials(t *testing.T) {
	t.Parallel()
	for _, auth := range schemes {
		t.Run(auth.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, false, atlassim.Config{ReportProcessingTime: -1})
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			// Cookies are not scoped by port: this one matches both hosts.
			jar.SetCookies(&url.URL{Scheme: "http", Host: "127.0.0.1"}, []*http.Cookie{{Name: "session", Value: "atlas-ui"}})
			log := &exchangeLog{rt: http.DefaultTransport.(*http.Transport).Clone()}
			c := s.client(t, auth, atlas.WithHTTPClient(&http.Client{Transport: log, Jar: jar}))
			inv := s.Invoices(simOrg)[0].ID
			r := readyReport(t, c, inv)
			rc, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), r)
			if err != nil {
				t.Fatal(err)
			}
			wantFocus(t, s, inv, rc)

			api, _ := url.Parse(s.url)
			dl, _ := url.Parse(s.DownloadBaseURL())
			scheme := map[string]string{"serviceaccount": "Bearer ", "apikey": "Digest "}[auth.name]
			authed := 0
			for _, q := range log.to(api.Host) {
				if strings.HasPrefix(q.auth, scheme) && strings.Contains(q.cookie, "session=atlas-ui") {
					authed++
				}
			}
			if authed < 2 {
				t.Errorf("only %d requests to the Atlas host carried %scredentials and the cookie: %+v", authed, scheme, log.to(api.Host))
			}
			downloads := log.to(dl.Host)
			if len(downloads) != 1 {
				t.Fatalf("%d requests to the download host, want 1", len(downloads))
			}
			for _, q := range downloads {
				if q.auth != "" || q.cookie != "" {
					t.Errorf("download request carried Authorization %q, Cookie %q", q.auth, q.cookie)
				}
			}
			// And as the download host saw it.
			got := s.DownloadRequests()
			if len(got) != 1 {
				t.Fatalf("download host got %d requests", len(got))
			}
			for _, h := range got {
				if _, ok := h["Authorization"]; ok {
					t.Errorf("download host got Authorization %q", h.Get("Authorization"))
				}
				if _, ok := h["Cookie"]; ok {
					t.Errorf("download host got Cookie %q", h.Get("Cookie"))
				}
			}
		})
	}
}

// A report that FAILs is a state, not an error.
func TestSimReportFailed(t *testing.T) {
	t.Parallel()
	for _, auth := range schemes {
		t.Run(auth.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, false, atlassim.Config{ReportReadyAfterPolls: 1})
			s.Inject(atlassim.Fault{Kind: atlassim.ReportFailed})
			c := s.client(t, auth)
			r := readyReport(t, c, s.Invoices(simOrg)[0].ID)
			if r.State != atlas.ReportFailed || r.FailureReason == "" || r.DownloadURL != "" {
				t.Fatalf("report %+v, want FAILED with a reason", r)
			}
			_, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), r)
			var ve *atlas.ValidationError
			if !errors.As(err, &ve) || ve.Field != "downloadUrl" {
				t.Fatalf("DownloadReport of a failed report: %v", err)
			}
			wantRequests(t, s, atlassim.OpDownloadReport, 0)
		})
	}
}

// An expired URL is IsExpired, not retried; a new report downloads.
func TestSimReportExpired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   atlassim.Config
		fault atlassim.Fault
	}{
		{"fault", atlassim.Config{ReportProcessingTime: -1}, atlassim.Fault{Kind: atlassim.ExpiredURL}},
		{"ttl", atlassim.Config{ReportProcessingTime: -1, ReportURLTTL: time.Nanosecond}, atlassim.Fault{}},
	} {
		for _, auth := range schemes {
			t.Run(tc.name+"/"+auth.name, func(t *testing.T) {
				t.Parallel()
				s := startSim(t, false, tc.cfg)
				c := s.client(t, auth)
				inv := s.Invoices(simOrg)[1].ID
				r := readyReport(t, c, inv)
				if tc.fault.Kind != 0 {
					s.Inject(tc.fault)
				}
				_, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), r)
				var ae *atlas.Error
				if !atlas.IsExpired(err) || !errors.As(err, &ae) || ae.StatusCode != 403 || ae.ErrorCode != "AccessDenied" {
					t.Fatalf("err = %v, want an expired download", err)
				}
				u, _ := url.Parse(r.DownloadURL)
				if sig := u.Query().Get("X-Amz-Signature"); sig == "" || strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), "X-Amz") {
					t.Errorf("error shows the signed URL: %v", err)
				}
				wantRequests(t, s, atlassim.OpDownloadReport, 1)
				if tc.name == "ttl" {
					return // every URL of this simulator expires at once
				}
				r2 := readyReport(t, c, inv)
				if r2.ID == r.ID {
					t.Fatal("a new report has the old id")
				}
				rc, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), r2)
				if err != nil {
					t.Fatal(err)
				}
				wantFocus(t, s, inv, rc)
			})
		}
	}
}

// The download host's answers go through the same retry rules.
func TestSimReportDownloadFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		faults []atlassim.Fault
		opts   []atlas.Option
		check  func(t *testing.T, s *sim, inv string, rc io.ReadCloser, err error)
	}{
		{
			name:   "503 and 500 retried",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 503, RetryAfter: time.Second}, {Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 500}},
			check: func(t *testing.T, s *sim, inv string, rc io.ReadCloser, err error) {
				if err != nil {
					t.Fatal(err)
				}
				wantFocus(t, s, inv, rc)
				wantRequests(t, s, atlassim.OpDownloadReport, 3)
			},
		},
		{
			name:   "429 beyond the budget",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 429, Times: 5}},
			opts:   []atlas.Option{atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 2, MaxElapsed: 10 * time.Second, BaseDelay: 10 * time.Millisecond, MaxDelay: 20 * time.Millisecond})},
			check: func(t *testing.T, s *sim, _ string, _ io.ReadCloser, err error) {
				var ae *atlas.Error
				if !errors.Is(err, atlas.ErrTooManyAttempts) || !atlas.IsRateLimited(err) || !errors.As(err, &ae) || ae.ErrorCode != "SlowDown" {
					t.Fatalf("err = %v", err)
				}
				wantRequests(t, s, atlassim.OpDownloadReport, 2)
			},
		},
		{
			name:   "502 and 504 retried",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 502}, {Op: atlassim.OpDownloadReport, Kind: atlassim.Status, Status: 504}},
			check: func(t *testing.T, s *sim, inv string, rc io.ReadCloser, err error) {
				if err != nil {
					t.Fatal(err)
				}
				wantFocus(t, s, inv, rc)
				wantRequests(t, s, atlassim.OpDownloadReport, 3)
			},
		},
		{
			name:   "truncated after hand-over",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.Truncate, After: 500}},
			check: func(t *testing.T, s *sim, _ string, rc io.ReadCloser, err error) {
				if err != nil {
					t.Fatal(err)
				}
				n, err := io.Copy(io.Discard, rc)
				rc.Close()
				if !atlas.IsStreamBroken(err) || !errors.Is(err, io.ErrUnexpectedEOF) || n != 500 {
					t.Fatalf("read %d, %v", n, err)
				}
				if strings.Contains(err.Error(), "X-Amz") {
					t.Errorf("stream error shows the query: %v", err)
				}
				wantRequests(t, s, atlassim.OpDownloadReport, 1)
			},
		},
		{
			name:   "an HTML page",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.WrongMediaType}},
			check: func(t *testing.T, s *sim, _ string, _ io.ReadCloser, err error) {
				var me *atlas.MediaTypeError
				if !errors.As(err, &me) || !strings.HasPrefix(me.Got, "text/html") {
					t.Fatalf("err = %v", err)
				}
			},
		},
		{
			name:   "no such key",
			faults: []atlassim.Fault{{Op: atlassim.OpDownloadReport, Kind: atlassim.NotFound}},
			check: func(t *testing.T, s *sim, _ string, _ io.ReadCloser, err error) {
				var ae *atlas.Error
				if !atlas.IsNotFound(err) || atlas.IsExpired(err) || !errors.As(err, &ae) || ae.ErrorCode != "NoSuchKey" {
					t.Fatalf("err = %v", err)
				}
				wantRequests(t, s, atlassim.OpDownloadReport, 1)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startSim(t, false, atlassim.Config{ReportProcessingTime: -1})
			c := s.client(t, schemes[0], tc.opts...)
			inv := s.Invoices(simOrg)[0].ID
			r := readyReport(t, c, inv)
			for _, f := range tc.faults {
				s.Inject(f)
			}
			rc, err := c.DownloadReport(ctxTimeout(t, 10*time.Second), r)
			tc.check(t, s, inv, rc, err)
		})
	}
}

func TestDownloadURLRules(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/csv")
		_, _ = io.WriteString(w, "BilledCost\n1.00\n")
	})
	other := newServer(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "BilledCost\n") })
	c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
	prod, err := atlas.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	const sig = "X-Amz-Signature=0123abcd"
	for _, tc := range []struct {
		name string
		c    *atlas.Client
		url  string
		ok   bool
	}{
		{"loopback http, other port", c, other.URL + "/r.csv?" + sig, true},
		{"empty", c, "", false},
		{"relative", c, "/r.csv?" + sig, false},
		{"plain http off loopback", prod, "http://bucket.s3.amazonaws.com/r.csv?" + sig, false},
		{"ftp", prod, "ftp://bucket.example.com/r.csv?" + sig, false},
		{"user info", prod, "https://user:pw@bucket.s3.amazonaws.com/r.csv?" + sig, false},
		{"the Atlas host", prod, "https://cloud.mongodb.com/r.csv?" + sig, false},
		{"the Atlas host, explicit port", prod, "https://CLOUD.mongodb.com:443/r.csv?" + sig, false},
		{"the simulated Atlas host", c, srv.URL + "/r.csv?" + sig, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := tc.c.DownloadReport(ctxTimeout(t, 5*time.Second), atlas.Report{State: atlas.ReportSucceeded, DownloadURL: tc.url})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, rc); string(got) != "BilledCost\n" {
					t.Errorf("body %q", got)
				}
				return
			}
			var ve *atlas.ValidationError
			if !errors.As(err, &ve) || ve.Field != "downloadUrl" || strings.Contains(err.Error(), "0123abcd") {
				t.Fatalf("err = %v, want a *ValidationError not quoting the URL", err)
			}
		})
	}
	if srv.requests() != 0 || other.requests() != 1 {
		t.Errorf("the Atlas host got %d download requests, the other host %d", srv.requests(), other.requests())
	}
}

// The error answers of object stores that mean "this URL expired".
func TestDownloadExpiredAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, ct, body string
		status         int
		expired        bool
	}{
		{"S3 past X-Amz-Expires", "application/xml", `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires></Error>`, 403, true},
		{"expired session token", "application/xml", `<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>`, 400, true},
		{"plain text", "text/plain", "Request has expired\n", 403, true},
		{"S3 access denied", "application/xml", `<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`, 403, false},
		{"bad signature", "application/xml", `<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>`, 403, false},
		{"gone", "text/plain", "gone", 410, false},
		{"expired, but a 404", "application/xml", `<Error><Code>NoSuchKey</Code><Message>The key expired</Message></Error>`, 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			c := newClient(t, "http://127.0.0.1:1", atlas.WithRetry(quickRetry), atlas.WithDownloadClient(srv.Client()))
			_, err := c.DownloadReport(ctxTimeout(t, 5*time.Second), atlas.Report{DownloadURL: srv.URL + "/r.csv?X-Amz-Signature=feed"})
			var ae *atlas.Error
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || atlas.IsExpired(err) != tc.expired {
				t.Fatalf("err = %v (expired %v), want status %d expired %v", err, atlas.IsExpired(err), tc.status, tc.expired)
			}
			if srv.requests() != 1 {
				t.Errorf("%d requests: a %d was retried", srv.requests(), tc.status)
			}
			if strings.Contains(err.Error(), "feed") || ae.Path != srv.URL+"/r.csv" {
				t.Errorf("error %q (path %q) shows the query", err, ae.Path)
			}
		})
	}
}

// Answers that are not a usable report are errors; bad ids send nothing.
func TestReportAnswers(t *testing.T) {
	t.Parallel()
	const (
		rid  = "0123456789abcdef01234567"
		good = `{"reportId":"` + rid + `","invoiceId":"` + testInv + `","reportFormat":"CSV","reportType":"FOCUS","state":"%s"%s}`
	)
	for _, tc := range []struct {
		name, body string
		want       string // substring of the error; "" = no error
	}{
		{"pending", fmt.Sprintf(good, "PENDING", ""), ""},
		{"failed", fmt.Sprintf(good, "FAILED", `,"failureReason":"no data"`), ""},
		{"succeeded", fmt.Sprintf(good, "SUCCEEDED", `,"downloadUrl":"https://b.s3.amazonaws.com/x?s=1","expiresAt":"2025-01-01T00:15:00Z"`), ""},
		{"unknown state", fmt.Sprintf(good, "DONE", ""), "unknown report state"},
		{"succeeded without URL", fmt.Sprintf(good, "SUCCEEDED", ""), "no downloadUrl"},
		{"bad expiresAt", fmt.Sprintf(good, "SUCCEEDED", `,"downloadUrl":"https://b/x","expiresAt":"soon"`), "expiresAt"},
		{"bad report id", `{"reportId":"../x","invoiceId":"` + testInv + `","state":"PENDING"}`, "report id"},
		{"other invoice", `{"reportId":"` + rid + `","invoiceId":"` + strings.Repeat("f", 24) + `","state":"PENDING"}`, "invoice id"},
		{"numeric state", `{"reportId":"` + rid + `","invoiceId":"` + testInv + `","state":2}`, "decoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotAccept, gotCT string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				gotAccept, gotCT = r.Header.Get("Accept"), r.Header.Get("Content-Type")
				w.Header().Set("Content-Type", "application/vnd.atlas.2025-03-12+json")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, tc.body)
			})
			c := newClient(t, srv.URL)
			r, err := c.CreateInvoiceReport(ctxTimeout(t, 5*time.Second), testOrg, testInv)
			if gotAccept != "application/vnd.atlas.2025-03-12+json" || gotCT != gotAccept {
				t.Errorf("Accept %q, Content-Type %q", gotAccept, gotCT)
			}
			if tc.want == "" {
				if err != nil || r.ID != rid || r.InvoiceID != testInv {
					t.Fatalf("%+v, %v", r, err)
				}
				if r.State == atlas.ReportSucceeded && !r.ExpiresAt.Equal(time.Date(2025, 1, 1, 0, 15, 0, 0, time.UTC)) {
					t.Errorf("ExpiresAt %v", r.ExpiresAt)
				}
				return
			}
			var ve *atlas.ValidationError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &ve) {
				t.Fatalf("err = %v, want a non-validation error naming %q", err, tc.want)
			}
		})
	}

	srv := newServer(t, func(http.ResponseWriter, *http.Request) {})
	c := newClient(t, srv.URL)
	for _, ids := range [][3]string{{testOrg, testInv, "../../x"}, {testOrg, testInv, strings.Repeat("A", 24)}, {testOrg, "zz", strings.Repeat("a", 24)}, {"org", testInv, strings.Repeat("a", 24)}} {
		_, err := c.GetInvoiceReport(context.Background(), ids[0], ids[1], ids[2])
		var ve *atlas.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("GetInvoiceReport%q: %v, want *ValidationError", ids, err)
		}
	}
	if _, err := c.CreateInvoiceReport(context.Background(), testOrg, "nothex"); err == nil {
		t.Error("CreateInvoiceReport accepted a bad invoice id")
	}
	if srv.requests() != 0 {
		t.Errorf("%d requests sent for invalid ids", srv.requests())
	}
}

func TestReportLogValue(t *testing.T) {
	t.Parallel()
	r := atlas.Report{ID: "0123456789abcdef01234567", State: atlas.ReportSucceeded, DownloadURL: "https://b.s3.amazonaws.com/k.csv?X-Amz-Signature=secretsig"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("report", "report", r)
	for _, s := range []string{buf.String(), r.String(), fmt.Sprint(r)} {
		if strings.Contains(s, "secretsig") || !strings.Contains(s, "b.s3.amazonaws.com/k.csv?(redacted)") {
			t.Errorf("%s", s)
		}
	}

	plain := atlas.Report{ID: "0123456789abcdef01234567", InvoiceID: testInv, State: atlas.ReportSucceeded, DownloadURL: "https://b.s3.amazonaws.com/k.csv"}
	if got, want := plain.String(), "report 0123456789abcdef01234567 of invoice "+testInv+": SUCCEEDED at https://b.s3.amazonaws.com/k.csv"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	failed := atlas.Report{ID: "0123456789abcdef01234567", InvoiceID: testInv, State: atlas.ReportFailed, FailureReason: "no FOCUS data"}
	if got, want := failed.String(), "report 0123456789abcdef01234567 of invoice "+testInv+": FAILED: no FOCUS data"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	buf.Reset()
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("report", "report", failed)
	if s := buf.String(); !strings.Contains(s, `"failureReason":"no FOCUS data"`) || strings.Contains(s, "downloadUrl") {
		t.Errorf("log = %s", s)
	}
}

// Download hosts: https only, and no host of this machine or its network,
// unless the API base URL is itself loopback (the simulator; plain http
// only when that base is http).
func TestDownloadURLHosts(t *testing.T) {
	t.Parallel()
	client := func(base string) *atlas.Client {
		c, err := atlas.NewClient(atlas.WithBaseURL(base))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prod, simHTTP, simTLS := client("https://cloud.mongodb.com"), client("http://127.0.0.1:8089"), client("https://127.0.0.1:8443")
	const q = "/r.csv?X-Amz-Signature=0123abcd"
	for _, tc := range []struct {
		c   *atlas.Client
		url string
		ok  bool
	}{
		{prod, "https://bucket.s3.us-east-1.amazonaws.com" + q, true},
		{prod, "https://52.216.1.2" + q, true},
		{prod, "https://[2600:1f18::1]" + q, true},
		{prod, "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", false}, // the Lambda Runtime API
		{prod, "https://127.0.0.1:9001" + q, false},
		{prod, "https://127.255.0.1" + q, false},
		{prod, "https://10.1.2.3" + q, false},
		{prod, "https://172.16.0.1" + q, false},
		{prod, "https://172.31.255.255" + q, false},
		{prod, "https://192.168.1.1" + q, false},
		{prod, "https://169.254.169.254/latest/meta-data/", false}, // instance metadata
		{prod, "https://100.64.0.1" + q, false},
		{prod, "https://0.0.0.0" + q, false},
		{prod, "https://[::1]" + q, false},
		{prod, "https://[::]" + q, false},
		{prod, "https://[fe80::1%25eth0]" + q, false},
		{prod, "https://[fd00:ec2::254]" + q, false}, // IPv6 instance metadata
		{prod, "https://[::ffff:127.0.0.1]" + q, false},
		{prod, "https://[::ffff:a9fe:a9fe]" + q, false}, // 169.254.169.254, IPv4-mapped
		{prod, "https://[ff02::1]" + q, false},
		{prod, "https://localhost" + q, false},
		{prod, "https://LocalHost." + q, false},
		{prod, "https://x.localhost" + q, false},
		{prod, "https://127.1" + q, false},
		{prod, "https://2130706433" + q, false},
		{prod, "https://0x7f.0.0.1" + q, false},
		{prod, "https://0x7f.0.0.9" + q, false},
		{prod, "https://127.0.0.01" + q, false},
		{prod, "https://reports.example.a9" + q, true},
		{simHTTP, "http://127.0.0.1:8090" + q, true},
		{simHTTP, "https://127.0.0.1:8090" + q, true},
		{simHTTP, "http://127.0.0.1:8089" + q, false}, // the API host itself
		{simTLS, "https://127.0.0.1:8444" + q, true},
		{simTLS, "http://127.0.0.1:8444" + q, false},
	} {
		err := atlas.CheckDownloadURL(tc.c, tc.url)
		var ve *atlas.ValidationError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v, want accepted", tc.url, err)
		case !tc.ok && !errors.As(err, &ve):
			t.Errorf("%s: %v, want a *ValidationError", tc.url, err)
		case err != nil && strings.Contains(err.Error(), "0123abcd"):
			t.Errorf("%s: error %q quotes the URL", tc.url, err)
		}
	}
}

// No error of a download shows the URL's query or anything of a refused
// answer's body but a known S3 error code.
func TestDownloadErrorsQuoteNothing(t *testing.T) {
	t.Parallel()
	const secret = "hunter2-from-an-internal-host"
	const sig = "X-Amz-Signature=feedfacefeed"
	for _, tc := range []struct {
		name, ct, body string
		status         int
		code           string
	}{
		{"plain text", "text/plain", "token " + secret, 403, ""},
		{"json", "application/json", `{"errorMessage":"` + secret + `"}`, 500, ""},
		{"S3 message", "application/xml", `<Error><Code>AccessDenied</Code><Message>` + secret + `</Message></Error>`, 403, "AccessDenied"},
		{"unknown code", "application/xml", `<Error><Code>` + secret + `</Code><Message>x</Message></Error>`, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", tc.ct)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			c := newClient(t, "http://127.0.0.1:1", atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 1}))
			_, err := c.DownloadReport(ctxTimeout(t, 5*time.Second), atlas.Report{DownloadURL: srv.URL + "/r.csv?" + sig})
			var ae *atlas.Error
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.ErrorCode != tc.code {
				t.Fatalf("err = %v, want a %d with code %q", err, tc.status, tc.code)
			}
			if s := fmt.Sprintf("%v %+v", err, *ae); strings.Contains(s, "hunter2") || strings.Contains(s, "feedface") {
				t.Errorf("error shows the body or the query: %s", s)
			}
		})
	}

	// Transport errors: Do's *url.Error, and one nested in it, lose the query.
	closed := newServer(t, func(http.ResponseWriter, *http.Request) {})
	closed.Close()
	nested := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return nil, &url.Error{Op: "Get", URL: r.URL.String(), Err: errors.New("proxy said no")}
	})}
	for name, c := range map[string]*atlas.Client{
		"connection refused": newClient(t, "http://127.0.0.1:1", atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 1})),
		"nested url.Error":   newClient(t, "http://127.0.0.1:1", atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 1}), atlas.WithDownloadClient(nested)),
	} {
		_, err := c.DownloadReport(ctxTimeout(t, 5*time.Second), atlas.Report{DownloadURL: closed.URL + "/r.csv?" + sig})
		if err == nil || strings.Contains(err.Error(), "feedface") || strings.Contains(err.Error(), "X-Amz") {
			t.Errorf("%s: error %v shows the query", name, err)
		}
		var ue *url.Error
		if errors.As(err, &ue) && strings.Contains(ue.URL, "feedface") {
			t.Errorf("%s: a *url.Error in the chain keeps the query: %q", name, ue.URL)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
