package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// envStateMachine names the deployed state machine for start and backfill.
const envStateMachine = "ABX_STATE_MACHINE_ARN"

// sfnAPI is the part of the Step Functions client start and backfill use.
type sfnAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, opts ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

var (
	stateMachineARN = regexp.MustCompile(`^arn:aws[a-z-]*:states:([a-z0-9-]+):\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$`)
	executionName   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
)

// sfnFlags are the flags start and backfill share.
type sfnFlags struct {
	arn      string
	orgs     listFlag
	pending  bool
	endpoint string
	region   string
	interval time.Duration
	timeout  time.Duration
}

func (s *sfnFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&s.arn, "state-machine-arn", "", "`ARN` of the deployed state machine (env "+envStateMachine+")")
	fs.Var(&s.orgs, "org", "Atlas organization `ID` (24 hex); repeat or give a comma list (default: the orgs the functions are configured with)")
	fs.BoolVar(&s.pending, "include-pending", false, "also export the current month's pending invoice")
	fs.StringVar(&s.endpoint, "endpoint", "", "custom Step Functions endpoint `URL` (tests, VPC endpoints)")
	fs.StringVar(&s.region, "region", "", "AWS `REGION` (default: the state machine ARN's region)")
	fs.DurationVar(&s.interval, "interval", 5*time.Second, "check a running execution every `DURATION`")
	fs.DurationVar(&s.timeout, "timeout", time.Hour, "stop following an execution after `DURATION` (it keeps running in AWS)")
}

// resolve validates the shared flags and builds the client.
func (s *sfnFlags) resolve(ctx context.Context, fs *flag.FlagSet, getenv func(string) string) (sfnAPI, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["state-machine-arn"] {
		s.arn = getenv(envStateMachine)
	}
	if s.arn == "" {
		return nil, usagef("no state machine: pass --state-machine-arn or set %s", envStateMachine)
	}
	match := stateMachineARN.FindStringSubmatch(s.arn)
	if match == nil {
		return nil, usagef("--state-machine-arn %.64q: want arn:aws:states:REGION:ACCOUNT:stateMachine:NAME", s.arn)
	}
	var err error
	if s.orgs, err = config.OrgIDs(s.orgs.String()); err != nil {
		return nil, usagef("--org %v", err)
	}
	if s.interval <= 0 || s.timeout <= 0 {
		return nil, usagef("--interval and --timeout must be positive")
	}
	region := s.region
	if region == "" {
		region = match[1]
	}
	if s.endpoint != "" {
		if err := config.CheckEndpoint(s.endpoint); err != nil {
			return nil, usagef("--endpoint: %v", err)
		}
	}
	cfg, err := loadAWS(ctx, region)
	if err != nil {
		return nil, err
	}
	client := sfn.NewFromConfig(cfg, func(o *sfn.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
	})
	return client, nil
}

// execution is one started execution and how it ended.
type execution struct {
	Month   string        `json:"month"`
	Name    string        `json:"name"`
	ARN     string        `json:"executionArn,omitempty"`
	Status  string        `json:"status"` // an ExecutionStatus, NOT_STARTED, START_FAILED or UNKNOWN
	Error   string        `json:"error,omitempty"`
	Cause   string        `json:"cause,omitempty"`
	Objects []sink.Object `json:"objects,omitempty"`
	// Warnings are the jobs' warnings the output carries.
	Warnings  []export.Warning `json:"warnings,omitempty"`
	StartedAt string           `json:"startDate,omitempty"`
	Seconds   float64          `json:"seconds,omitempty"`
}

func (e *execution) succeeded() bool { return e.Status == string(types.ExecutionStatusSucceeded) }

// failure is the one line that says why an execution did not succeed.
func (e *execution) failure() string {
	s := fmt.Sprintf("execution %s (%s): %s", e.Name, e.Month, e.Status)
	if e.Error != "" {
		s += ": " + e.Error
	}
	if e.Cause != "" {
		s += ": " + e.Cause
	}
	return oneLine(s)
}

// startAndFollow starts one execution for month and, unless noWait, follows it to its end.
func startAndFollow(ctx context.Context, api sfnAPI, s *sfnFlags, p *printer, month, spec, name string, noWait bool) *execution {
	ex := &execution{Month: month, Name: name, Status: "NOT_STARTED"}
	in, err := json.Marshal(export.Request{OrgIDs: s.orgs, Period: spec, IncludePending: s.pending})
	if err != nil {
		ex.Status, ex.Error = "START_FAILED", err.Error()
		return ex
	}
	out, err := api.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(s.arn), Name: aws.String(name), Input: aws.String(string(in)),
	})
	if err != nil {
		ex.Status = "START_FAILED"
		ex.Error, ex.Cause = awsError(err)
		return ex
	}
	ex.ARN, ex.Status = aws.ToString(out.ExecutionArn), string(types.ExecutionStatusRunning)
	if out.StartDate != nil {
		ex.StartedAt = out.StartDate.UTC().Format(time.RFC3339)
	}
	p.report(line{Kind: "execution", Month: month, Execution: name, Status: "STARTED", Message: ex.ARN})
	if noWait {
		return ex
	}
	follow(ctx, api, s, p, ex)
	return ex
}

// follow polls DescribeExecution every s.interval until the execution ends or s.timeout passes.
func follow(ctx context.Context, api sfnAPI, s *sfnFlags, p *printer, ex *execution) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	last := ex.Status
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		d, err := api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(ex.ARN)})
		if err == nil {
			ex.Status = string(d.Status)
			if d.StartDate != nil && d.StopDate != nil {
				ex.Seconds = d.StopDate.Sub(*d.StartDate).Seconds()
			}
			if ex.Status != last {
				last = ex.Status
				p.report(line{Kind: "execution", Month: ex.Month, Execution: ex.Name, Status: ex.Status})
			}
			if d.Status != types.ExecutionStatusRunning {
				ex.Error, ex.Cause = aws.ToString(d.Error), aws.ToString(d.Cause)
				ex.Objects, ex.Warnings = outputOf(aws.ToString(d.Output))
				return
			}
		}
		if err != nil && ctx.Err() == nil {
			ex.Status = "UNKNOWN"
			ex.Error, ex.Cause = awsError(err)
			ex.Cause = "DescribeExecution: " + ex.Cause
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			ex.Status = "UNKNOWN"
			ex.Error = "still " + last + " when " + progName + " stopped following"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				ex.Cause = "--timeout " + s.timeout.String() + " passed; it keeps running in AWS: " + ex.ARN
			} else {
				ex.Cause = "interrupted; it keeps running in AWS: " + ex.ARN
			}
			return
		}
	}
}

// awsError splits an SDK error into the service's error code and message ("ExecutionAlreadyExists",
// "Execution Already Exists: 'abx-...'"), without the SDK's operation and request-id wrapping. Errors
// that never reached the service (credentials, network) keep their text.
func awsError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "Error", err.Error()
}

// outputOf lists the objects and warnings of an execution's output: the state machine's summary,
// whose results (one per job) each list what the job wrote and the warnings it gave.
func outputOf(output string) ([]sink.Object, []export.Warning) {
	var summary struct {
		Results []struct {
			Objects  []sink.Object
			Warnings []export.Warning
		}
	}
	_ = json.Unmarshal([]byte(output), &summary) // no output: no objects
	var objs []sink.Object
	var warnings []export.Warning
	for _, r := range summary.Results {
		objs = append(objs, r.Objects...)
		warnings = append(warnings, r.Warnings...)
	}
	return objs, warnings
}

func defaultExecutionName(month, spec string, now time.Time) string {
	if spec == period.MonthToDate {
		return fmt.Sprintf("abx-%s-mtd-%d", month, now.Unix())
	}
	return fmt.Sprintf("abx-%s-%d", month, now.Unix())
}

var startCommand = &command{
	name:    "start",
	summary: "start the deployed state machine for one period and follow it to its end",
	about: `
Start an execution of the deployed Step Functions state machine for one period with the input
{"period":..., "orgIds":[...], "includePending":...}, then check it every --interval until it ends
(at most --timeout) and report its status: on success the objects it wrote, on failure its error and
cause. Exit 0 only when the execution SUCCEEDED (or with --no-wait once it started); 1 on FAILED,
TIMED_OUT, ABORTED or when following stopped.

The execution name defaults to abx-YYYY-MM-<unix seconds> (abx-YYYY-MM-mtd-<unix seconds> for
month-to-date). Step Functions keeps names unique for 90 days, so each start is a new execution; a
--name used before is refused (ExecutionAlreadyExists). previous-month is resolved here (UTC) so the
name and the input name the same month. AWS credentials come from the SDK's usual chain.`,
	example: `
` + progName + ` start --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:atlas-billing-export --period 2024-06`,
	setup: setupStart,
}

func setupStart(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var s sfnFlags
	s.define(fs)
	spec := fs.String("period", period.PreviousMonth, "`MONTH` to export: YYYY-MM, "+period.PreviousMonth+" or "+period.MonthToDate+" (UTC)")
	name := fs.String("name", "", "execution `NAME` (default abx-YYYY-MM-<unix seconds>)")
	noWait := fs.Bool("no-wait", false, "print the execution ARN and exit once it started")

	return func(ctx context.Context, pos []string) error {
		if len(pos) > 0 {
			return usagef("start takes no arguments, got %.40q", pos[0])
		}
		now := a.Now()
		m, err := period.Parse(*spec, now.UTC()) // as --help says
		if err == nil {
			err = export.CheckMonths([]period.Period{m}, now)
		}
		if err != nil {
			return usagef("--period: %v", err)
		}
		month, input := m.Label(), m.Label()
		if *spec == period.MonthToDate {
			input = period.MonthToDate
		}
		if *name == "" {
			*name = defaultExecutionName(month, *spec, now)
		}
		if !executionName.MatchString(*name) {
			return usagef("--name %.64q: want 1 to 80 letters, digits, - or _", *name)
		}
		api, err := s.resolve(ctx, fs, a.Getenv)
		if err != nil {
			return err
		}
		p := a.printer()
		ex := startAndFollow(ctx, api, &s, p, month, input, *name, *noWait)
		p.JSON(struct {
			Event string `json:"event"`
			*execution
		}{"result", ex})
		switch {
		case ex.Status == "START_FAILED":
			return errors.New(oneLine("start execution " + ex.Name + ": " + ex.Error + ": " + ex.Cause))
		case *noWait && ex.ARN != "":
			p.Human(func(w io.Writer) { fmt.Fprintln(w, ex.ARN) })
			return nil
		case !ex.succeeded():
			return errors.New(ex.failure())
		}
		p.Human(func(w io.Writer) { writeExecutionObjects(w, ex) })
		return nil
	}
}

func writeExecutionObjects(w io.Writer, ex *execution) {
	var bytes int64
	skipped := 0
	for _, o := range ex.Objects {
		bytes += o.Bytes
		if o.Skipped {
			skipped++
		}
	}
	fmt.Fprintf(w, "execution %s (%s): SUCCEEDED: %d objects (%d unchanged), %s, %d warning(s)\n", ex.Name, ex.Month, len(ex.Objects), skipped, formatBytes(bytes), len(ex.Warnings))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, o := range ex.Objects {
		loc := o.Key
		if o.Bucket != "" {
			loc = "s3://" + o.Bucket + "/" + o.Key
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d rows\n", loc, formatBytes(o.Bytes), o.Rows)
	}
	tw.Flush()
	if len(ex.Warnings) > 0 {
		writeWarnings(w, ex.Warnings)
	}
}

var backfillCommand = &command{
	name:    "backfill",
	summary: "start the deployed state machine once per month of a range and report each outcome",
	about: `
Start one execution of the deployed state machine per month from --from to --to (inclusive, oldest
first), with the input {"period":"YYYY-MM", "orgIds":[...], "includePending":...}, at most
--concurrency running at once, follow each to its end and print a table month -> status. Exit 1 if
any month did not succeed. Executions are named abx-YYYY-MM-<unix seconds>, so a backfill never
collides with an earlier one; re-exporting a month writes the same S3 keys and leaves files that did
not change untouched. On Ctrl-C no new month starts; started ones keep running in AWS.`,
	example: `
` + progName + ` backfill --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:atlas-billing-export \
    --from 2024-01 --to 2024-06 --concurrency 2`,
	setup: setupBackfill,
}

func setupBackfill(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var s sfnFlags
	s.define(fs)
	from := fs.String("from", "", "first `MONTH`, YYYY-MM (required)")
	to := fs.String("to", "", "last `MONTH`, YYYY-MM, inclusive (required)")
	concurrency := fs.Int("concurrency", 1, "at most `N` executions running at once")

	return func(ctx context.Context, pos []string) error {
		if len(pos) > 0 {
			return usagef("backfill takes no arguments, got %.40q", pos[0])
		}
		if *from == "" || *to == "" {
			return usagef("--from and --to are required")
		}
		now := a.Now()
		months, err := period.Months(*from, *to)
		if err == nil {
			err = export.CheckMonths(months, now)
		}
		if err != nil {
			return usagef("--from/--to: %v", err)
		}
		if *concurrency < 1 {
			return usagef("--concurrency %d: want at least 1", *concurrency)
		}
		api, err := s.resolve(ctx, fs, a.Getenv)
		if err != nil {
			return err
		}
		p := a.printer()
		results := make([]*execution, len(months))
		sem := make(chan struct{}, *concurrency)
		var wg sync.WaitGroup
	loop:
		for i, m := range months {
			month := m.Label()
			if ctx.Err() != nil {
				break // interrupted: start nothing new
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				results[i] = startAndFollow(ctx, api, &s, p, month, month, defaultExecutionName(month, month, now), false)
			}()
		}
		wg.Wait()
		failed := 0
		for i, ex := range results {
			if ex == nil {
				ex = &execution{Month: months[i].Label(), Status: "NOT_STARTED", Error: "interrupted before it started"}
				results[i] = ex
			}
			if !ex.succeeded() {
				failed++
			}
			p.JSON(struct {
				Event string `json:"event"`
				*execution
			}{"result", ex})
		}
		p.Human(func(w io.Writer) { writeBackfillTable(w, results) })
		if failed > 0 {
			first := ""
			for _, ex := range results {
				if !ex.succeeded() {
					first = ex.failure()
					break
				}
			}
			return fmt.Errorf("backfill: %d of %d months did not succeed; first: %s", failed, len(months), first)
		}
		return nil
	}
}

func writeBackfillTable(w io.Writer, results []*execution) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MONTH\tSTATUS\tOBJECTS\tWARNINGS\tEXECUTION\tERROR")
	for _, ex := range results {
		objs, warnings := "-", "-"
		if ex.succeeded() {
			objs, warnings = fmt.Sprint(len(ex.Objects)), fmt.Sprint(len(ex.Warnings))
		}
		errText := ex.Error
		if ex.Cause != "" {
			errText += ": " + ex.Cause
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ex.Month, ex.Status, objs, warnings, or(ex.Name, "-"), oneLine(errText))
	}
	tw.Flush()
}
