// Package export is the logic of the three steps of an export — submit a Cost
// Explorer query, poll it and store its result, fetch the invoices — shared
// by the Lambda functions, the state machine and the command-line tool.
// Each step asks Atlas once and returns at once: waiting happens between
// steps (in a Wait state, or a sleep in the command-line tool), never inside.
package export

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Atlas is the part of the Atlas API an export uses.
type Atlas interface {
	CreateUsageQuery(ctx context.Context, orgID string, q atlas.UsageQuery) (string, error)
	GetUsage(ctx context.Context, orgID, token string, f atlas.Format) (*atlas.Usage, error)
	ListInvoices(ctx context.Context, orgID string, opt *atlas.InvoiceListOptions) ([]atlas.Invoice, error)
	PendingInvoices(ctx context.Context, orgID string) ([]atlas.Invoice, error)
	InvoiceCSV(ctx context.Context, orgID, invoiceID string) (io.ReadCloser, error)
	CreateInvoiceReport(ctx context.Context, orgID, invoiceID string) (atlas.Report, error)
	GetInvoiceReport(ctx context.Context, orgID, invoiceID, reportID string) (atlas.Report, error)
	DownloadReport(ctx context.Context, r atlas.Report) (io.ReadCloser, error)
}

// Store keeps objects under keys, streaming them (internal/sink).
type Store interface {
	Bucket() string
	// Create starts an object at key: nothing shows there before Commit.
	Create(ctx context.Context, key string, opt sink.Options) (sink.Upload, error)
	// ETag tells the object under key from another one ("" if none).
	ETag(ctx context.Context, key string) (string, error)
	// Open reads the object under key, sink.ErrNotFound if there is none.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

// Normalizer rewrites Atlas's files as the normalized datasets
// (normalize.Parquet): each call writes the file read from r to w, and a
// file it cannot rewrite is a *tally.Warning. It is apart so that a
// function that stores no file (submit) does not link the Parquet writer.
type Normalizer interface {
	Invoice(w io.Writer, r io.Reader, invoiceID, status string) (tally.Stats, error)
	UsageJSON(w io.Writer, r io.Reader) (tally.Stats, error)
	Focus(w io.Writer, r io.Reader) (tally.Stats, error)
}

// Exporter runs the steps.
type Exporter struct {
	Atlas  Atlas
	Store  Store
	Layout layout.Layout
	// Normalizer writes the normalized files; the steps that store files
	// (poll, fetch, focus-poll) fail without one.
	Normalizer Normalizer
	// Orgs lists the orgs to export when a request names none.
	Orgs func(ctx context.Context) ([]string, error)
	// Credentials, if set, reads the Atlas credentials once a request is
	// found valid, before any job is planned: a secret that cannot be read
	// then fails the plan once, not every job after its retries.
	Credentials func(ctx context.Context) error
	// MaxAttempts bounds the polls of one query.
	MaxAttempts int
	// Focus is whether jobs ask for FOCUS reports unless a request says.
	Focus bool
	// Strict fails the last step of a job that gave warnings with
	// Export.Warnings, once everything is stored (ABX_STRICT_WARNINGS).
	Strict bool
	// Zone is the time zone whose months "previous-month" and
	// "month-to-date" count (the schedules'); nil is UTC.
	Zone *time.Location
	Now  func() time.Time
	Log  *slog.Logger
	// Progress, if set, hears of each step and of bytes streamed.
	Progress func(Event)
}

func (e *Exporter) report(ev Event) {
	if e.Progress != nil {
		e.Progress(ev)
	}
}

// MaxOrgs bounds the orgs of one plan (its months are bounded by the period
// package: 120). 1,000 orgs x 120 months is 120,000 jobs: a plan of about
// 30 MB, and a summary step that reads every job's result (about 3 KB each)
// in one Lambda invocation, well inside its 15 minutes. Beyond that, split
// the orgs over several executions.
const MaxOrgs = 1000

// Poll backoff: the first answer is checked after FirstWait, so a fast query
// is not slowed down; then the wait doubles up to MaxWait, so a long query
// costs a few polls, not one every few seconds.
const (
	FirstWait = 5 * time.Second
	MaxWait   = 60 * time.Second
)

// NextWait is the wait after the given number of polls.
func NextWait(polls int) time.Duration {
	w := FirstWait
	for i := 0; i < polls && w < MaxWait; i++ {
		w *= 2
	}
	return min(w, MaxWait)
}

func (e *Exporter) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

var discard = slog.New(slog.DiscardHandler)

// log is the step's logger, with the org and period every line carries.
func (e *Exporter) log(orgID string, p period.Period, step string) *slog.Logger {
	return cmp.Or(e.Log, discard).With("org", orgID, "period", p.Label(), "step", step)
}

// Plan expands a request into one job per org and month, validating all of
// it before any network call, then reading the Atlas credentials, once for
// all its jobs.
func (e *Exporter) Plan(ctx context.Context, req Request) (Plan, error) {
	months, err := e.months(req)
	if err == nil {
		err = CheckMonths(months, e.now())
	}
	if err != nil {
		return Plan{}, err
	}
	f := Filters{
		Services: req.Services, Projects: req.Projects, Clusters: req.Clusters,
		GroupBy: req.GroupBy, IncludePartialMatches: req.IncludePartialMatches,
	}
	// The query of the first month stands for all: same filters, other dates.
	if err := f.query(months[0]).Validate(); err != nil {
		return Plan{}, &Error{Name: InputInvalid, Msg: "invalid filters", Err: err}
	}
	if req.InvoiceID != "" {
		if err := atlas.ValidateInvoiceID(req.InvoiceID); err != nil {
			return Plan{}, &Error{Name: InputInvalid, Msg: "invalid invoiceId", Err: err}
		}
	}
	orgs, err := e.orgs(ctx, req)
	if err != nil {
		return Plan{}, err
	}
	focus := e.Focus
	if req.Focus != nil {
		focus = *req.Focus
	}
	if len(orgs) > MaxOrgs {
		return Plan{}, invalid("%d orgs, more than the %d one execution exports: split them over several executions", len(orgs), MaxOrgs)
	}
	if e.Credentials != nil {
		if err := e.Credentials(ctx); err != nil {
			return Plan{}, wrap(err, "reading the Atlas credentials")
		}
	}
	var p Plan
	for _, org := range orgs {
		for _, m := range months {
			p.Jobs = append(p.Jobs, Job{
				OrgID: org, Period: m, Filters: f, IncludePending: req.IncludePending,
				InvoiceID: req.InvoiceID, Focus: focus, MaxAttempts: e.maxAttempts(0),
			})
		}
	}
	return p, nil
}

func (e *Exporter) months(req Request) ([]period.Period, error) {
	ref := e.now()
	if req.ScheduledTime != "" {
		t, err := time.Parse(time.RFC3339, req.ScheduledTime)
		if err != nil {
			return nil, invalid("scheduledTime %q: want an RFC 3339 time such as 2024-07-01T06:00:00Z", truncate(req.ScheduledTime, shown))
		}
		ref = t
	}
	ref = ref.In(cmp.Or(e.Zone, time.UTC))
	switch {
	case req.StartDate != "" || req.EndDate != "":
		if req.Period != "" {
			return nil, invalid("give either period or startDate/endDate, not both")
		}
		if req.StartDate == "" || req.EndDate == "" {
			return nil, invalid("startDate and endDate go together")
		}
		ms, err := period.Dates(req.StartDate, req.EndDate)
		if err != nil {
			return nil, invalid("%v", err)
		}
		return ms, nil
	default:
		p, err := period.Parse(req.Period, ref)
		if err != nil {
			return nil, invalid("%v", err)
		}
		return []period.Period{p}, nil
	}
}

func (e *Exporter) orgs(ctx context.Context, req Request) ([]string, error) {
	ids := req.OrgIDs
	if req.OrgID != "" {
		ids = append([]string{req.OrgID}, ids...)
	}
	if len(ids) == 0 && e.Orgs != nil {
		configured, err := e.Orgs(ctx)
		if err != nil {
			return nil, wrap(err, "listing the configured orgs")
		}
		ids = configured
	}
	if len(ids) == 0 {
		return nil, &Error{Name: ConfigInvalid, Msg: "no org to export: name orgIds in the request, set ABX_ORG_IDS, or put orgIds in the secret"}
	}
	seen := make(map[string]bool, len(ids))
	var out []string
	for _, id := range ids {
		if err := atlas.ValidateOrgID(id); err != nil {
			return nil, &Error{Name: InputInvalid, Msg: "invalid org id", Err: err}
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func (f Filters) query(p period.Period) atlas.UsageQuery {
	return atlas.UsageQuery{
		StartDate: p.StartDate(), EndDate: p.EndDate(),
		Services: f.Services, Projects: f.Projects, Clusters: f.Clusters,
		GroupBy: f.GroupBy, IncludePartialMatches: f.IncludePartialMatches,
	}
}

func (j *Job) validate() error {
	if err := atlas.ValidateOrgID(j.OrgID); err != nil {
		return &Error{Name: InputInvalid, Msg: "job", Err: err}
	}
	if j.Period.Start.IsZero() {
		return invalid("org %s: period is required", j.OrgID)
	}
	if j.Token != "" {
		if err := atlas.ValidateToken(j.Token); err != nil {
			return &Error{Name: InputInvalid, Msg: fmt.Sprintf("org %s: invalid token", j.OrgID), Err: err}
		}
	}
	if j.InvoiceID != "" {
		if err := atlas.ValidateInvoiceID(j.InvoiceID); err != nil {
			return &Error{Name: InputInvalid, Msg: fmt.Sprintf("org %s: invalid invoiceId", j.OrgID), Err: err}
		}
	}
	if j.MaxAttempts < 0 || j.Attempt < 0 || j.WaitSeconds < 0 {
		return invalid("org %s: attempt, maxAttempts and waitSeconds cannot be negative", j.OrgID)
	}
	if err := j.Filters.query(j.Period).Validate(); err != nil {
		return &Error{Name: InputInvalid, Msg: fmt.Sprintf("org %s: invalid filters", j.OrgID), Err: err}
	}
	return nil
}

// maxAttempts is the poll budget of a job or result: its own, or the
// Exporter's when it has none (0), at least 1.
func (e *Exporter) maxAttempts(n int) int {
	if n != 0 {
		return n
	}
	return max(e.MaxAttempts, 1)
}

// Submit creates the Cost Explorer query of a job and says how long to wait
// before the first poll.
func (e *Exporter) Submit(ctx context.Context, j Job) (Job, error) {
	if err := j.validate(); err != nil {
		return Job{}, err
	}
	j.MaxAttempts = e.maxAttempts(j.MaxAttempts)
	log := e.log(j.OrgID, j.Period, "submit")
	token, err := e.Atlas.CreateUsageQuery(ctx, j.OrgID, j.Filters.query(j.Period))
	if err != nil {
		return Job{}, wrap(err, fmt.Sprintf("org %s, %s: creating the Cost Explorer query", j.OrgID, j.Period))
	}
	j.Token, j.Status, j.Attempt = token, StatusSubmitted, 0
	j.WaitSeconds = int(NextWait(0) / time.Second)
	j.Usage = nil
	log.Info("cost explorer query submitted", "wait_seconds", j.WaitSeconds)
	return j, nil
}

// Poll asks once whether the query is ready. Still processing: the job comes
// back with the next wait. Ready: the result is streamed into the store.
func (e *Exporter) Poll(ctx context.Context, j Job) (_ Job, err error) {
	if err := j.validate(); err != nil {
		return Job{}, err
	}
	if j.Token == "" {
		return Job{}, invalid("org %s, %s: poll needs the token that submit returned", j.OrgID, j.Period)
	}
	j.MaxAttempts = e.maxAttempts(j.MaxAttempts)
	log := e.log(j.OrgID, j.Period, "poll")
	if j.Attempt >= j.MaxAttempts {
		return Job{}, &Error{Name: PollAttemptsExhausted, Msg: fmt.Sprintf("org %s, %s: the Cost Explorer query was still processing after %d polls", j.OrgID, j.Period, j.Attempt)}
	}
	j.Attempt++
	u, err := e.Atlas.GetUsage(ctx, j.OrgID, j.Token, atlas.CSV)
	if err != nil {
		return Job{}, wrap(err, fmt.Sprintf("org %s, %s: polling the Cost Explorer query", j.OrgID, j.Period))
	}
	if u.Processing {
		j.Status = StatusProcessing
		j.WaitSeconds = int(NextWait(j.Attempt) / time.Second)
		log.Info("cost explorer query still processing", "attempt", j.Attempt, "wait_seconds", j.WaitSeconds)
		return j, nil
	}
	defer u.Body.Close()
	key, err := e.Layout.Usage(j.OrgID, j.Period)
	if err != nil {
		return Job{}, &Error{Name: InputInvalid, Msg: "usage key", Err: err}
	}
	normKey, err := e.Layout.NormalizedUsage(j.OrgID, j.Period)
	if err != nil {
		return Job{}, &Error{Name: InputInvalid, Msg: "normalized usage key", Err: err}
	}
	// The CSV's layout is not documented (the spec's example has no header
	// row): it is stored as sent, and the normalized usage is made from the
	// JSON form of the same result, whose schema the spec gives. Both go
	// through one pair upload, so they are stored together or not at all.
	where := fmt.Sprintf("org %s, %s: storing the Cost Explorer usage", j.OrgID, j.Period)
	mf := &jobManifest{e: e, orgID: j.OrgID, p: j.Period}
	defer mf.done(ctx, &err)
	m, err := mf.get(ctx)
	if err != nil {
		return Job{}, wrap(err, where)
	}
	s, err := e.storePair(ctx, m, u.Body, pair{
		raw: key, norm: normKey, conv: e.usageJSON(ctx, j),
		meta: map[string]string{
			"source": sourceUsage, "org-id": j.OrgID, "billing-month": j.Period.Label(),
			"period-start": j.Period.StartDate(), "period-end": j.Period.EndDate(),
		},
		entry: Entry{Source: sourceUsage},
	})
	if err != nil {
		return Job{}, wrap(err, where)
	}
	obj := s.raw
	j.Status, j.WaitSeconds, j.Usage, j.UsageNormalized = StatusReady, 0, &obj, s.norm
	j.UsageServices, j.UsageTotal = services(s.stats), ""
	if s.norm != nil {
		j.UsageTotal = s.stats.Amount.String()
	}
	j.Warnings = e.warned(j.Warnings, s.warn, j.OrgID, j.Period, "", "poll")
	for _, o := range s.objects() {
		e.report(Event{OrgID: j.OrgID, Period: j.Period, Step: "object", Object: &o})
	}
	log.Info("cost explorer usage stored", "attempt", j.Attempt, "key", obj.Key, "bytes", obj.Bytes, "rows", obj.Rows, "skipped", obj.Skipped)
	return j, nil
}

// usageJSON is the conversion of a job's usage pair: it ignores the CSV
// (the raw object, stored as sent) and writes the normalized usage from the
// JSON form of the same result, fetched now that the query is ready. A
// JSON form Atlas does not give is a Usage.JSONUnavailable warning; a
// transient failure (429, 5xx, a broken stream, the deadline) fails the
// step, both objects unwritten, for the state machine to retry.
func (e *Exporter) usageJSON(ctx context.Context, j Job) func(io.Writer, io.Reader) (tally.Stats, error) {
	return func(w io.Writer, csv io.Reader) (tally.Stats, error) {
		// Keep the CSV flowing to its upload while the JSON is read.
		go func() { _, _ = io.Copy(io.Discard, csv) }()
		unavailable := func(msg string, err error) error {
			return &tally.Warning{Name: UsageJSONUnavailable, Msg: "the usage CSV is stored as sent, not normalized: " + msg, Err: err}
		}
		u, err := e.Atlas.GetUsage(ctx, j.OrgID, j.Token, atlas.JSON)
		switch {
		case err != nil && transient(err):
			return tally.Stats{}, wrap(err, "getting the usage as JSON")
		case err != nil:
			return tally.Stats{}, unavailable("getting the usage as JSON", err)
		case u.Processing:
			return tally.Stats{}, unavailable("Atlas answered the JSON form as still processing, the CSV as ready", nil)
		}
		defer u.Body.Close()
		body := &readErr{r: u.Body}
		st, err := e.Normalizer.UsageJSON(w, body)
		// A body that broke off is no file to warn about: retry the step.
		if err != nil && body.err != nil {
			if Name(body.err) != AtlasError {
				return st, wrap(body.err, "reading the usage JSON")
			}
			return st, &Error{Name: AtlasStreamBroken, Msg: "the Atlas response (usage JSON) broke off", Err: body.err}
		}
		return st, err
	}
}

// transient reports whether err is worth a retry of the step: Atlas busy or
// failing, a stream that broke, a deadline.
func transient(err error) bool {
	switch Name(err) {
	case AtlasRateLimited, AtlasServerError, AtlasStreamBroken:
		return true
	}
	return false
}

// readErr remembers the error a read of r returned, other than EOF.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// FetchInvoices stores the CSV of every invoice of the job's month (and the
// pending one when asked, or the one invoice named) and lists every object
// of the job, the usage included.
func (e *Exporter) FetchInvoices(ctx context.Context, j Job) (_ Result, err error) {
	if err := j.validate(); err != nil {
		return Result{}, err
	}
	if err := e.checkUsageObjects(j); err != nil {
		return Result{}, err
	}
	log := e.log(j.OrgID, j.Period, "fetch-invoice")
	invoices, err := e.invoices(ctx, j)
	if err != nil {
		return Result{}, err
	}
	res := Result{OrgID: j.OrgID, Period: j.Period, Objects: []sink.Object{}, Focus: j.Focus, Reports: []Report{}, MaxAttempts: j.MaxAttempts, UsageServices: j.UsageServices, Warnings: append([]Warning{}, j.Warnings...)}
	for _, o := range []*sink.Object{j.Usage, j.UsageNormalized} {
		if o != nil {
			res.Objects = append(res.Objects, *o)
		}
	}
	mf := &jobManifest{e: e, orgID: j.OrgID, p: j.Period}
	defer mf.done(ctx, &err)
	for _, inv := range invoices {
		month := period.Of(inv.StartDate)
		objs, warn, rec, err := e.storeInvoice(ctx, j, mf, inv)
		if err != nil {
			return Result{}, err
		}
		res.Warnings = e.warned(res.Warnings, warn, j.OrgID, month, inv.ID, "fetch-invoice")
		if rec != nil {
			res.Reconciliations = append(res.Reconciliations, *rec)
			if !rec.Reconciled {
				res.Warnings = e.warn(res.Warnings, j.OrgID, month, "fetch-invoice", inv.ID, InvoiceUnreconciled, rec.Reason)
			}
		}
		for _, obj := range objs {
			e.report(Event{OrgID: j.OrgID, Period: j.Period, Step: "object", Object: &obj})
		}
		log.Info("invoice stored", "invoice", inv.ID, "status", inv.StatusName, "key", objs[0].Key, "bytes", objs[0].Bytes, "rows", objs[0].Rows, "skipped", objs[0].Skipped)
		res.Objects = append(res.Objects, objs...)
		// Atlas builds a FOCUS report for a closed invoice; the pending one
		// is still changing.
		if j.Focus && inv.StatusName != "PENDING" {
			res.Reports = append(res.Reports, Report{InvoiceID: inv.ID, Month: month.Label()})
		}
	}
	besideUsage(res.Reconciliations, j.Period, j.UsageTotal)
	for _, r := range res.Reconciliations {
		log.Info("invoice reconciliation", "invoice", r.InvoiceID, "reconciled", r.Reconciled, "line_items", r.LineItems,
			"subtotal_cents", r.SubtotalCents, "credits_cents", r.CreditsCents, "delta_cents", r.DeltaCents, "usage", r.Usage, "usage_delta", r.UsageDelta)
	}
	log.Info("invoices done", "invoices", len(invoices))
	if res.wantsFocus() {
		return res, nil
	}
	return e.finish(res)
}

// checkUsageObjects refuses usage objects in the event that are not where
// Poll writes them: the manifest must only list what the export wrote.
func (e *Exporter) checkUsageObjects(j Job) error {
	for _, o := range []struct {
		obj *sink.Object
		key func(string, period.Period) (string, error)
	}{{j.Usage, e.Layout.Usage}, {j.UsageNormalized, e.Layout.NormalizedUsage}} {
		if o.obj == nil {
			continue
		}
		want, err := o.key(j.OrgID, j.Period)
		if err != nil {
			return &Error{Name: InputInvalid, Msg: "usage key", Err: err}
		}
		if o.obj.Key != want {
			return invalid("org %s, %s: the job's usage object %q is not the month's usage key", j.OrgID, j.Period, truncate(o.obj.Key, shown))
		}
	}
	return nil
}

// invoices lists the org's own invoices of the job's month. Atlas's date
// filters compare on midnight boundaries, so the list asks for a month more
// on each side and the month's invoices are picked by their own startDate.
// Linked invoices (cross-organization billing) are not asked for
// (viewLinkedInvoices=false): each org's invoices are exported under that
// org, when it is one of the orgs exported, never inside the paying org's.
func (e *Exporter) invoices(ctx context.Context, j Job) ([]atlas.Invoice, error) {
	where := fmt.Sprintf("org %s, %s", j.OrgID, j.Period)
	linked := false
	all, err := e.Atlas.ListInvoices(ctx, j.OrgID, &atlas.InvoiceListOptions{
		FromDate: j.Period.Prev().StartDate(), ToDate: j.Period.Next().EndDate(),
		ViewLinkedInvoices: &linked,
	})
	if err != nil {
		return nil, wrap(err, where+": listing invoices")
	}
	var out []atlas.Invoice
	seen := map[string]bool{}
	add := func(inv atlas.Invoice) {
		if !seen[inv.ID] {
			seen[inv.ID] = true
			out = append(out, inv)
		}
	}
	for _, inv := range all {
		if j.InvoiceID == "" && period.Of(inv.StartDate) == j.Period {
			add(inv)
		}
		if j.InvoiceID != "" && inv.ID == j.InvoiceID {
			add(inv)
		}
	}
	if j.IncludePending {
		pending, err := e.Atlas.PendingInvoices(ctx, j.OrgID)
		if err != nil {
			return nil, wrap(err, where+": getting the pending invoice")
		}
		for _, inv := range pending {
			if j.InvoiceID == "" || inv.ID == j.InvoiceID {
				add(inv)
			}
		}
	}
	if j.InvoiceID != "" && len(out) == 0 {
		return nil, &Error{Name: AtlasNotFound, Msg: fmt.Sprintf("%s: invoice %s is not among the invoices of the month", where, j.InvoiceID)}
	}
	return out, nil
}

// storeInvoice stores the raw CSV and, from the same stream, its normalized
// line items, or says why they could not be. The line items are reconciled
// with the invoice's totals on the way; the manifest's record of the raw
// invoice says whether they were (reconciled true or false, false too when
// they could not be read).
func (e *Exporter) storeInvoice(ctx context.Context, j Job, mf *jobManifest, inv atlas.Invoice) ([]sink.Object, *tally.Warning, *Reconciliation, error) {
	where := fmt.Sprintf("org %s, %s, invoice %s", j.OrgID, j.Period, inv.ID)
	// An invoice is filed under the month it bills, which for the pending
	// one may not be the job's month.
	month := period.Of(inv.StartDate)
	key, err := e.Layout.Invoice(j.OrgID, month, inv.ID)
	if err != nil {
		return nil, nil, nil, &Error{Name: AtlasError, Msg: where + ": Atlas listed an invoice id that is not valid", Err: err}
	}
	normKey, err := e.Layout.NormalizedInvoice(j.OrgID, month, inv.ID)
	if err != nil {
		return nil, nil, nil, &Error{Name: AtlasError, Msg: where + ": normalized key", Err: err}
	}
	m, err := mf.get(ctx)
	if err != nil {
		return nil, nil, nil, wrap(err, where)
	}
	kept, keptRec, err := e.unchanged(ctx, m, inv, key, normKey)
	if err != nil {
		return nil, nil, nil, wrap(err, where)
	}
	if kept != nil {
		return kept, nil, keptRec, nil
	}
	body, err := e.Atlas.InvoiceCSV(ctx, j.OrgID, inv.ID)
	if err != nil {
		return nil, nil, nil, wrap(err, where+": downloading the invoice CSV")
	}
	defer body.Close()
	var rec *Reconciliation
	s, err := e.storePair(ctx, m, body, pair{
		raw: key, norm: normKey,
		meta: map[string]string{
			"source": sourceInvoice, "org-id": j.OrgID, "billing-month": month.Label(),
			"period-start": month.StartDate(), "period-end": month.EndDate(),
			"invoice-id": inv.ID, "invoice-status": inv.StatusName,
		},
		conv: func(w io.Writer, r io.Reader) (tally.Stats, error) {
			return e.Normalizer.Invoice(w, r, inv.ID, inv.StatusName)
		},
		entry: Entry{Source: sourceInvoice, InvoiceID: inv.ID, InvoiceStatus: inv.StatusName, InvoiceUpdated: updated(inv.Updated)},
		settle: func(raw *Entry, st tally.Stats, read bool) {
			t := totalsOf(inv)
			raw.Totals = &t
			ok := false
			if read {
				c := reconcile(inv, st)
				rec, ok = &c, c.Reconciled
				raw.LineItems = c.LineItems
			}
			raw.Reconciled = &ok
		},
	})
	if err != nil {
		return nil, nil, nil, wrap(err, where+": storing the invoice CSV")
	}
	return s.objects(), s.warn, rec, nil
}

// unchanged lists the stored objects of an invoice that Atlas lists as it
// was when they were written: the manifest m records, for its raw CSV at
// key, the same id, status and updated time, and both that CSV and its
// line items at normKey still hold what was written (their ETags). Such an
// invoice is not downloaded again; its reconciliation is made again from
// the recorded line items. Anything else (no updated time, no line items
// read, a key rewritten since) is nil: download it.
func (e *Exporter) unchanged(ctx context.Context, m *Manifest, inv atlas.Invoice, key, normKey string) ([]sink.Object, *Reconciliation, error) {
	raw, ok := m.Object(key)
	norm, nok := m.Object(normKey)
	if !ok || !nok || raw.InvoiceID != inv.ID || raw.InvoiceUpdated == "" || raw.InvoiceUpdated != updated(inv.Updated) ||
		raw.InvoiceStatus != inv.StatusName || raw.LineItems == "" {
		return nil, nil, nil
	}
	objs := make([]sink.Object, 0, 2)
	for _, en := range []Entry{raw, norm} {
		if en.ETag == "" {
			return nil, nil, nil
		}
		etag, err := e.Store.ETag(ctx, en.Key)
		if err != nil {
			return nil, nil, storageError("reading "+en.Key, err)
		}
		if etag != en.ETag {
			return nil, nil, nil
		}
		objs = append(objs, sink.Object{Bucket: e.Store.Bucket(), Key: en.Key, Bytes: en.Bytes, SHA256: en.SHA256, Rows: en.Rows, Skipped: true, ETag: etag})
	}
	// What the export knows of the invoice is recorded anew, as for an
	// object skipped after its download (a manifest without totals).
	t := totalsOf(inv)
	rec := Reconcile(inv.ID, period.Of(inv.StartDate).Label(), raw.LineItems, t)
	raw.Totals, raw.Reconciled = &t, &rec.Reconciled
	m.put(raw)
	return objs, &rec, nil
}
