package atlassim

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
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

// usageRows calls fn for each row of the result of q for orgID, in order:
// for each month of q and each org it names (orgID when none), the line
// items of that org's invoice of the month that match the filters, summed
// by usage date, service, project and cluster. So a month's usage total is
// its invoice's line-item total (Subtotal - Credits) when nothing is
// filtered out, and months without an invoice have no rows.
func (s *Server) usageRows(orgID string, q UsageQuery, fn func(d usageDetail, cents int64) error) error {
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
			sums := map[usageDetail]int64{}
			g := newLineGen(inv)
			for i := int64(0); i < inv.Rows; i++ {
				l := g.line(i)
				d := usageDetail{InvoiceID: inv.ID, OrganizationID: org.ID, OrganizationName: org.Name, ProjectID: l.project.ID, ProjectName: l.project.Name,
					ClusterName: l.cluster, Service: l.sku.Service, UsageDate: inv.Start.AddDate(0, 0, l.day).Format("2006-01-02")}
				if l.cluster != "" {
					d.ClusterID = hashID(24, "cluster", l.project.ID, l.cluster)
				}
				if keep(q.Services, d.Service) && keep(q.Projects, d.ProjectID) && keep(q.Clusters, d.ClusterID) {
					sums[d] += l.cents
				}
			}
			for _, d := range slices.SortedFunc(maps.Keys(sums), func(a, b usageDetail) int {
				return cmp.Or(cmp.Compare(a.UsageDate, b.UsageDate), cmp.Compare(a.Service, b.Service),
					cmp.Compare(a.ProjectID, b.ProjectID), cmp.Compare(a.ClusterName, b.ClusterName))
			}) {
				if err := fn(d, sums[d]); err != nil {
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
	if s.has(KeyValueUsage) {
		return s.writeUsage(w, orgID, q, "", "", appendKeyValue)
	}
	return s.writeUsage(w, orgID, q, string(appendRecord(nil, UsageColumns...)), "", func(b []byte, d usageDetail, cents int64) []byte {
		return appendRecord(b, d.InvoiceID, d.OrganizationID, d.OrganizationName, d.ProjectID, d.ProjectName, d.ClusterID, d.ClusterName,
			d.Service, d.UsageDate, formatCents(cents))
	})
}

// appendKeyValue appends a usage row in the form of the spec's only example
// of this answer: no header row, a block of "Key,value" lines per row
// (trailing commas on some, a space before the amount), a blank line after
// each block.
func appendKeyValue(b []byte, d usageDetail, cents int64) []byte {
	b = appendRecord(b, "Billed Date", d.UsageDate, "")
	b = appendRecord(b, "Invoice Id", d.InvoiceID, "")
	b = appendRecord(b, "Organization Name", d.OrganizationName, "")
	b = appendRecord(b, "Organization ID", d.OrganizationID, "")
	b = appendRecord(b, "Project Name", d.ProjectName, "")
	b = appendRecord(b, "Project Id", d.ProjectID, "")
	b = appendRecord(b, "Cluster Name", d.ClusterName)
	b = appendRecord(b, "Cluster Unique Id", d.ClusterID)
	b = appendRecord(b, "Service", d.Service)
	return append(appendCents(append(b, "Usage Amount, "...), cents), '\n', '\n')
}

// WriteUsageJSON writes the exact bytes the simulator serves as the JSON
// result of query q for orgID: {"usageDetails":[...]} with usageAmount a
// JSON number with two decimals.
func (s *Server) WriteUsageJSON(w io.Writer, orgID string, q UsageQuery) error {
	sep := ""
	return s.writeUsage(w, orgID, q, `{"usageDetails":[`, "]}", func(b []byte, d usageDetail, cents int64) []byte {
		d.UsageAmount = json.Number(formatCents(cents))
		j, _ := json.Marshal(d) // strings and a valid number: cannot fail
		b = append(append(b, sep...), j...)
		sep = ","
		return b
	})
}

// writeUsage writes head, each row of the result of q as row appends it,
// then tail, buffered.
func (s *Server) writeUsage(w io.Writer, orgID string, q UsageQuery, head, tail string, row func([]byte, usageDetail, int64) []byte) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(head) // a bufio.Writer keeps its first error for Flush
	var b []byte
	err := s.usageRows(orgID, q, func(d usageDetail, cents int64) error {
		b = row(b[:0], d, cents)
		_, err := bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	_, _ = bw.WriteString(tail)
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
