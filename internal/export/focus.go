package export

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Report is the FOCUS report of one invoice as the state machine carries it.
// Its download URL never travels: it is a credential until it expires, so
// the poll that sees the report ready downloads it at once.
type Report struct {
	InvoiceID string `json:"invoiceId"`
	Month     string `json:"month"` // YYYY-MM the invoice bills
	ReportID  string `json:"reportId,omitempty"`
	State     string `json:"state,omitempty"` // Atlas's state, or STORED once in S3
	Renewals  int    `json:"renewals,omitempty"`
}

// States of our own beside Atlas's: a report whose CSV is in the store, and
// one Atlas will not give (a Focus.Unavailable warning says why).
const (
	StateStored      = "STORED"
	StateUnavailable = "UNAVAILABLE"
)

// maxRenewals bounds how often a report is requested again after its
// download URL expired before it could be fetched.
const maxRenewals = 3

func (r *Result) validate() error {
	if err := atlas.ValidateOrgID(r.OrgID); err != nil {
		return &Error{Name: InputInvalid, Msg: "result", Err: err}
	}
	if r.Period.Start.IsZero() {
		return invalid("org %s: period is required", r.OrgID)
	}
	for _, rep := range r.Reports {
		if err := atlas.ValidateInvoiceID(rep.InvoiceID); err != nil {
			return &Error{Name: InputInvalid, Msg: fmt.Sprintf("org %s: invalid invoiceId", r.OrgID), Err: err}
		}
		if _, err := period.Parse(rep.Month, time.Time{}); err != nil || len(rep.Month) != 7 {
			return invalid("org %s, invoice %s: month %q is not YYYY-MM", r.OrgID, rep.InvoiceID, truncate(rep.Month, shown))
		}
		if rep.ReportID != "" {
			if err := atlas.ValidateReportID(rep.ReportID); err != nil {
				return &Error{Name: InputInvalid, Msg: fmt.Sprintf("org %s: invalid reportId", r.OrgID), Err: err}
			}
		}
	}
	if r.Attempt < 0 || r.MaxAttempts < 0 || r.WaitSeconds < 0 {
		return invalid("org %s: attempt, maxAttempts and waitSeconds cannot be negative", r.OrgID)
	}
	return nil
}

// SubmitFocus asks Atlas for the FOCUS report of each invoice FetchInvoices
// listed, and says how long to wait before polling them.
func (e *Exporter) SubmitFocus(ctx context.Context, r Result) (Result, error) {
	if err := r.validate(); err != nil {
		return Result{}, err
	}
	for i := range r.Reports {
		if r.Reports[i].ReportID != "" || r.Reports[i].State == StateUnavailable {
			continue // already requested: a retried step does not ask twice
		}
		if err := e.requestReport(ctx, &r, &r.Reports[i], "focus-submit"); err != nil {
			return Result{}, err
		}
	}
	r.MaxAttempts = e.maxAttempts(r.MaxAttempts)
	r.Status, r.Attempt = StatusSubmitted, 0
	r.WaitSeconds = int(NextWait(0) / time.Second)
	e.log(r.OrgID, r.Period, "focus-submit").Info("FOCUS reports requested", "reports", len(r.Reports), "wait_seconds", r.WaitSeconds)
	return r, nil
}

// requestReport asks Atlas for rep's report. A report Atlas will not create
// for the invoice (400, 403, 404: an older invoice, an org without the
// feature) is a Focus.Unavailable warning, not a failure: FOCUS is an add-on
// to the usage and invoices already stored.
func (e *Exporter) requestReport(ctx context.Context, r *Result, rep *Report, step string) error {
	got, err := e.Atlas.CreateInvoiceReport(ctx, r.OrgID, rep.InvoiceID)
	if err != nil {
		if refused(err) {
			e.unavailable(r, rep, step, "Atlas will not create it: "+err.Error())
			return nil
		}
		return wrap(err, fmt.Sprintf("org %s, %s, invoice %s: requesting the FOCUS report", r.OrgID, r.Period, rep.InvoiceID))
	}
	rep.ReportID, rep.State = got.ID, string(got.State)
	return nil
}

// refused reports whether Atlas answered a report request with 400, 403 or
// 404. 401 stays a failure (the credentials), and 429 and 5xx too, once the
// client's and the state machine's retries are spent.
func refused(err error) bool {
	var apiErr *atlas.Error
	return errors.As(err, &apiErr) && slices.Contains([]int{400, 403, 404}, apiErr.StatusCode)
}

// unavailable marks rep as one Atlas will not give, with a warning.
func (e *Exporter) unavailable(r *Result, rep *Report, step, why string) {
	month, err := period.Parse(rep.Month, time.Time{})
	if err != nil {
		month = r.Period // validate checked it; never reached
	}
	rep.ReportID, rep.State = "", StateUnavailable
	r.Warnings = e.warn(r.Warnings, r.OrgID, month, step, rep.InvoiceID, FocusUnavailable, "no FOCUS report for this invoice: "+why)
}

// PollFocus asks once about every report not yet stored; each one ready is
// downloaded from its pre-signed URL and streamed into the store at once.
// A report whose URL expired first is requested again (a few times at most,
// then the job fails with Atlas.ReportFailed: the report exists, but could
// not be fetched); a FAILED report is a Focus.Unavailable warning.
func (e *Exporter) PollFocus(ctx context.Context, r Result) (_ Result, err error) {
	if err := r.validate(); err != nil {
		return Result{}, err
	}
	r.MaxAttempts = e.maxAttempts(r.MaxAttempts)
	log := e.log(r.OrgID, r.Period, "focus-poll")
	if r.Attempt >= r.MaxAttempts {
		return Result{}, &Error{Name: PollAttemptsExhausted, Msg: fmt.Sprintf("org %s, %s: FOCUS reports still not ready after %d polls", r.OrgID, r.Period, r.Attempt)}
	}
	r.Attempt++
	mf := &jobManifest{e: e, orgID: r.OrgID, p: r.Period}
	defer mf.done(ctx, &err)
	pending := 0
	for i := range r.Reports {
		rep := &r.Reports[i]
		if rep.State == StateStored || rep.State == StateUnavailable {
			continue
		}
		done, err := e.pollReport(ctx, &r, mf, rep)
		if err != nil {
			return Result{}, err
		}
		if !done {
			pending++
		}
	}
	if pending > 0 {
		r.Status = StatusProcessing
		r.WaitSeconds = int(NextWait(r.Attempt) / time.Second)
		log.Info("FOCUS reports still processing", "attempt", r.Attempt, "pending", pending, "wait_seconds", r.WaitSeconds)
		return r, nil
	}
	r.Status, r.WaitSeconds = StatusReady, 0
	log.Info("FOCUS reports done", "attempt", r.Attempt, "reports", len(r.Reports))
	return e.finish(r)
}

// pollReport reports whether rep is stored after this poll.
func (e *Exporter) pollReport(ctx context.Context, r *Result, mf *jobManifest, rep *Report) (bool, error) {
	where := fmt.Sprintf("org %s, %s, invoice %s", r.OrgID, r.Period, rep.InvoiceID)
	got, err := e.Atlas.GetInvoiceReport(ctx, r.OrgID, rep.InvoiceID, rep.ReportID)
	if err != nil {
		return false, wrap(err, where+": polling the FOCUS report")
	}
	rep.State = string(got.State)
	switch got.State {
	case atlas.ReportFailed:
		reason := cmp.Or(got.FailureReason, "no reason given")
		e.unavailable(r, rep, "focus-poll", fmt.Sprintf("report %s failed: %s", rep.ReportID, truncate(reason, shown)))
		return true, nil
	case atlas.ReportSucceeded:
	default:
		return false, nil
	}
	month, err := period.Parse(rep.Month, time.Time{})
	if err != nil {
		return false, invalid("%s: month %q", where, truncate(rep.Month, shown))
	}
	key, err := e.Layout.Focus(r.OrgID, month, rep.InvoiceID)
	if err != nil {
		return false, &Error{Name: InputInvalid, Msg: where + ": FOCUS key", Err: err}
	}
	normKey, err := e.Layout.NormalizedFocus(r.OrgID, month, rep.InvoiceID)
	if err != nil {
		return false, &Error{Name: InputInvalid, Msg: where + ": normalized FOCUS key", Err: err}
	}
	m, err := mf.get(ctx)
	if err != nil {
		return false, wrap(err, where)
	}
	body, err := e.Atlas.DownloadReport(ctx, got)
	if atlas.IsExpired(err) {
		// Too late for this URL: ask for the report again.
		if rep.Renewals >= maxRenewals {
			return false, &Error{Name: AtlasReportFailed, Msg: fmt.Sprintf("%s: the FOCUS report's download URL expired %d times before it could be fetched", where, rep.Renewals+1), Err: err}
		}
		rep.Renewals++
		e.log(r.OrgID, r.Period, "focus-poll").Info("FOCUS report URL expired, requesting it again", "invoice", rep.InvoiceID, "renewals", rep.Renewals)
		err := e.requestReport(ctx, r, rep, "focus-poll")
		return rep.State == StateUnavailable, err
	}
	if err != nil {
		return false, wrap(err, where+": downloading the FOCUS report")
	}
	defer body.Close()
	// The report as Atlas made it, and from the same stream its rows with
	// FOCUS 1.0's columns and types, whatever Atlas's order. No report id in
	// the metadata: each run asks for a new report.
	s, err := e.storePair(ctx, m, body, pair{
		raw: key, norm: normKey, conv: func(w io.Writer, r io.Reader) (tally.Stats, error) { return e.Normalizer.Focus(w, r) },
		meta: map[string]string{
			"source": sourceFocus, "org-id": r.OrgID, "billing-month": month.Label(),
			"period-start": month.StartDate(), "period-end": month.EndDate(),
			"invoice-id": rep.InvoiceID,
		},
		entry: Entry{Source: sourceFocus, InvoiceID: rep.InvoiceID},
	})
	if err != nil {
		return false, wrap(err, where+": storing the FOCUS report")
	}
	rep.State = StateStored
	r.Warnings = e.warned(r.Warnings, s.warn, r.OrgID, month, rep.InvoiceID, "focus-poll")
	for _, o := range s.objects() {
		r.Objects = append(r.Objects, o)
		e.report(Event{OrgID: r.OrgID, Period: r.Period, Step: "object", Object: &o})
	}
	return true, nil
}
