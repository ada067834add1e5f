package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/costreport"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
)

var reportCommand = &command{
	name:    "report",
	summary: "write a one-page HTML cost report of an export (a folder or S3)",
	about: `
Read an export (the layout run and the functions write, in a local folder or s3://bucket/prefix): its
manifests (_manifests/...) and the normalized datasets they list (usage_normalized, invoice_line_items,
focus_normalized), for the months and organizations asked (default: every one found), and write one
self-contained HTML file: inline SVG charts and CSS, no script, nothing fetched, so it opens offline,
prints on A4 and travels as an email attachment. It shows the cost per month stacked by service, the
top 10 projects and clusters of the last month with their change from the month before, the change per
service, each invoice's line items against its totals and against its FOCUS report, and the files it
read. Every chart has a table of the same numbers; money is exact, summed from the exported decimals.

Reading S3 needs s3:ListBucket on the prefix and s3:GetObject (the export itself never lists), with the
AWS SDK's usual credentials. Exit 2 when there is no export at the location or nothing for the months
and organizations asked.`,
	example: progName + ` report --in ./out --out report.html
` + progName + ` report --in s3://my-lake/atlas-billing --from 2024-01 --to 2024-06 --org 5f1a2b3c4d5e6f7a8b9c0d1e`,
	setup: setupReport,
}

func setupReport(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var in, out, from, to, endpoint, region string
	var orgs listFlag
	fs.StringVar(&in, "in", "", "the export to read: a local `FOLDER` or s3://bucket/prefix (default "+config.DefaultOutputDir+", or s3://$"+config.EnvBucket+"/$"+config.EnvPrefix+" when "+config.EnvBucket+" is set)")
	fs.StringVar(&out, "out", "report.html", "write the report to this `FILE`")
	fs.StringVar(&from, "from", "", "first `MONTH` to report on, YYYY-MM (default: the first found)")
	fs.StringVar(&to, "to", "", "last `MONTH`, YYYY-MM, inclusive (default: the last found)")
	fs.Var(&orgs, "org", "only this organization `ID` (24 hex); repeat or give a comma list (default: every one found)")
	fs.StringVar(&endpoint, "s3-endpoint", "", "custom S3 endpoint `URL`, path-style, e.g. versitygw or MinIO (env "+config.EnvS3Endpoint+")")
	fs.StringVar(&region, "region", "", "AWS `REGION` of the bucket (default: AWS_REGION or the AWS profile)")

	return func(ctx context.Context, _ []string) error {
		opt := costreport.Options{Orgs: orgs, From: from, To: to, Now: a.Now()}
		if err := checkReportOptions(opt); err != nil {
			return err
		}
		if err := checkReportFile(out); err != nil {
			return err
		}
		getenv := func(k string) string {
			switch k {
			case config.EnvBucket, config.EnvPrefix: // where the export is, and nothing else
				return a.Getenv(k)
			case config.EnvS3Endpoint:
				if endpoint != "" {
					return endpoint
				}
				return a.Getenv(k)
			}
			return ""
		}
		cfg, err := config.Local(getenv, in)
		if err != nil {
			return err
		}
		exp, err := reportExporter(ctx, cfg, region, getenv)
		if err != nil {
			return err
		}
		opt.Where = where(cfg)
		return a.writeReport(ctx, exp, opt, out)
	}
}

// checkReportOptions checks the orgs and months asked for.
func checkReportOptions(opt costreport.Options) error {
	if _, err := config.OrgIDs(strings.Join(opt.Orgs, ",")); err != nil {
		return usagef("--org: %v", err)
	}
	for _, m := range []struct{ flag, v string }{{"--from", opt.From}, {"--to", opt.To}} {
		if m.v == "" {
			continue
		}
		if _, err := period.Months(m.v, m.v); err != nil {
			return usagef("%s: want a month YYYY-MM, got %.40q", m.flag, m.v)
		}
	}
	if opt.From != "" && opt.To != "" {
		if _, err := period.Months(opt.From, opt.To); err != nil {
			return usagef("--from/--to: %v", err)
		}
	}
	return nil
}

// checkReportFile refuses a report file whose folder is not there, before
// anything is read or exported.
func checkReportFile(file string) error {
	if file == "" {
		return usagef("--report/--out: no file name")
	}
	dir := filepath.Dir(file)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return usagef("report file %.80q: its folder %.80q does not exist", file, dir)
	}
	return nil
}

// reportExporter builds the store the report reads, as the export's
// (function.Build), without creating a folder: a folder that is not there
// holds no export.
func reportExporter(ctx context.Context, cfg config.Config, region string, getenv func(string) string) (*export.Exporter, error) {
	var awsCfg aws.Config
	var err error
	if cfg.Dir != "" {
		if fi, err := os.Stat(cfg.Dir); err != nil || !fi.IsDir() {
			return nil, usagef("no export at %.80q: no such folder", cfg.Dir)
		}
	} else if awsCfg, err = loadAWS(ctx, region); err != nil {
		return nil, err
	}
	return function.Build(cfg, awsCfg, getenv, "cli", nil, normalize.Parquet{})
}

// writeReport reads the export exp stores and writes the report to file
// (writeFileAtomic).
func (a *App) writeReport(ctx context.Context, exp *export.Exporter, opt costreport.Options, file string) error {
	st, ok := exp.Store.(costreport.Store)
	if !ok {
		return fmt.Errorf("report: the store %T cannot be listed", exp.Store)
	}
	rep, err := costreport.Read(ctx, st, exp.Layout, opt)
	var none *costreport.NoExportError
	if errors.As(err, &none) {
		return usagef("%s", none.Msg)
	}
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := writeFileAtomic(file, rep.WriteHTML); err != nil {
		return fmt.Errorf("report: writing %s: %w", file, err)
	}
	p := a.printer()
	ev := struct {
		Event  string   `json:"event"`
		File   string   `json:"file"`
		Orgs   int      `json:"orgs"`
		Months []string `json:"months"`
		Files  int      `json:"filesRead"`
		Notes  []string `json:"notes"`
	}{"report", file, len(rep.Orgs), rep.Months, len(rep.Files), append([]string{}, rep.Notes...)}
	p.JSON(ev)
	p.Human(func(w io.Writer) {
		fmt.Fprintf(w, "report: %s (%d org(s), %s, %d files read)\n", file, ev.Orgs, monthsText(rep.Months), ev.Files)
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	})
	return nil
}
