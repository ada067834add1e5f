package atlasclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
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

// TestCredentialsRedactedEverywhere formats every type that holds credentials, the way a log line,
// an error or a payload could, and finds no secret.
func TestCredentialsRedactedEverywhere(t *testing.T) {
	const clientSecret, privateKey = "mdb_sa_sk_0123456789abcdef-secret", "0123abcd-private-key"
	creds := secret.Credentials{ClientID: "mdb_sa_id_x", ClientSecret: clientSecret, PublicKey: "pub", PrivateKey: privateKey, OrgIDs: []string{"5f1a2b3c4d5e6f7a8b9c0d1e"}}
	static := Static(creds)
	client := New(static, Options{BaseURL: "http://127.0.0.1:9"})
	if _, err := client.current(context.Background()); err != nil { // builds the Atlas client from them
		t.Fatal(err)
	}
	values := map[string]any{
		"secret.Credentials": creds,
		"Static":             static,
		"config.Config":      config.Config{Credentials: creds},
		"*Client":            client,
		"a struct holding both": struct {
			C secret.Credentials
			S Credentials
		}{creds, static},
	}
	for name, v := range values {
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "value", v)
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for form, out := range map[string]string{
			"%v": fmt.Sprintf("%v", v), "%+v": fmt.Sprintf("%+v", v), "%#v": fmt.Sprintf("%#v", v),
			"JSON": string(js), "slog": logged.String(),
		} {
			if strings.Contains(out, clientSecret) || strings.Contains(out, privateKey) {
				t.Errorf("%s as %s shows a secret: %s", name, form, out)
			}
		}
	}
}
