package atlas_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// hijack102 answers with a real 102 on the wire (HTTP/1.1), then follows
// up as tail says.
func hijack102(t *testing.T, tail string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 102 Processing\r\n\r\n")
		switch tail {
		case "close":
		case "keep": // hold the connection until the client gives up on it
			_ = buf.Flush()
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, conn)
		case "then200":
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.atlas.2023-01-01+csv\r\nContent-Length: 4\r\n\r\na,b\n")
		}
		_ = buf.Flush()
	}
}

func TestGetUsage102HTTP1(t *testing.T) {
	t.Parallel()
	for _, tail := range []string{"close", "keep", "then200"} {
		t.Run(tail, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, hijack102(t, tail))
			c := newClient(t, srv.URL)
			start := time.Now()
			// The bound only matters if the client fails and waits for a
			// final status that never comes.
			u, err := c.GetUsage(ctxTimeout(t, 5*time.Second), testOrg, testToken, atlas.CSV)
			if err != nil {
				t.Fatalf("GetUsage: %v", err)
			}
			if !u.Processing || u.Body != nil {
				t.Fatalf("got %+v, want Processing and no body", u)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s: the client waited past the 102", d)
			}
			if n := srv.requests(); n != 1 {
				t.Errorf("server saw %d requests, want 1 (a 102 is not retried)", n)
			}
		})
	}
}

// Over HTTP/2 a 102 comes in three forms, each "still processing", sent by
// a hand-written server (net/http's cannot send the second): 102 then
// RST_STREAM; a 102 HEADERS frame with END_STREAM, which Go's client
// rejects before any trace hook runs; 102 then a final 200. The last two
// rows show the server is a working HTTP/2 server, and that a broken
// answer is not taken for a 102.
func TestGetUsage102HTTP2(t *testing.T) {
	t.Parallel()
	const csvType = "application/vnd.atlas.2023-01-01+csv"
	ready := func(s h2Stream) error {
		if err := s.headers("200", false, "content-type", csvType, "content-length", "4"); err != nil {
			return err
		}
		return s.fr.WriteData(s.id, true, []byte("a,b\n"))
	}
	tests := []struct {
		name     string
		answer   func(s h2Stream) error
		body     string // "" when still processing
		wantErr  bool
		requests int64
	}{
		{name: "102_then_RST_STREAM", answer: func(s h2Stream) error {
			if err := s.headers("102", false); err != nil {
				return err
			}
			return s.fr.WriteRSTStream(s.id, http2.ErrCodeCancel)
		}, requests: 1},
		{name: "102_with_END_STREAM", answer: func(s h2Stream) error { return s.headers("102", true) }, requests: 1},
		{name: "102_then_200", answer: func(s h2Stream) error {
			if err := s.headers("102", false); err != nil {
				return err
			}
			return ready(s)
		}, requests: 1},
		{name: "200", answer: ready, body: "a,b\n", requests: 1},
		{name: "no_status", answer: func(s h2Stream) error { return s.headers("", true, "content-type", csvType) }, wantErr: true, requests: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := startH2(t, tc.answer)
			c := newClient(t, srv.url, atlas.WithHTTPClient(srv.client))
			useFakeTime(c)
			u, err := c.GetUsage(ctxTimeout(t, 5*time.Second), testOrg, testToken, atlas.CSV)
			if n := srv.requests.Load(); n != tc.requests {
				t.Errorf("server saw %d requests, want %d", n, tc.requests)
			}
			switch {
			case tc.wantErr:
				if err == nil {
					t.Fatalf("GetUsage = %+v, want an error", u)
				}
			case err != nil:
				t.Fatalf("GetUsage: %v", err)
			case tc.body == "":
				if !u.Processing || u.Body != nil {
					t.Fatalf("GetUsage = %+v, want Processing", u)
				}
			default:
				if u.Processing {
					t.Fatal("GetUsage: Processing, want the result")
				}
				if got := readAll(t, u.Body); string(got) != tc.body {
					t.Errorf("body %q, want %q", got, tc.body)
				}
			}
		})
	}
}

func TestGetUsageReady(t *testing.T) {
	t.Parallel()
	const csvBody = "Invoice ID,Organization ID,Service,Usage Amount\n65ab,5f1a,\"Data Transfer\",-25.00\n"
	const jsonBody = `{"usageDetails":[{"invoiceId":"65ab","service":"Atlas","usageAmount":"1018.39"}]}`
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/atlas/v2/orgs/"+testOrg+"/billing/costExplorer/usage/"+testToken {
			t.Errorf("path %q", r.URL.Path)
		}
		w.Header().Set("Content-Type", r.Header.Get("Accept"))
		switch r.Header.Get("Accept") {
		case "application/vnd.atlas.2023-01-01+csv":
			_, _ = io.WriteString(w, csvBody)
		case "application/vnd.atlas.2023-01-01+json":
			_, _ = io.WriteString(w, jsonBody)
		default:
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
	}
	h1 := newServer(t, h)
	h2 := newTLSServer(t, true, h)
	for _, tc := range []struct {
		name string
		url  string
		hc   *http.Client
	}{{"http1", h1.URL, nil}, {"http2", h2.URL, h2.Client()}} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []atlas.Option
			if tc.hc != nil {
				opts = append(opts, atlas.WithHTTPClient(tc.hc))
			}
			c := newClient(t, tc.url, opts...)
			for f, want := range map[atlas.Format]string{atlas.CSV: csvBody, atlas.JSON: jsonBody} {
				u, err := c.GetUsage(ctxTimeout(t, 5*time.Second), testOrg, testToken, f)
				if err != nil {
					t.Fatalf("GetUsage(%s): %v", f, err)
				}
				if u.Processing {
					t.Fatalf("GetUsage(%s): Processing", f)
				}
				got, err := io.ReadAll(u.Body)
				u.Body.Close()
				if err != nil || string(got) != want {
					t.Errorf("GetUsage(%s) body = %q, %v; want %q", f, got, err, want)
				}
				if u.ContentType != "application/vnd.atlas.2023-01-01+"+string(f) {
					t.Errorf("ContentType %q", u.ContentType)
				}
			}
		})
	}
}

func TestCreateUsageQuery(t *testing.T) {
	t.Parallel()
	q := atlas.UsageQuery{
		StartDate: "2024-06-01", EndDate: "2024-08-01",
		Organizations: []string{testOrg}, Projects: []string{"32b6e34b3d91647abb20e7b8"},
		Clusters: []string{"32b6e34b3d91647abb20e7b9"}, Services: []string{"Data Transfer", "Cloud Manager Standard/Premium"},
		GroupBy: "services", IncludePartialMatches: true,
	}
	var got map[string]any
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/atlas/v2/orgs/"+testOrg+"/billing/costExplorer/usage" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		for h, want := range map[string]string{
			"Content-Type": "application/vnd.atlas.2023-01-01+json",
			"Accept":       "application/vnd.atlas.2023-01-01+json",
		} {
			if r.Header.Get(h) != want {
				t.Errorf("%s = %q, want %q", h, r.Header.Get(h), want)
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decoding body: %v", err)
		}
		writeJSON(w, http.StatusAccepted, `{"token":"`+testToken+`"}`)
	})
	c := newClient(t, srv.URL)
	tok, err := c.CreateUsageQuery(ctxTimeout(t, 5*time.Second), testOrg, q)
	if err != nil || tok != testToken {
		t.Fatalf("CreateUsageQuery = %q, %v", tok, err)
	}
	want := map[string]any{
		"startDate": "2024-06-01", "endDate": "2024-08-01",
		"organizations": []any{testOrg}, "projects": []any{"32b6e34b3d91647abb20e7b8"},
		"clusters": []any{"32b6e34b3d91647abb20e7b9"}, "services": []any{"Data Transfer", "Cloud Manager Standard/Premium"},
		"groupBy": "services", "includePartialMatches": true,
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Errorf("body = %s, want %s", gj, wj)
	}
}

// A query that names no organization is sent naming the org it runs in.
func TestCreateUsageQueryNamesOrg(t *testing.T) {
	t.Parallel()
	var got struct{ Organizations []string }
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("decoding body: %v", err)
		}
		writeJSON(w, http.StatusAccepted, `{"token":"`+testToken+`"}`)
	})
	c := newClient(t, srv.URL)
	q := atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"}
	if _, err := c.CreateUsageQuery(ctxTimeout(t, 5*time.Second), testOrg, q); err != nil {
		t.Fatal(err)
	}
	if len(got.Organizations) != 1 || got.Organizations[0] != testOrg || q.Organizations != nil {
		t.Errorf("organizations sent %v (caller's query %v), want [%s] (caller's untouched)", got.Organizations, q.Organizations, testOrg)
	}
}

func TestCreateUsageQueryBadAnswer(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"short token":   `{"token":"abc"}`,
		"no token":      `{}`,
		"path in token": `{"token":"../../../../../../../../../../../../../../../../../../../../../a"}`,
	} {
		t.Run(name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusAccepted, body) })
			c := newClient(t, srv.URL)
			_, err := c.CreateUsageQuery(ctxTimeout(t, 5*time.Second), testOrg, atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"})
			var ve *atlas.ValidationError
			if err == nil || errors.As(err, &ve) {
				t.Fatalf("error = %v, want a non-validation error", err)
			}
		})
	}
}

// A server that answers the wrong media type is an error, not data.
func TestWrongMediaType(t *testing.T) {
	t.Parallel()
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>proxy says hi</html>")
	})
	c := newClient(t, srv.URL)
	ctx := ctxTimeout(t, 5*time.Second)
	var me *atlas.MediaTypeError
	if _, err := c.GetUsage(ctx, testOrg, testToken, atlas.CSV); !errors.As(err, &me) {
		t.Errorf("GetUsage error = %v, want *MediaTypeError", err)
	}
	if _, err := c.InvoiceCSV(ctx, testOrg, testInv); !errors.As(err, &me) {
		t.Errorf("InvoiceCSV error = %v, want *MediaTypeError", err)
	}
	if _, err := c.PendingInvoices(ctx, testOrg); !errors.As(err, &me) {
		t.Errorf("PendingInvoices error = %v, want *MediaTypeError", err)
	}
	if n := srv.requests(); n != 3 {
		t.Errorf("server saw %d requests, want 3 (no retries)", n)
	}
}

// A JSON answer read whole may be as long as its bound (1 MiB), not a byte
// longer; a longer one is refused, not cut, and not retried.
func TestAnswerBound(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1 << 20, 1<<20 + 1} {
		head := `{"token":"` + testToken + `","x":"`
		body := head + strings.Repeat("a", n-len(head)-2) + `"}`
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusAccepted, body) })
		c := newClient(t, srv.URL, atlas.WithRetry(quickRetry))
		tok, err := c.CreateUsageQuery(ctxTimeout(t, 5*time.Second), testOrg, atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"})
		var ae *atlas.AnswerError
		switch {
		case n == 1<<20 && (err != nil || tok != testToken):
			t.Errorf("an answer of %d bytes: %q, %v; want the token", n, tok, err)
		case n > 1<<20 && (!errors.As(err, &ae) || ae.Reason != "larger than its bound" || srv.requests() != 1):
			t.Errorf("an answer of %d bytes: %v after %d requests; want one refused as larger than its bound", n, err, srv.requests())
		}
	}
}
