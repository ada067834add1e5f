package atlassim

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// UsageQuery is the spec's CostExplorerFilterRequestBody.
type UsageQuery struct {
	StartDate             string   `json:"startDate"`
	EndDate               string   `json:"endDate"`
	Organizations         []string `json:"organizations,omitempty"`
	Projects              []string `json:"projects,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	Services              []string `json:"services,omitempty"`
	GroupBy               string   `json:"groupBy,omitempty"`
	IncludePartialMatches bool     `json:"includePartialMatches,omitempty"`
}

// canonical is the query's identity: equal queries give equal results.
func (q UsageQuery) canonical() string {
	b, _ := json.Marshal(q) // plain strings and slices: cannot fail
	return string(b)
}

// period checks the rules the spec states in prose (dates are the first of a
// month, end exclusive and after start; groupBy needs a filter value).
func (q UsageQuery) period() (start, end time.Time, err error) {
	start, err = time.Parse("2006-01-02", q.StartDate)
	if err != nil {
		return start, end, fmt.Errorf("startDate %q is not a date", q.StartDate)
	}
	end, err = time.Parse("2006-01-02", q.EndDate)
	if err != nil {
		return start, end, fmt.Errorf("endDate %q is not a date", q.EndDate)
	}
	if start.Day() != 1 || end.Day() != 1 {
		return start, end, errors.New("startDate and endDate must be the first day of a month")
	}
	if !end.After(start) {
		return start, end, errors.New("endDate must be after startDate")
	}
	if q.GroupBy != "" && len(q.Organizations)+len(q.Projects)+len(q.Clusters)+len(q.Services) == 0 {
		return start, end, fmt.Errorf("groupBy %q needs at least one filter value", q.GroupBy)
	}
	return start, end, nil
}

// query is the state of one Cost Explorer query.
type query struct {
	org        string
	q          UsageQuery
	created    time.Time
	polls      int
	neverReady bool
}

type usageRow struct {
	invoiceID, orgID, orgName, projectID, projectName, clusterID, clusterName, service string
	date                                                                               time.Time
	cents                                                                              int64
}

// usageRows calls fn for each row of the result of q for orgID, in order:
// for each month of q and each org it names (orgID when none), the line
// items of that org's invoice of the month that match the filters, summed
// by usage date, service, project and cluster. So a month's usage total is
// its invoice's line-item total (Subtotal - Credits) when nothing is
// filtered out, and months without an invoice have no rows.
func (s *Server) usageRows(orgID string, q UsageQuery, fn func(usageRow) error) error {
	start, end, err := q.period()
	if err != nil {
		return err
	}
	orgs := []Org{}
	for _, id := range q.Organizations {
		if o, ok := s.orgs[id]; ok && !slices.Contains(orgs, o) {
			orgs = append(orgs, o)
		}
	}
	if len(orgs) == 0 {
		org, ok := s.orgs[orgID]
		if !ok {
			return fmt.Errorf("atlassim: unknown org %s", orgID)
		}
		orgs = append(orgs, org)
	}
	keep := func(filter []string, v string) bool { return len(filter) == 0 || slices.Contains(filter, v) }
	for m := start; m.Before(end); m = m.AddDate(0, 1, 0) {
		for _, org := range orgs {
			inv, ok := s.invoice(org.ID, invoiceIDOf(org.ID, m.Format("2006-01")))
			if !ok {
				continue
			}
			sums := map[usageRow]int64{}
			g := newLineGen(inv)
			for i := int64(0); i < inv.Rows; i++ {
				l := g.line(i)
				r := usageRow{invoiceID: inv.ID, orgID: org.ID, orgName: org.Name, projectID: l.project.ID, projectName: l.project.Name,
					clusterName: l.cluster, service: l.sku.Service, date: inv.Start.AddDate(0, 0, l.day)}
				if l.cluster != "" {
					r.clusterID = hashID(24, "cluster", l.project.ID, l.cluster)
				}
				if keep(q.Services, r.service) && keep(q.Projects, r.projectID) && keep(q.Clusters, r.clusterID) {
					sums[r] += l.cents
				}
			}
			rows := make([]usageRow, 0, len(sums))
			for r, c := range sums {
				r.cents = c
				rows = append(rows, r)
			}
			slices.SortFunc(rows, func(a, b usageRow) int {
				return cmp.Or(a.date.Compare(b.date), cmp.Compare(a.service, b.service),
					cmp.Compare(a.projectID, b.projectID), cmp.Compare(a.clusterName, b.clusterName))
			})
			for _, r := range rows {
				if err := fn(r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// WriteUsageCSV writes the exact bytes the simulator serves as the CSV
// result of query q for orgID (deterministic in org and query).
func (s *Server) WriteUsageCSV(w io.Writer, orgID string, q UsageQuery) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if s.has(KeyValueUsage) {
		if err := s.writeUsageKeyValue(bw, orgID, q); err != nil {
			return err
		}
		return bw.Flush()
	}
	b := appendRecord(make([]byte, 0, 512), UsageColumns...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	err := s.usageRows(orgID, q, func(r usageRow) error {
		b = appendRecord(b[:0], r.invoiceID, r.orgID, r.orgName, r.projectID, r.projectName, r.clusterID, r.clusterName,
			r.service, r.date.Format("2006-01-02"), formatCents(r.cents))
		_, err := bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// writeUsageKeyValue writes the usage rows in the form of the spec's only
// example of this answer: no header row, a block of "Key,value" lines per
// row (trailing commas on some, a space before the amount), a blank line
// after each block.
func (s *Server) writeUsageKeyValue(w io.Writer, orgID string, q UsageQuery) error {
	b := make([]byte, 0, 512)
	return s.usageRows(orgID, q, func(r usageRow) error {
		b = appendRecord(b[:0], "Billed Date", r.date.Format("2006-01-02"), "")
		b = appendRecord(b, "Invoice Id", r.invoiceID, "")
		b = appendRecord(b, "Organization Name", r.orgName, "")
		b = appendRecord(b, "Organization ID", r.orgID, "")
		b = appendRecord(b, "Project Name", r.projectName, "")
		b = appendRecord(b, "Project Id", r.projectID, "")
		b = appendRecord(b, "Cluster Name", r.clusterName)
		b = appendRecord(b, "Cluster Unique Id", r.clusterID)
		b = appendRecord(b, "Service", r.service)
		b = append(appendCents(append(b, "Usage Amount, "...), r.cents), '\n', '\n')
		_, err := w.Write(b)
		return err
	})
}

// WriteUsageJSON writes the exact bytes the simulator serves as the JSON
// result of query q for orgID: {"usageDetails":[...]} with usageAmount a
// JSON number with two decimals.
func (s *Server) WriteUsageJSON(w io.Writer, orgID string, q UsageQuery) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(`{"usageDetails":[`); err != nil {
		return err
	}
	sep := ""
	err := s.usageRows(orgID, q, func(r usageRow) error {
		b, err := json.Marshal(usageDetail{r.invoiceID, r.orgID, r.orgName, r.projectID, r.projectName, r.clusterID, r.clusterName,
			r.service, json.Number(formatCents(r.cents)), r.date.Format("2006-01-02")})
		if err == nil {
			_, err = bw.WriteString(sep)
			sep = ","
		}
		if err == nil {
			_, err = bw.Write(b)
		}
		return err
	})
	if err != nil {
		return err
	}
	if _, err := bw.WriteString("]}"); err != nil {
		return err
	}
	return bw.Flush()
}

// usageDetail is one entry of the JSON result's usageDetails.
type usageDetail struct {
	InvoiceID        string      `json:"invoiceId"`
	OrganizationID   string      `json:"organizationId"`
	OrganizationName string      `json:"organizationName"`
	ProjectID        string      `json:"projectId"`
	ProjectName      string      `json:"projectName"`
	ClusterID        string      `json:"clusterId"`
	ClusterName      string      `json:"clusterName"`
	Service          string      `json:"service"`
	UsageAmount      json.Number `json:"usageAmount"`
	UsageDate        string      `json:"usageDate"`
}
