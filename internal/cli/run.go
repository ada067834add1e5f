package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// errNotWired is what a subcommand says when the binary was built without its implementation.
var errNotWired = errors.New("not wired: this build of " + progName + " has no export implementation")

// outputFlags defines --quiet and --json and returns a function giving the chosen mode.
func outputFlags(fs *flag.FlagSet) func() (outputMode, error) {
	quiet := fs.Bool("quiet", false, "print nothing but errors")
	jsonOut := fs.Bool("json", false, "print progress and the result as JSON, one object per line, on stdout")
	return func() (outputMode, error) {
		switch {
		case *quiet && *jsonOut:
			return 0, usagef("--quiet and --json exclude each other")
		case *quiet:
			return modeQuiet, nil
		case *jsonOut:
			return modeJSON, nil
		}
		return modeHuman, nil
	}
}

var runCommand = &command{
	name:    "run",
	summary: "run the whole export here, in one process (to a folder or S3)",
	about: `
Export Cost Explorer usage and the invoice CSVs of one or more Atlas organizations for a month or a
range of months, in this process, with the same steps as the state machine: submit the usage query,
wait the returned seconds, poll until ready, stream the result to storage, then fetch the invoices of
the period. Files get the S3 layout (usage/org_id=.../billing_month=YYYY-MM/usage.csv,
invoices/org_id=.../billing_month=YYYY-MM/invoice_id=....csv) under a local folder or s3://bucket/prefix;
a file already stored unchanged is not rewritten.

Credentials come from the environment with the Atlas CLI's names: MONGODB_ATLAS_CLIENT_ID and
MONGODB_ATLAS_CLIENT_SECRET (service account; preferred when both kinds are set) or
MONGODB_ATLAS_PUBLIC_API_KEY and MONGODB_ATLAS_PRIVATE_API_KEY (API key), or from a Secrets Manager
secret with --secret-arn. S3 and Secrets Manager use the AWS SDK's usual credential chain.

Progress goes to stderr, the list of files written to stdout; exit 1 on failure, 2 on a usage error.`,
	example: `
export MONGODB_ATLAS_CLIENT_ID=mdb_sa_id_... MONGODB_ATLAS_CLIENT_SECRET=mdb_sa_sk_...
` + progName + ` run --org 5f1a2b3c4d5e6f7a8b9c0d1e --from 2024-04 --to 2024-06 --out s3://my-lake/atlas-billing`,
	setup: setupRun,
}

func setupRun(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var cf configFlags
	cf.define(fs, "local `FOLDER` or s3://bucket/prefix to write to")
	period := fs.String("period", PreviousMonth, "`MONTH` to export: YYYY-MM, "+PreviousMonth+" or "+MonthToDate+" (UTC)")
	from := fs.String("from", "", "first `MONTH` of a range, YYYY-MM (with --to, instead of --period)")
	to := fs.String("to", "", "last `MONTH` of a range, YYYY-MM, inclusive")
	var services, projects, clusters listFlag
	fs.Var(&services, "services", "only these Cost Explorer `SERVICES`, comma list or repeated, e.g. \"Clusters,Data Transfer\"")
	fs.Var(&projects, "projects", "only these project `IDS` (24 hex), comma list or repeated")
	fs.Var(&clusters, "clusters", "only these cluster `IDS` (24 hex), comma list or repeated")
	groupBy := fs.String("group-by", "", "group usage by `FIELD`: organizations, projects, clusters or services (needs a filter value)")
	pending := fs.Bool("include-pending", false, "also export the current month's pending invoice")
	focus := fs.Bool("focus", true, "also fetch Atlas's FOCUS report of each closed invoice (--focus=false to skip)")
	concurrency := fs.Int("concurrency", 2, "export `N` org-months at once, like the state machine's Map (1 to 16; mind Atlas's per-org rate limit)")
	mode := outputFlags(fs)

	return func(ctx context.Context, pos []string) error {
		if len(pos) > 0 {
			return usagef("run takes no arguments, got %q", pos[0])
		}
		m, err := mode()
		if err != nil {
			return err
		}
		cfg, err := cf.resolve(fs, a.Getenv, true, false)
		if err != nil {
			return err
		}
		if len(cfg.OrgIDs) == 0 && cfg.SecretARN == "" {
			return usagef("no organization: pass --org or set %s", EnvOrgIDs)
		}
		if *concurrency < 1 || *concurrency > 16 {
			return usagef("--concurrency %d: want a number from 1 to 16", *concurrency)
		}
		opt := RunOptions{Config: cfg, Services: services, GroupBy: *groupBy, IncludePending: *pending, Concurrency: *concurrency, Focus: *focus}
		if opt.Projects, err = validateIDs("--projects", projects); err != nil {
			return usagef("%v", err)
		}
		if opt.Clusters, err = validateIDs("--clusters", clusters); err != nil {
			return usagef("%v", err)
		}
		if !validGroupBy(opt.GroupBy) {
			return usagef("--group-by %q: want organizations, projects, clusters or services", opt.GroupBy)
		}
		if err := setPeriod(fs, &opt, *period, *from, *to); err != nil {
			return err
		}
		if _, err := opt.Months(a.Now()); err != nil {
			return usagef("%v", err)
		}
		if a.Exporter == nil {
			return errNotWired
		}

		p := newPrinter(m, a.Stdout, a.Stderr, a.Now)
		start := a.Now()
		sum, runErr := a.Exporter.Run(ctx, opt, p)
		elapsed := a.Now().Sub(start)
		p.JSON(struct {
			Event string `json:"event"`
			Summary
			ElapsedSeconds float64 `json:"elapsedSeconds"`
			Error          string  `json:"error,omitempty"`
		}{"summary", sum, elapsed.Seconds(), errText(runErr)})
		// A failed run still lists what it wrote before failing.
		if runErr == nil || len(sum.Objects) > 0 {
			p.Human(func(w io.Writer) { writeSummary(w, opt.Out, sum, elapsed) })
		}
		if runErr != nil {
			return fmt.Errorf("export: %w", runErr)
		}
		return nil
	}
}

// setPeriod takes either --period or --from/--to, never both.
func setPeriod(fs *flag.FlagSet, opt *RunOptions, period, from, to string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case from == "" && to == "":
		opt.Period = period
	case set["period"]:
		return usagef("give --period or --from/--to, not both")
	case from == "" || to == "":
		return usagef("--from and --to go together")
	default:
		opt.From, opt.To = from, to
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return oneLine(err.Error())
}
