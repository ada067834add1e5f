//go:build bench

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlasclient"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// queryTimes are the simulated Cost Explorer query durations.
var queryTimes = []time.Duration{5 * time.Second, 30 * time.Second, 120 * time.Second, 600 * time.Second}

// fixedPoll is the naive policy the backoff is compared with.
const fixedPoll = 10 * time.Second

// pollRow is one execution of the state machine for one org.
type pollRow struct {
	Query         time.Duration
	Policy        string // "backoff" (the real one) or "fixed 10s"
	Focus         bool   // FOCUS reports asked for (the configured default) or not
	Polls         int    // usage polls
	AtlasRequests int    // billing operations; OAuth token requests are not counted
	Transitions   int    // StateEntered events, the unit Standard workflows bill
	Waits         int    // WaitForUsage states entered: where the waiting happened
	FirstCheck    time.Duration
	WaitedFor     time.Duration // simulated time the query was waited on
	LongestPoll   time.Duration // the longest usage Poll handler call (real time)
	Calls         []taskCall    // every Task state's handler call, in order
	// S3 requests the functions made, by price class: PUT, COPY, POST and
	// LIST; GET and HEAD; DELETE (free).
	S3Writes, S3Reads, S3Deletes int
	Output                       json.RawMessage // the job's outcome
}

// taskCall is one handler call, as one Lambda invocation.
type taskCall struct {
	Function string // folder under functions/
	Duration time.Duration
}

// pollEnv is what the poll economy runs share: a simulator whose queries and
// FOCUS reports are ready at once (the simulated clock below decides when a
// usage query is), and the real handlers' dependencies.
type pollEnv struct {
	w    *world
	sim  *atlassim.Server
	base string
	def  []byte
}

func newPollEnv(t *testing.T, w *world) *pollEnv {
	t.Helper()
	sim, base := atlassimtest.Start(t, atlassim.Config{ProcessingTime: -1, ReportProcessingTime: -1, Now: fixedNow, Logger: discard})
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err == nil {
		def, err = statemachine.Job(def)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &pollEnv{w: w, sim: sim, base: base, def: def}
}

// billingOps are the Atlas operations an export calls (the token endpoint is not one).
var billingOps = []string{
	atlassim.OpCreateUsage, atlassim.OpGetUsage, atlassim.OpListInvoices, atlassim.OpGetInvoice, atlassim.OpGetInvoiceCSV,
	atlassim.OpPendingInvoice, atlassim.OpCreateInvoiceReport, atlassim.OpGetInvoiceReport, atlassim.OpListInvoiceReports, atlassim.OpDownloadReport,
}

func (p *pollEnv) atlasRequests() int {
	n := 0
	for _, op := range billingOps {
		n += p.sim.Requests(op)
	}
	return n
}

// run executes the job workflow of the real state machine definition (one
// org-month: statemachine.Job) in aws-local-stepfunctions with the real
// handlers (each Task state calls the function statemachine.Functions
// names) for one org and one month. Time is
// simulated: each usage Poll advances the query's clock by the wait the Wait
// state just took (the waitSeconds it was given), and the query is ready
// once that clock reaches q. With fixed > 0, the usage query's waitSeconds
// are replaced by it: the naive policy. focus asks for FOCUS reports.
func (p *pollEnv) run(t *testing.T, q, fixed time.Duration, focus bool) pollRow {
	t.Helper()
	p.w.clear(t, "atlas-billing/") // a rerun must write everything again, not skip it
	lay, err := layout.New("atlas-billing")
	if err != nil {
		t.Fatal(err)
	}
	client := atlasclient.New(atlasclient.Static(secret.Credentials{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret}),
		atlasclient.Options{BaseURL: p.base})
	clock := &clockedAtlas{Atlas: client, query: q, waited: map[string]time.Duration{}}
	s3c := &s3Counter{hc: p.w.s3.HTTPClient()}
	counted := testenv.NewS3Client(p.w.s3.Endpoint, p.w.s3.AccessKey, p.w.s3.SecretKey, func(o *s3.Options) {
		o.HTTPClient = s3c
	})
	exp := &export.Exporter{
		Atlas:       clock,
		Store:       sink.NewS3(counted, p.w.bucket, sink.S3Options{Logger: discard}),
		Layout:      lay,
		Normalizer:  normalize.Parquet{},
		MaxAttempts: 200, // the fixed policy needs 60 polls for 600 s
		Focus:       focus,
		Log:         discard,
	}

	row := pollRow{Query: q, Policy: "backoff", Focus: focus, FirstCheck: -1}
	if fixed > 0 {
		row.Policy = fmt.Sprintf("fixed %v", fixed)
	}
	var mu sync.Mutex
	// setWait makes the naive policy: every wait for the usage query is the fixed one.
	setWait := func(out json.RawMessage) json.RawMessage {
		var m map[string]any
		if fixed <= 0 || json.Unmarshal(out, &m) != nil || m["status"] == export.StatusReady {
			return out
		}
		m["waitSeconds"] = int(fixed / time.Second)
		b, err := json.Marshal(m)
		if err != nil {
			return out
		}
		return b
	}
	routes := sfntest.Routes{}
	handlers := &function.Handlers{Exporter: exp}
	for state, fn := range statemachine.Functions {
		h := handlers.Handler(fn)
		routes[state] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var j export.Job
			if state == statemachine.StatePoll {
				var call struct{ Job export.Job }
				if err := json.Unmarshal(in, &call); err != nil {
					return nil, err
				}
				clock.advance(call.Job.Token, time.Duration(call.Job.WaitSeconds)*time.Second)
			}
			start := time.Now()
			v, err := h(ctx, in)
			took := time.Since(start)
			mu.Lock()
			row.Calls = append(row.Calls, taskCall{Function: fn, Duration: took})
			if state == statemachine.StatePoll {
				row.LongestPoll = max(row.LongestPoll, took)
			}
			mu.Unlock()
			if err != nil {
				return nil, err
			}
			out, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			switch state {
			case statemachine.StateSubmit:
				out = setWait(out)
				if json.Unmarshal(out, &j) == nil {
					mu.Lock()
					row.FirstCheck = time.Duration(j.WaitSeconds) * time.Second
					mu.Unlock()
				}
			case statemachine.StatePoll:
				out = setWait(out)
			}
			return out, nil
		}
	}

	before := p.atlasRequests()
	org := atlassim.DefaultOrgs[0].ID
	plan, err := exp.Plan(t.Context(), export.Request{OrgIDs: []string{org}, Period: "2024-06", Focus: &focus})
	if err != nil || len(plan.Jobs) != 1 {
		t.Fatalf("plan: %v (%d jobs)", err, len(plan.Jobs))
	}
	res := sfntest.Run(t, p.def, plan.Jobs[0], routes.Handle, sfntest.Options{Timeout: 5 * time.Minute})
	if !res.Succeeded() {
		t.Fatalf("execution failed: %s: %s", res.Error, res.Cause)
	}
	var out export.Outcome
	if err := json.Unmarshal(res.Output, &out); err != nil || out.Failed() || len(out.Objects) < 2 {
		t.Fatalf("job output %s: want the usage and an invoice (%v)", res.Output, err)
	}
	row.S3Writes, row.S3Reads, row.S3Deletes = s3c.counts()
	row.Output = res.Output
	row.Polls = res.Calls[statemachine.StatePoll]
	row.AtlasRequests = p.atlasRequests() - before + clock.processing
	row.Transitions = res.Transitions
	row.Waits = res.Entered[statemachine.StateWait]
	row.WaitedFor = clock.waitedFor()
	if row.WaitedFor < q {
		t.Fatalf("the query was ready after %v of simulated time, before its %v", row.WaitedFor, q)
	}
	return row
}

// clockedAtlas answers "still processing" in the simulator's place until the
// query's simulated clock reaches query, then asks the simulator (whose
// queries are ready at once). Each such answer stands for one Atlas request.
type clockedAtlas struct {
	export.Atlas
	query time.Duration

	mu         sync.Mutex
	waited     map[string]time.Duration // token -> simulated time waited
	processing int                      // 102 answers given in the simulator's place
}

func (c *clockedAtlas) advance(token string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waited[token] += d
}

func (c *clockedAtlas) waitedFor() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var longest time.Duration
	for _, d := range c.waited {
		longest = max(longest, d)
	}
	return longest
}

func (c *clockedAtlas) GetUsage(ctx context.Context, orgID, token string, f atlas.Format) (*atlas.Usage, error) {
	c.mu.Lock()
	ready := c.waited[token] >= c.query
	if !ready {
		c.processing++
	}
	c.mu.Unlock()
	if !ready {
		return &atlas.Usage{Processing: true}, nil
	}
	return c.Atlas.GetUsage(ctx, orgID, token, f)
}

// s3Counter counts the S3 requests of a client by price class.
type s3Counter struct {
	hc                     *http.Client // to the gateway
	mu                     sync.Mutex
	writes, reads, deletes int
}

func (c *s3Counter) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		c.reads++
	case http.MethodDelete:
		c.deletes++
	default:
		c.writes++
	}
	c.mu.Unlock()
	return c.hc.Do(r)
}

func (c *s3Counter) counts() (writes, reads, deletes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes, c.reads, c.deletes
}
