package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/costreport"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

var runCommand = &command{
	name:    "run",
	summary: "run the whole export here, in one process (to a folder or S3)",
	about: `
Export Cost Explorer usage and the invoice CSVs of one or more Atlas organizations for a month or a
range of months, in this process, with the same steps as the state machine: submit the usage query,
wait the returned seconds, poll until ready, stream the result to storage, then fetch the invoices of
the period. Like the state machine, it exports --concurrency orgs at once, each org's months two at a
time (so each org's Atlas rate limit sees at most two requests at once), and a job that fails does
not stop the others: the summary lists the failed jobs, and the exit status is then 1. Files get the S3 layout (usage/org_id=.../billing_month=YYYY-MM/usage.csv,
invoices/org_id=.../billing_month=YYYY-MM/invoice_id=....csv) under a local folder or s3://bucket/prefix;
a file already stored unchanged is not rewritten.

The configuration is the functions' (ABX_* variables, read by the same rules), each variable overridden
by its flag. Credentials come from the environment with the Atlas CLI's names: MONGODB_ATLAS_CLIENT_ID
and MONGODB_ATLAS_CLIENT_SECRET (service account; preferred when both kinds are set) or
MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY (API key), or from a Secrets Manager
secret with --secret-arn. S3 and Secrets Manager use the AWS SDK's usual credential chain.

A file Atlas sent is always stored as sent; what could not be made of it (a normalized form, a FOCUS
report) or does not add up (an invoice's line items against its totals) is a named warning, listed in
the summary with the reconciliation of each invoice. Warnings do not fail the run unless --strict.

Progress goes to stderr, the list of files written to stdout; exit 1 on failure (or on warnings with
--strict), 2 on a usage, input or configuration error.`,
	example: `
export MONGODB_ATLAS_CLIENT_ID=mdb_sa_id_... MONGODB_ATLAS_CLIENT_SECRET=mdb_sa_sk_...
` + progName + ` run --org 5f1a2b3c4d5e6f7a8b9c0d1e --from 2024-04 --to 2024-06 --out s3://my-lake/atlas-billing`,
	setup: setupRun,
}

// runFlags are run's own flags: what to export.
type runFlags struct {
	period, from, to             string
	services, projects, clusters listFlag
	groupBy                      string
	pending                      bool
	concurrency                  int
	timeout                      time.Duration
	report                       string
}

func (r *runFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&r.period, "period", period.PreviousMonth, "`MONTH` to export: YYYY-MM, "+period.PreviousMonth+" or "+period.MonthToDate+" (months of "+config.EnvZone+", default UTC)")
	fs.StringVar(&r.from, "from", "", "first `MONTH` of a range, YYYY-MM (with --to, instead of --period)")
	fs.StringVar(&r.to, "to", "", "last `MONTH` of a range, YYYY-MM, inclusive")
	fs.Var(&r.services, "services", "only these Cost Explorer `SERVICES`, comma list or repeated, e.g. \"Clusters,Data Transfer\"")
	fs.Var(&r.projects, "projects", "only these project `IDS` (24 hex), comma list or repeated")
	fs.Var(&r.clusters, "clusters", "only these cluster `IDS` (24 hex), comma list or repeated")
	fs.StringVar(&r.groupBy, "group-by", "", "group usage by `FIELD`: organizations, projects, clusters or services (needs a filter value)")
	fs.BoolVar(&r.pending, "include-pending", false, "also export the current month's pending invoice")
	fs.IntVar(&r.concurrency, "concurrency", 4, "export `N` orgs at once, each org's months two at a time, like the state machine (1 to 64)")
	fs.DurationVar(&r.timeout, "timeout", 0, "stop the whole run after `DURATION` (e.g. 2h), whatever Atlas or S3 do; 0: no limit")
	fs.StringVar(&r.report, "report", "", "after the export, write the HTML cost report of its orgs and months to `FILE` (see the report command)")
}

// request is the export's request for these flags; export.Plan checks the rest.
func (r *runFlags) request(fs *flag.FlagSet) (export.Request, error) {
	req := export.Request{
		Services: r.services, Projects: r.projects, Clusters: r.clusters,
		GroupBy: r.groupBy, IncludePending: r.pending,
	}
	if r.concurrency < 1 || r.concurrency > 64 {
		return req, usagef("--concurrency %d: want a number from 1 to 64", r.concurrency)
	}
	if r.timeout < 0 {
		return req, usagef("--timeout %s: want a positive duration, or 0 for no limit", r.timeout)
	}
	switch {
	case r.from == "" && r.to == "":
		req.Period = r.period
	case isSet(fs, "period"):
		return req, usagef("give --period or --from/--to, not both")
	case r.from == "" || r.to == "":
		return req, usagef("--from and --to go together")
	default:
		months, err := period.Months(r.from, r.to)
		if err != nil {
			return req, usagef("--from/--to: %v", err)
		}
		req.StartDate, req.EndDate = months[0].StartDate(), months[len(months)-1].EndDate()
	}
	return req, nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func setupRun(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var s settings
	s.define(fs)
	var r runFlags
	r.define(fs)

	return func(ctx context.Context, _ []string) error {
		req, err := r.request(fs)
		if err != nil {
			return err
		}
		cfg, err := s.config(a.Getenv)
		if err != nil {
			return err
		}
		if len(cfg.OrgIDs) == 0 && cfg.SecretARN == "" {
			return usagef("no organization: pass --org or set ABX_ORG_IDS")
		}
		exp, err := s.exporter(ctx, cfg, true, a.Getenv)
		if err != nil {
			return err
		}
		// After exporter, which creates the output folder: a report inside
		// it (--out out --report out/report.html) is then fine on a first run.
		if isSet(fs, "report") {
			if err := checkReportFile(r.report); err != nil {
				return err
			}
		}
		p := a.printer()
		exp.Progress, exp.Now = p.event, a.Now
		// Not job by job: the run fails at its end, with every job's result.
		exp.Strict = false
		start := a.Now()
		runCtx := ctx
		if r.timeout > 0 {
			var cancel context.CancelFunc
			runCtx, cancel = context.WithTimeout(ctx, r.timeout)
			defer cancel()
		}
		outcomes, runErr := (&export.Runner{Exporter: exp, Concurrency: r.concurrency, Sleep: a.sleep}).Run(runCtx, req)
		if runErr != nil && runCtx.Err() != nil && ctx.Err() == nil {
			runErr = fmt.Errorf("stopped after --timeout %s: %w", r.timeout, runErr)
		}
		sum := summarize(outcomes)
		if runErr == nil && cfg.StrictWarnings {
			runErr = export.WarningsError(sum.Warnings)
		}
		elapsed := a.Now().Sub(start)
		sum.Event, sum.ElapsedSeconds, sum.Error = "summary", elapsed.Seconds(), errText(runErr)
		p.JSON(sum)
		// A failed run still lists what it wrote, and names the jobs that failed.
		if runErr == nil || len(sum.Objects) > 0 || len(sum.Failures) > 0 {
			p.Human(func(w io.Writer) { writeSummary(w, cfg, sum, elapsed) })
		}
		// Everything was stored, warnings or not: report on it.
		if r.report != "" && len(sum.Months) > 0 && (runErr == nil || export.Name(runErr) == export.ExportWarnings) {
			months := slices.Sorted(slices.Values(sum.Months))
			opt := costreport.Options{Where: where(cfg), Orgs: sum.Orgs, From: months[0], To: months[len(months)-1], Now: a.Now()}
			if err := a.writeReport(ctx, exp, opt, r.report); err != nil && runErr == nil {
				runErr = err
			}
		}
		return runErr
	}
}

// summary is what a whole run did.
type summary struct {
	Event   string        `json:"event"`
	Orgs    []string      `json:"orgs"`
	Months  []string      `json:"months"`
	Objects []sink.Object `json:"objects"`
	Totals  []total       `json:"usageTotals,omitempty"` // usage per month and service
	// Reconciliations check each invoice against its own totals.
	Reconciliations []reconciliation `json:"reconciliations"`
	// NoInvoice are the months, by org, for which Atlas listed no invoice:
	// only their usage is stored, which says why.
	NoInvoice      map[string][]string `json:"noInvoice,omitempty"`
	Warnings       []export.Warning    `json:"warnings"`
	Failures       []export.Failure    `json:"failures,omitempty"` // every failed job, in plan order
	ElapsedSeconds float64             `json:"elapsedSeconds"`
	Error          string              `json:"error,omitempty"`
}

// reconciliation is one invoice's, with its org.
type reconciliation struct {
	OrgID string `json:"orgId"`
	export.Reconciliation
}

// total is the usage of one service in one month, in dollars to the cent.
type total struct {
	Month   string `json:"month"`
	Service string `json:"service"`
	Amount  string `json:"amount"`
}

// summarize lists the orgs, months and objects of the jobs that finished and the jobs that failed,
// and totals the usage per month and service from what the normalizer summed while the usage
// streamed (the outcomes' UsageServices: exact decimals, added here with math/big).
func summarize(outcomes []export.Outcome) summary {
	sum := summary{Orgs: []string{}, Months: []string{}, Objects: []sink.Object{}, Reconciliations: []reconciliation{}, Warnings: []export.Warning{}}
	sums := map[total]*big.Rat{} // by month and service
	for _, r := range outcomes {
		sum.Warnings = append(sum.Warnings, r.Warnings...)
		if r.Failed() {
			sum.Failures = append(sum.Failures, export.Failure{OrgID: r.OrgID, Month: r.Period.Label(), Error: r.Error, Cause: r.Cause})
			continue
		}
		if !slices.Contains(sum.Orgs, r.OrgID) {
			sum.Orgs = append(sum.Orgs, r.OrgID)
		}
		if !slices.Contains(sum.Months, r.Period.Label()) {
			sum.Months = append(sum.Months, r.Period.Label())
		}
		sum.Objects = append(sum.Objects, r.Objects...)
		if len(r.Reconciliations) == 0 {
			if sum.NoInvoice == nil {
				sum.NoInvoice = map[string][]string{}
			}
			sum.NoInvoice[r.OrgID] = append(sum.NoInvoice[r.OrgID], r.Period.Label())
		}
		for _, rec := range r.Reconciliations {
			sum.Reconciliations = append(sum.Reconciliations, reconciliation{OrgID: r.OrgID, Reconciliation: rec})
		}
		for service, amount := range r.UsageServices {
			k := total{Month: r.Period.Label(), Service: service}
			if sums[k] == nil {
				sums[k] = new(big.Rat)
			}
			if v, ok := new(big.Rat).SetString(amount); ok {
				sums[k].Add(sums[k], v)
			}
		}
	}
	for k, v := range sums {
		k.Amount = v.FloatString(2)
		sum.Totals = append(sum.Totals, k)
	}
	slices.SortFunc(sum.Totals, func(a, b total) int { return strings.Compare(a.Month+"\x00"+a.Service, b.Month+"\x00"+b.Service) })
	return sum
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(err.Error())
}
