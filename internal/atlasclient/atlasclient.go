// Package atlasclient builds an Atlas client from the credentials in the
// secret, and builds it again, once, when Atlas answers 401: the secret may
// have been rotated since the cold start that cached it.
package atlasclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Credentials gives the current credentials, and fresh ones on request.
type Credentials interface {
	Get(ctx context.Context) (secret.Credentials, error)
	Refresh(ctx context.Context) (secret.Credentials, error)
}

// Version is this build's version, which the User-Agent and the command-line
// tool's version command name. Set it with -ldflags "-X
// github.com/atlas-billing-export/atlas-billing-export/internal/atlasclient.Version=v1.2.3";
// unset, BuildVersion reads what Go stamped into the build.
var Version = ""

// BuildVersion is Version, else the module version Go stamped into the
// binary (a tag or pseudo-version; a plain go build in a git checkout has
// one), else its VCS revision, else "devel".
func BuildVersion() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "devel"
	}
	return rev + dirty
}

// UserAgent names the application, its build and the front end ("lambda",
// "cli") to Atlas.
func UserAgent(frontEnd string) string {
	return "atlas-billing-export/" + BuildVersion() + " (" + frontEnd + ")"
}

// Options are the parts of every client that do not come from the secret.
// BaseURL is configuration only, never from an event.
type Options struct {
	BaseURL    string
	HTTPClient *http.Client // nil: http.DefaultClient's transport
	UserAgent  string
	Retry      *atlas.RetryPolicy
}

// Client is an Atlas client that survives a credential rotation.
type Client struct {
	creds Credentials
	opts  Options

	mu     sync.Mutex
	client *atlas.Client
}

// New returns a Client; the secret is read on first use.
func New(creds Credentials, opts Options) *Client {
	return &Client{creds: creds, opts: opts}
}

// Auth turns credentials into the client option of their kind.
func Auth(c secret.Credentials) (atlas.Option, error) {
	switch {
	case c.ClientID != "" && c.ClientSecret != "":
		return atlas.WithServiceAccount(c.ClientID, c.ClientSecret), nil
	case c.PublicKey != "" && c.PrivateKey != "":
		return atlas.WithAPIKey(c.PublicKey, c.PrivateKey), nil
	}
	return nil, &export.Error{Name: export.SecretInvalid, Msg: "the secret holds neither clientId/clientSecret nor publicKey/privateKey"}
}

func (c *Client) build(creds secret.Credentials) (*atlas.Client, error) {
	auth, err := Auth(creds)
	if err != nil {
		return nil, err
	}
	opts := []atlas.Option{auth}
	if c.opts.BaseURL != "" {
		opts = append(opts, atlas.WithBaseURL(c.opts.BaseURL))
	}
	if c.opts.HTTPClient != nil {
		opts = append(opts, atlas.WithHTTPClient(c.opts.HTTPClient))
	}
	if c.opts.UserAgent != "" {
		opts = append(opts, atlas.WithUserAgent(c.opts.UserAgent))
	}
	if c.opts.Retry != nil {
		opts = append(opts, atlas.WithRetry(*c.opts.Retry))
	}
	cl, err := atlas.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("building the Atlas client: %w", err)
	}
	return cl, nil
}

func (c *Client) current(ctx context.Context) (*atlas.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	return c.load(ctx, c.creds.Get)
}

// Check reads the credentials and builds the client from them, as the first
// call would, without asking Atlas anything: a secret that cannot be read
// or holds no credentials fails here, and the calls then reuse what it read.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.current(ctx)
	return err
}

// renew re-reads the secret and rebuilds the client, unless another call
// already did since stale was handed out.
func (c *Client) renew(ctx context.Context, stale *atlas.Client) (*atlas.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil && c.client != stale {
		return c.client, nil
	}
	return c.load(ctx, c.creds.Refresh)
}

// load builds the client from the credentials read; c.mu is held.
func (c *Client) load(ctx context.Context, read func(context.Context) (secret.Credentials, error)) (*atlas.Client, error) {
	creds, err := read(ctx)
	if err != nil {
		return nil, err
	}
	cl, err := c.build(creds)
	if err != nil {
		return nil, err
	}
	c.client = cl
	return cl, nil
}

// do runs call, and on a 401 runs it once more with renewed credentials.
func do[T any](ctx context.Context, c *Client, call func(*atlas.Client) (T, error)) (T, error) {
	var zero T
	cl, err := c.current(ctx)
	if err != nil {
		return zero, err
	}
	v, err := call(cl)
	if err == nil || !atlas.IsUnauthorized(err) {
		return v, err
	}
	cl, rerr := c.renew(ctx, cl)
	if rerr != nil {
		return zero, fmt.Errorf("re-reading the credentials after a 401: %w", rerr)
	}
	return call(cl)
}

func (c *Client) CreateUsageQuery(ctx context.Context, orgID string, q atlas.UsageQuery) (string, error) {
	return do(ctx, c, func(cl *atlas.Client) (string, error) { return cl.CreateUsageQuery(ctx, orgID, q) })
}

func (c *Client) GetUsage(ctx context.Context, orgID, token string, f atlas.Format) (*atlas.Usage, error) {
	return do(ctx, c, func(cl *atlas.Client) (*atlas.Usage, error) { return cl.GetUsage(ctx, orgID, token, f) })
}

func (c *Client) ListInvoices(ctx context.Context, orgID string, opt *atlas.InvoiceListOptions) ([]atlas.Invoice, error) {
	return do(ctx, c, func(cl *atlas.Client) ([]atlas.Invoice, error) { return cl.ListInvoices(ctx, orgID, opt) })
}

func (c *Client) PendingInvoices(ctx context.Context, orgID string) ([]atlas.Invoice, error) {
	return do(ctx, c, func(cl *atlas.Client) ([]atlas.Invoice, error) { return cl.PendingInvoices(ctx, orgID) })
}

func (c *Client) InvoiceCSV(ctx context.Context, orgID, invoiceID string) (io.ReadCloser, error) {
	return do(ctx, c, func(cl *atlas.Client) (io.ReadCloser, error) { return cl.InvoiceCSV(ctx, orgID, invoiceID) })
}

func (c *Client) CreateInvoiceReport(ctx context.Context, orgID, invoiceID string) (atlas.Report, error) {
	return do(ctx, c, func(cl *atlas.Client) (atlas.Report, error) { return cl.CreateInvoiceReport(ctx, orgID, invoiceID) })
}

func (c *Client) GetInvoiceReport(ctx context.Context, orgID, invoiceID, reportID string) (atlas.Report, error) {
	return do(ctx, c, func(cl *atlas.Client) (atlas.Report, error) {
		return cl.GetInvoiceReport(ctx, orgID, invoiceID, reportID)
	})
}

// DownloadReport fetches from the report's pre-signed URL, which takes no
// Atlas credentials: a 401 there says nothing about the secret.
func (c *Client) DownloadReport(ctx context.Context, r atlas.Report) (io.ReadCloser, error) {
	cl, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	return cl.DownloadReport(ctx, r)
}

// OrgIDs returns the org ids the secret names, if any.
func (c *Client) OrgIDs(ctx context.Context) ([]string, error) {
	creds, err := c.creds.Get(ctx)
	if err != nil {
		return nil, err
	}
	return creds.OrgIDs, nil
}

// Static returns credentials that do not rotate, such as the command-line
// tool's from its environment: a 401 re-reads the same values and fails
// again.
func Static(c secret.Credentials) Credentials { return &static{c} }

// static embeds secret.Credentials, so it redacts under every printing form
// as they do; behind a pointer, so a struct holding it prints an address.
type static struct{ secret.Credentials }

func (s *static) Get(context.Context) (secret.Credentials, error)     { return s.Credentials, nil }
func (s *static) Refresh(context.Context) (secret.Credentials, error) { return s.Credentials, nil }
