// Package function wires the export steps into Lambda handlers: configuration
// from the environment, the secret from Secrets Manager, the S3 sink, all
// built once per cold start; and errors turned into the named errors a state
// machine's Retry and Catch match.
package function

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlasclient"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Handlers are the three functions' entry points.
type Handlers struct {
	Exporter *export.Exporter
	Log      *slog.Logger // nil: nothing is logged
	err      error        // a configuration error, reported by every invocation
}

// New builds the handlers from the environment. A configuration problem does
// not stop the runtime: each invocation reports it as Config.Invalid, which
// is where an operator looks.
// Logs are JSON lines on logOut (os.Stderr in Lambda, which CloudWatch keeps).
// norm writes the normalized files: normalize.Parquet for the functions
// that store files, nil for submit, which then does not link the Parquet
// writer (this package does not import it).
func New(ctx context.Context, getenv func(string) string, logOut io.Writer, norm export.Normalizer) *Handlers {
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	exp, err := build(ctx, getenv, log, norm)
	if err != nil {
		log.Error("configuration", "error", err.Error())
	}
	return &Handlers{Exporter: exp, Log: log, err: err}
}

func build(_ context.Context, getenv func(string) string, log *slog.Logger, norm export.Normalizer) (*export.Exporter, error) {
	cfg, err := config.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	awsCfg, err := lambdaAWSConfig(getenv)
	if err != nil {
		return nil, &export.Error{Name: export.ConfigInvalid, Msg: "the AWS configuration", Err: err}
	}
	return Build(cfg, awsCfg, getenv, "lambda", log, norm)
}

// Build wires the export of cfg, for both front ends: S3 as the store, or
// cfg.Dir (the command-line tool's folder); the secret's credentials, or
// cfg.Credentials; the AWS clients on awsCfg, which may be zero when neither
// S3 nor a secret is used. frontEnd ("lambda", "cli") goes in the
// User-Agent, with the build's version. norm writes the normalized files
// (see New).
func Build(cfg config.Config, awsCfg aws.Config, getenv func(string) string, frontEnd string, log *slog.Logger, norm export.Normalizer) (*export.Exporter, error) {
	lay, err := layout.New(cfg.Prefix)
	if err != nil {
		return nil, &export.Error{Name: export.ConfigInvalid, Msg: "ABX_PREFIX", Err: err}
	}
	var creds atlasclient.Credentials = atlasclient.Static(cfg.Credentials)
	if cfg.SecretARN != "" {
		creds = secret.NewStore(secretsmanager.NewFromConfig(awsCfg, func(o *secretsmanager.Options) {
			if v := getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER"); v != "" {
				o.BaseEndpoint = aws.String(v)
			}
		}), cfg.SecretARN)
	}
	var store export.Store = sink.NewDir(cfg.Dir)
	if cfg.Bucket != "" {
		s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			if cfg.S3Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.S3Endpoint)
				o.UsePathStyle = true
			}
		})
		store = sink.NewS3(s3c, cfg.Bucket, sink.S3Options{KMSKeyID: cfg.KMSKeyID})
	}
	client := atlasclient.New(creds, atlasclient.Options{BaseURL: cfg.BaseURL, UserAgent: atlasclient.UserAgent(frontEnd)})
	exp := &export.Exporter{
		Atlas:      client,
		Store:      store,
		Layout:     lay,
		Normalizer: norm,
		// The configured orgs, else the secret's.
		Orgs: func(ctx context.Context) ([]string, error) {
			if len(cfg.OrgIDs) > 0 {
				return cfg.OrgIDs, nil
			}
			return client.OrgIDs(ctx)
		},
		MaxAttempts: cfg.MaxPollAttempts,
		Focus:       cfg.FocusReports,
		Strict:      cfg.StrictWarnings,
		Zone:        cfg.Zone,
		Log:         log,
	}
	if cfg.SecretARN != "" {
		// Read at the plan, once for all its jobs; the environment's
		// credentials have nothing to read (and a plan needs none).
		exp.Credentials = client.Check
	}
	return exp, nil
}

// lambdaAWSConfig reads the region and the role's credentials from the
// environment Lambda sets, which is where config.LoadDefaultConfig would find
// them too; that package also links the SSO, STS and sign-in clients, which
// cost a Lambda 2 MiB of binary and a third of its cold start for nothing.
func lambdaAWSConfig(getenv func(string) string) (aws.Config, error) {
	region := cmp.Or(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	key, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case region == "":
		return aws.Config{}, errors.New("AWS_REGION is not set")
	case key == "" || secret == "":
		return aws.Config{}, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
	}
	return aws.Config{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, getenv("AWS_SESSION_TOKEN"))),
	}, nil
}

// Handler is the entry point of the function fn ("submit", "poll" or
// "fetch-invoice"), for lambda.Start: it decodes the event (Decode), runs
// the step and turns a failure into the Lambda error a Retry or Catch
// matches.
func (h *Handlers) Handler(fn string) func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		out, err := h.run(ctx, fn, raw)
		return out, h.fail(err)
	}
}

func (h *Handlers) run(ctx context.Context, fn string, raw json.RawMessage) (any, error) {
	if h.err != nil {
		return nil, h.err
	}
	ev, err := Decode(fn, raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withHeadroom(ctx)
	defer cancel()
	exp := h.Exporter
	switch ev.Action {
	case ActionPlan:
		if ev.Execution != "" {
			return exp.WritePlan(ctx, *ev.Request, ev.Execution)
		}
		return inlinePlan(ctx, exp, *ev.Request)
	case ActionSummarize:
		return exp.Summarize(ctx, *ev.Run)
	case ActionSubmit:
		return exp.Submit(ctx, *ev.Job)
	case ActionPoll:
		return exp.Poll(ctx, *ev.Job)
	case ActionFetch:
		return exp.FetchInvoices(ctx, *ev.Job)
	case ActionFocusSubmit:
		return exp.SubmitFocus(ctx, *ev.Result)
	case ActionFocusPoll:
		return exp.PollFocus(ctx, *ev.Result)
	}
	// A request, from the console or a schedule: submit takes one org and
	// one month; fetch-invoice stores the invoices of each.
	plan, err := exp.Plan(ctx, *ev.Request)
	if err != nil {
		return nil, err
	}
	if fn == "submit" {
		if len(plan.Jobs) != 1 {
			return nil, &export.Error{Name: export.InputInvalid, Msg: "this request covers several orgs or months: name one orgId and one period, or start the state machine, which exports them all"}
		}
		return exp.Submit(ctx, plan.Jobs[0])
	}
	results := make([]export.Result, 0, len(plan.Jobs))
	for _, j := range plan.Jobs {
		r, err := exp.FetchInvoices(ctx, j)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return Results{Results: results}, nil
}

// MaxResponseBytes is what a Lambda function may answer (synchronous
// invocation).
const MaxResponseBytes = 6 << 20

// inlinePlan answers the jobs of a plan asked for without an execution (the
// console, the command line's invoke), as long as Lambda can answer them.
func inlinePlan(ctx context.Context, exp *export.Exporter, req export.Request) (any, error) {
	plan, err := exp.Plan(ctx, req)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseBytes {
		return nil, &export.Error{Name: export.InputInvalid, Msg: fmt.Sprintf("the plan's %d jobs are %d bytes, more than a Lambda function answers: start the state machine, which writes its plan to S3", len(plan.Jobs), len(b))}
	}
	return json.RawMessage(b), nil
}

// Results is fetch-invoice's answer to a request, which may cover several
// orgs and months.
type Results struct {
	Results []export.Result `json:"results"`
}

// Headroom is kept back from Lambda's deadline: a step that runs out of time
// then still aborts its uploads and reports a named, retryable error, where
// Lambda would cut it off mid-stream with a timeout no Retry names.
const Headroom = 10 * time.Second

func withHeadroom(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) > 2*Headroom {
		return context.WithDeadline(ctx, dl.Add(-Headroom))
	}
	return context.WithCancel(ctx)
}

// fail turns err into the Lambda error the runtime reports: errorType is the
// stable name, errorMessage says what happened and for which org.
func (h *Handlers) fail(err error) error {
	if err == nil {
		return nil
	}
	name := export.Name(err)
	h.logger().Error("step failed", "error_type", name, "error", err.Error())
	return messages.InvokeResponse_Error{Type: name, Message: err.Error()}
}

func (h *Handlers) logger() *slog.Logger {
	return cmp.Or(h.Log, slog.New(slog.DiscardHandler))
}

// MemoryLimit is the soft limit on the Go heap the functions run with unless
// GOMEMLIMIT says otherwise. A streaming step keeps about 30 MiB live (the
// upload part buffers of an invoice's two objects); without a limit the
// collector lets the heap grow to twice its live size before it runs, and
// fetch-invoice peaked at 85 MiB resident on a 1 GiB invoice. With the limit
// it peaks at about 54 MiB for some 3% more CPU (make bench). It is a soft
// limit: a step that needs more still gets it, the collector just works
// harder.
const MemoryLimit = 48 << 20

// LimitMemory sets MemoryLimit when GOMEMLIMIT is not set, and returns the
// limit in force. Call it once, from main, before the handlers are built.
func LimitMemory(getenv func(string) string) int64 {
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
	return debug.SetMemoryLimit(-1)
}
