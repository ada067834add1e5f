package atlas_test

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

const (
	saID     = "mdb_sa_id_0123456789abcdef"
	saSecret = "mdb_sa_sk_secret_value"
)

// oauthServer issues tokens "tok-N" at /api/oauth/token and accepts the
// tokens in valid on the API.
type oauthServer struct {
	*server
	tokens    atomic.Int64
	api       atomic.Int64
	expiresIn int
	mu        sync.Mutex
	valid     map[string]bool
	apiStatus int // forced API status when non-zero
}

func newOAuthServer(t *testing.T, tls bool) *oauthServer {
	o := &oauthServer{expiresIn: 3600, valid: map[string]bool{}}
	h := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/oauth/token" {
			o.token(t, w, r)
			return
		}
		o.api.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		o.mu.Lock()
		good := ok && o.valid[tok]
		forced := o.apiStatus
		o.mu.Unlock()
		if !good || forced == http.StatusUnauthorized {
			writeAPIError(w, http.StatusUnauthorized, "NOT_ORG_GROUP_CREATOR")
			return
		}
		pendingOK(w, r)
	}
	if tls {
		o.server = newTLSServer(t, false, h)
	} else {
		o.server = newServer(t, h)
	}
	return o
}

func (o *oauthServer) token(t *testing.T, w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" {
		t.Errorf("token request %s grant_type=%q", r.Method, r.FormValue("grant_type"))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !ok || id != saID || secret != saSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"bad client credentials"}`)
		return
	}
	tok := "tok-" + strconv.FormatInt(o.tokens.Add(1), 10)
	o.valid[tok] = true
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"access_token":"`+tok+`","token_type":"Bearer","expires_in":`+strconv.Itoa(o.expiresIn)+`}`)
}

func (o *oauthServer) revoke(tok string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.valid, tok)
}

func TestServiceAccount(t *testing.T) {
	t.Parallel()
	t.Run("token reused", func(t *testing.T) {
		t.Parallel()
		for _, tls := range []bool{false, true} {
			o := newOAuthServer(t, tls)
			opts := []atlas.Option{atlas.WithServiceAccount(saID, saSecret)}
			if tls {
				// The token request must go through this client too, or
				// the test server's certificate is not trusted.
				opts = append(opts, atlas.WithHTTPClient(o.Client()))
			}
			c := newClient(t, o.URL, opts...)
			for range 3 {
				if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
					t.Fatalf("tls=%v: %v", tls, err)
				}
			}
			if n, a := o.tokens.Load(), o.api.Load(); n != 1 || a != 3 {
				t.Errorf("tls=%v: %d token requests, %d API requests; want 1 and 3", tls, n, a)
			}
		}
	})
	t.Run("expired token fetched again", func(t *testing.T) {
		t.Parallel()
		o := newOAuthServer(t, false)
		o.expiresIn = 5 // inside oauth2's 10s expiry margin: never reused
		c := newClient(t, o.URL, atlas.WithServiceAccount(saID, saSecret))
		for range 2 {
			if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
				t.Fatal(err)
			}
		}
		if n := o.tokens.Load(); n != 2 {
			t.Errorf("%d token requests, want 2", n)
		}
	})
	t.Run("401 refreshes once", func(t *testing.T) {
		t.Parallel()
		o := newOAuthServer(t, false)
		c := newClient(t, o.URL, atlas.WithServiceAccount(saID, saSecret))
		if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
			t.Fatal(err)
		}
		o.revoke("tok-1") // as if it expired early on the server's side
		if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
			t.Fatalf("after revocation: %v", err)
		}
		if n, a := o.tokens.Load(), o.api.Load(); n != 2 || a != 3 {
			t.Errorf("%d token requests, %d API requests; want 2 and 3", n, a)
		}
	})
	t.Run("401 twice is unauthorized", func(t *testing.T) {
		t.Parallel()
		o := newOAuthServer(t, false)
		o.apiStatus = http.StatusUnauthorized
		c := newClient(t, o.URL, atlas.WithServiceAccount(saID, saSecret))
		_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
		if !atlas.IsUnauthorized(err) {
			t.Fatalf("error = %v, want unauthorized", err)
		}
		if n, a := o.tokens.Load(), o.api.Load(); n != 2 || a != 2 {
			t.Errorf("%d token requests, %d API requests; want 2 and 2", n, a)
		}
	})
	t.Run("bad credentials", func(t *testing.T) {
		t.Parallel()
		o := newOAuthServer(t, false)
		c := newClient(t, o.URL, atlas.WithServiceAccount(saID, "wrong-secret"))
		_, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
		var e *atlas.Error
		if !atlas.IsUnauthorized(err) || !errors.As(err, &e) || e.ErrorCode != "invalid_client" || e.Path != "/api/oauth/token" {
			t.Fatalf("error = %v (%+v), want a 401 from the token endpoint", err, e)
		}
		if strings.Contains(err.Error(), "wrong-secret") {
			t.Errorf("error leaks the secret: %v", err)
		}
		if n, a := o.requests(), o.api.Load(); n != 1 || a != 0 {
			t.Errorf("%d requests, %d API requests; want 1 and 0", n, a)
		}
	})
	t.Run("token endpoint 503 retried", func(t *testing.T) {
		t.Parallel()
		var tokenCalls atomic.Int64
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/oauth/token" {
				if tokenCalls.Add(1) == 1 {
					writeAPIError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE")
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"access_token":"a","token_type":"Bearer","expires_in":3600}`)
				return
			}
			pendingOK(w, r)
		})
		c := newClient(t, srv.URL, atlas.WithServiceAccount(saID, saSecret), atlas.WithRetry(quickRetry))
		if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
			t.Fatal(err)
		}
		if n := tokenCalls.Load(); n != 2 {
			t.Errorf("%d token requests, want 2", n)
		}
	})
}

// digestServer checks RFC 7616 MD5 digest credentials for one key pair.
func digestServer(t *testing.T, user, pass string) (*server, *atomic.Int64) {
	const realm, nonce = "MMS Public API", "0123456789abcdef"
	var authorized atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		p, ok := parseDigest(r.Header.Get("Authorization"))
		if ok {
			ha1 := md5hex(p["username"] + ":" + realm + ":" + pass)
			ha2 := md5hex(r.Method + ":" + p["uri"])
			want := md5hex(ha1 + ":" + nonce + ":" + p["nc"] + ":" + p["cnonce"] + ":" + p["qop"] + ":" + ha2)
			if p["username"] == user && p["nonce"] == nonce && p["uri"] == r.URL.RequestURI() && p["response"] == want {
				authorized.Add(1)
				pendingOK(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Digest realm="`+realm+`", domain="", nonce="`+nonce+`", algorithm=MD5, qop="auth", stale=false`)
		writeAPIError(w, http.StatusUnauthorized, "UNAUTHORIZED")
	})
	return srv, &authorized
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func parseDigest(h string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(h, "Digest ")
	if !ok {
		return nil, false
	}
	p := map[string]string{}
	for _, kv := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(kv, "=")
		p[k] = strings.Trim(v, `"`)
	}
	return p, true
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	srv, authorized := digestServer(t, "pubkey", "priv-key-secret")
	c := newClient(t, srv.URL, atlas.WithAPIKey("pubkey", "priv-key-secret"))
	inv, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
	if err != nil || len(inv) != 1 {
		t.Fatalf("PendingInvoices = %v, %v", inv, err)
	}
	if authorized.Load() != 1 {
		t.Errorf("%d authorized requests, want 1", authorized.Load())
	}

	bad := newClient(t, srv.URL, atlas.WithAPIKey("pubkey", "wrong"))
	_, err = bad.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg)
	if !atlas.IsUnauthorized(err) {
		t.Fatalf("error = %v, want unauthorized", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the key: %v", err)
	}
}

func TestNewClientOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []atlas.Option
		ok   bool
	}{
		{"defaults", nil, true},
		{"loopback http", []atlas.Option{atlas.WithBaseURL("http://127.0.0.1:8080/")}, true},
		{"both auth", []atlas.Option{atlas.WithServiceAccount("a", "b"), atlas.WithAPIKey("c", "d")}, false},
		{"empty secret", []atlas.Option{atlas.WithServiceAccount("a", "")}, false},
		{"empty key", []atlas.Option{atlas.WithAPIKey("", "d")}, false},
		{"remote http", []atlas.Option{atlas.WithBaseURL("http://cloud.mongodb.com")}, false},
		{"path", []atlas.Option{atlas.WithBaseURL("https://cloud.mongodb.com/api")}, false},
		{"userinfo", []atlas.Option{atlas.WithBaseURL("https://u:p@cloud.mongodb.com")}, false},
		{"no host", []atlas.Option{atlas.WithBaseURL("cloud.mongodb.com")}, false},
		{"nil http client", []atlas.Option{atlas.WithHTTPClient(nil)}, false},
		{"multiline UA", []atlas.Option{atlas.WithUserAgent("a\r\nX-Evil: 1")}, false},
		{"idle timeout", []atlas.Option{atlas.WithIdleTimeout(time.Nanosecond)}, true},
		{"zero idle timeout", []atlas.Option{atlas.WithIdleTimeout(0)}, false},
		{"negative idle timeout", []atlas.Option{atlas.WithIdleTimeout(-time.Second)}, false},
	}
	for _, tc := range tests {
		_, err := atlas.NewClient(tc.opts...)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// The caller names itself; without WithUserAgent the package sends no name
// of its own, only net/http's default.
func TestUserAgentOption(t *testing.T) {
	t.Parallel()
	var ua atomic.Value
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		pendingOK(w, r)
	})
	for _, tc := range []struct {
		opts []atlas.Option
		want string
	}{
		{[]atlas.Option{atlas.WithUserAgent("someapp/1.2.3 (+test)")}, "someapp/1.2.3 (+test)"},
		{nil, "Go-http-client/1.1"},
	} {
		c := newClient(t, srv.URL, tc.opts...)
		if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err != nil {
			t.Fatal(err)
		}
		if got := ua.Load(); got != tc.want {
			t.Errorf("User-Agent = %v, want %q", got, tc.want)
		}
	}
}
