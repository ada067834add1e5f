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

type summary struct {
	Jobs    int `json:"jobs"`
	Results []struct {
		OrgID    string    `json:"orgId"`
		Period   period    `json:"period"`
		Objects  []object  `json:"objects"`
		Warnings []warning `json:"warnings"`
		Error    *string   `json:"error"`
	} `json:"results"`
}

type warning struct {
	Name      string `json:"name"`
	Message   string `json:"message"`
	OrgID     string `json:"orgId"`
	Period    string `json:"period"`
	Step      string `json:"step"`
	InvoiceID string `json:"invoiceId"`
}

var orgIDPattern = regexp.MustCompile(`^[a-f0-9]{24}$`)

// fake implements the three functions' contracts in memory.
type fake struct {
	orgs        []string
	maxAttempts int
	readyAfter  int    // polls until READY; 0 = never
	pollRaises  bool   // Poll raises Poll.AttemptsExhausted itself, as the real one does
	pollStatus  string // if set, what every poll answers
	// fail injects an error into the n-th call (1-based) of a state.
	fail func(state string, n int, j job) error

	mu      sync.Mutex
	calls   map[string]int
	written []string // keys FetchInvoices reported, usage included
	plan    json.RawMessage
}

func (f *fake) handle(ctx context.Context, state string, input json.RawMessage) (json.RawMessage, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[state]++
	n := f.calls[state]
	f.mu.Unlock()

	if state == statemachine.StatePlan {
		return f.doPlan(input)
	}
	// Every Task names its action and passes the job (statemachine's Parameters).
	var c struct {
		Action string `json:"action"`
		Job    job    `json:"job"`
	}
	if err := json.Unmarshal(input, &c); err != nil {
		return nil, &sfntest.Error{Name: "Input.Invalid", Cause: fmt.Sprintf("%s: decode call: %v", state, err)}
	}
	if want := taskActions[state]; c.Action != want {
		return nil, &sfntest.Error{Name: "Input.Invalid", Cause: fmt.Sprintf("%s: action %q, want %q", state, c.Action, want)}
	}
	j := c.Job
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
		return json.Marshal(map[string]any{"orgId": j.OrgID, "period": j.Period, "invoices": 2, "objects": objs, "warnings": []any{}})
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

func (f *fake) doPlan(input json.RawMessage) (json.RawMessage, error) {
	var in struct {
		Action  string          `json:"action"`
		Request json.RawMessage `json:"request"`
	}
	if err := json.Unmarshal(input, &in); err != nil || in.Action != "plan" {
		return nil, &sfntest.Error{Name: "Input.Invalid", Cause: fmt.Sprintf("plan: unexpected input %s", input)}
	}
	f.mu.Lock()
	f.plan = in.Request
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(statemachine.StatePlan, 1, job{}); err != nil {
			return nil, err
		}
	}
	jobs := []job{}
	for _, org := range f.orgs {
		jobs = append(jobs, job{
			OrgID:       org,
			Period:      period{Start: "2024-06-01", End: "2024-07-01", Month: "2024-06"},
			Filters:     json.RawMessage(`{}`),
			MaxAttempts: f.maxAttempts,
		})
	}
	return json.Marshal(map[string]any{"jobs": jobs})
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

func TestWorkflowExportsEveryObject(t *testing.T) {
	t.Parallel()
	f := &fake{orgs: []string{orgA, orgB}, maxAttempts: 40, readyAfter: 4} // PROCESSING 3 times, then READY
	input := map[string]any{"period": "2024-06", "includePending": true}
	res := sfntest.Run(t, definition(t), input, f.handle, sfntest.Options{})
	if !res.Succeeded() {
		t.Fatalf("execution failed: %s: %s", res.Error, res.Cause)
	}

	if string(f.plan) != `{"includePending":true,"period":"2024-06"}` {
		t.Errorf("plan got request %s, want the execution input", f.plan)
	}
	wantCalls := map[string]int{"Plan": 1, "Submit": 2, "Poll": 8, "FetchInvoices": 2}
	for state, want := range wantCalls {
		if got := res.Calls[state]; got != want {
			t.Errorf("%s called %d times, want %d", state, got, want)
		}
	}
	// A bound: local-sfn forwards a nested Map's events asynchronously and
	// may drop the last few; the handler counts above are exact.
	if got := res.Entered[statemachine.StateWait]; got == 0 || got > 8 {
		t.Errorf("WaitForUsage entered %d times, want 1 to 8 (one before each poll)", got)
	}

	var sum summary
	if err := json.Unmarshal(res.Output, &sum); err != nil {
		t.Fatalf("decode output %s: %v", res.Output, err)
	}
	if sum.Jobs != 2 || len(sum.Results) != 2 {
		t.Fatalf("summary has %d jobs / %d results, want 2: %s", sum.Jobs, len(sum.Results), res.Output)
	}
	var listed []string
	for i, r := range sum.Results {
		if r.Error != nil {
			t.Errorf("result %d has error %q", i, *r.Error)
		}
		if r.OrgID != f.orgs[i] || r.Period.Month != "2024-06" {
			t.Errorf("result %d is %s %s, want %s 2024-06 (Map keeps job order)", i, r.OrgID, r.Period.Month, f.orgs[i])
		}
		for _, o := range r.Objects {
			if o.Bucket != "billing" || len(o.SHA256) != 64 {
				t.Errorf("object %+v lost fields on the way", o)
			}
			listed = append(listed, o.Key)
		}
	}
	slices.Sort(listed)
	slices.Sort(f.written)
	if !slices.Equal(listed, f.written) || len(listed) != 6 {
		t.Errorf("summary lists\n%s\nwant every object written\n%s", strings.Join(listed, "\n"), strings.Join(f.written, "\n"))
	}
	if strings.Contains(string(res.Output), `"invoices"`) {
		t.Errorf("summary carries fields beyond orgId/period/objects/warnings: %s", res.Output)
	}
}

func TestWorkflowFailures(t *testing.T) {
	t.Parallel()
	named := func(name, cause string) error { return &sfntest.Error{Name: name, Cause: cause} }
	tests := []struct {
		name      string
		fake      *fake
		wantErr   string
		wantCause string         // substring
		wantCalls map[string]int // exact, for the states listed
		wantRetry int
	}{
		{
			name: "a job's error fails the execution after the other jobs finish",
			fake: &fake{orgs: []string{orgA, orgB}, maxAttempts: 40, readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "FetchInvoices" && j.OrgID == orgB {
					return named("Atlas.NotFound", "org "+orgB+": invoice 65ab12cd34ef56ab78cd90ef not found (RESOURCE_NOT_FOUND)")
				}
				return nil
			}},
			wantErr: "Atlas.NotFound", wantCause: "org " + orgB + ": invoice",
			wantCalls: map[string]int{"Submit": 2, "Poll": 2, "FetchInvoices": 2},
		},
		{
			name:    "the state machine bounds polling",
			fake:    &fake{orgs: []string{orgA}, maxAttempts: 5},
			wantErr: "Poll.AttemptsExhausted", wantCause: "org " + orgA + ", 2024-06: usage query still processing after 5 polls",
			wantCalls: map[string]int{"Submit": 1, "Poll": 5, "FetchInvoices": 0},
		},
		{
			name:    "a status the loop does not know ends it, naming the org and month",
			fake:    &fake{orgs: []string{orgA}, maxAttempts: 5, pollStatus: "DONE"},
			wantErr: "Poll.UnexpectedStatus", wantCause: "org " + orgA + ", 2024-06: poll answered neither PROCESSING nor READY",
			wantCalls: map[string]int{"Submit": 1, "Poll": 1, "FetchInvoices": 0},
		},
		{
			name:    "the poll function's own exhaustion error comes through",
			fake:    &fake{orgs: []string{orgA}, maxAttempts: 3, pollRaises: true},
			wantErr: "Poll.AttemptsExhausted", wantCause: "org " + orgA,
			wantCalls: map[string]int{"Poll": 3, "FetchInvoices": 0},
		},
		{
			name:      "READY on the last attempt still fetches",
			fake:      &fake{orgs: []string{orgA}, maxAttempts: 3, readyAfter: 3},
			wantCalls: map[string]int{"Poll": 3, "FetchInvoices": 1},
		},
		{
			name: "rate limited submit is retried",
			fake: &fake{orgs: []string{orgA}, maxAttempts: 40, readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "Submit" && n <= 2 {
					return named("Atlas.RateLimited", "org "+orgA+": rate limited (429)")
				}
				return nil
			}},
			wantCalls: map[string]int{"Submit": 3, "Poll": 1, "FetchInvoices": 1},
			wantRetry: 2,
		},
		{
			name: "Lambda service errors are retried",
			fake: &fake{orgs: []string{orgA}, maxAttempts: 40, readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "Poll" && n == 1 {
					return named("Lambda.TooManyRequestsException", "Rate Exceeded.")
				}
				return nil
			}},
			wantCalls: map[string]int{"Poll": 2, "FetchInvoices": 1},
			wantRetry: 1,
		},
		{
			name: "retryable errors give up after MaxAttempts",
			fake: &fake{orgs: []string{orgA}, maxAttempts: 40, readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "FetchInvoices" {
					return named("Storage.Error", "org "+orgA+": put invoice: connection reset")
				}
				return nil
			}},
			wantErr: "Storage.Error", wantCause: "org " + orgA + ": put invoice",
			wantCalls: map[string]int{"FetchInvoices": 5},
			wantRetry: 4,
		},
		{
			name: "other errors are not retried",
			fake: &fake{orgs: []string{orgA}, maxAttempts: 40, readyAfter: 1, fail: func(state string, n int, j job) error {
				if state == "Submit" {
					return named("Atlas.Unauthorized", "org "+orgA+": create usage query: unauthorized (401)")
				}
				return nil
			}},
			wantErr: "Atlas.Unauthorized", wantCause: "org " + orgA,
			wantCalls: map[string]int{"Submit": 1, "Poll": 0},
		},
		{
			name: "a plan error ends the execution before any job",
			fake: &fake{orgs: []string{orgA}, maxAttempts: 40, fail: func(state string, n int, j job) error {
				if state == "Plan" {
					return named("Input.Invalid", `period "2024-13" is not a month`)
				}
				return nil
			}},
			wantErr: "Input.Invalid", wantCause: "2024-13",
			wantCalls: map[string]int{"Plan": 1, "Submit": 0},
		},
		{
			name:      "no jobs is a success",
			fake:      &fake{orgs: nil},
			wantCalls: map[string]int{"Plan": 1, "Submit": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.fake
			res := sfntest.Run(t, definition(t), map[string]any{}, f.handle, sfntest.Options{})
			if res.Error != tt.wantErr {
				t.Errorf("error = %q (cause %q), want %q", res.Error, res.Cause, tt.wantErr)
			}
			if !strings.Contains(res.Cause, tt.wantCause) {
				t.Errorf("cause = %q, want it to contain %q", res.Cause, tt.wantCause)
			}
			for state, want := range tt.wantCalls {
				if got := res.Calls[state]; got != want {
					t.Errorf("%s called %d times, want %d", state, got, want)
				}
			}
			if res.Retried != tt.wantRetry {
				t.Errorf("%d retries, want %d", res.Retried, tt.wantRetry)
			}
			if tt.wantErr == "" {
				var sum summary
				if err := json.Unmarshal(res.Output, &sum); err != nil || sum.Jobs != len(f.orgs) {
					t.Errorf("output %s: want %d jobs (%v)", res.Output, len(f.orgs), err)
				}
			}
		})
	}
}
