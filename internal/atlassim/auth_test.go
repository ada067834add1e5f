package atlassim_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mongodb-forks/digest"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

func TestDigestChallenge(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	st, h, b := call(t, http.DefaultClient, http.MethodGet, orgURL(base, org1, "/invoices/pending"), jsonType, nil)
	if st != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", st)
	}
	ch := h.Get("WWW-Authenticate")
	re := regexp.MustCompile(`^Digest realm="MMS Public API", domain="", nonce="([^"]+)", algorithm=MD5, qop="auth", stale=false$`)
	m := re.FindStringSubmatch(ch)
	if m == nil {
		t.Fatalf("challenge %q", ch)
	}
	if e := decodeErr(t, b); e.Error != 401 || e.ErrorCode != "UNAUTHORIZED" || e.Reason != "Unauthorized" {
		t.Fatalf("401 body %+v", e)
	}
	if n := srv.Requests(atlassim.OpPendingInvoice); n != 0 {
		t.Fatalf("challenge counted as a request: %d", n)
	}

	// Answer the challenge by hand (RFC 2617, qop=auth), then tamper with it.
	path := "/api/atlas/v2/orgs/" + org1 + "/invoices/pending"
	md5h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	authz := func(priv, uri, nc string) string {
		ha1 := md5h(atlassim.DefaultPublicKey + ":MMS Public API:" + priv)
		ha2 := md5h("GET:" + uri)
		resp := md5h(ha1 + ":" + m[1] + ":" + nc + ":0a4f113b:auth:" + ha2)
		return fmt.Sprintf(`Digest username="%s", realm="MMS Public API", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=%s, cnonce="0a4f113b"`,
			atlassim.DefaultPublicKey, m[1], uri, resp, nc)
	}
	for _, tc := range []struct {
		name, authz string
		want        int
	}{
		{"right", authz(atlassim.DefaultPrivateKey, path, "00000001"), 200},
		{"replayed", authz(atlassim.DefaultPrivateKey, path, "00000001"), 401},
		{"next nc", authz(atlassim.DefaultPrivateKey, path, "00000002"), 200},
		{"wrong key", authz("not-the-key", path, "00000003"), 401},
		{"other uri", authz(atlassim.DefaultPrivateKey, "/api/atlas/v2/orgs/"+org2+"/invoices/pending", "00000004"), 401},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Accept", jsonType)
		req.Header.Set("Authorization", tc.authz)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		if strings.Contains(string(body), atlassim.DefaultPrivateKey) {
			t.Errorf("%s: body echoes the private key", tc.name)
		}
	}
}

func TestBadCredentials(t *testing.T) {
	_, base := start(t, atlassim.Config{})
	u := orgURL(base, org1, "/invoices/pending")

	dc := &http.Client{Transport: digest.NewTransport(atlassim.DefaultPublicKey, "wrong-private-key")}
	st, _, b := call(t, dc, http.MethodGet, u, jsonType, nil)
	if e := decodeErr(t, b); st != 401 || e.ErrorCode != "UNAUTHORIZED" || strings.Contains(string(b), "wrong-private-key") {
		t.Fatalf("digest with a wrong key: %d %s", st, b)
	}
	dc = &http.Client{Transport: digest.NewTransport("nosuchkey", atlassim.DefaultPrivateKey)}
	if st, _, _ := call(t, dc, http.MethodGet, u, jsonType, nil); st != 401 {
		t.Fatalf("digest with an unknown key: %d", st)
	}

	cc := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: "wrong-secret", TokenURL: base + "/api/oauth/token"}
	_, err := cc.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("token with a wrong secret: %v", err)
	}

	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer not-a-token")
	req.Header.Set("Accept", jsonType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unknown bearer token: %d", resp.StatusCode)
	}
}

func TestTokenEndpoint(t *testing.T) {
	_, base := start(t, atlassim.Config{TokenTTL: 90 * time.Second})
	form := url.Values{"grant_type": {"client_credentials"}}
	for _, tc := range []struct {
		name       string
		form       url.Values
		basic      bool
		wantStatus int
		wantInBody string
	}{
		{"basic", form, true, 200, `"token_type":"bearer","expires_in":90`},
		{"form credentials", url.Values{"grant_type": {"client_credentials"}, "client_id": {atlassim.DefaultClientID}, "client_secret": {atlassim.DefaultClientSecret}}, false, 200, `"access_token":"`},
		{"wrong grant", url.Values{"grant_type": {"password"}}, true, 400, "unsupported_grant_type"},
		{"no credentials", form, false, 401, "invalid_client"},
	} {
		req, _ := http.NewRequest(http.MethodPost, base+"/api/oauth/token", strings.NewReader(tc.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.basic {
			req.SetBasicAuth(atlassim.DefaultClientID, atlassim.DefaultClientSecret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantInBody) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, resp.StatusCode, b, tc.wantStatus, tc.wantInBody)
		}
	}
}

// TestTokenExpiry: a token stops working after TokenTTL. A raw token is used
// so x/oauth2 cannot refresh it behind the test's back.
func TestTokenExpiry(t *testing.T) {
	_, base := start(t, atlassim.Config{TokenTTL: 300 * time.Millisecond})
	cc := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret, TokenURL: base + "/api/oauth/token"}
	tok, err := cc.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	get := func() int {
		req, _ := http.NewRequest(http.MethodGet, orgURL(base, org1, "/invoices/pending"), nil)
		req.Header.Set("Accept", jsonType)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get(); st != 200 {
		t.Fatalf("fresh token: %d", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != 401 {
		if time.Now().After(deadline) {
			t.Fatal("token still accepted 5s after a 300ms TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServiceAccountRotation(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	c := client(t, base, oauth, nil)
	u := orgURL(base, org1, "/invoices/pending")
	if st, _, _ := call(t, c, http.MethodGet, u, jsonType, nil); st != 200 {
		t.Fatalf("before revoke: %d", st)
	}
	srv.RevokeServiceAccount(atlassim.DefaultClientID)
	if st, _, _ := call(t, c, http.MethodGet, u, jsonType, nil); st != 401 {
		t.Fatalf("cached token after revoke: %d, want 401", st)
	}
	srv.SetServiceAccount(atlassim.DefaultClientID, "rotated-secret")
	old := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret, TokenURL: base + "/api/oauth/token"}
	if _, err := old.Token(context.Background()); err == nil {
		t.Fatal("old secret accepted after rotation")
	}
	cc := clientcredentials.Config{ClientID: atlassim.DefaultClientID, ClientSecret: "rotated-secret", TokenURL: base + "/api/oauth/token"}
	if st, _, _ := call(t, cc.Client(context.Background()), http.MethodGet, u, jsonType, nil); st != 200 {
		t.Fatalf("new secret: %d", st)
	}
}
