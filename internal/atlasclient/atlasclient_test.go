package atlasclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
)

// TestUserAgent: every request names the application, a version that is never empty (the build's
// when no -ldflags set one) and the front end.
func TestUserAgent(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("User-Agent"))
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	for _, v := range []string{"", "v1.2.3"} {
		Version = v
		c := New(Static(secret.Credentials{PublicKey: "pub", PrivateKey: "priv"}), Options{BaseURL: srv.URL, UserAgent: UserAgent("cli")})
		_, _ = c.ListInvoices(context.Background(), "5f1a2b3c4d5e6f7a8b9c0d1e", nil)
	}
	Version = ""
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("requests: %q", got)
	}
	if !regexp.MustCompile(`^atlas-billing-export/[^ /()]+ \(cli\)$`).MatchString(got[0]) || got[1] != "atlas-billing-export/v1.2.3 (cli)" {
		t.Errorf("User-Agents %q", got)
	}
}
