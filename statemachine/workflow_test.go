package statemachine_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

const (
	orgA = "5f1a2b3c4d5e6f7a8b9c0d1e"
	orgB = "65ab12cd34ef56ab78cd90ef"
)

// The contract shapes (contracts.md, "Functions, events and error names").
type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Month string `json:"month"`
}

type object struct {
	Bucket  string `json:"bucket"`
	Key     string `json:"key"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"`
	Rows    int64  `json:"rows"`
	Skipped bool   `json:"skipped"`
}

// job is a Job as the plan emits it, plus the fields Submit and Poll add.
type job struct {
	OrgID          string          `json:"orgId"`
	Period         period          `json:"period"`
	Filters        json.RawMessage `json:"filters"`
	IncludePending bool            `json:"includePending"`
	InvoiceID      string          `json:"invoiceId"`
	MaxAttempts    int             `json:"maxAttempts"`
	Token          string          `json:"token,omitempty"`
	WaitSeconds    *int            `json:"waitSeconds,omitempty"`
	Attempt        *int            `json:"attempt,omitempty"`
	Status         string          `json:"status,omitempty"`
	Usage          *object         `json:"usage,omitempty"`
}

// summary is the execution's output (export.Summary).
type summary struct {
	Execution string `json:"execution"`
	Orgs      int    `json:"orgs"`
	Months    int    `json:"months"`
	Jobs      int    `json:"jobs"`
	Succeeded int    `json:"succeeded"`
	Failed    int    `json:"failed"`
	Objects   int    `json:"objects"`
	Unchanged int    `json:"unchanged"`
	Bytes     int64  `json:"bytes"`
	Failures  []struct {
		OrgID string `json:"orgId"`
		Month string `json:"month"`
		Error string `json:"error"`
		Cause string `json:"cause"`
	} `json:"failures"`
	Warnings    map[string]int    `json:"warnings"`
	WarningList []json.RawMessage `json:"warningList"`
	Bucket      string            `json:"bucket"`
	Manifest    string            `json:"manifest"`
	SummaryKey  string            `json:"summary"`
	Error       string            `json:"error"`
	Cause       string            `json:"cause"`
}

var orgIDPattern = regexp.MustCompile(`^[a-f0-9]{24}$`)

// fake implements the functions' contracts of one job in memory.
type fake struct {
	readyAfter int    // polls until READY; 0 = never
	pollRaises bool   // Poll raises Poll.AttemptsExhausted itself, as the real one does
	pollStatus string // if set, what every poll answers
	// fail injects an error into the n-th call (1-based) of a state.
	fail func(state string, n int, j job) error

	mu        sync.Mutex
	calls     map[string]int
	written   []string       // keys FetchInvoices reported, usage included
	inFlight  map[string]int // calls under way per org
	maxAtOnce int            // the most calls under way for one org
	submits   []string       // org/month of each Submit, in call order
}

func (f *fake) handle(ctx context.Context, state string, input json.RawMessage) (json.RawMessage, error) {
	// Every Task names its action and passes the job (statemachine's Parameters).
	var c struct {
		Action string `json:"action"`
		Job    job    `json:"job"`
	}
	if err := json.Unmarshal(input, &c); err != nil {
		return nil, &sfntest.Error{Name: "Input.Invalid", Cause: fmt.Sprintf("%s: decode call: %v", state, err)}
	}
	j := c.Job
	f.mu.Lock()
	if f.calls == nil {
		f.calls, f.inFlight = map[string]int{}, map[string]int{}
	}
	f.calls[state]++
	n := f.calls[state]
	f.inFlight[j.OrgID]++
	f.maxAtOnce = max(f.maxAtOnce, f.inFlight[j.OrgID])
	if state == statemachine.StateSubmit {
		f.submits = append(f.submits, j.OrgID+"/"+j.Period.Month)
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight[j.OrgID]--
		f.mu.Unlock()
	}()
	time.Sleep(time.Millisecond) // so overlapping calls would overlap

	if want := taskActions[state]; c.Action != want {
		return nil, &sfntest.Error{Name: "Input.Invalid", Cause: fmt.Sprintf("%s: action %q, want %q", state, c.Action, want)}
	}
	if !orgIDPattern.MatchString(j.OrgID) {
		return nil, &sfntest.Error{Name: "Input.Invalid", Cause: fmt.Sprintf("%s: bad org id %q", state, j.OrgID)}
	}
	if f.fail != nil {
		if err := f.fail(state, n, j); err != nil {
			return nil, err
		}
	}
	switch state {
	case statemachine.StateSubmit:
		j.Token = strings.Repeat("a", 64)
		j.WaitSeconds, j.Attempt, j.Status = ptr(5), ptr(0), "SUBMITTED"
	case statemachine.StatePoll:
		if j.Token == "" || j.Attempt == nil {
			return nil, &sfntest.Error{Name: "Input.Invalid", Cause: "org " + j.OrgID + ": poll without token or attempt"}
		}
		a := *j.Attempt + 1
		j.Attempt = &a
		switch {
		case f.readyAfter > 0 && a >= f.readyAfter:
			j.Status = "READY"
			u := f.object(fmt.Sprintf("atlas-billing/usage/org_id=%s/billing_month=%s/usage.csv", j.OrgID, j.Period.Month))
			j.Usage = &u
		case f.pollRaises && a >= j.MaxAttempts:
			return nil, &sfntest.Error{Name: "Poll.AttemptsExhausted", Cause: fmt.Sprintf("org %s: usage query still processing after %d polls", j.OrgID, a)}
		case f.pollStatus != "":
			j.Status = f.pollStatus
		default:
			j.Status, j.WaitSeconds = "PROCESSING", ptr(10)
		}
	case statemachine.StateFetchInvoices:
		if j.Status != "READY" || j.Usage == nil {
			return nil, &sfntest.Error{Name: "Input.Invalid", Cause: "org " + j.OrgID + ": fetch before the usage was ready"}
		}
		objs := []object{*j.Usage}
		for i := range 2 {
			objs = append(objs, f.object(fmt.Sprintf("atlas-billing/invoices/org_id=%s/billing_month=%s/invoice_id=%s%02d.csv", j.OrgID, j.Period.Month, j.OrgID[:22], i)))
		}
		f.mu.Lock()
		for _, o := range objs {
			f.written = append(f.written, o.Key)
		}
		f.mu.Unlock()
		return json.Marshal(map[string]any{"orgId": j.OrgID, "period": j.Period, "objects": objs, "warnings": []any{}})
	default:
		return nil, fmt.Errorf("no fake for state %q", state)
	}
	return json.Marshal(j)
}

// taskActions is the action each Task state's call names.
var taskActions = map[string]string{
	statemachine.StateSubmit:        "submit",
	statemachine.StatePoll:          "poll",
	statemachine.StateFetchInvoices: "fetch",
}

func (f *fake) object(key string) object {
	sum := sha256.Sum256([]byte(key))
	return object{Bucket: "billing", Key: key, Bytes: 1234, SHA256: hex.EncodeToString(sum[:]), Rows: 10}
}

func ptr(i int) *int { return &i }

func definition(t *testing.T) []byte {
	t.Helper()
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// jobDefinition and orgDefinition are the workflows of one job and of one
// org's child execution, run here on their own.
func jobDefinition(t *testing.T) []byte {
	t.Helper()
	def, err := statemachine.Job(definition(t))
	if err != nil {
		t.Fatal(err)
	}
	return def
}

func orgDefinition(t *testing.T) []byte {
	t.Helper()
	def, err := statemachine.Org(definition(t))
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// newJob is a job as the plan writes it.
func newJob(org, month string, maxAttempts int) job {
	start, _ := time.Parse("2006-01", month)
	return job{OrgID: org, Period: period{Start: start.Format("2006-01-02"), End: start.AddDate(0, 1, 0).Format("2006-01-02"), Month: month},
		Filters: json.RawMessage(`{}`), MaxAttempts: maxAttempts}
}

// jobOutcome is what a job workflow answers: its last result, or the error
// it caught.
type jobOutcome struct {
	OrgID   string   `json:"orgId"`
	Period  period   `json:"period"`
	Objects []object `json:"objects"`
	Error   string   `json:"error"`
	Cause   string   `json:"cause"`
}

func TestJobWorkflowExportsEveryObject(t *testing.T) {
	t.Parallel()
	f := &fake{readyAfter: 4} // PROCESSING 3 times, then READY
	res := sfntest.Run(t, jobDefinition(t), newJob(orgA, "2024-06", 40), f.handle, sfntest.Options{})
	if !res.Succeeded() {
		t.Fatalf("execution failed: %s: %s", res.Error, res.Cause)
	}
	wantCalls := map[string]int{"Submit": 1, "Poll": 4, "FetchInvoices": 1}
	for state, want := range wantCalls {
		if got := res.Calls[state]; got != want {
			t.Errorf("%s called %d times, want %d", state, got, want)
		}
	}
	// Run on its own, the job's events are all there: one Wait per poll.
	if got := res.Entered[statemachine.StateWait]; got != 4 {
		t.Errorf("WaitForUsage entered %d times, want 4 (one before each poll)", got)
	}
	var out jobOutcome
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("decode output %s: %v", res.Output, err)
	}
	if out.OrgID != orgA || out.Period.Month != "2024-06" || out.Error != "" {
		t.Errorf("outcome = %s", res.Output)
	}
	var listed []string
	for _, o := range out.Objects {
		if o.Bucket != "billing" || len(o.SHA256) != 64 {
			t.Errorf("object %+v lost fields on the way", o)
		}
		listed = append(listed, o.Key)
	}
	if !slices.Equal(listed, f.written) || len(listed) != 3 {
		t.Errorf("outcome lists\n%s\nwant every object written\n%s", strings.Join(listed, "\n"), strings.Join(f.written, "\n"))
	}
}

// An org's child execution exports its months two at a time
// (export.MonthsAtOnce), and a month that fails does not stop the others.
func TestOrgWorkflowMonths(t *testing.T) {
	t.Parallel()
	f := &fake{readyAfter: 2, fail: func(state string, n int, j job) error {
		if state == statemachine.StateFetchInvoices && j.Period.Month == "2024-05" {
			return &sfntest.Error{Name: "Atlas.NotFound", Cause: "org " + j.OrgID + ", 2024-05: invoice not found"}
		}
		return nil
	}}
	months := []string{"2024-03", "2024-04", "2024-05", "2024-06"}
	var jobs []job
	for _, m := range months {
		jobs = append(jobs, newJob(orgB, m, 40))
	}
	input := map[string]any{"orgId": orgB, "jobs": jobs, "results": map[string]string{"bucket": "billing", "prefix": "atlas-billing/_runs/x/results"}}
	res := sfntest.Run(t, orgDefinition(t), input, f.handle, sfntest.Options{})
	if !res.Succeeded() {
		t.Fatalf("execution failed: %s: %s", res.Error, res.Cause)
	}
	var out struct {
		OrgID  string       `json:"orgId"`
		Months []jobOutcome `json:"months"`
		Jobs   any          `json:"jobs"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		t.Fatalf("decode output %s: %v", res.Output, err)
	}
	if out.OrgID != orgB || len(out.Months) != len(months) || out.Jobs != nil {
		t.Fatalf("output = %s, want the org and its %d months, not its jobs", res.Output, len(months))
	}
	for i, m := range out.Months {
		failed := months[i] == "2024-05"
		if m.Period.Month != months[i] || (m.Error != "") != failed {
			t.Errorf("month %d = %s error %q", i, m.Period.Month, m.Error)
		}
		if failed && (m.Error != "Atlas.NotFound" || !strings.Contains(m.Cause, "org "+orgB+", 2024-05")) {
			t.Errorf("failed month: %s: %s", m.Error, m.Cause)
		}
	}
	slices.Sort(f.submits)
	if want := []string{orgB + "/2024-03", orgB + "/2024-04", orgB + "/2024-05", orgB + "/2024-06"}; !slices.Equal(f.submits, want) {
		t.Errorf("submitted %v, want each month once %v", f.submits, want)
	}
	if f.maxAtOnce > export.MonthsAtOnce {
		t.Errorf("up to %d calls for the org at once, want at most %d", f.maxAtOnce, export.MonthsAtOnce)
	}
	var d struct {
		States map[string]struct{ MaxConcurrency int }
	}
	if err := json.Unmarshal(orgDefinition(t), &d); err != nil || d.States[statemachine.StateExportMonths].MaxConcurrency != export.MonthsAtOnce {
		t.Errorf("%s MaxConcurrency = %d (%v), want export.MonthsAtOnce, as the in-process runner", statemachine.StateExportMonths, d.States[statemachine.StateExportMonths].MaxConcurrency, err)
	}
}

// Each case runs one job's workflow: it never fails the execution (its
// org's other months must run), it ends with the error it caught.
func TestJobWorkflowFailures(t *testing.T) {
	t.Parallel()
	named := func(name, cause string) error { return &sfntest.Error{Name: name, Cause: cause} }
	tests := []struct {
		name        string
		fake        *fake
		maxAttempts int
		wantErr     string
		wantCause   string         // substring
		wantCalls   map[string]int // exact, for the states listed
		wantRetry   int
	}{
		{
			name:        "the state machine bounds polling",
			fake:        &fake{},
			maxAttempts: 5,
			wantErr:     "Poll.AttemptsExhausted", wantCause: "org " + orgA + ", 2024-06: usage query still processing after 5 polls",
			wantCalls: map[string]int{"Submit": 1, "Poll": 5, "FetchInvoices": 0},
		},
		{
			name:        "a status the loop does not know ends it, naming the org and month",
			fake:        &fake{pollStatus: "DONE"},
			maxAttempts: 5,
			wantErr:     "Poll.UnexpectedStatus", wantCause: "org " + orgA + ", 2024-06: poll answered neither PROCESSING nor READY",
			wantCalls: map[string]int{"Submit": 1, "Poll": 1, "FetchInvoices": 0},
		},
		{
			name:        "the poll function's own exhaustion error comes through",
			fake:        &fake{pollRaises: true},
			maxAttempts: 3,
			wantErr:     "Poll.AttemptsExhausted", wantCause: "org " + orgA,
			wantCalls: map[string]int{"Poll": 3, "FetchInvoices": 0},
		},
		{
			name:        "READY on the last attempt still fetches",
			fake:        &fake{readyAfter: 3},
			maxAttempts: 3,
			wantCalls:   map[string]int{"Poll": 3, "FetchInvoices": 1},
		},
		{
			name: "rate limited submit is retried",
			fake: &fake{readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "Submit" && n <= 2 {
					return named("Atlas.RateLimited", "org "+orgA+": rate limited (429)")
				}
				return nil
			}},
			maxAttempts: 40,
			wantCalls:   map[string]int{"Submit": 3, "Poll": 1, "FetchInvoices": 1},
			wantRetry:   2,
		},
		{
			name: "Lambda service errors are retried",
			fake: &fake{readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "Poll" && n == 1 {
					return named("Lambda.TooManyRequestsException", "Rate Exceeded.")
				}
				return nil
			}},
			maxAttempts: 40,
			wantCalls:   map[string]int{"Poll": 2, "FetchInvoices": 1},
			wantRetry:   1,
		},
		{
			name: "retryable errors give up after MaxAttempts",
			fake: &fake{readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "FetchInvoices" {
					return named("Storage.Error", "org "+orgA+": put invoice: connection reset")
				}
				return nil
			}},
			maxAttempts: 40,
			wantErr:     "Storage.Error", wantCause: "org " + orgA + ": put invoice",
			wantCalls: map[string]int{"FetchInvoices": 5},
			wantRetry: 4,
		},
		{
			name: "other errors are not retried",
			fake: &fake{readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "Submit" {
					return named("Atlas.Unauthorized", "org "+orgA+": create usage query: unauthorized (401)")
				}
				return nil
			}},
			maxAttempts: 40,
			wantErr:     "Atlas.Unauthorized", wantCause: "org " + orgA,
			wantCalls: map[string]int{"Submit": 1, "Poll": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := sfntest.Run(t, jobDefinition(t), newJob(orgA, "2024-06", tt.maxAttempts), tt.fake.handle, sfntest.Options{})
			if !res.Succeeded() {
				t.Fatalf("the job's execution failed (%s: %s): it must end with the error as its outcome", res.Error, res.Cause)
			}
			var out jobOutcome
			if err := json.Unmarshal(res.Output, &out); err != nil {
				t.Fatal(err)
			}
			if out.Error != tt.wantErr || !strings.Contains(out.Cause, tt.wantCause) {
				t.Errorf("outcome error = %q (cause %q), want %q with %q", out.Error, out.Cause, tt.wantErr, tt.wantCause)
			}
			if out.OrgID != orgA || out.Period.Month != "2024-06" {
				t.Errorf("outcome %s does not name the job", res.Output)
			}
			for state, want := range tt.wantCalls {
				if got := res.Calls[state]; got != want {
					t.Errorf("%s called %d times, want %d", state, got, want)
				}
			}
			if res.Retried != tt.wantRetry {
				t.Errorf("%d retries, want %d", res.Retried, tt.wantRetry)
			}
		})
	}
}
