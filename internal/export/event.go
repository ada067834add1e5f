package export

import (
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Request is what a person or a schedule asks for. Every field is optional:
// {} exports the previous month for the configured orgs.
type Request struct {
	OrgIDs                []string `json:"orgIds,omitempty"`
	OrgID                 string   `json:"orgId,omitempty"`
	Period                string   `json:"period,omitempty"`    // YYYY-MM | previous-month | month-to-date
	StartDate             string   `json:"startDate,omitempty"` // YYYY-MM-DD, first of a month
	EndDate               string   `json:"endDate,omitempty"`   // YYYY-MM-DD, first of a month, exclusive
	ScheduledTime         string   `json:"scheduledTime,omitempty"`
	Services              []string `json:"services,omitempty"`
	Projects              []string `json:"projects,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	GroupBy               string   `json:"groupBy,omitempty"`
	IncludePartialMatches bool     `json:"includePartialMatches,omitempty"`
	IncludePending        bool     `json:"includePending,omitempty"`
	InvoiceID             string   `json:"invoiceId,omitempty"`
	// Focus asks for Atlas's FOCUS report of each invoice; unset takes the
	// configured default (on unless ABX_FOCUS_REPORTS=false).
	Focus *bool `json:"focus,omitempty"`
	// Comment is ignored: the Step Functions console starts an execution
	// with {"Comment": "Insert your JSON here"} unless told otherwise.
	Comment string `json:"Comment,omitempty"`
}

// Filters narrow a Cost Explorer query.
type Filters struct {
	Services              []string `json:"services,omitempty"`
	Projects              []string `json:"projects,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	GroupBy               string   `json:"groupBy,omitempty"`
	IncludePartialMatches bool     `json:"includePartialMatches,omitempty"`
}

// Job is the export of one org for one month. It travels through the state
// machine from Submit to FetchInvoices, each step adding what the next needs.
type Job struct {
	OrgID          string        `json:"orgId"`
	Period         period.Period `json:"period"`
	Filters        Filters       `json:"filters"`
	IncludePending bool          `json:"includePending,omitempty"`
	InvoiceID      string        `json:"invoiceId,omitempty"`
	Focus          bool          `json:"focus,omitempty"`
	MaxAttempts    int           `json:"maxAttempts"`

	Token       string       `json:"token,omitempty"`
	Status      string       `json:"status,omitempty"`
	WaitSeconds int          `json:"waitSeconds,omitempty"`
	Attempt     int          `json:"attempt"`
	Usage       *sink.Object `json:"usage,omitempty"`
	// UsageNormalized is the usage rewritten for Athena (internal/normalize).
	UsageNormalized *sink.Object `json:"usageNormalized,omitempty"`
	// UsageServices is the usage's exact total per service, decimal text,
	// counted while it streamed (none when it could not be normalized).
	UsageServices map[string]string `json:"usageServices,omitempty"`
	// UsageTotal is the usage's exact total, decimal text (none when it
	// could not be normalized).
	UsageTotal string `json:"usageTotal,omitempty"`
	// Warnings are the problems that did not fail a step.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Statuses of a Job.
const (
	StatusSubmitted  = "SUBMITTED"
	StatusProcessing = "PROCESSING"
	StatusReady      = "READY"
)

// Plan is the list of jobs a Request expands to.
type Plan struct {
	Jobs []Job `json:"jobs"`
}

// Result is what FetchInvoices returns for one job: every object written.
// With FOCUS reports asked for, SubmitFocus and PollFocus carry it on, the
// way Submit and Poll carry a Job, adding the reports' objects.
type Result struct {
	OrgID   string        `json:"orgId"`
	Period  period.Period `json:"period"`
	Objects []sink.Object `json:"objects"`

	Focus       bool     `json:"focus"`
	Reports     []Report `json:"reports"`
	Status      string   `json:"status,omitempty"`
	WaitSeconds int      `json:"waitSeconds,omitempty"`
	Attempt     int      `json:"attempt"`
	MaxAttempts int      `json:"maxAttempts"`
	// UsageServices is the job's (Job.UsageServices).
	UsageServices map[string]string `json:"usageServices,omitempty"`
	// Reconciliations check each invoice stored against its own totals.
	Reconciliations []Reconciliation `json:"reconciliations,omitempty"`
	// Warnings are the problems that did not fail a step, the job's first:
	// always a list, so the state machine can pass it on.
	Warnings []Warning `json:"warnings"`
}

// wantsFocus reports whether FOCUS reports are still to be asked for: the
// job is not over after FetchInvoices.
func (r Result) wantsFocus() bool { return r.Focus && len(r.Reports) > 0 }

// CheckMonths refuses months a person cannot mean: before 2000 (Atlas did
// not exist: a typo such as 0224-06) or starting more than a day after now
// (no billing yet; the day allows for a schedule's time zone ahead of UTC).
func CheckMonths(months []period.Period, now time.Time) error {
	for _, m := range months {
		switch {
		case m.Start.Year() < 2000:
			return invalid("%s: Atlas has no billing before 2000", m)
		case m.Start.After(now.Add(24 * time.Hour)):
			return invalid("%s is in the future: Atlas has no billing for it yet", m)
		}
	}
	return nil
}
