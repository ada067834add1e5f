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

func validQuery() atlas.UsageQuery {
	return atlas.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"}
}

// Every invalid input is a *ValidationError and nothing is sent.
func TestValidationSendsNothing(t *testing.T) {
	t.Parallel()
	q := func(f func(*atlas.UsageQuery)) atlas.UsageQuery { v := validQuery(); f(&v); return v }
	createWith := func(q atlas.UsageQuery) func(context.Context, *atlas.Client) error {
		return func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateUsageQuery(ctx, testOrg, q)
			return err
		}
	}
	tests := []struct {
		name  string
		field string
		call  func(context.Context, *atlas.Client) error
	}{
		{"start not first of month", "startDate", createWith(q(func(q *atlas.UsageQuery) { q.StartDate = "2024-06-02" }))},
		{"end not first of month", "endDate", createWith(q(func(q *atlas.UsageQuery) { q.EndDate = "2024-07-31" }))},
		{"end equals start", "endDate", createWith(q(func(q *atlas.UsageQuery) { q.EndDate = q.StartDate }))},
		{"end before start", "endDate", createWith(q(func(q *atlas.UsageQuery) { q.EndDate = "2024-05-01" }))},
		{"not a date", "startDate", createWith(q(func(q *atlas.UsageQuery) { q.StartDate = "June 2024" }))},
		{"empty date", "endDate", createWith(q(func(q *atlas.UsageQuery) { q.EndDate = "" }))},
		{"short date", "startDate", createWith(q(func(q *atlas.UsageQuery) { q.StartDate = "2024-6-1" }))},
		{"impossible date", "endDate", createWith(q(func(q *atlas.UsageQuery) { q.EndDate = "2024-13-01" }))},
		{"datetime", "startDate", createWith(q(func(q *atlas.UsageQuery) { q.StartDate = "2024-06-01T00:00:00Z" }))},
		{"org traversal", "organizations[0]", createWith(q(func(q *atlas.UsageQuery) { q.Organizations = []string{"../../../admin/users"} }))},
		{"project short", "projects[1]", createWith(q(func(q *atlas.UsageQuery) { q.Projects = []string{testOrg, "abc"} }))},
		{"cluster uppercase", "clusters[0]", createWith(q(func(q *atlas.UsageQuery) { q.Clusters = []string{strings.ToUpper(testOrg)} }))},
		{"unknown service", "services[0]", createWith(q(func(q *atlas.UsageQuery) { q.Services = []string{"Lunch"} }))},
		{"service wrong case", "services[0]", createWith(q(func(q *atlas.UsageQuery) { q.Services = []string{"data transfer"} }))},
		{"groupBy without filter", "groupBy", createWith(q(func(q *atlas.UsageQuery) { q.GroupBy = "projects" }))},
		{"unknown groupBy", "groupBy", createWith(q(func(q *atlas.UsageQuery) { q.GroupBy = "regions"; q.Projects = []string{testOrg} }))},
		{"create bad org", "orgId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.CreateUsageQuery(ctx, "../"+testOrg[3:], validQuery())
			return err
		}},
		{"usage bad org", "orgId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, strings.ToUpper(testOrg), testToken, atlas.CSV)
			return err
		}},
		{"usage short token", "token", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, testOrg, testToken[:63], atlas.CSV)
			return err
		}},
		{"usage token traversal", "token", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, testOrg, "../"+testToken[3:], atlas.CSV)
			return err
		}},
		{"usage token percent", "token", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, testOrg, "%2e%2e%2f"+testToken[9:], atlas.CSV)
			return err
		}},
		{"usage format", "format", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.GetUsage(ctx, testOrg, testToken, atlas.Format("xml"))
			return err
		}},
		{"invoice traversal", "invoiceId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.InvoiceCSV(ctx, testOrg, "../"+testInv[3:])
			return err
		}},
		{"invoice short", "invoiceId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.InvoiceCSV(ctx, testOrg, "abc")
			return err
		}},
		{"invoice uppercase", "invoiceId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.InvoiceCSV(ctx, testOrg, strings.ToUpper(testInv))
			return err
		}},
		{"list bad org", "orgId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, "", nil)
			return err
		}},
		{"list bad from", "fromDate", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, testOrg, &atlas.InvoiceListOptions{FromDate: "yesterday"})
			return err
		}},
		{"list bad status", "statusNames[0]", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, testOrg, &atlas.InvoiceListOptions{StatusNames: []string{"paid"}})
			return err
		}},
		{"list too many per page", "itemsPerPage", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, testOrg, &atlas.InvoiceListOptions{ItemsPerPage: 501})
			return err
		}},
		{"list bad sort", "sortBy", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, testOrg, &atlas.InvoiceListOptions{SortBy: "AMOUNT"})
			return err
		}},
		{"list bad order", "orderBy", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.ListInvoices(ctx, testOrg, &atlas.InvoiceListOptions{OrderBy: "up"})
			return err
		}},
		{"pending bad org", "orgId", func(ctx context.Context, c *atlas.Client) error {
			_, err := c.PendingInvoices(ctx, testOrg+"0")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) { t.Errorf("unexpected request %s", r.URL) })
			c := newClient(t, srv.URL)
			err := tc.call(ctxTimeout(t, 5*time.Second), c)
			var ve *atlas.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error = %v, want *ValidationError", err)
			}
			if ve.Field != tc.field {
				t.Errorf("Field = %q, want %q (%v)", ve.Field, tc.field, err)
			}
			if n := srv.requests(); n != 0 {
				t.Errorf("server saw %d requests, want 0", n)
			}
		})
	}
}

func TestUsageQueryValid(t *testing.T) {
	t.Parallel()
	for _, q := range []atlas.UsageQuery{
		validQuery(),
		{StartDate: "2023-12-01", EndDate: "2024-01-01"},
		{StartDate: "2024-01-01", EndDate: "2025-01-01", Services: atlas.Services, GroupBy: "services"},
		{StartDate: "2024-01-01", EndDate: "2024-02-01", Projects: []string{testOrg}, GroupBy: "clusters"},
		{StartDate: "2024-01-01", EndDate: "2024-02-01", Organizations: []string{testOrg}, GroupBy: "organizations", IncludePartialMatches: true},
		// Two filters, one value each: grouping needs at least one value in all.
		{StartDate: "2024-01-01", EndDate: "2024-02-01", Organizations: []string{testOrg}, Projects: []string{testOrg}, GroupBy: "projects"},
		{StartDate: "2024-01-01", EndDate: "2024-02-01", Organizations: []string{testOrg}, Clusters: []string{testOrg}, GroupBy: "clusters"},
		{StartDate: "2024-01-01", EndDate: "2024-02-01", Organizations: []string{testOrg}, Services: []string{"Atlas"}, GroupBy: "services"},
	} {
		if err := q.Validate(); err != nil {
			t.Errorf("%+v: %v", q, err)
		}
	}
	if len(atlas.Services) != 23 {
		t.Errorf("%d services, the spec has 23", len(atlas.Services))
	}
}

// A token is 64 letters, digits, '-' or '_': the edges of each range are in,
// the characters next to them out.
func TestValidateToken(t *testing.T) {
	t.Parallel()
	edges := strings.Repeat("azAZ09-_", 8)
	if err := atlas.ValidateToken(edges); err != nil {
		t.Errorf("ValidateToken(%q) = %v", edges, err)
	}
	for _, c := range "`{@[/:. %" {
		tok := edges[:63] + string(c)
		var ve *atlas.ValidationError
		if err := atlas.ValidateToken(tok); !errors.As(err, &ve) || ve.Field != "token" {
			t.Errorf("ValidateToken(%q) = %v, want a *ValidationError", tok, err)
		}
	}
	for _, n := range []int{0, 63, 65} {
		if err := atlas.ValidateToken(strings.Repeat("a", n)); err == nil {
			t.Errorf("a token of %d characters accepted", n)
		}
	}
}
