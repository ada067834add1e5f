package statemachine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// Step Functions' limits the design must stay well inside (half the history
// cap, a quarter of the payload cap).
const (
	maxPayload = 64 << 10
	maxHistory = 12500
	scaleOrgs  = 1000
	scaleMonth = 24
)

// AWS history events, as a Standard execution records them: per state
// entered, by type (a Lambda Task: TaskStateEntered, LambdaFunctionScheduled,
// LambdaFunctionStarted, LambdaFunctionSucceeded, TaskStateExited; a
// Distributed Map: MapStateEntered, MapStateStarted, MapRunStarted,
// MapRunSucceeded, MapStateExited, none per item: its children have their own
// histories), per retry (a failed invocation: Scheduled, Started, Failed),
// and per execution (ExecutionStarted, and its end).
var eventsPerState = map[string]int{"Task": 5, "Wait": 2, "Choice": 2, "Pass": 2, "Succeed": 2, "Fail": 1, "Map": 5}

const (
	eventsPerRetry     = 3
	eventsPerExecution = 2
)

// history counts the AWS history events of one execution of def from the
// states it entered and the retries it took (its own states only: a
// Distributed Map's children are executions of their own).
func history(t *testing.T, def []byte, entered map[string]int, retried int) int {
	t.Helper()
	var d struct {
		States map[string]struct{ Type string }
	}
	if err := json.Unmarshal(def, &d); err != nil {
		t.Fatal(err)
	}
	n := eventsPerExecution + retried*eventsPerRetry
	for name, st := range d.States {
		per, ok := eventsPerState[st.Type]
		if !ok {
			t.Fatalf("state %s: no event count for type %s", name, st.Type)
		}
		n += entered[name] * per
	}
	return n
}

// everyRetry makes each Task call meet every Retry its state has, in turn,
// to the last attempt of each (6 Lambda service errors, 4 rate limits, 4
// server errors), before the real handler answers: the most a call can
// cost and still succeed.
type everyRetry struct {
	names []string // the errors, in the order the retriers are exhausted

	mu      sync.Mutex
	failed  map[string]int // failures so far of the state's current call
	largest int            // the largest payload a Task state took or gave
	where   string
}

func newEveryRetry(t *testing.T, def []byte) *everyRetry {
	t.Helper()
	var d struct {
		States map[string]struct {
			Retry []struct {
				ErrorEquals []string
				MaxAttempts int
			}
		}
	}
	if err := json.Unmarshal(def, &d); err != nil {
		t.Fatal(err)
	}
	e := &everyRetry{failed: map[string]int{}}
	for _, r := range d.States[statemachine.StatePoll].Retry {
		for range r.MaxAttempts {
			e.names = append(e.names, r.ErrorEquals[0])
		}
	}
	return e
}

func (e *everyRetry) wrap(routes sfntest.Routes) sfntest.Routes {
	out := sfntest.Routes{}
	for state, fn := range routes {
		out[state] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			e.mu.Lock()
			n := e.failed[state]
			if n < len(e.names) {
				e.failed[state]++
			} else {
				e.failed[state] = 0
			}
			e.mu.Unlock()
			if n < len(e.names) {
				return nil, &sfntest.Error{Name: e.names[n], Cause: "injected: every retry taken"}
			}
			out, err := fn(ctx, in)
			e.mu.Lock()
			// The Task's input is the call its Parameters make of the state.
			for _, p := range []struct {
				what string
				b    []byte
			}{{state + " input", in}, {state + " output", out}} {
				if len(p.b) > e.largest {
					e.largest, e.where = len(p.b), p.what
				}
			}
			e.mu.Unlock()
			return out, err
		}
	}
	return out
}

// TestScaleLimits measures what an execution of 1,000 orgs x 24 months puts
// in its states and histories, in the runs it makes: the largest job (the
// month's and the pending invoice, FOCUS reports on, 40 usage polls and 40
// FOCUS polls, every Retry of every Task taken) in the job workflow with the
// real handlers; an org's child workflow; the real plan and summary of 1,000
// orgs x 24 months, the summary read from ResultWriter files of every job
// (all failed, with long causes and warnings: its largest form). It prints
// the largest state payload, the largest history of any one execution and
// the number of child executions, and fails when a bound is broken.
//
//	go test ./statemachine -run TestScaleLimits -v
func TestScaleLimits(t *testing.T) {
	w := e2e.New(t, e2e.Options{Sim: atlassim.Config{ReadyAfterPolls: 39, ReportReadyAfterPolls: 39, FirstMonth: "2022-01"}})
	def := e2e.Definition(t)
	org, err := statemachine.Org(def)
	if err != nil {
		t.Fatal(err)
	}
	job, err := statemachine.Job(def)
	if err != nil {
		t.Fatal(err)
	}
	var rows []scaleRow

	// The largest job.
	var plan export.Plan
	raw, err := w.H.Handler("fetch-invoice")(t.Context(), mustMarshal(t, map[string]any{"action": "plan",
		"request": map[string]any{"orgIds": w.Orgs[:1], "period": "2024-06", "includePending": true}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw.(json.RawMessage), &plan); err != nil || len(plan.Jobs) != 1 {
		t.Fatalf("plan: %v", err)
	}
	retries := newEveryRetry(t, job)
	res := sfntest.Run(t, job, plan.Jobs[0], retries.wrap(w.Routes()).Handle, sfntest.Options{Timeout: 10 * time.Minute})
	var out export.Outcome
	if !res.Succeeded() || json.Unmarshal(res.Output, &out) != nil || out.Failed() || len(out.Objects) < 6 {
		t.Fatalf("the largest job did not succeed: %s: %s: %.300s", res.Error, res.Cause, res.Output)
	}
	polls, focusPolls := res.Entered[statemachine.StatePoll], res.Entered[statemachine.StatePollFocus]
	taskCalls := 0
	for _, st := range []string{statemachine.StateSubmit, statemachine.StatePoll, statemachine.StateFetchInvoices, statemachine.StateSubmitFocus, statemachine.StatePollFocus} {
		taskCalls += res.Entered[st]
	}
	if polls != 40 || focusPolls != 40 || res.Retried != taskCalls*len(retries.names) {
		t.Errorf("the largest job polled %d and %d times with %d retries, want 40, 40 and %d", polls, focusPolls, res.Retried, taskCalls*len(retries.names))
	}
	rows = append(rows, scaleRow{
		execution: "job (one org-month)", count: scaleOrgs * scaleMonth,
		events: history(t, job, res.Entered, res.Retried), payload: max(retries.largest, len(res.Output)),
		note: fmt.Sprintf("%d usage + %d FOCUS polls, %d retries on %d Task calls; largest: %s", polls, focusPolls, res.Retried, taskCalls, retries.where),
	})

	// The plan of 1,000 orgs x 24 months, and an org's child.
	orgs := make([]string, scaleOrgs)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("%024x", 0xabc000+i)
	}
	orgs[0] = w.Orgs[0]
	raw, err = w.H.Handler("fetch-invoice")(t.Context(), mustMarshal(t, map[string]any{"action": "plan", "execution": "scale-limits",
		"request": map[string]any{"orgIds": orgs, "startDate": "2022-07-01", "endDate": "2024-07-01", "includePending": true}}))
	if err != nil {
		t.Fatal(err)
	}
	run := raw.(export.Run)
	if run.Orgs != scaleOrgs || run.Months != scaleMonth {
		t.Fatalf("plan of %d orgs x %d months", run.Orgs, run.Months)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(w.Object(t, run.Plan), &items); err != nil {
		t.Fatal(err)
	}
	largestItem := 0
	for _, it := range items {
		largestItem = max(largestItem, len(it))
	}
	rw := sfntest.ResultWriter{Bucket: w.Bucket, StateMachine: "atlas-billing-export-export", Put: func(key string, body []byte) error {
		_, err := w.S3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}}
	// The org's child runs (two months here: its own history does not grow
	// with them) and hands its results to the months' ResultWriter.
	var first export.PlanItem
	if err := json.Unmarshal(items[0], &first); err != nil {
		t.Fatal(err)
	}
	first.Jobs = first.Jobs[len(first.Jobs)-2:]
	orgRes := sfntest.Run(t, org, first, w.Routes().Handle, sfntest.Options{})
	if !orgRes.Succeeded() {
		t.Fatalf("org child failed: %s: %s", orgRes.Error, orgRes.Cause)
	}
	monthsRun, err := rw.Write(run.Results.Prefix, statemachine.StateExportMonths, nil)
	if err != nil {
		t.Fatal(err)
	}
	orgState := len(items[0]) + len(`,"months":`) + len(mustMarshal(t, monthsRun))
	rows = append(rows, scaleRow{
		execution: "org child", count: scaleOrgs,
		events:  history(t, org, map[string]int{statemachine.StateExportMonths: orgRes.Entered[statemachine.StateExportMonths], "OrgDone": orgRes.Entered["OrgDone"]}, 0),
		payload: orgState, note: fmt.Sprintf("its input: the org's %d jobs, %d bytes; plus its months' Map Run", scaleMonth, len(items[0])),
	})

	// Every job's result in ResultWriter files, in their largest form.
	summary := summarizeAll(t, w, rw, run, items)
	mapState := len(mustMarshal(t, run)) + len(mustMarshal(t, summary.mapRun))
	parentRetries := 2 * len(retries.names) // Plan and Summarize, every retry taken
	rows = append(rows, scaleRow{
		execution: "the execution", count: 1,
		events:  history(t, def, map[string]int{statemachine.StatePlan: 1, statemachine.StateExportOrgs: 1, statemachine.StateSummarize: 1, "AnyJobFailed": 1, "JobsFailed": 1}, parentRetries),
		payload: max(mapState, len(summary.output)), note: fmt.Sprintf("plan: %s; summary of %d failed jobs: %d bytes", formatBytes(len(w.Object(t, run.Plan))), summary.sum.Failed, len(summary.output)),
	})

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "execution\thow many\tlargest history\tlargest state payload\tmeasured")
	largestEvents, largestPayload, children := 0, 0, 0
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d events\t%d bytes\t%s\n", r.execution, r.count, r.events, r.payload, r.note)
		largestEvents, largestPayload = max(largestEvents, r.events), max(largestPayload, r.payload)
		if r.execution != "the execution" {
			children += r.count
		}
	}
	tw.Flush()
	t.Logf("scale limits of one execution of %d orgs x %d months (%d jobs)\n%s\nlargest state payload: %d bytes (limit %d)\nlargest history of one execution: %d events (limit %d)\nchild executions: %d (%d orgs + %d org-months)",
		scaleOrgs, scaleMonth, scaleOrgs*scaleMonth, b.String(), largestPayload, maxPayload, largestEvents, maxHistory, children, scaleOrgs, scaleOrgs*scaleMonth)
	if largestPayload >= maxPayload {
		t.Errorf("a state payload of %d bytes: over %d", largestPayload, maxPayload)
	}
	if largestEvents >= maxHistory {
		t.Errorf("a history of %d events: over %d", largestEvents, maxHistory)
	}
	if children != scaleOrgs+scaleOrgs*scaleMonth {
		t.Errorf("%d child executions, want one per org and one per org-month", children)
	}
}

type scaleRow struct {
	execution string
	count     int // executions of this kind in the run
	events    int
	payload   int
	note      string
}

type summarized struct {
	mapRun sfntest.MapRun
	output []byte
	sum    export.Summary
}

// summarizeAll writes every job's result as the Maps' ResultWriters would
// (each job failed, with a long cause and two warnings: the summary's
// largest form) and runs the real Summarize on them.
func summarizeAll(t *testing.T, w *e2e.World, rw sfntest.ResultWriter, run export.Run, items []json.RawMessage) summarized {
	t.Helper()
	children := make([]sfntest.Child, len(items))
	errs := make([]error, len(items))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	long := strings.Repeat("the Atlas answer could not be read ", 40)
	for i, raw := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var it export.PlanItem
			if errs[i] = json.Unmarshal(raw, &it); errs[i] != nil {
				return
			}
			months := make([]sfntest.Child, len(it.Jobs))
			for m, j := range it.Jobs {
				o := export.Outcome{OrgID: j.OrgID, Period: j.Period, Objects: []sink.Object{}, Error: export.AtlasServerError, Cause: "org " + j.OrgID + ", " + j.Period.Label() + ": " + long}
				for range 2 {
					o.Warnings = append(o.Warnings, export.Warning{Name: "Normalize.Layout", Message: long, OrgID: j.OrgID, Period: j.Period.Label(), InvoiceID: "65ab0c1d2e3f4a5b6c7d8e9f"})
				}
				in, _ := json.Marshal(j)
				outJSON, _ := json.Marshal(o)
				months[m] = sfntest.Child{Input: in, Output: outJSON}
			}
			mr, err := rw.Write(it.Results.Prefix, statemachine.StateExportMonths, months)
			if err != nil {
				errs[i] = err
				return
			}
			outJSON, _ := json.Marshal(map[string]any{"orgId": it.OrgID, "months": mr})
			children[i] = sfntest.Child{Input: raw, Output: outJSON}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	mr, err := rw.Write(run.Results.Prefix, statemachine.StateExportOrgs, children)
	if err != nil {
		t.Fatal(err)
	}
	run.MapRun = mustMarshal(t, mr)
	v, err := w.H.Handler("fetch-invoice")(t.Context(), mustMarshal(t, map[string]any{"action": "summarize", "run": run}))
	if err != nil {
		t.Fatal(err)
	}
	out := mustMarshal(t, v)
	s := summarized{mapRun: mr, output: out, sum: v.(export.Summary)}
	if s.sum.Jobs != scaleOrgs*scaleMonth || s.sum.Failed != s.sum.Jobs {
		t.Fatalf("summary of %d jobs, %d failed", s.sum.Jobs, s.sum.Failed)
	}
	return s
}

func formatBytes(n int) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
