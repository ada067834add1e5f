package export

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Event reports progress on long work to whoever runs the export.
type Event struct {
	OrgID   string
	Period  period.Period
	Step    string        // plan, submit, wait, poll, object, fetch-invoice, stream, warning, done
	Status  string        // poll: PROCESSING or READY
	Attempt int           // poll attempt
	Wait    time.Duration // the wait before the next poll
	Key     string        // the object being written
	Bytes   int64         // bytes streamed so far into Key
	Object  *sink.Object  // an object written
	Warning *Warning      // a warning given
	Jobs    int           // plan: the number of jobs
}

// MonthsAtOnce is how many of one org's months are exported at once, started
// in order (the state machine's ExportMonths MaxConcurrency). A month makes
// one Atlas request at a time, so the org's rate-limit bucket sees at most
// this many; two keep a backfill of one org moving while one month waits.
const MonthsAtOnce = 2

// Runner runs a whole export in one process, the way the state machine
// does: plan, then orgs in parallel (Concurrency at once), each org's months
// MonthsAtOnce at a time, each month submit, wait the returned seconds, poll
// until ready, fetch the invoices and their FOCUS reports. A failed job
// does not stop the others.
type Runner struct {
	Exporter    *Exporter
	Concurrency int // orgs at once, like the state machine's Distributed Map (default 1)
	// Sleep waits between polls; tests shorten it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Run exports what req asks for and returns every job's outcome, in plan
// order. The error is the plan's (nothing ran), or a *Failed when a job
// failed: the others ran to their end.
func (r *Runner) Run(ctx context.Context, req Request) ([]Outcome, error) {
	plan, err := r.Exporter.Plan(ctx, req)
	if err != nil {
		return nil, err
	}
	r.Exporter.report(Event{Step: "plan", Jobs: len(plan.Jobs)})
	outcomes := make([]Outcome, 0, len(plan.Jobs))
	orgs := plan.Items()
	results := make([][]Outcome, len(orgs))
	sem := make(chan struct{}, max(r.Concurrency, 1))
	var wg sync.WaitGroup
	for i, jobs := range orgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
			}
			results[i] = r.org(ctx, jobs)
		}()
	}
	wg.Wait()
	for _, rs := range results {
		outcomes = append(outcomes, rs...)
	}
	if sum := SummaryOf(outcomes); sum.Failed > 0 {
		return outcomes, &Failed{Summary: sum}
	}
	return outcomes, nil
}

// org exports one org's months, MonthsAtOnce at a time, started in order.
func (r *Runner) org(ctx context.Context, jobs []Job) []Outcome {
	out := make([]Outcome, len(jobs))
	months := make(chan struct{}, MonthsAtOnce)
	var wg sync.WaitGroup
	for m, j := range jobs {
		months <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-months }()
			if ctx.Err() != nil {
				out[m] = failed(j, fmt.Errorf("org %s, %s: not started: %w", j.OrgID, j.Period, ctx.Err()))
				return
			}
			res, err := r.job(ctx, j)
			if err != nil {
				out[m] = failed(j, err)
				return
			}
			out[m] = res.Outcome()
		}()
	}
	wg.Wait()
	return out
}

// SummaryOf sums up outcomes given in plan order.
func SummaryOf(outcomes []Outcome) Summary {
	var t Tally
	for i, o := range outcomes {
		t.Add(i, o)
	}
	return t.Summary("")
}

// Failed is the error of a run in which jobs failed: its message is the
// summary's cause.
type Failed struct{ Summary Summary }

func (f *Failed) Error() string { return f.Summary.Cause }

func (r *Runner) job(ctx context.Context, j Job) (Result, error) {
	ev := func(step string) Event { return Event{OrgID: j.OrgID, Period: j.Period, Step: step} }
	r.Exporter.report(ev("submit"))
	j, err := r.Exporter.Submit(ctx, j)
	if err != nil {
		return Result{}, err
	}
	j, err = untilReady(ctx, r, ev, "poll", j,
		func(j Job) (string, int, int) { return j.Status, j.WaitSeconds, j.Attempt }, r.Exporter.Poll)
	if err != nil {
		return Result{}, err
	}
	r.Exporter.report(ev("fetch-invoice"))
	res, err := r.Exporter.FetchInvoices(ctx, j)
	if err != nil {
		return Result{}, err
	}
	if res.wantsFocus() {
		// The FOCUS reports are requested and polled like the usage query.
		r.Exporter.report(ev("focus-submit"))
		if res, err = r.Exporter.SubmitFocus(ctx, res); err != nil {
			return Result{}, err
		}
		res, err = untilReady(ctx, r, ev, "focus-poll", res,
			func(r Result) (string, int, int) { return r.Status, r.WaitSeconds, r.Attempt }, r.Exporter.PollFocus)
		if err != nil {
			return Result{}, err
		}
	}
	r.Exporter.report(ev("done"))
	return res, nil
}

// untilReady waits the seconds the last answer asked for and polls, until
// the answer is READY: the state machine's Wait/Poll loop, in this process.
func untilReady[T any](ctx context.Context, r *Runner, ev func(string) Event, step string, v T,
	state func(T) (status string, waitSeconds, attempt int), poll func(context.Context, T) (T, error)) (T, error) {
	for {
		status, waitSeconds, attempt := state(v)
		if status == StatusReady {
			return v, nil
		}
		wait := time.Duration(waitSeconds) * time.Second
		e := ev("wait")
		e.Attempt, e.Wait = attempt, wait
		r.Exporter.report(e)
		if err := r.sleep(ctx, wait); err != nil {
			return v, fmt.Errorf("org %s, %s: waiting to %s: %w", e.OrgID, e.Period, step, err)
		}
		var err error
		if v, err = poll(ctx, v); err != nil {
			return v, err
		}
		status, _, attempt = state(v)
		e = ev(step)
		e.Attempt, e.Status = attempt, status
		r.Exporter.report(e)
	}
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Sleep waits d, or until ctx is done: the Runner's wait between polls.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
