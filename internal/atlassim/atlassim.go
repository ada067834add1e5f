// Package atlassim is a simulator of the MongoDB Atlas Admin API v2 billing
// endpoints: a real HTTP server that validates every request and response
// against the official OpenAPI subset (embedded), speaks both Atlas auth
// schemes (OAuth 2.0 service accounts and HTTP Digest API keys), sends real
// 102 Processing answers for Cost Explorer queries, streams large
// deterministic invoice and usage CSVs, and injects faults on demand.
//
// Invoice reports (FOCUS, version 2025-03-12): a report created with POST
// .../invoices/{invoiceId}/reports answers 201 PENDING, then its GETs answer
// PENDING, RUNNING and SUCCEEDED (see Config.ReportProcessingTime and
// ReportReadyAfterPolls), or FAILED with a ReportFailed fault. A SUCCEEDED
// report carries a pre-signed-looking downloadUrl on a second host, the
// download host, which behaves like S3 for a pre-signed GET (DownloadHandler)
// and records the headers of every request it gets (DownloadRequests).
//
// Answers (all bodies of errors are the spec's ApiError, application/json):
//   - no or bad credentials: 401 UNAUTHORIZED with a Digest challenge
//     (realm "MMS Public API", qop "auth", MD5); the token endpoint answers
//     RFC 6749 errors (invalid_client, unsupported_grant_type) instead;
//   - a request the spec rejects (path, query, body, Content-Type): 400
//     VALIDATION_ERROR (schema) or INVALID_REQUEST (e.g. Content-Type), the
//     detail naming kin-openapi's complaint; the stated rules of the Cost
//     Explorer body (first of a month, end after start, groupBy needs a
//     filter value): 400 VALIDATION_ERROR;
//   - an Accept that names no media type the operation declares (another
//     version, application/json, +json on the CSV path): 406
//     INVALID_VERSION_DATE (HTTP's answer to an Accept it cannot serve); the
//     spec has no 406 and kin-openapi does not look at Accept. No Accept or
//     */* gets the JSON type (CSV-only operation: CSV);
//   - unknown org: 404 ORG_NOT_FOUND; unknown invoice or query token: 404
//     RESOURCE_NOT_FOUND.
//
// Every JSON answer is validated against the spec before it leaves; CSV
// streams have their status and headers validated. A violation is a
// simulator bug and is answered 500 SIMULATOR_INVALID_RESPONSE.
//
// Clocks: Config.Now is the calendar (which invoices exist, which one is
// pending). Durations (TokenTTL, ProcessingTime, ReportProcessingTime,
// ReportURLTTL, digest nonce lifetime, rate limit refill) use the real
// monotonic clock, so a test that pins Now to a fixed date still sees tokens
// expire and queries finish; a report's expiresAt and X-Amz-Date are real
// wall-clock times for the same reason.
package atlassim

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Default credentials accepted by a simulator built from a zero Config.
// They are test values, not secrets.
const (
	DefaultClientID     = "mdb_sa_id_5f1a2b3c4d5e6f7a8b9c0d1e"
	DefaultClientSecret = "mdb_sa_sk_simulator-secret-0123456789abcdef"
	DefaultPublicKey    = "simpubky"
	DefaultPrivateKey   = "0b9f1f6e-6c37-4d3c-9d6a-5f0c1a2b3c4d"
)

// Org is one organization the simulator knows.
type Org struct {
	ID, Name string
}

// DefaultOrgs are the organizations of a zero Config. Their names carry
// non-ASCII letters, commas and quotes on purpose: they end up in CSVs.
var DefaultOrgs = []Org{
	{ID: "5f1a2b3c4d5e6f7a8b9c0d1e", Name: "Zürich Ödön Ltd, Inc."},
	{ID: "65ab12cd34ef56ab78cd90ef", Name: `Søren "Data" Analytics, ApS`},
}

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	Orgs            []Org             // default DefaultOrgs
	ServiceAccounts map[string]string // clientID -> secret; default {DefaultClientID: DefaultClientSecret}
	APIKeys         map[string]string // publicKey -> privateKey; default {DefaultPublicKey: DefaultPrivateKey}
	TokenTTL        time.Duration     // OAuth token lifetime, default 1h
	// ProcessingTime is how long each Cost Explorer query answers 102
	// (default 2s; negative: ready at once).
	ProcessingTime time.Duration
	// ReadyAfterPolls, if > 0, replaces ProcessingTime: the first N polls of a
	// query answer 102 and poll N+1 gets the result.
	ReadyAfterPolls int
	// ReportProcessingTime is how long an invoice report takes: its GETs
	// answer PENDING for the first half, RUNNING for the second, then
	// SUCCEEDED (default 2s; negative: SUCCEEDED at the first GET).
	ReportProcessingTime time.Duration
	// ReportReadyAfterPolls, if > 0, replaces ReportProcessingTime: the
	// first N GETs of a report answer PENDING (the first N/2 of them) or
	// RUNNING, and GET N+1 SUCCEEDED.
	ReportReadyAfterPolls int
	// ReportURLTTL is how long a report's download URL works after the
	// report succeeded (default 15m). The report expires with it: it leaves
	// the list, and a new one must be created.
	ReportURLTTL time.Duration
	// ReportGzip makes the download host serve the FOCUS CSV gzipped, as a
	// file (application/gzip, no Content-Encoding): the spec's example of a
	// report is "invoice_abc123_focus.csv.gz".
	ReportGzip bool
	// DownloadBaseURL is the base URL (scheme://host:port) of the download
	// host serving DownloadHandler; SetDownloadBaseURL sets it later. Without
	// one, reports end FAILED with a failureReason saying so.
	DownloadBaseURL string
	InvoiceRows     int   // line items per invoice CSV (default 200)
	InvoiceBytes    int64 // if > 0, about this many bytes per invoice CSV (overrides InvoiceRows)
	// FirstMonth is "YYYY-MM" of the first closed invoice (default 12 months
	// before Now's month).
	FirstMonth string
	Now        func() time.Time // calendar clock, default time.Now
	Logger     *slog.Logger     // default: discard
	// Variants are the real forms served beyond the spec's (see Variant).
	Variants []Variant
	// RateLimit, if set, enforces Atlas's per-org request budget (see
	// RateLimit); nil only reports it in the RateLimit-* headers.
	RateLimit *RateLimit
}

// RegisterFlags binds the knobs of c to fs (for the CLI's simulate command).
// Values already in c are the defaults shown.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.fillDefaults()
	fs.Func("processing-time", fmt.Sprintf("how long each Cost Explorer query answers 102 Processing, 0 = ready at once (default %s)", c.ProcessingTime), processingTime(&c.ProcessingTime))
	fs.IntVar(&c.ReadyAfterPolls, "ready-after-polls", c.ReadyAfterPolls, "if > 0: each query answers 102 to this many polls, then its result (replaces --processing-time)")
	fs.Func("report-processing-time", fmt.Sprintf("how long each invoice report takes (PENDING, then RUNNING), 0 = SUCCEEDED at the first poll (default %s)", c.ReportProcessingTime), processingTime(&c.ReportProcessingTime))
	fs.IntVar(&c.ReportReadyAfterPolls, "report-ready-after-polls", c.ReportReadyAfterPolls, "if > 0: each invoice report answers PENDING/RUNNING to this many polls, then SUCCEEDED (replaces --report-processing-time)")
	fs.DurationVar(&c.ReportURLTTL, "report-url-ttl", c.ReportURLTTL, "lifetime of a report's pre-signed download URL")
	fs.BoolVar(&c.ReportGzip, "report-gzip", c.ReportGzip, "serve FOCUS report downloads gzipped (application/gzip)")
	fs.IntVar(&c.InvoiceRows, "invoice-rows", c.InvoiceRows, "line items per invoice CSV")
	fs.Int64Var(&c.InvoiceBytes, "invoice-bytes", c.InvoiceBytes, "if > 0: make each invoice CSV about this many bytes (overrides --invoice-rows)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", c.TokenTTL, "lifetime of OAuth access tokens")
	fs.StringVar(&c.FirstMonth, "first-month", c.FirstMonth, "YYYY-MM of the first closed invoice")
	fs.Func("variant", "serve these real forms beyond the spec's, comma-separated: "+variantNames(), func(s string) error {
		vs, err := ParseVariants(s)
		for _, v := range vs {
			if !slices.Contains(c.Variants, v) {
				c.Variants = append(c.Variants, v)
			}
		}
		return err
	})
	fs.Func("org", "organization as ID=NAME (repeatable; replaces the default orgs)", func(s string) error {
		id, name, ok := strings.Cut(s, "=")
		if !ok || atlas.ValidateOrgID(id) != nil {
			return errors.New("want ID=NAME with a 24-hex ID")
		}
		if slices.Equal(c.Orgs, DefaultOrgs) {
			c.Orgs = nil
		}
		c.Orgs = append(c.Orgs, Org{ID: id, Name: name})
		return nil
	})
	fs.Func("service-account", "accepted service account as CLIENT_ID:SECRET (repeatable; adds to the default one)", credentialFlag(c.ServiceAccounts, "CLIENT_ID:SECRET"))
	fs.Func("api-key", "accepted API key as PUBLIC:PRIVATE (repeatable; adds to the default one)", credentialFlag(c.APIKeys, "PUBLIC:PRIVATE"))
}

// credentialFlag adds ID:SECRET to m.
func credentialFlag(m map[string]string, want string) func(string) error {
	return func(s string) error {
		id, secret, ok := strings.Cut(s, ":")
		if !ok || id == "" || secret == "" {
			return errors.New("want " + want)
		}
		m[id] = secret
		return nil
	}
}

// processingTime parses a duration flag in which 0 means "at once"; zero
// would mean "default" in Config, so it is stored as -1.
func processingTime(d *time.Duration) func(string) error {
	return func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = v
		if v <= 0 {
			*d = -1
		}
		return nil
	}
}

func (c *Config) fillDefaults() {
	if len(c.Orgs) == 0 {
		c.Orgs = append([]Org(nil), DefaultOrgs...)
	}
	if c.ServiceAccounts == nil {
		c.ServiceAccounts = map[string]string{DefaultClientID: DefaultClientSecret}
	}
	if c.APIKeys == nil {
		c.APIKeys = map[string]string{DefaultPublicKey: DefaultPrivateKey}
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Hour
	}
	c.ProcessingTime = cmp.Or(c.ProcessingTime, 2*time.Second)
	c.ReportProcessingTime = cmp.Or(c.ReportProcessingTime, 2*time.Second)
	if c.ReportURLTTL <= 0 {
		c.ReportURLTTL = 15 * time.Minute
	}
	if c.InvoiceRows <= 0 {
		c.InvoiceRows = 200
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
}

// Server is the simulator. Create it with New; it is safe for concurrent use.
type Server struct {
	cfg    Config
	orgs   map[string]Org
	doc    *openapi3.T
	router routers.Router
	log    *slog.Logger
	auth   *authenticator
	faults faultQueue
	rate   *rateLimiter

	mu       sync.Mutex
	requests map[string]int
	queries  map[string]*query // Cost Explorer queries by token
	querySeq uint64
	totals   map[string]invoiceTotals // by org/invoice id, computed once
	sizes    map[string]int64         // invoice CSV sizes, computed once

	reports   map[string]*report // invoice reports by id
	reportSeq uint64
	grants    map[string]*report // download URLs issued, by signature
	dlBase    string             // download host base URL
	dlKey     [32]byte           // signs download URLs
	downloads []http.Header      // headers of the latest download requests
}

// New validates cfg, loads the embedded spec and builds the server.
func New(cfg Config) (*Server, error) {
	cfg.fillDefaults()
	orgs := make(map[string]Org, len(cfg.Orgs))
	for _, o := range cfg.Orgs {
		if atlas.ValidateOrgID(o.ID) != nil {
			return nil, fmt.Errorf("atlassim: org id %q: want 24 lowercase hex characters", o.ID)
		}
		orgs[o.ID] = o
	}
	if cfg.FirstMonth != "" {
		if _, err := time.Parse("2006-01", cfg.FirstMonth); err != nil {
			return nil, fmt.Errorf("atlassim: first month %q: want YYYY-MM", cfg.FirstMonth)
		}
	}
	for _, v := range cfg.Variants {
		if !slices.Contains(Variants, v) {
			return nil, fmt.Errorf("atlassim: unknown variant %q", v)
		}
	}
	if cfg.DownloadBaseURL != "" {
		if err := checkBaseURL(cfg.DownloadBaseURL); err != nil {
			return nil, fmt.Errorf("atlassim: download base URL: %w", err)
		}
	}
	doc, router, err := loadSpec()
	if err != nil {
		return nil, fmt.Errorf("atlassim: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		orgs:     orgs,
		doc:      doc,
		router:   router,
		log:      cfg.Logger,
		auth:     newAuthenticator(cfg),
		requests: map[string]int{},
		queries:  map[string]*query{},
		totals:   map[string]invoiceTotals{},
		sizes:    map[string]int64{},
		reports:  map[string]*report{},
		grants:   map[string]*report{},
		dlBase:   strings.TrimRight(cfg.DownloadBaseURL, "/"),
	}
	s.rate = newRateLimiter(cfg.RateLimit)
	rand.Read(s.dlKey[:]) // crypto/rand.Read never returns an error
	return s, nil
}

// Handler returns the HTTP handler of the simulator.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve answers API requests on l until ctx ends, then shuts down gracefully
// (bounded to a few seconds). It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.Handler())
}

// ServeDownloads is Serve for the download host (DownloadHandler). Give the
// simulator l's URL with SetDownloadBaseURL.
func (s *Server) ServeDownloads(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.DownloadHandler())
}

func (s *Server) serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
	}()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// Requests reports how many authenticated requests reached op (an operationId,
// or "oauthToken" for the token endpoint, where every request counts),
// including faulted and spec-rejected ones. Digest challenges (the first,
// unauthenticated half of each Digest exchange) are not counted.
func (s *Server) Requests(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

func (s *Server) count(op string) {
	s.mu.Lock()
	s.requests[op]++
	s.mu.Unlock()
}

// RevokeServiceAccount removes a service account and invalidates every token
// issued to it.
func (s *Server) RevokeServiceAccount(clientID string) {
	a := s.auth
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.accounts, clientID)
	maps.DeleteFunc(a.tokens, func(_ string, tok token) bool { return tok.clientID == clientID })
}

// SetServiceAccount adds a service account or changes its secret (rotation).
// Tokens already issued stay valid until they expire.
func (s *Server) SetServiceAccount(clientID, secret string) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	s.auth.accounts[clientID] = secret
}

// RevokeAPIKey removes an API key.
func (s *Server) RevokeAPIKey(publicKey string) {
	s.auth.mu.Lock()
	defer s.auth.mu.Unlock()
	delete(s.auth.keys, publicKey)
}

// Orgs returns the organizations the simulator serves.
func (s *Server) Orgs() []Org { return append([]Org(nil), s.cfg.Orgs...) }

var _ io.Writer = (*countingWriter)(nil)

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
