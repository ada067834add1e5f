package atlas_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// hostile24 are ids of about 24 characters that carry path, query, escape
// or control characters, or only look like a valid id.
var hostile24 = []string{
	"",
	"../" + testOrg[3:],
	"..%2f" + testOrg[5:],
	"%2e%2e%2f" + testOrg[9:],
	testOrg[:21] + "/..",
	testOrg[:12] + "/" + testOrg[13:],
	"//127.0.0.1:1/" + testOrg[14:],
	"@127.0.0.1:1" + testOrg[12:],
	testOrg[:23] + "\\",
	testOrg[:23] + "?",
	testOrg[:23] + "#",
	testOrg[:23] + ";",
	testOrg[:23] + "\x00",
	testOrg[:23] + "\r",
	testOrg[:23] + "\n",
	testOrg[:23] + " ",
	testOrg[:23] + "g",
	strings.ToUpper(testOrg),
	"５" + testOrg[3:], // a full-width digit: 24 bytes
	testOrg[:23],
	testOrg + "0",
	testOrg + "/../../admin",
}

// hostile64 are Cost Explorer tokens of about 64 characters that would
// change the path they are put in.
var hostile64 = []string{
	"",
	"../" + testToken[3:],
	testToken[:61] + "/..",
	"%2e%2e%2f" + testToken[9:],
	"%2F" + testToken[3:],
	testToken[:32] + "/" + testToken[33:],
	testToken[:63] + ".",
	testToken[:63] + "?",
	testToken[:63] + "#",
	testToken[:63] + "~",
	testToken[:63] + "\n",
	testToken[:62] + "é",
	testToken[:63],
	testToken + "a",
}

// Every method refuses every hostile id with a *ValidationError before a
// request: the counting server on loopback sees none, with either kind of
// credentials.
func TestHostileIDsSendNothing(t *testing.T) {
	t.Parallel()
	type call func(context.Context, *atlas.Client) error
	var calls []struct {
		name string
		call call
	}
	add := func(name string, c call) {
		calls = append(calls, struct {
			name string
			call call
		}{name, c})
	}
	june := atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"}
	for _, id := range hostile24 {
		add("CreateUsageQuery org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateUsageQuery(ctx, id, june)
			return err
		})
		for _, field := range []string{"organizations", "projects", "clusters"} {
			add("CreateUsageQuery "+field+" "+id, func(ctx context.Context, c *atlas.Client) error {
				q := june
				switch field {
				case "organizations":
					q.Organizations = []string{testOrg, id}
				case "projects":
					q.Projects = []string{id}
				case "clusters":
					q.Clusters = []string{id}
				}
				_, err := c.CreateUsageQuery(ctx, testOrg, q)
				return err
			})
		}
		add("GetUsage org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, id, testToken, atlas.CSV)
			return err
		})
		add("ListInvoices org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, id, nil)
			return err
		})
		add("PendingInvoices org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.PendingInvoices(ctx, id)
			return err
		})
		add("InvoiceCSV org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.InvoiceCSV(ctx, id, testInv)
			return err
		})
		add("InvoiceCSV invoice "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.InvoiceCSV(ctx, testOrg, id)
			return err
		})
		add("CreateInvoiceReport org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateInvoiceReport(ctx, id, testInv)
			return err
		})
		add("CreateInvoiceReport invoice "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateInvoiceReport(ctx, testOrg, id)
			return err
		})
		add("GetInvoiceReport org "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetInvoiceReport(ctx, id, testInv, testInv)
			return err
		})
		add("GetInvoiceReport invoice "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetInvoiceReport(ctx, testOrg, id, testInv)
			return err
		})
		add("GetInvoiceReport report "+id, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetInvoiceReport(ctx, testOrg, testInv, id)
			return err
		})
	}
	for _, tok := range hostile64 {
		add("GetUsage token "+tok, func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, testOrg, tok, atlas.JSON)
			return err
		})
	}

	for _, auth := range []struct {
		name string
		opt  atlas.Option
	}{
		{"service account", atlas.WithServiceAccount("mdb_sa_id_test", "mdb_sa_sk_test")},
		{"api key", atlas.WithAPIKey("pubkey", "private-key")},
	} {
		t.Run(auth.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				writeAPIError(w, http.StatusNotFound, "RESOURCE_NOT_FOUND")
			})
			c := newClient(t, srv.URL, auth.opt)
			for _, tc := range calls {
				err := tc.call(ctxTimeout(t, 5*time.Second), c)
				var ve *atlas.ValidationError
				if !errors.As(err, &ve) {
					t.Errorf("%s: error = %v, want a *ValidationError", strings.ToValidUTF8(tc.name, "?"), err)
				}
			}
			if n := srv.requests(); n != 0 {
				t.Errorf("the server saw %d requests for hostile ids", n)
			}
			// The control: a valid id does reach the server.
			if _, err := c.PendingInvoices(ctxTimeout(t, 5*time.Second), testOrg); err == nil || srv.requests() == 0 {
				t.Errorf("a valid call: err %v, %d requests", err, srv.requests())
			}
		})
	}
}

// Only the configured base URL is ever called: a redirect (from a
// compromised or spoofed Atlas) is not followed, so neither a request nor a
// credential reaches the other host. The OAuth token request included.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	decoy := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("decoy got %s %s (Authorization %t)", r.Method, r.URL, r.Header.Get("Authorization") != "")
		writeJSON(w, http.StatusOK, `{"access_token":"stolen","token_type":"bearer","expires_in":3600}`)
	})
	redirectAll := func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, decoy.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}
	calls := map[string]func(context.Context, *atlas.Client) error{
		"CreateUsageQuery": func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateUsageQuery(ctx, testOrg, atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"})
			return err
		},
		"GetUsage": func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, testOrg, testToken, atlas.CSV)
			return err
		},
		"ListInvoices": func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, testOrg, nil)
			return err
		},
		"InvoiceCSV": func(ctx context.Context, c *atlas.Client) error {
			_, err := c.InvoiceCSV(ctx, testOrg, testInv)
			return err
		},
		"CreateInvoiceReport": func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateInvoiceReport(ctx, testOrg, testInv)
			return err
		},
	}
	for _, auth := range []struct {
		name string
		opt  atlas.Option
	}{
		{"service account", atlas.WithServiceAccount("mdb_sa_id_test", "mdb_sa_sk_test")},
		{"api key", atlas.WithAPIKey("pubkey", "private-key")},
		{"none", nil},
	} {
		t.Run(auth.name, func(t *testing.T) {
			srv := newServer(t, redirectAll)
			var opts []atlas.Option
			if auth.opt != nil {
				opts = append(opts, auth.opt)
			}
			c := newClient(t, srv.URL, opts...)
			for name, call := range calls {
				err := call(ctxTimeout(t, 5*time.Second), c)
				var apiErr *atlas.Error
				if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTemporaryRedirect {
					t.Errorf("%s: err = %v, want the 307 as an *Error", name, err)
				}
			}
			if srv.requests() == 0 {
				t.Error("the configured server saw no request")
			}
		})
	}
	if n := decoy.requests(); n != 0 {
		t.Errorf("the decoy host got %d requests", n)
	}
}
