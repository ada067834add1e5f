// Package local runs the export steps in this process for the command-line
// tool: the same steps and poll protocol as the state machine, with
// credentials from the environment or Secrets Manager, into a local folder
// or S3.
package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlasclient"
	"github.com/atlas-billing-export/atlas-billing-export/internal/cli"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/report"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Exporter is the command-line tool's `run`.
type Exporter struct{}

// wired is an export.Exporter built from the tool's configuration, and how
// to read back what it wrote.
type wired struct {
	exp  *export.Exporter
	open report.Opener
	out  cli.Output
}

func build(ctx context.Context, cfg cli.Config) (*wired, error) {
	var (
		creds  atlasclient.Credentials
		awsCfg *aws.Config
	)
	loadAWS := func() (aws.Config, error) {
		if awsCfg != nil {
			return *awsCfg, nil
		}
		var opts []func(*awsconfig.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, awsconfig.WithRegion(cfg.Region))
		}
		c, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
		}
		awsCfg = &c
		return c, nil
	}
	if cfg.SecretARN != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		creds = secret.NewStore(secretsmanager.NewFromConfig(c), cfg.SecretARN)
	} else {
		creds = atlasclient.Static(secret.Credentials{
			ClientID: cfg.Credentials.ClientID, ClientSecret: cfg.Credentials.ClientSecret,
			PublicKey: cfg.Credentials.PublicKey, PrivateKey: cfg.Credentials.PrivateKey,
		})
	}
	client := atlasclient.New(creds, atlasclient.Options{
		BaseURL:   cfg.BaseURL,
		UserAgent: "atlas-billing-export/" + cli.Version + " (cli)",
	})

	w := &wired{out: cfg.Out}
	prefix := cfg.Out.Prefix
	lay, err := layout.New(prefix)
	if err != nil {
		return nil, err
	}
	var store export.Store
	if cfg.Out.Bucket != "" {
		c, err := loadAWS()
		if err != nil {
			return nil, err
		}
		s3c := s3.NewFromConfig(c, func(o *s3.Options) {
			if cfg.S3Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.S3Endpoint)
				o.UsePathStyle = true
			}
		})
		store = sink.NewS3(s3c, cfg.Out.Bucket, sink.S3Options{KMSKeyID: cfg.KMSKeyID, StagingPrefix: lay.Staging()})
		w.open = func(ctx context.Context, key string) (io.ReadCloser, error) {
			out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(cfg.Out.Bucket), Key: aws.String(key)})
			if err != nil {
				return nil, err
			}
			return out.Body, nil
		}
	} else {
		store = sink.NewDir(cfg.Out.Dir)
		w.open = func(_ context.Context, key string) (io.ReadCloser, error) {
			return os.Open(filepath.Join(cfg.Out.Dir, filepath.FromSlash(key)))
		}
	}
	w.exp = &export.Exporter{
		Atlas:       client,
		Store:       store,
		Layout:      lay,
		MaxAttempts: cfg.MaxPolls,
		Focus:       true,
		Orgs: func(ctx context.Context) ([]string, error) {
			if len(cfg.OrgIDs) > 0 {
				return cfg.OrgIDs, nil
			}
			return client.OrgIDs(ctx)
		},
	}
	return w, nil
}

// Run exports what opt asks for, reporting progress, and sums up the usage
// from the files written.
func (Exporter) Run(ctx context.Context, opt cli.RunOptions, progress cli.Progress) (cli.Summary, error) {
	w, err := build(ctx, opt.Config)
	if err != nil {
		return cli.Summary{}, err
	}
	w.exp.Progress = func(e export.Event) { progress.Report(event(e, w.out)) }
	w.exp.Focus = opt.Focus
	req := export.Request{
		OrgIDs: opt.OrgIDs, Period: opt.Period,
		Services: opt.Services, Projects: opt.Projects, Clusters: opt.Clusters,
		GroupBy: opt.GroupBy, IncludePending: opt.IncludePending,
	}
	if opt.From != "" {
		months, err := period.Months(opt.From, opt.To)
		if err != nil {
			return cli.Summary{}, err
		}
		req.Period = ""
		req.StartDate, req.EndDate = months[0].StartDate(), months[len(months)-1].EndDate()
	}
	results, runErr := (&export.Runner{Exporter: w.exp, Concurrency: opt.Concurrency}).Run(ctx, req)
	sum := cli.Summary{}
	var usage []report.Usage
	seenOrg, seenMonth := map[string]bool{}, map[string]bool{}
	for _, r := range results {
		if r.OrgID == "" {
			continue // a job that did not finish
		}
		if !seenOrg[r.OrgID] {
			seenOrg[r.OrgID] = true
			sum.Orgs = append(sum.Orgs, r.OrgID)
		}
		if !seenMonth[r.Period.Label()] {
			seenMonth[r.Period.Label()] = true
			sum.Months = append(sum.Months, r.Period.Label())
		}
		for _, o := range r.Objects {
			sum.Objects = append(sum.Objects, object(o, w.out))
			// The normalized file: fixed column names, whatever Atlas's CSV calls them.
			if kindOf(o.Key) == "usage-normalized" {
				usage = append(usage, report.Usage{Key: o.Key, Month: r.Period.Label()})
			}
		}
	}
	if runErr != nil {
		return sum, runErr
	}
	if sum.Totals, err = report.Totals(ctx, usage, w.open); err != nil {
		return sum, fmt.Errorf("summing up the usage: %w", err)
	}
	return sum, nil
}

// kinds names each dataset of the layout for the tool's output.
var kinds = []struct{ folder, kind string }{
	{layout.UsageFolder, "usage"},
	{layout.InvoicesFolder, "invoice"},
	{layout.NormalizedUsageFolder, "usage-normalized"},
	{layout.NormalizedInvoiceFolder, "invoice-line-items"},
	{layout.FocusFolder, "focus"},
	{layout.NormalizedFocusFolder, "focus-normalized"},
}

// kindOf is the kind of the dataset a key is in, "" for none.
func kindOf(key string) string {
	for _, k := range kinds {
		if strings.Contains(key, "/"+k.folder+"/") || strings.HasPrefix(key, k.folder+"/") {
			return k.kind
		}
	}
	return ""
}

// object describes a stored object for the tool, with the partition values
// read off its key.
func object(o sink.Object, out cli.Output) cli.Object {
	c := cli.Object{Kind: kindOf(o.Key), Key: o.Key, Bytes: o.Bytes, SHA256: o.SHA256, Rows: o.Rows, Skipped: o.Skipped}
	if out.Bucket != "" {
		c.Bucket = o.Bucket
	}
	for _, seg := range strings.Split(o.Key, "/") {
		k, v, _ := strings.Cut(strings.TrimSuffix(seg, ".csv"), "=")
		switch k {
		case "org_id":
			c.Org = v
		case "billing_month":
			c.Month = v
		case "invoice_id":
			c.InvoiceID = v
		}
	}
	return c
}

func event(e export.Event, out cli.Output) cli.Event {
	c := cli.Event{Org: e.OrgID, Step: e.Step, Attempt: e.Attempt, Status: e.Status, Wait: e.Wait, Key: e.Key, Bytes: e.Bytes}
	if !e.Period.Start.IsZero() {
		c.Month = e.Period.Label()
	}
	switch e.Step {
	case "plan":
		c.Kind, c.Message = cli.EventStep, fmt.Sprintf("%d org-month(s) to export", e.Jobs)
	case "submit", "fetch-invoice", "focus-submit":
		c.Kind = cli.EventStep
	case "focus-poll":
		c.Kind, c.Message = cli.EventPoll, "FOCUS reports"
	case "wait":
		c.Kind, c.Attempt = cli.EventWait, e.Attempt+1
	case "poll":
		c.Kind = cli.EventPoll
	case "stream":
		c.Kind = cli.EventBytes
	case "object":
		o := object(*e.Object, out)
		c.Kind, c.Object, c.Key, c.Bytes = cli.EventObject, &o, o.Key, o.Bytes
	case "done":
		c.Kind, c.Message = cli.EventOrg, "done"
	default:
		c.Kind = cli.EventStep
	}
	return c
}

// Invoker is the command-line tool's `invoke`: one step on a JSON event, as
// the functions run it.
type Invoker struct {
	w *wired
}

// NewInvoker builds the steps from the tool's configuration.
func NewInvoker(ctx context.Context, opt cli.InvokeOptions) (cli.Invoker, error) {
	w, err := build(ctx, opt.Config)
	if err != nil {
		return nil, err
	}
	return Invoker{w: w}, nil
}

// Invoke runs the action step on event (its payload), as the state machine
// calls the function that takes it.
func (i Invoker) Invoke(ctx context.Context, step string, event json.RawMessage) (json.RawMessage, error) {
	fn, call, err := function.Call(step, event)
	if err != nil {
		return nil, err
	}
	out, err := (&function.Handlers{Exporter: i.w.exp}).Handler(fn)(ctx, call)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(out, "", "  ")
}
