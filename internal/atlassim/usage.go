package atlassim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
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

// usageRows calls fn for each row of the result of q for orgID, in order.
func (s *Server) usageRows(orgID string, q UsageQuery, fn func(usageRow) error) error {
	start, end, err := q.period()
	if err != nil {
		return err
	}
	orgs := []Org{}
	for _, id := range q.Organizations {
		if o, ok := s.orgs[id]; ok {
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
	services := q.Services
	if len(services) == 0 {
		services = Services
	}
	days := int64(end.Sub(start).Hours() / 24)
	n := int64(s.cfg.UsageRows)
	// Naming the org the query runs in is the same query as naming none.
	if len(q.Organizations) == 1 && q.Organizations[0] == orgID {
		q.Organizations = nil
	}
	s1, s2 := seeds("usage", orgID, q.canonical())
	var p rand.PCG
	for i := int64(0); i < n; i++ {
		rowPCG(&p, s1, s2, i)
		org := pick(&p, orgs)
		var prj project
		if len(q.Projects) > 0 {
			id := pick(&p, q.Projects)
			prj = project{ID: id, Name: "Project " + id[:6]}
		} else {
			prj = pick(&p, projectsOf(org.ID))
		}
		var clusterID, clusterName string
		if len(q.Clusters) > 0 {
			clusterID = pick(&p, q.Clusters)
			clusterName = "cluster-" + clusterID[:6]
		} else {
			clusterName = pick(&p, clusterNames)
			clusterID = hashID(24, "cluster", prj.ID, clusterName)
		}
		svc := pick(&p, services)
		cents := int64(1 + p.Uint64()%200000)
		if svc == "Credits" {
			cents = -cents
		}
		date := start.AddDate(0, 0, int(i*days/n)) // sorted by date
		row := usageRow{
			invoiceID: invoiceIDOf(org.ID, date.Format("2006-01")), orgID: org.ID, orgName: org.Name,
			projectID: prj.ID, projectName: prj.Name, clusterID: clusterID, clusterName: clusterName,
			service: svc, date: date, cents: cents,
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// WriteUsageCSV writes the exact bytes the simulator serves as the CSV
// result of query q for orgID (deterministic in org and query).
func (s *Server) WriteUsageCSV(w io.Writer, orgID string, q UsageQuery) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	b := appendRecord(make([]byte, 0, 512), UsageColumns...)
	if _, err := bw.Write(b); err != nil {
		return err
	}
	err := s.usageRows(orgID, q, func(r usageRow) error {
		b = b[:0]
		b = append(b, r.invoiceID...)
		b = append(b, ',')
		b = append(b, r.orgID...)
		b = append(b, ',')
		b = appendField(b, r.orgName)
		b = append(b, ',')
		b = append(b, r.projectID...)
		b = append(b, ',')
		b = appendField(b, r.projectName)
		b = append(b, ',')
		b = append(b, r.clusterID...)
		b = append(b, ',')
		b = appendField(b, r.clusterName)
		b = append(b, ',')
		b = appendField(b, r.service)
		b = append(b, ',')
		b = r.date.AppendFormat(b, "2006-01-02")
		b = append(b, ',')
		b = appendCents(b, r.cents)
		b = append(b, '\n')
		_, err := bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// WriteUsageJSON writes the exact bytes the simulator serves as the JSON
// result of query q for orgID: {"usageDetails":[...]} with usageAmount a
// JSON number with two decimals.
func (s *Server) WriteUsageJSON(w io.Writer, orgID string, q UsageQuery) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.WriteString(`{"usageDetails":[`); err != nil {
		return err
	}
	first := true
	b := make([]byte, 0, 512)
	err := s.usageRows(orgID, q, func(r usageRow) error {
		b = b[:0]
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"invoiceId":`...)
		b = strconv.AppendQuote(b, r.invoiceID)
		b = append(b, `,"organizationId":`...)
		b = strconv.AppendQuote(b, r.orgID)
		b = append(b, `,"organizationName":`...)
		b = appendJSONString(b, r.orgName)
		b = append(b, `,"projectId":`...)
		b = strconv.AppendQuote(b, r.projectID)
		b = append(b, `,"projectName":`...)
		b = appendJSONString(b, r.projectName)
		b = append(b, `,"clusterId":`...)
		b = strconv.AppendQuote(b, r.clusterID)
		b = append(b, `,"clusterName":`...)
		b = appendJSONString(b, r.clusterName)
		b = append(b, `,"service":`...)
		b = appendJSONString(b, r.service)
		b = append(b, `,"usageAmount":`...)
		b = appendCents(b, r.cents)
		b = append(b, `,"usageDate":"`...)
		b = r.date.AppendFormat(b, "2006-01-02")
		b = append(b, `"}`...)
		_, err := bw.Write(b)
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

func appendJSONString(b []byte, s string) []byte {
	j, _ := json.Marshal(s) // a string always marshals
	return append(b, j...)
}
