package atlassim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
)

// newQuery creates a usage query and returns its poll URL.
func newQuery(t testing.TB, c *http.Client, base, org string) string {
	t.Helper()
	st, _, b := call(t, c, http.MethodPost, orgURL(base, org, "/billing/costExplorer/usage"), jsonType, usageQuery())
	if st != http.StatusAccepted {
		t.Fatalf("create usage: %d %s", st, b)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(b, &tok); err != nil {
		t.Fatal(err)
	}
	return orgURL(base, org, "/billing/costExplorer/usage/"+tok.Token)
}

// TestProcessingHTTP1Wire reads the raw bytes of a poll over HTTP/1.1: the
// whole answer is the status line of a 102 and the connection ends.
func TestProcessingHTTP1Wire(t *testing.T) {
	_, base := start(t, atlassim.Config{ReadyAfterPolls: 1})
	c := client(t, base, oauth, nil)
	u := newQuery(t, c, base, org1)

	// Get a bearer token to write the request by hand.
	tr := &tokenCatcher{base: http.DefaultTransport}
	c2 := client(t, base, oauth, tr)
	if st, _, _ := call(t, c2, http.MethodGet, orgURL(base, org1, "/invoices/pending"), jsonType, nil); st != 200 {
		t.Fatalf("pending: %d", st)
	}
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	path := strings.TrimPrefix(u, base)
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nAccept: " + csvType + "\r\nAuthorization: " + tr.auth + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(raw), "HTTP/1.1 102 Processing\r\n\r\n"; got != want {
		t.Fatalf("raw answer %q, want exactly %q", got, want)
	}
}

// tokenCatcher remembers the Authorization header it forwarded.
type tokenCatcher struct {
	base http.RoundTripper
	auth string
}

func (c *tokenCatcher) RoundTrip(r *http.Request) (*http.Response, error) {
	c.auth = r.Header.Get("Authorization")
	return c.base.RoundTrip(r)
}

// TestProcessingHTTP2 polls over TLS with HTTP/2: the client sees a 102
// informational response and then the stream ends without a final status;
// the next poll gets the result.
func TestProcessingHTTP2(t *testing.T) {
	for _, sc := range []scheme{oauth, digestKey} {
		t.Run(string(sc), func(t *testing.T) {
			_, base, hc := atlassimtest.StartTLS(t, atlassim.Config{ReadyAfterPolls: 2, Now: fixedNow})
			c := client(t, base, sc, hc.Transport)
			u := newQuery(t, c, base, org1)
			for i := range 2 {
				got102, st, _, err := poll(t, c, u, jsonType)
				if !got102 || err == nil || st != 0 {
					t.Fatalf("poll %d: got102=%v status=%d err=%v; want a 102 and no final response", i+1, got102, st, err)
				}
			}
			got102, st, body, err := poll(t, c, u, jsonType)
			if got102 || err != nil || st != 200 || !strings.HasPrefix(string(body), `{"usageDetails":[`) {
				t.Fatalf("poll 3: got102=%v status=%d err=%v body %.40s", got102, st, err, body)
			}
			// The answers really were HTTP/2.
			resp, err := c.Get(orgURL(base, org1, "/invoices/pending"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("proto %s, want HTTP/2", resp.Proto)
			}
		})
	}
}

// TestProcessingHTTP2HookError shows what net/http's HTTP/2 client does when
// its Got1xxResponse hook returns an error: Do fails (a stream error that
// errors.Is does not match), which is why a client must record the 102 in
// the hook rather than rely on the error.
func TestProcessingHTTP2HookError(t *testing.T) {
	_, base, hc := atlassimtest.StartTLS(t, atlassim.Config{ReadyAfterPolls: 5, Now: fixedNow})
	c := client(t, base, oauth, hc.Transport)
	u := newQuery(t, c, base, org1)
	errProcessing := errors.New("processing")
	seen := 0
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", jsonType)
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
			if code == 102 {
				seen++
				return errProcessing
			}
			return nil
		},
	}))
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("Do: status %d, want an error", resp.StatusCode)
	}
	if seen != 1 {
		t.Fatalf("102 seen %d times, want 1 (err %v)", seen, err)
	}
}
