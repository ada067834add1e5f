package atlas_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

var quickRetry = atlas.RetryPolicy{MaxAttempts: 5, MaxElapsed: 30 * time.Second, BaseDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond}

// failFirst answers the first n requests with fail, then with ok.
func failFirst(n int64, fail, ok http.HandlerFunc) http.HandlerFunc {
	var seen atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= n {
			fail(w, r)
			return
		}
		ok(w, r)
	}
}

func pendingOK(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, `{"results":[{"id":"`+testInv+`","orgId":"`+testOrg+`","statusName":"PENDING"}]}`)
}

// Retry-After is honoured with a real wait.
func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, failFirst(1, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "1")
				writeAPIError(w, status, "RATE_LIMITED")
			}, pendingOK))
			c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
			start := time.Now()
			inv, err := c.PendingInvoices(ctxTimeout(t, 10*time.Second), testOrg)
			if err != nil {
				t.Fatalf("PendingInvoices: %v", err)
			}
			if len(inv) != 1 || inv[0].ID != testInv {
				t.Errorf("got %+v", inv)
			}
			if d := time.Since(start); d < time.Second {
				t.Errorf("retried after %s, want at least the Retry-After of 1s", d)
			}
			if n := srv.requests(); n != 2 {
				t.Errorf("server saw %d requests, want 2", n)
			}
		})
	}
}

// Retry-After in each form HTTP allows: delay-seconds, or an HTTP date in
// any of its three formats. A date in the past or a value that is neither
// leaves the backoff alone.
func TestRetryAfterForms(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 6, 1, 0, 0, 20, 0, time.UTC) // the fake clock starts at 2024-06-01 00:00:00
	for _, tc := range []struct {
		name, value string
		want        time.Duration
	}{
		{"seconds", "20", 20 * time.Second},
		{"IMF-fixdate", at.Format(http.TimeFormat), 20 * time.Second},
		{"RFC 850", at.Format(time.RFC850), 20 * time.Second},
		{"asctime", at.Format(time.ANSIC), 20 * time.Second},
		{"date in the past", at.Add(-time.Hour).Format(http.TimeFormat), time.Millisecond},
		{"neither", "soon", time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, failFirst(1, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", tc.value)
				writeAPIError(w, http.StatusTooManyRequests, "RATE_LIMITED")
			}, pendingOK))
			c := newClient(t, srv.URL, atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 2, MaxElapsed: time.Minute, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
			ft := useFakeTime(c)
			if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
				t.Fatal(err)
			}
			if w := ft.recorded(); len(w) != 1 || w[0] != tc.want {
				t.Errorf("Retry-After %q: waited %v, want [%s]", tc.value, w, tc.want)
			}
		})
	}
}

func TestRetryServerErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{500, 502, 503, 504} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, failFirst(2, func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, status, "UNEXPECTED_ERROR")
			}, pendingOK))
			c := newClient(t, srv.URL, atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 5, MaxElapsed: time.Minute, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second}))
			ft := useFakeTime(c)
			if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
				t.Fatalf("PendingInvoices: %v", err)
			}
			if n := srv.requests(); n != 3 {
				t.Errorf("server saw %d requests, want 3", n)
			}
			// Full jitter with the jitter pinned to its maximum: 100ms, 200ms.
			w := ft.recorded()
			if len(w) != 2 || w[0] != 100*time.Millisecond || w[1] != 200*time.Millisecond {
				t.Errorf("waits = %v, want [100ms 200ms]", w)
			}
		})
	}
}

func TestRetryBackoffJitterAndCap(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeAPIError(w, 500, "UNEXPECTED_ERROR") })
	c := newClient(t, srv.URL, atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 6, MaxElapsed: time.Hour, BaseDelay: time.Second, MaxDelay: 5 * time.Second}))
	ft := useFakeTime(c)
	var ceilings []int64
	atlas.SetRetryHooks(c, nil, func(n int64) int64 { ceilings = append(ceilings, n); return n / 2 }, nil)
	_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
	if !atlas.IsServerError(err) {
		t.Fatalf("error = %v, want a server error", err)
	}
	want := []int64{int64(time.Second), int64(2 * time.Second), int64(4 * time.Second), int64(5 * time.Second), int64(5 * time.Second)}
	if len(ceilings) != len(want) {
		t.Fatalf("jitter ceilings = %v, want %v", ceilings, want)
	}
	for i := range want {
		if ceilings[i] != want[i] {
			t.Errorf("ceiling %d = %v, want %v", i, time.Duration(ceilings[i]), time.Duration(want[i]))
		}
		// uniform draw n/2 (+1ns so a wait is never zero)
		if got := ft.recorded()[i]; got != time.Duration(want[i]/2)+1 {
			t.Errorf("wait %d = %v", i, got)
		}
	}
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	t.Run("attempts", func(t *testing.T) {
		t.Parallel()
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			writeAPIError(w, http.StatusTooManyRequests, "RATE_LIMITED")
		})
		c := newClient(t, srv.URL, atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 3, MaxElapsed: time.Minute, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
		ft := useFakeTime(c)
		_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
		var e *atlas.Error
		var re *atlas.RetryError
		switch {
		case !errors.As(err, &e) || !atlas.IsRateLimited(err):
			t.Fatalf("error = %v, want a rate-limit *Error", err)
		case !errors.Is(err, atlas.ErrTooManyAttempts) || !errors.As(err, &re):
			t.Fatalf("error = %v, want a *RetryError", err)
		}
		if re.Attempts != 3 || srv.requests() != 3 {
			t.Errorf("attempts = %d, server saw %d, want 3", re.Attempts, srv.requests())
		}
		if e.RetryAfter != time.Second || e.ErrorCode != "RATE_LIMITED" {
			t.Errorf("*Error = %+v", e)
		}
		for _, w := range ft.recorded() {
			if w < time.Second {
				t.Errorf("waited %s, less than Retry-After", w)
			}
		}
		if len(ft.recorded()) != 2 {
			t.Errorf("waits = %v, want 2", ft.recorded())
		}
	})
	// Retry-After 10 s each time: 0s: 503, wait; 10s: 503, wait; 20s: 503,
	// wait (the third ends at 30s).
	for _, tc := range []struct {
		maxElapsed time.Duration
		attempts   int
	}{
		{25 * time.Second, 3},
		{20 * time.Second, 3}, // a wait ending at the limit still runs
		{19 * time.Second, 2},
	} {
		t.Run(fmt.Sprintf("elapsed %s", tc.maxElapsed), func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "10")
				writeAPIError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
			})
			c := newClient(t, srv.URL, atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 10, MaxElapsed: tc.maxElapsed, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
			ft := useFakeTime(c)
			_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
			var re *atlas.RetryError
			if !errors.As(err, &re) || !atlas.IsServerError(err) {
				t.Fatalf("error = %v, want *RetryError wrapping a 503", err)
			}
			if re.Attempts != tc.attempts || srv.requests() != tc.attempts || len(ft.recorded()) != tc.attempts-1 {
				t.Errorf("attempts %d, requests %d, waits %v; want %d attempts", re.Attempts, srv.requests(), ft.recorded(), tc.attempts)
			}
		})
	}
	// Fetching a new bearer token after a 401 is not one of the attempts.
	t.Run("401 outside the budget", func(t *testing.T) {
		t.Parallel()
		var api atomic.Int64
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/oauth/token" {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
				return
			}
			switch api.Add(1) {
			case 1:
				writeAPIError(w, http.StatusUnauthorized, "UNAUTHORIZED")
			case 2:
				writeAPIError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
			default:
				pendingOK(w, r)
			}
		})
		c := newClient(t, srv.URL, atlas.WithServiceAccount(saID, saSecret),
			atlas.WithRetry(atlas.RetryPolicy{MaxAttempts: 2, MaxElapsed: time.Minute, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
		useFakeTime(c)
		if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
			t.Fatalf("401, then 503, then OK within 2 attempts: %v", err)
		}
		if n := api.Load(); n != 3 {
			t.Errorf("%d API requests, want 3 (401, 503, 200)", n)
		}
	})
}

// A policy's zero or invalid fields take the defaults; valid ones are kept.
func TestRetryPolicyDefaults(t *testing.T) {
	t.Parallel()
	if p := atlas.DefaultRetryPolicy(); p != (atlas.RetryPolicy{MaxAttempts: 5, MaxElapsed: 2 * time.Minute, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}) {
		t.Errorf("DefaultRetryPolicy() = %+v", p)
	}
	s := time.Second
	for _, tc := range []struct {
		name  string
		p     atlas.RetryPolicy
		waits []time.Duration // jitter pinned to its maximum
	}{
		{"zero", atlas.RetryPolicy{}, []time.Duration{s / 2, s, 2 * s, 4 * s}},
		{"one attempt", atlas.RetryPolicy{MaxAttempts: 1}, nil},
		{"negative", atlas.RetryPolicy{MaxAttempts: -1, MaxElapsed: -s, BaseDelay: -s, MaxDelay: -s}, []time.Duration{s / 2, s, 2 * s, 4 * s}},
		{"cap equal to base", atlas.RetryPolicy{MaxAttempts: 4, BaseDelay: s, MaxDelay: s}, []time.Duration{s, s, s}},
		{"cap below base", atlas.RetryPolicy{MaxAttempts: 7, BaseDelay: s, MaxDelay: s / 2}, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s}},
		{"elapsed bounds", atlas.RetryPolicy{MaxAttempts: 9, MaxElapsed: 3 * s, BaseDelay: s, MaxDelay: s}, []time.Duration{s, s, s}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeAPIError(w, 500, "UNEXPECTED_ERROR") })
			c := newClient(t, srv.URL, atlas.WithRetry(tc.p))
			ft := useFakeTime(c)
			if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); !atlas.IsServerError(err) {
				t.Fatalf("error = %v, want a server error", err)
			}
			if w := ft.recorded(); !slices.Equal(w, tc.waits) || srv.requests() != len(tc.waits)+1 {
				t.Errorf("%d requests, waits %v; want waits %v", srv.requests(), w, tc.waits)
			}
		})
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		writeAPIError(w, http.StatusTooManyRequests, "RATE_LIMITED")
	})
	c := newClient(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.PendingInvoices(ctx, testOrg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if atlas.IsRateLimited(err) {
		t.Errorf("a cancelled call must not look rate limited: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s after cancel", d)
	}
	if n := srv.requests(); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

// A wait cut short names the last attempt's error, not the wait's.
func TestRetryWaitFailsNamesLastError(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		_ = conn.Close()
	})
	c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
	stop := errors.New("sleep stopped")
	atlas.SetRetryHooks(c, func(context.Context, time.Duration) error { return stop }, nil, nil)
	_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
	if !errors.Is(err, stop) {
		t.Fatalf("error = %v, want the wait's error wrapped", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "(last error: ") || !strings.Contains(msg, "EOF") || strings.Contains(msg, "last error: sleep stopped") {
		t.Errorf("error = %q, want the attempt's EOF as the last error", msg)
	}
}

// A call cancelled while waiting to retry says so, with the last error in
// short: the status and code of an answer, the error of a transport.
func TestCancelledWaitSaysWhy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"answer", func(w http.ResponseWriter, r *http.Request) {
			writeAPIError(w, http.StatusTooManyRequests, "RATE_LIMITED")
		},
			"waiting to retry (last error: 429 RATE_LIMITED): context canceled"},
		{"transport", resetConn(t), "waiting to retry (last error: atlas: GET /api/atlas/v2/orgs/" + testOrg + "/invoices/pending: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, tc.h)
			c := newClient(t, srv.URL)
			ctx, cancel := context.WithCancel(ctxTimeout(t, 5*time.Second))
			atlas.SetRetryHooks(c, func(ctx context.Context, _ time.Duration) error {
				cancel()
				return ctx.Err()
			}, nil, nil)
			_, err := c.PendingInvoices(ctx, testOrg)
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want context.Canceled and %q", err, tc.want)
			}
		})
	}
}

// resetConn closes the connection with an RST before any answer.
func resetConn(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}
}

func TestRetryConnectionErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]http.HandlerFunc{
		"reset": resetConn(t),
		"eof before headers": func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := http.NewResponseController(w).Hijack()
			_ = conn.Close()
		},
		"partial headers": func(w http.ResponseWriter, r *http.Request) {
			conn, buf, _ := http.NewResponseController(w).Hijack()
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n")
			_ = buf.Flush()
			_ = conn.Close()
		},
		"json body cut": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
			w.Header().Set("Content-Length", "500")
			_, _ = io.WriteString(w, `{"results":[`)
		},
	}
	for name, fail := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, failFirst(1, fail, pendingOK))
			c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
			inv, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
			if err != nil || len(inv) != 1 {
				t.Fatalf("PendingInvoices = %v, %v", inv, err)
			}
			if n := srv.requests(); n != 2 {
				t.Errorf("server saw %d requests, want 2", n)
			}
		})
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	t.Parallel()
	for _, status := range []int{400, 403, 404, 409} {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeAPIError(w, status, "SOME_ERROR") })
		c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
		_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
		var e *atlas.Error
		if !errors.As(err, &e) || e.StatusCode != status || errors.Is(err, atlas.ErrTooManyAttempts) {
			t.Errorf("%d: error = %v", status, err)
		}
		if n := srv.requests(); n != 1 {
			t.Errorf("%d: server saw %d requests, want 1", status, n)
		}
	}
}

// The POST is retried with the same body.
func TestCreateUsageQueryRetried(t *testing.T) {
	t.Parallel()
	var bodies []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b)) // requests are sequential
		if len(bodies) < 3 {
			writeAPIError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
			return
		}
		writeJSON(w, http.StatusAccepted, `{"token":"`+testToken+`"}`)
	})
	c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
	tok, err := c.CreateUsageQuery(ctxTimeout(t, 5*time.Second), testOrg, atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"})
	if err != nil || tok != testToken {
		t.Fatalf("CreateUsageQuery = %q, %v", tok, err)
	}
	if len(bodies) != 3 || bodies[0] != bodies[2] || !strings.Contains(bodies[0], `"startDate":"2024-06-01"`) {
		t.Errorf("bodies = %q", bodies)
	}
}

// A body that breaks after being handed over is an error from Read, and is
// not retried.
func TestStreamBroken(t *testing.T) {
	t.Parallel()
	tests := map[string]http.HandlerFunc{
		"short content-length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+csv")
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write(bytes.Repeat([]byte("a,b\n"), 1000))
		},
		"chunked then reset": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+csv")
			_, _ = w.Write(bytes.Repeat([]byte("a,b\n"), 1000))
			http.NewResponseController(w).Flush()
			conn, _, _ := http.NewResponseController(w).Hijack()
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
		},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, h)
			c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
			for _, get := range []func(context.Context) (io.ReadCloser, error){
				func(ctx context.Context) (io.ReadCloser, error) { return c.InvoiceCSV(ctx, testOrg, testInv) },
				func(ctx context.Context) (io.ReadCloser, error) {
					u, err := c.GetUsage(ctx, testOrg, testToken, atlas.CSV)
					if err != nil {
						return nil, err
					}
					return u.Body, nil
				},
			} {
				body, err := get(ctxTimeout(t, 5*time.Second))
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				n, err := io.Copy(io.Discard, body)
				body.Close()
				if err == nil || !atlas.IsStreamBroken(err) {
					t.Fatalf("read %d bytes, err = %v; want a *StreamError", n, err)
				}
				if name == "short content-length" && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("err = %v, want io.ErrUnexpectedEOF inside", err)
				}
				if !strings.Contains(err.Error(), "/api/atlas/v2/orgs/"+testOrg) {
					t.Errorf("err %q does not say what was being read", err)
				}
			}
			if n := srv.requests(); n != 2 {
				t.Errorf("server saw %d requests, want 2 (no retry after hand-over)", n)
			}
		})
	}
}

// A body that does not end where its Content-Length says is an error even
// when the transport of WithHTTPClient hands it over without checking, as
// net/http's own transports do: a truncated report is never taken for a
// whole one.
func TestContentLengthOwnTransport(t *testing.T) {
	t.Parallel()
	body := bytes.Repeat([]byte("a,b\n"), 1000)
	for name, length := range map[string]int64{
		"shorter": int64(2 * len(body)),
		"longer":  0,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{
					StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
					Header:        http.Header{"Content-Type": {"application/vnd.atlas.2023-01-01+csv"}},
					ContentLength: length,
					Body:          io.NopCloser(bytes.NewReader(body)),
					Request:       r,
				}, nil
			})}
			c := newClient(t, "http://127.0.0.1:1", atlas.WithHTTPClient(hc), atlas.WithRetry(quickRetry))
			rc, err := c.InvoiceCSV(ctxTimeout(t, 5*time.Second), testOrg, testInv)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer rc.Close()
			n, err := io.Copy(io.Discard, rc)
			if !atlas.IsStreamBroken(err) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("read %d bytes, err = %v; want io.ErrUnexpectedEOF in a *StreamError", n, err)
			}
		})
	}
}

// Every line the client logs (a retry after a 5xx, authenticating again after
// a 401 for an expired bearer token or a stale Digest nonce) says what
// happened and holds no credential: no client secret, private key, access
// token or Digest response.
func TestRetryLogNoSecrets(t *testing.T) {
	t.Parallel()
	const (
		secret  = "s3cr3t-value-never-logged"
		private = "priv-key-never-logged"
	)
	tokens := []string{"at-" + strings.Repeat("x", 20), "at-" + strings.Repeat("y", 20)}
	// bearer issues tokens[0], then tokens[1]; api answers each request.
	bearer := func(api http.HandlerFunc) http.HandlerFunc {
		var issued atomic.Int64
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/oauth/token" {
				api(w, r)
				return
			}
			tok := tokens[min(int(issued.Add(1)), len(tokens))-1]
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"access_token":"`+tok+`","token_type":"Bearer","expires_in":3600}`)
		}
	}
	var digestSeen sync.Map // Authorization headers the digest server saw
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		auth    atlas.Option
		msg     string
		lines   int
		status  int
		attempt int
	}{
		{
			name: "retry after a 5xx",
			h: bearer(failFirst(2, func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, http.StatusBadGateway, "BAD_GATEWAY")
			}, pendingOK)),
			auth: atlas.WithServiceAccount("mdb_sa_id_1", secret),
			msg:  "atlas: retrying", lines: 2, status: http.StatusBadGateway, attempt: 2,
		},
		{
			name: "401 for an expired bearer token",
			h: bearer(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") == "Bearer "+tokens[0] {
					writeAPIError(w, http.StatusUnauthorized, "UNAUTHORIZED")
					return
				}
				pendingOK(w, r)
			}),
			auth: atlas.WithServiceAccount("mdb_sa_id_1", secret),
			msg:  "atlas: credentials rejected as expired, authenticating again", lines: 1, status: http.StatusUnauthorized, attempt: 1,
		},
		{
			name: "401 for a stale Digest nonce",
			h: failFirst(2, func(w http.ResponseWriter, r *http.Request) {
				// The first request has no credentials: the challenge; the
				// second has them: the nonce is stale.
				stale := r.Header.Get("Authorization") != ""
				if stale {
					digestSeen.Store(r.Header.Get("Authorization"), true)
				}
				w.Header().Set("WWW-Authenticate", `Digest realm="MMS Public API", nonce="n1", algorithm=MD5, qop="auth", stale=`+strconv.FormatBool(stale))
				writeAPIError(w, http.StatusUnauthorized, "UNAUTHORIZED")
			}, pendingOK),
			auth: atlas.WithAPIKey("pubkey", private),
			msg:  "atlas: credentials rejected as expired, authenticating again", lines: 1, status: http.StatusUnauthorized, attempt: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.h)
			var logs bytes.Buffer
			c := newClient(t, srv.URL, atlas.WithRetry(quickRetry), tc.auth,
				atlas.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			var n int
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var rec struct {
					Msg     string `json:"msg"`
					Method  string `json:"method"`
					Path    string `json:"path"`
					Status  int    `json:"status"`
					Attempt int    `json:"attempt"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if rec.Msg != tc.msg {
					t.Errorf("logged %q, want only %q", line, tc.msg)
					continue
				}
				n++
				if rec.Method != http.MethodGet || rec.Path != "/api/atlas/v2/orgs/"+testOrg+"/invoices/pending" || rec.Status != tc.status || n == tc.lines && rec.Attempt != tc.attempt {
					t.Errorf("log line %s: want GET of the pending invoice, status %d, attempt %d", line, tc.status, tc.attempt)
				}
			}
			if n != tc.lines {
				t.Errorf("%d lines %q, want %d: %s", n, tc.msg, tc.lines, out)
			}
			leaks := append([]string{secret, private}, tokens...)
			digestSeen.Range(func(k, _ any) bool {
				_, resp, _ := strings.Cut(k.(string), `response="`)
				resp, _, _ = strings.Cut(resp, `"`)
				leaks = append(leaks, resp)
				return true
			})
			for _, s := range leaks {
				if s != "" && strings.Contains(out, s) {
					t.Errorf("logs leak a credential (%.6s...): %s", s, out)
				}
			}
		})
	}
}

// A body that stalls, or trickles slower than the idle timeout, fails with a
// *StreamError matching ErrIdleTimeout; one that keeps sending within it is
// read whole. Over HTTP/1.1 and HTTP/2, streamed (InvoiceCSV) and decoded
// (PendingInvoices, retried within the client, then a RetryError).
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	// serve writes head, then each of the rest after pause.
	serve := func(pause time.Duration, head string, rest ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			ct := "text/csv"
			if strings.HasSuffix(r.URL.Path, "/pending") {
				ct = "application/json"
			}
			w.Header().Set("Content-Type", ct)
			_, _ = io.WriteString(w, head)
			rc := http.NewResponseController(w)
			_ = rc.Flush()
			for _, s := range rest {
				select {
				case <-done:
					return
				case <-r.Context().Done():
					return
				case <-time.After(pause):
				}
				_, _ = io.WriteString(w, s)
				_ = rc.Flush()
			}
		}
	}
	stall := serve(20*time.Second, `{"results":[`, `]}`)
	trickle := serve(3*idle, "a", "b", "c", "d", "e", "f")
	steady := serve(idle/20, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t")
	for _, h2 := range []bool{false, true} {
		for _, tc := range []struct {
			name string
			h    http.HandlerFunc
			ok   bool
		}{{"stall", stall, false}, {"trickle", trickle, false}, {"steady", steady, true}} {
			name := tc.name + "/http1"
			if h2 {
				name = tc.name + "/http2"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv := newTLSServer(t, h2, tc.h)
				c := newClient(t, srv.URL, atlas.WithHTTPClient(srv.Client()), atlas.WithIdleTimeout(idle), atlas.WithRetry(quickRetry))
				ctx := ctxTimeout(t, 10*time.Second)
				start := time.Now()
				rc, err := c.InvoiceCSV(ctx, testOrg, testInv)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if tc.ok {
					if err != nil || len(got) != 20 {
						t.Fatalf("read %q, %v; want 20 bytes", got, err)
					}
					return
				}
				if !errors.Is(err, atlas.ErrIdleTimeout) || !atlas.IsStreamBroken(err) {
					t.Fatalf("read %q, %v; want a *StreamError matching ErrIdleTimeout", got, err)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("failed after %s", d)
				}
				if tc.name != "stall" {
					return
				}
				n := srv.requests()
				_, err = c.PendingInvoices(ctx, testOrg)
				if !errors.Is(err, atlas.ErrIdleTimeout) || !errors.Is(err, atlas.ErrTooManyAttempts) {
					t.Errorf("PendingInvoices: %v; want a RetryError of idle timeouts", err)
				}
				if got := srv.requests() - n; got != quickRetry.MaxAttempts {
					t.Errorf("%d requests, want %d", got, quickRetry.MaxAttempts)
				}
			})
		}
	}
}
