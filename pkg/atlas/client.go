// Package atlas is a small client for the billing part of the MongoDB Atlas
// Administration API v2: Cost Explorer usage queries, invoices, and invoice
// reports (FOCUS).
//
// Response bodies that can be large (usage results, invoice CSVs, report
// downloads) are handed to the caller as streams and never read whole.
// Requests are retried on 429, 5xx and connection errors within a bounded
// budget, and only before a body is handed over.
package atlas

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mongodb-forks/digest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

const (
	// DefaultBaseURL is the Atlas Administration API host.
	DefaultBaseURL = "https://cloud.mongodb.com"
	// APIVersion is the version every billing operation declares, except
	// the invoice report operations.
	APIVersion = "2023-01-01"
	// ReportAPIVersion is the only version the invoice report operations
	// (create, get) declare.
	ReportAPIVersion = "2025-03-12"

	apiPrefix = "/api/atlas/v2"
	tokenPath = "/api/oauth/token"

	mediaJSON = "application/vnd.atlas." + APIVersion + "+json"
	mediaCSV  = "application/vnd.atlas." + APIVersion + "+csv"

	mediaReportJSON = "application/vnd.atlas." + ReportAPIVersion + "+json"
)

// Client calls the Atlas Administration API. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	baseHC    *http.Client // as given by WithHTTPClient, never following redirects; for the OAuth token request
	hc        *http.Client // what API requests go through (digest transport for API keys)
	dlHC      *http.Client // as given by WithDownloadClient
	dl        *http.Client // what report downloads go through: never any credentials
	userAgent string
	retry     RetryPolicy
	// idleTimeout bounds how long a response body may send nothing.
	idleTimeout time.Duration
	logger      *slog.Logger

	// Service account (bearer) auth.
	oauth   *clientcredentials.Config
	tokenMu sync.Mutex
	token   *oauth2.Token

	// Set by options, turned into transports by NewClient.
	clientID, clientSecret string
	publicKey, privateKey  string
	baseRaw                string

	// Injectable for unit tests.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(n int64) int64 // uniform in [0, n)
	now    func() time.Time
}

// Option configures a Client.
type Option func(*Client) error

// WithBaseURL sets the API host (default DefaultBaseURL). Plain http is
// accepted only for loopback hosts, so credentials never cross a network in
// the clear.
func WithBaseURL(u string) Option {
	return func(c *Client) error { c.baseRaw = u; return nil }
}

// WithHTTPClient sets the underlying HTTP client (transport, TLS config,
// timeouts). It is also used to fetch OAuth tokens. Redirects are never
// followed, whatever its CheckRedirect says.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("atlas: WithHTTPClient: nil client")
		}
		c.baseHC = hc
		return nil
	}
}

// WithDownloadClient sets the HTTP client for report downloads (the
// pre-signed downloadUrl, on another host). By default downloads use the
// transport of WithHTTPClient's client (or the default one) without any
// Atlas credentials; give a separate client when that transport adds
// credentials of its own. Whichever client is used, its cookie jar is
// dropped and redirects are not followed.
func WithDownloadClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("atlas: WithDownloadClient: nil client")
		}
		c.dlHC = hc
		return nil
	}
}

// WithServiceAccount authenticates with a service account (OAuth 2.0 client
// credentials; token from {base}/api/oauth/token, reused until it expires).
func WithServiceAccount(clientID, clientSecret string) Option {
	return func(c *Client) error {
		if clientID == "" || clientSecret == "" {
			return errors.New("atlas: WithServiceAccount: empty client id or secret")
		}
		c.clientID, c.clientSecret = clientID, clientSecret
		return nil
	}
}

// WithAPIKey authenticates with a programmatic API key (HTTP Digest).
func WithAPIKey(publicKey, privateKey string) Option {
	return func(c *Client) error {
		if publicKey == "" || privateKey == "" {
			return errors.New("atlas: WithAPIKey: empty public or private key")
		}
		c.publicKey, c.privateKey = publicKey, privateKey
		return nil
	}
}

// WithUserAgent sets the User-Agent of every request, for example
// "myapp/1.2.3". Without it net/http's default is sent.
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if ua == "" || strings.ContainsAny(ua, "\r\n") {
			return errors.New("atlas: WithUserAgent: empty or multi-line user agent")
		}
		c.userAgent = ua
		return nil
	}
}

// WithRetry sets the retry policy (default DefaultRetryPolicy).
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error { c.retry = p; return nil }
}

// WithIdleTimeout sets how long a response body may send nothing before its
// Read fails with a *StreamError matching ErrIdleTimeout (default 2m): a
// server that stalls or trickles cannot hold a download forever.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return errors.New("atlas: WithIdleTimeout: the timeout must be positive")
		}
		c.idleTimeout = d
		return nil
	}
}

// WithLogger logs retries (method, path, status, attempt, wait) at Info
// level. Nothing else is logged, and never credentials or tokens.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error { c.logger = l; return nil }
}

// NewClient returns a client. Without WithServiceAccount or WithAPIKey the
// requests are unauthenticated; giving both is an error.
func NewClient(opts ...Option) (*Client, error) {
	c := &Client{
		baseRaw: DefaultBaseURL,
		retry:   DefaultRetryPolicy(),
		// As long as the default transport waits for response headers.
		idleTimeout: 2 * time.Minute,
		sleep:       sleepCtx,
		jitter:      rand.Int64N,
		now:         time.Now,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	base, err := parseBaseURL(c.baseRaw)
	if err != nil {
		return nil, err
	}
	c.base = base
	c.retry = c.retry.normalized()
	if c.baseHC == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Bounds a server that accepts the request and never answers; the
		// body itself may take long (large CSVs), so no overall timeout.
		t.ResponseHeaderTimeout = 2 * time.Minute
		c.baseHC = &http.Client{Transport: t}
	}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Downloads: a plain client, outside the auth set up below (no bearer
	// header, no digest transport) and without cookies.
	dl := *c.baseHC
	if c.dlHC != nil {
		dl = *c.dlHC
	}
	dl.Jar = nil
	dl.CheckRedirect = noRedirect
	c.dl = &dl
	hc := *c.baseHC
	hc.CheckRedirect = noRedirect
	// The token request (Basic auth with the client secret) must not follow
	// a redirect either: it goes through this copy, before any digest transport.
	tokenHC := hc
	c.baseHC = &tokenHC
	switch {
	case c.clientID != "" && c.publicKey != "":
		return nil, errors.New("atlas: both a service account and an API key given; choose one")
	case c.clientID != "":
		c.oauth = &clientcredentials.Config{
			ClientID:     c.clientID,
			ClientSecret: c.clientSecret,
			TokenURL:     base.String() + tokenPath,
			AuthStyle:    oauth2.AuthStyleInHeader,
		}
		// The secret lives only in the oauth config from here on.
		c.clientSecret = ""
	case c.publicKey != "":
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		hc.Transport = digest.NewTransportWithHTTPRoundTripper(c.publicKey, c.privateKey, rt)
		c.privateKey = ""
	}
	c.hc = &hc
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("atlas: base URL: %w", err)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("atlas: base URL %q: want scheme://host[:port] only", clean(raw, 128))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("atlas: base URL %q: plain http only for loopback hosts", clean(raw, 128))
		}
	default:
		return nil, fmt.Errorf("atlas: base URL %q: scheme must be https", clean(raw, 128))
	}
	u.Path = ""
	return u, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearer returns a valid access token, fetching one when none is cached or
// the cached one expired. The fetch goes through the base HTTP client.
func (c *Client) bearer(ctx context.Context) (string, error) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.token.Valid() {
		return c.token.AccessToken, nil
	}
	tok, err := c.oauth.Token(context.WithValue(ctx, oauth2.HTTPClient, c.baseHC))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			e := decodeError(re.Response.StatusCode, re.Body)
			e.Method, e.Path = http.MethodPost, tokenPath
			e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), c.now())
			return "", e
		}
		// Transport errors keep their type so the retry loop can classify them.
		return "", fmt.Errorf("atlas: fetching OAuth token: %w", err)
	}
	c.token = tok
	return tok.AccessToken, nil
}

// dropToken forgets the cached token if it is still the one that was
// rejected, so concurrent callers do not each fetch a new one.
func (c *Client) dropToken(rejected string) {
	c.tokenMu.Lock()
	defer c.tokenMu.Unlock()
	if c.token != nil && c.token.AccessToken == rejected {
		c.token = nil
	}
}
