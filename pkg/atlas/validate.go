package atlas

import (
	"fmt"
	"slices"
	"time"
)

// Services is the spec's enum of Cost Explorer SKU services
// (CostExplorerFilterRequestBody.services).
var Services = []string{
	"Atlas", "Clusters", "Storage", "Serverless Instances", "Backup", "Data Transfer",
	"BI Connector", "DSC Compute", "DSC Storage", "Premium Features", "Atlas Data Federation",
	"Atlas Stream Processing", "App Services", "Charts", "Cloud Manager",
	"Cloud Manager Standard/Premium", "Legacy Backup", "AI Model APIs", "Automated Embedding",
	"Native Reranking", "Flex Consulting", "Support", "Credits",
}

// GroupBy values of CostExplorerFilterRequestBody.groupBy.
const (
	GroupByOrganizations = "organizations"
	GroupByProjects      = "projects"
	GroupByClusters      = "clusters"
	GroupByServices      = "services"
)

// InvoiceStatuses is the spec's enum of invoice statusName values.
var InvoiceStatuses = []string{"PENDING", "CLOSED", "FORGIVEN", "FAILED", "PAID", "FREE", "PREPAID", "INVOICED"}

const dateLayout = "2006-01-02"

// UsageQuery is a Cost Explorer query (CostExplorerFilterRequestBody). The JSON
// tags are the API's, so a query can travel in a state machine payload as is.
type UsageQuery struct {
	StartDate             string   `json:"startDate"` // first of a month, inclusive
	EndDate               string   `json:"endDate"`   // first of a month, exclusive, after StartDate
	Organizations         []string `json:"organizations,omitempty"`
	Projects              []string `json:"projects,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	Services              []string `json:"services,omitempty"`
	GroupBy               string   `json:"groupBy,omitempty"`
	IncludePartialMatches bool     `json:"includePartialMatches,omitempty"`
}

// Validate checks the query as the API would, so a bad one never leaves the
// process. It returns a *ValidationError.
func (q UsageQuery) Validate() error {
	start, err := parseMonthStart("startDate", q.StartDate)
	if err != nil {
		return err
	}
	end, err := parseMonthStart("endDate", q.EndDate)
	if err != nil {
		return err
	}
	if !end.After(start) {
		return &ValidationError{Field: "endDate", Reason: "must be after startDate (the end is exclusive)"}
	}
	for _, l := range []struct {
		field string
		ids   []string
	}{{"organizations", q.Organizations}, {"projects", q.Projects}, {"clusters", q.Clusters}} {
		for i, id := range l.ids {
			if err := checkHex24(fmt.Sprintf("%s[%d]", l.field, i), id); err != nil {
				return err
			}
		}
	}
	for i, s := range q.Services {
		if !slices.Contains(Services, s) {
			return &ValidationError{Field: fmt.Sprintf("services[%d]", i), Reason: fmt.Sprintf("%q is not a Cost Explorer service", clean(s, 64))}
		}
	}
	switch q.GroupBy {
	case "":
		return nil
	case GroupByOrganizations, GroupByProjects, GroupByClusters, GroupByServices:
	default:
		return &ValidationError{Field: "groupBy", Reason: fmt.Sprintf("%q is not one of organizations, projects, clusters, services", clean(q.GroupBy, 64))}
	}
	// The spec: "At least one filter value needs to be provided for a
	// dimension to be used" (any of the four filters, as the project reads it).
	if len(q.Organizations)+len(q.Projects)+len(q.Clusters)+len(q.Services) == 0 {
		return &ValidationError{Field: "groupBy", Reason: "grouping needs at least one filter value (organizations, projects, clusters or services)"}
	}
	return nil
}

func parseMonthStart(field, s string) (time.Time, error) {
	t, err := parseDate(field, s)
	if err != nil {
		return t, err
	}
	if t.Day() != 1 {
		return t, &ValidationError{Field: field, Reason: fmt.Sprintf("%q is not the first day of a month", s)}
	}
	return t, nil
}

func parseDate(field, s string) (time.Time, error) {
	t, err := time.Parse(dateLayout, s)
	// Re-formatting rejects what Parse tolerates but the API would not.
	if err != nil || t.Format(dateLayout) != s {
		return t, &ValidationError{Field: field, Reason: fmt.Sprintf("%q is not a date (YYYY-MM-DD)", clean(s, 32))}
	}
	return t, nil
}

// ValidateOrgID checks an organization id (^[a-f0-9]{24}$).
func ValidateOrgID(id string) error { return checkHex24("orgId", id) }

// ValidateInvoiceID checks an invoice id (^[a-f0-9]{24}$).
func ValidateInvoiceID(id string) error { return checkHex24("invoiceId", id) }

// checkHex24 checks the id of field: ^[a-f0-9]{24}$, as the spec declares
// every id but the Cost Explorer token.
func checkHex24(field, id string) error {
	if !isHex24(id) {
		return &ValidationError{Field: field, Reason: "must be 24 lowercase hexadecimal characters"}
	}
	return nil
}

// ValidateToken checks a Cost Explorer token: 64 characters, and (because it
// becomes a path segment) only letters, digits, '-' and '_'.
func ValidateToken(t string) error {
	if len(t) != 64 {
		return &ValidationError{Field: "token", Reason: fmt.Sprintf("must be 64 characters, got %d", len(t))}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return &ValidationError{Field: "token", Reason: "must contain only letters, digits, '-' and '_'"}
		}
	}
	return nil
}

func isHex24(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
