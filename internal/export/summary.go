package export

import (
	"fmt"
	"slices"
	"strings"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Outcome is how one job ended: the objects it wrote, or the error that
// ended it. The state machine's job workflow returns one (its last Result,
// or the error it caught), and so does Runner for each job.
type Outcome struct {
	OrgID         string            `json:"orgId"`
	Period        period.Period     `json:"period"`
	Objects       []sink.Object     `json:"objects"`
	Warnings      []Warning         `json:"warnings,omitempty"`
	UsageServices map[string]string `json:"usageServices,omitempty"`
	// Reconciliations check each invoice stored against its own totals.
	Reconciliations []Reconciliation `json:"reconciliations,omitempty"`
	Error           string           `json:"error,omitempty"`
	Cause           string           `json:"cause,omitempty"`
}

// Failed reports whether the job failed.
func (o Outcome) Failed() bool { return o.Error != "" }

// Outcome is the outcome of the job r ends.
func (r Result) Outcome() Outcome {
	return Outcome{OrgID: r.OrgID, Period: r.Period, Objects: r.Objects, Warnings: r.Warnings, UsageServices: r.UsageServices, Reconciliations: r.Reconciliations}
}

// failed is the outcome of job j that ended with err.
func failed(j Job, err error) Outcome {
	return Outcome{OrgID: j.OrgID, Period: j.Period, Objects: []sink.Object{}, Error: Name(err), Cause: err.Error()}
}

// Failure is one failed job as a summary lists it.
type Failure struct {
	OrgID string `json:"orgId"`
	Month string `json:"month"` // YYYY-MM
	Error string `json:"error"`
	Cause string `json:"cause"`
}

// Reason is the cause on one line, without the org and month a job's error
// begins with: a line that lists the failure names them already.
func (f Failure) Reason() string {
	c := strings.Join(strings.Fields(f.Cause), " ")
	if rest, ok := strings.CutPrefix(c, "org "+f.OrgID+", "+f.Month); ok && (strings.HasPrefix(rest, ": ") || strings.HasPrefix(rest, ", ")) {
		return rest[2:]
	}
	return c
}

// Summary is what a whole export did, small whatever its size: counts, the
// first failures and warnings (Listed at most), and where the rest is.
type Summary struct {
	Execution string `json:"execution,omitempty"`
	Orgs      int    `json:"orgs"`
	Months    int    `json:"months"`
	Jobs      int    `json:"jobs"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Objects   int    `json:"objects"`   // written or found unchanged
	Unchanged int    `json:"unchanged"` // of Objects, already stored with the same content
	Bytes     int64  `json:"bytes"`
	// Failures are the first failed jobs, in plan order (org, then month).
	Failures []Failure `json:"failures"`
	// Warnings counts the warnings per name; WarningList shows the first.
	Warnings    map[string]int `json:"warnings"`
	WarningList []Warning      `json:"warningList"`
	// Outcomes lists every job's outcome and objects, one JSON line each,
	// and SummaryKey is where this summary is stored (state machine runs).
	Bucket     string `json:"bucket,omitempty"`
	Outcomes   string `json:"outcomes,omitempty"`
	SummaryKey string `json:"summary,omitempty"`
	// Error and Cause are set when a job failed: the first failure's name,
	// and the failures with where to find them all. The state machine fails
	// the execution with them.
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`
}

// Bounds of what a summary carries, so it stays a few KiB whatever the run.
const (
	Listed       = 10   // failures and warnings listed
	maxCauseText = 512  // bytes of one listed failure's cause or warning's message
	maxRunCause  = 4096 // bytes of the summary's cause
)

// Tally adds up outcomes into a Summary. The zero value is ready; Add
// outcomes in any order, giving each its job's place in the plan.
type Tally struct {
	sum      Summary
	failures []rankedFailure
	warned   int
}

type rankedFailure struct {
	rank int
	Failure
}

// Add counts one job's outcome; rank is its job's place in the plan.
func (t *Tally) Add(rank int, o Outcome) {
	if t.sum.Warnings == nil {
		t.sum.Warnings = map[string]int{}
	}
	for _, w := range o.Warnings {
		t.sum.Warnings[w.Name]++
		if len(t.sum.WarningList) < Listed {
			w.Message = truncate(w.Message, maxCauseText)
			t.sum.WarningList = append(t.sum.WarningList, w)
		}
		t.warned++
	}
	if o.Failed() {
		t.sum.Failed++
		t.failures = append(t.failures, rankedFailure{rank, Failure{OrgID: o.OrgID, Month: o.Period.Label(), Error: o.Error, Cause: truncate(o.Cause, maxCauseText)}})
		// Only the first Listed in plan order are kept.
		slices.SortFunc(t.failures, func(a, b rankedFailure) int { return a.rank - b.rank })
		t.failures = t.failures[:min(len(t.failures), Listed)]
		return
	}
	t.sum.Succeeded++
	for _, obj := range o.Objects {
		t.sum.Objects++
		t.sum.Bytes += obj.Bytes
		if obj.Skipped {
			t.sum.Unchanged++
		}
	}
}

// Summary is the tally so far; where says where every outcome is listed
// (for the cause), or is empty.
func (t *Tally) Summary(where string) Summary {
	s := t.sum
	s.Jobs = s.Succeeded + s.Failed
	s.Failures = []Failure{}
	for _, f := range t.failures {
		s.Failures = append(s.Failures, f.Failure)
	}
	if s.Warnings == nil {
		s.Warnings = map[string]int{}
	}
	if s.WarningList == nil {
		s.WarningList = []Warning{}
	}
	if s.Failed > 0 {
		s.Error = s.Failures[0].Error
		s.Cause = runCause(s, where)
	}
	return s
}

// runCause says how many jobs failed, which first, and where the rest is.
func runCause(s Summary, where string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d jobs failed", s.Failed, s.Jobs)
	tail := ""
	if where != "" {
		tail = "; every job's outcome: " + where
	}
	for i, f := range s.Failures {
		item := fmt.Sprintf("; org %s, %s: %s: %s", f.OrgID, f.Month, f.Error, f.Reason())
		if b.Len()+len(item)+len(tail)+32 > maxRunCause {
			fmt.Fprintf(&b, "; and %d more", s.Failed-i)
			return b.String() + tail
		}
		b.WriteString(item)
	}
	if more := s.Failed - len(s.Failures); more > 0 {
		fmt.Fprintf(&b, "; and %d more", more)
	}
	return b.String() + tail
}
