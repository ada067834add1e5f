package atlassim

import (
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // HTTP Digest (RFC 2617) is defined with MD5; Atlas uses it.
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// digestRealm is the realm Atlas announces in its Digest challenges.
const digestRealm = "MMS Public API"

// nonceLifetime bounds how long a Digest nonce is accepted before the client
// is told it is stale.
const nonceLifetime = 5 * time.Minute

type token struct {
	clientID string
	expires  time.Time
}

// authenticator checks both Atlas schemes. Secrets live only here and are
// compared in constant time; nothing here logs or returns them.
type authenticator struct {
	ttl      time.Duration
	nonceKey [32]byte

	mu       sync.Mutex
	accounts map[string]string // clientID -> secret
	keys     map[string]string // publicKey -> privateKey
	tokens   map[string]token
	seen     map[string]time.Time // used nonce|nc|cnonce triples (replay guard)
}

func newAuthenticator(cfg Config) *authenticator {
	a := &authenticator{
		ttl:      cfg.TokenTTL,
		accounts: map[string]string{},
		keys:     map[string]string{},
		tokens:   map[string]token{},
		seen:     map[string]time.Time{},
	}
	maps.Copy(a.accounts, cfg.ServiceAccounts)
	maps.Copy(a.keys, cfg.APIKeys)
	rand.Read(a.nonceKey[:]) // crypto/rand.Read never returns an error
	return a
}

func secretEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// issue checks client credentials and returns a new access token.
func (a *authenticator) issue(clientID, secret string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	want, ok := a.accounts[clientID]
	if !ok || !secretEqual(want, secret) {
		return "", false
	}
	var b [32]byte
	rand.Read(b[:])
	t := hex.EncodeToString(b[:])
	a.tokens[t] = token{clientID: clientID, expires: time.Now().Add(a.ttl)}
	return t, true
}

// invalidate forgets a bearer token (the ExpiredToken fault).
func (a *authenticator) invalidate(t string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.tokens, t)
}

// principal is who made a request: the scheme and a non-secret id.
type principal struct {
	scheme string // "bearer" | "digest"
	id     string // client id or public key
	token  string // the bearer token, to invalidate it (never logged)
}

// authFailure explains a rejected request without echoing secrets.
type authFailure struct {
	detail string
	stale  bool // Digest nonce too old: the client should retry with a new one
}

func (a *authenticator) check(r *http.Request) (principal, *authFailure) {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		t := strings.TrimSpace(rest)
		a.mu.Lock()
		tok, ok := a.tokens[t]
		if ok && !time.Now().Before(tok.expires) {
			delete(a.tokens, t)
			ok = false
		}
		a.mu.Unlock()
		if !ok {
			return principal{}, &authFailure{detail: "The access token is invalid or has expired."}
		}
		return principal{scheme: "bearer", id: tok.clientID, token: t}, nil
	case "digest":
		return a.checkDigest(r, rest)
	case "":
		return principal{}, &authFailure{detail: "Authentication is required: use an OAuth access token (Bearer) or an API key (HTTP Digest)."}
	default:
		return principal{}, &authFailure{detail: "Unsupported authorization scheme."}
	}
}

// challenge returns a WWW-Authenticate value. The field order and the ", "
// separators matter: common clients (mongodb-forks/digest) split on ", " and
// reject unknown fields.
func (a *authenticator) challenge(stale bool) string {
	return fmt.Sprintf(`Digest realm="%s", domain="", nonce="%s", algorithm=MD5, qop="auth", stale=%t`, digestRealm, a.newNonce(), stale)
}

// newNonce makes a stateless nonce: issue time plus an HMAC over it, so the
// server can check it was issued here and is fresh without storing it.
func (a *authenticator) newNonce() string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	m := hmac.New(sha256.New, a.nonceKey[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceAge reports the age of a nonce issued here, or ok=false.
func (a *authenticator) nonceAge(n string) (time.Duration, bool) {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return 0, false
	}
	m := hmac.New(sha256.New, a.nonceKey[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return 0, false
	}
	return time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))), true
}

// checkDigest verifies an RFC 2617 Digest response (algorithm MD5, qop=auth)
// against the stored private key.
func (a *authenticator) checkDigest(r *http.Request, params string) (principal, *authFailure) {
	p := parseDigestParams(params)
	user, nonce, uri, resp := p["username"], p["nonce"], p["uri"], p["response"]
	qop, nc, cnonce := p["qop"], p["nc"], p["cnonce"]
	bad := &authFailure{detail: "The API key or its digest response is invalid."}
	if user == "" || nonce == "" || uri == "" || resp == "" {
		return principal{}, bad
	}
	if alg := p["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return principal{}, bad
	}
	if p["realm"] != digestRealm || qop != "auth" || nc == "" || cnonce == "" {
		return principal{}, bad
	}
	// The digest covers the request-target; it must be this request's.
	if uri != r.URL.RequestURI() && uri != r.RequestURI {
		return principal{}, bad
	}
	age, ok := a.nonceAge(nonce)
	if !ok {
		return principal{}, bad
	}
	a.mu.Lock()
	priv, known := a.keys[user]
	a.mu.Unlock()
	if !known {
		priv = "" // still compute, so timing does not reveal which keys exist
	}
	ha1 := md5hex(user + ":" + digestRealm + ":" + priv)
	ha2 := md5hex(r.Method + ":" + uri)
	want := md5hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
	if !known || !secretEqual(want, strings.ToLower(resp)) {
		return principal{}, bad
	}
	if age > nonceLifetime {
		return principal{}, &authFailure{detail: "The digest nonce is stale.", stale: true}
	}
	triple := nonce + "|" + nc + "|" + cnonce
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, replay := a.seen[triple]; replay {
		return principal{}, &authFailure{detail: "The digest response was already used."}
	}
	now := time.Now()
	a.seen[triple] = now
	if len(a.seen) > 4096 { // prune entries older than any acceptable nonce
		for k, t := range a.seen {
			if now.Sub(t) > nonceLifetime {
				delete(a.seen, k)
			}
		}
	}
	return principal{scheme: "digest", id: user}, nil
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s)) //nolint:gosec // required by RFC 2617
	return hex.EncodeToString(sum[:])
}

// parseDigestParams parses `k=v, k="v, with comma", ...`.
func parseDigestParams(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return out
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			val = b.String()
			if i < len(s) {
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val = strings.TrimSpace(s[:end])
			s = s[end:]
		}
		out[key] = val
	}
}

// basicAuth parses a Basic header. OAuth clients form-encode the id and
// secret before Basic encoding (RFC 6749 2.3.1); x/oauth2 does, so decode.
func basicAuth(r *http.Request) (id, secret string, ok bool) {
	id, secret, ok = r.BasicAuth()
	if !ok {
		return "", "", false
	}
	if u, err := url.QueryUnescape(id); err == nil {
		id = u
	}
	if u, err := url.QueryUnescape(secret); err == nil {
		secret = u
	}
	return id, secret, true
}
