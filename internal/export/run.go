package export

import (
	"context"
	"errors"
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

// Runner runs a whole export in one process with the state machine's
// protocol: plan, then for each job submit, wait the returned seconds, poll
// until ready, fetch the invoices.
type Runner struct {
	Exporter    *Exporter
	Concurrency int // jobs at once, like the state machine's Map (default 2)
	// Sleep waits between polls; tests shorten it.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Run exports what req asks for and returns one Result per job, in plan order.
func (r *Runner) Run(ctx context.Context, req Request) ([]Result, error) {
	plan, err := r.Exporter.Plan(ctx, req)
	if err != nil {
		return nil, err
	}
	r.report(Event{Step: "plan", Jobs: len(plan.Jobs)})
	results := make([]Result, len(plan.Jobs))
	errs := make([]error, len(plan.Jobs))
	sem := make(chan struct{}, max(r.Concurrency, 1))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, job := range plan.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			results[i], errs[i] = r.job(ctx, job)
			if errs[i] != nil {
				cancel() // like the state machine: one failed job fails the run
			}
		}()
	}
	wg.Wait()
	// The cause, not the cancellations it set off in the other jobs.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	return results, first
}

func (r *Runner) job(ctx context.Context, j Job) (Result, error) {
	ev := func(step string) Event { return Event{OrgID: j.OrgID, Period: j.Period, Step: step} }
	r.report(ev("submit"))
	j, err := r.Exporter.Submit(ctx, j)
	if err != nil {
		return Result{}, err
	}
	j, err = untilReady(ctx, r, ev, "poll", j,
		func(j Job) (string, int, int) { return j.Status, j.WaitSeconds, j.Attempt }, r.Exporter.Poll)
	if err != nil {
		return Result{}, err
	}
	r.report(ev("fetch-invoice"))
	res, err := r.Exporter.FetchInvoices(ctx, j)
	if err != nil {
		return Result{}, err
	}
	if res.wantsFocus() {
		// The FOCUS reports are requested and polled like the usage query.
		r.report(ev("focus-submit"))
		if res, err = r.Exporter.SubmitFocus(ctx, res); err != nil {
			return Result{}, err
		}
		res, err = untilReady(ctx, r, ev, "focus-poll", res,
			func(r Result) (string, int, int) { return r.Status, r.WaitSeconds, r.Attempt }, r.Exporter.PollFocus)
		if err != nil {
			return Result{}, err
		}
	}
	r.report(ev("done"))
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
		r.report(e)
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
		r.report(e)
	}
}

func (r *Runner) report(e Event) {
	r.Exporter.report(e)
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
