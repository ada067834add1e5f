package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
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

	aws aws.Config // loaded by resolve
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
	if !isSet(fs, "state-machine-arn") {
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
	region := cmp.Or(s.region, match[1])
	if s.endpoint != "" {
		if err := config.CheckEndpoint(s.endpoint); err != nil {
			return nil, usagef("--endpoint: %v", err)
		}
	}
	cfg, err := loadAWS(ctx, region)
	if err != nil {
		return nil, err
	}
	s.aws = cfg
	client := sfn.NewFromConfig(cfg, func(o *sfn.Options) {
		if s.endpoint != "" {
			o.BaseEndpoint = aws.String(s.endpoint)
		}
	})
	return client, nil
}

// execution is one started execution and how it ended.
type execution struct {
	Event     string          `json:"event"` // "result": its JSON line says how it ended
	Month     string          `json:"month"` // YYYY-MM, or FROM..TO for a range
	Name      string          `json:"name"`
	ARN       string          `json:"executionArn,omitempty"`
	Status    string          `json:"status"` // an ExecutionStatus, NOT_STARTED, START_FAILED or UNKNOWN
	Error     string          `json:"error,omitempty"`
	Cause     string          `json:"cause,omitempty"`
	Summary   *export.Summary `json:"summary,omitempty"` // the output of one that succeeded
	StartedAt string          `json:"startDate,omitempty"`
	Seconds   float64         `json:"seconds,omitempty"`
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

// startAndFollow starts one execution with req (labelled month) and, unless noWait, follows it to
// its end. The orgs and includePending are the flags' unless req names orgs.
func startAndFollow(ctx context.Context, api sfnAPI, s *sfnFlags, p *printer, month string, req export.Request, name string, noWait bool) *execution {
	ex := &execution{Event: "result", Month: month, Name: name, Status: "NOT_STARTED"}
	req.IncludePending = s.pending
	if req.OrgIDs == nil {
		req.OrgIDs = s.orgs
	}
	in, err := json.Marshal(req)
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
				ex.Summary = summaryIn(aws.ToString(d.Output))
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

// summaryIn reads an execution's output, the state machine's summary (export.Summary); nil when
// there is none (a failed execution has no output: its cause says where its outcomes are).
func summaryIn(output string) *export.Summary {
	var sum export.Summary
	if output == "" || json.Unmarshal([]byte(output), &sum) != nil || sum.Jobs == 0 {
		return nil
	}
	return &sum
}

func defaultExecutionName(month, spec string, now time.Time) string {
	if spec == period.MonthToDate {
		return fmt.Sprintf("abx-%s-mtd-%d", month, now.Unix())
	}
	return fmt.Sprintf("abx-%s-%d", month, now.Unix())
}

var startCommand = &command{
	name:    "start",
	summary: "start the deployed state machine for one period or range and follow it to its end",
	about: `
Start an execution of the deployed Step Functions state machine for one period with the input
{"period":..., "orgIds":[...], "includePending":...}, or for every month of --from..--to with
{"startDate":..., "endDate":...}, then check it every --interval until it ends (at most --timeout)
and report its status: on success its summary (jobs, objects, where every object is listed), on
failure its error and cause (which name the failed jobs and where the run's outcomes are). Exit 0
only when the execution SUCCEEDED (or with --no-wait once it started); 1 on FAILED, TIMED_OUT,
ABORTED or when following stopped.

One execution takes up to 1,000 orgs and 120 months: each org in a child execution of its own,
its months two at a time. The execution name defaults to abx-YYYY-MM-<unix seconds>
(abx-YYYY-MM-mtd-<unix seconds> for month-to-date, abx-FROM-to-TO-<unix seconds> for a range).
Step Functions keeps names unique for 90 days, so each start is a new execution; a --name used
before is refused (ExecutionAlreadyExists). previous-month is resolved here (UTC) so the name and
the input name the same month. AWS credentials come from the SDK's usual chain.`,
	example: `
` + progName + ` start --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:atlas-billing-export-export --period 2024-06
` + progName + ` start --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:atlas-billing-export-export --from 2023-01 --to 2024-06`,
	setup: setupStart,
}

func setupStart(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var s sfnFlags
	s.define(fs)
	spec := fs.String("period", period.PreviousMonth, "`MONTH` to export: YYYY-MM, "+period.PreviousMonth+" or "+period.MonthToDate+" (UTC)")
	from := fs.String("from", "", "first `MONTH` of a range, YYYY-MM (with --to, instead of --period): one execution for all of it")
	to := fs.String("to", "", "last `MONTH` of a range, YYYY-MM, inclusive")
	name := fs.String("name", "", "execution `NAME` (default abx-YYYY-MM-<unix seconds>)")
	noWait := fs.Bool("no-wait", false, "print the execution ARN and exit once it started")

	return func(ctx context.Context, _ []string) error {
		label, req, err := startRequest(fs, *spec, *from, *to, a.Now())
		if err != nil {
			return err
		}
		if *name == "" {
			*name = req.name
		}
		if !executionName.MatchString(*name) {
			return usagef("--name %.64q: want 1 to 80 letters, digits, - or _", *name)
		}
		api, err := s.resolve(ctx, fs, a.Getenv)
		if err != nil {
			return err
		}
		p := a.printer()
		ex := startAndFollow(ctx, api, &s, p, label, req.Request, *name, *noWait)
		p.JSON(ex)
		switch {
		case ex.Status == "START_FAILED":
			return errors.New(oneLine("start execution " + ex.Name + ": " + ex.Error + ": " + ex.Cause))
		case *noWait && ex.ARN != "":
			p.Human(func(w io.Writer) { fmt.Fprintln(w, ex.ARN) })
			return nil
		case !ex.succeeded():
			return errors.New(ex.failure())
		}
		p.Human(func(w io.Writer) { writeExecutionSummary(w, ex) })
		return nil
	}
}

// named is a request with its default execution name.
type named struct {
	export.Request
	name string
}

// startRequest is what start asks for: one period, or a range of months.
func startRequest(fs *flag.FlagSet, spec, from, to string, now time.Time) (string, named, error) {
	switch {
	case from == "" && to == "":
		m, err := period.Parse(spec, now)
		if err == nil {
			err = export.CheckMonths([]period.Period{m}, now)
		}
		if err != nil {
			return "", named{}, usagef("--period: %v", err)
		}
		req := named{Request: export.Request{Period: m.Label()}, name: defaultExecutionName(m.Label(), spec, now)}
		if spec == period.MonthToDate {
			req.Period = period.MonthToDate
		}
		return m.Label(), req, nil
	case isSet(fs, "period"):
		return "", named{}, usagef("give --period or --from/--to, not both")
	case from == "" || to == "":
		return "", named{}, usagef("--from and --to go together")
	}
	months, err := rangeMonths(from, to, now)
	if err != nil {
		return "", named{}, err
	}
	first, last := months[0], months[len(months)-1]
	return first.Label() + ".." + last.Label(), named{
		Request: export.Request{StartDate: first.StartDate(), EndDate: last.EndDate()},
		name:    fmt.Sprintf("abx-%s-to-%s-%d", first.Label(), last.Label(), now.Unix()),
	}, nil
}

// rangeMonths are the months of --from..--to, each one Atlas can bill.
func rangeMonths(from, to string, now time.Time) ([]period.Period, error) {
	months, err := period.Months(from, to)
	if err == nil {
		err = export.CheckMonths(months, now)
	}
	if err != nil {
		return nil, usagef("--from/--to: %v", err)
	}
	return months, nil
}

// writeExecutionSummary says what a succeeded execution did, and where every object it wrote is
// listed.
func writeExecutionSummary(w io.Writer, ex *execution) {
	sum := ex.Summary
	if sum == nil {
		fmt.Fprintf(w, "execution %s (%s): SUCCEEDED\n", ex.Name, ex.Month)
		return
	}
	fmt.Fprintf(w, "execution %s (%s): SUCCEEDED: %d org(s) x %d month(s), %d objects (%d unchanged), %s, %d warning(s)\n",
		ex.Name, ex.Month, sum.Orgs, sum.Months, sum.Objects, sum.Unchanged, formatBytes(sum.Bytes), warnings(sum))
	if sum.Outcomes != "" {
		fmt.Fprintf(w, "  every object and warning: s3://%s/%s\n", sum.Bucket, sum.Outcomes)
	}
	if len(sum.WarningList) > 0 {
		writeWarnings(w, sum.WarningList)
		if more := warnings(sum) - len(sum.WarningList); more > 0 {
			fmt.Fprintf(w, "  and %d more in the outcomes\n", more)
		}
	}
}

// warnings counts a summary's warnings.
func warnings(sum *export.Summary) int {
	n := 0
	for _, c := range sum.Warnings {
		n += c
	}
	return n
}

var backfillCommand = &command{
	name:    "backfill",
	summary: "start the deployed state machine once per month of a range, or for a run's failed jobs",
	about: `
Start one execution of the deployed state machine per month from --from to --to (inclusive, oldest
first), with the input {"period":"YYYY-MM", "orgIds":[...], "includePending":...}, at most
--concurrency running at once, follow each to its end and print a table month -> status. Exit 1 if
any month did not succeed. Executions are named abx-YYYY-MM-<unix seconds>, so a backfill never
collides with an earlier one; re-exporting a month writes the same S3 keys and leaves files that did
not change untouched. On Ctrl-C no new month starts; started ones keep running in AWS. (One
execution also takes a whole range: start --from --to.)

With --retry-failed, the months and orgs come from a run's outcomes instead: the file a failed
execution's cause names (PREFIX/_runs/<execution>/outcomes.jsonl, every job's outcome, one JSON line
each), given as a path or as s3://BUCKET/KEY. Only its failed jobs are exported again, one execution
per month with that month's failed orgs (named abx-YYYY-MM-retry-<unix seconds>).`,
	example: `
` + progName + ` backfill --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:atlas-billing-export-export \
    --from 2024-01 --to 2024-06 --concurrency 2
` + progName + ` backfill --state-machine-arn arn:aws:states:eu-west-1:123456789012:stateMachine:atlas-billing-export-export \
    --retry-failed s3://my-lake/atlas-billing/_runs/abx-2024-06-1719792000/outcomes.jsonl`,
	setup: setupBackfill,
}

// monthJobs are the orgs to export for one month (nil: the configured ones).
type monthJobs struct {
	Month string
	Orgs  []string
}

func setupBackfill(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var s sfnFlags
	s.define(fs)
	from := fs.String("from", "", "first `MONTH`, YYYY-MM (required without --retry-failed)")
	to := fs.String("to", "", "last `MONTH`, YYYY-MM, inclusive (required without --retry-failed)")
	retry := fs.String("retry-failed", "", "export again only the failed jobs of a run's `OUTCOMES` (a path or s3://BUCKET/KEY of its outcomes.jsonl)")
	concurrency := fs.Int("concurrency", 1, "at most `N` executions running at once")

	return func(ctx context.Context, _ []string) error {
		now := a.Now()
		var jobs []monthJobs
		switch {
		case *retry != "":
			if *from != "" || *to != "" || len(s.orgs) > 0 {
				return usagef("--retry-failed takes its months and orgs from the outcomes: no --from, --to or --org")
			}
		case *from == "" || *to == "":
			return usagef("--from and --to are required")
		default:
			months, err := rangeMonths(*from, *to, now)
			if err != nil {
				return err
			}
			for _, m := range months {
				jobs = append(jobs, monthJobs{Month: m.Label()})
			}
		}
		if *concurrency < 1 {
			return usagef("--concurrency %d: want at least 1", *concurrency)
		}
		api, err := s.resolve(ctx, fs, a.Getenv)
		if err != nil {
			return err
		}
		name := func(month string) string { return defaultExecutionName(month, month, now) }
		if *retry != "" {
			if jobs, err = s.failedJobs(ctx, *retry); err != nil {
				return err
			}
			if len(jobs) == 0 {
				a.printer().Human(func(w io.Writer) { fmt.Fprintln(w, "backfill: no job failed in "+*retry) })
				return nil
			}
			name = func(month string) string { return fmt.Sprintf("abx-%s-retry-%d", month, now.Unix()) }
		}
		p := a.printer()
		results := make([]*execution, len(jobs))
		sem := make(chan struct{}, *concurrency)
		var wg sync.WaitGroup
	loop:
		for i, j := range jobs {
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
				results[i] = startAndFollow(ctx, api, &s, p, j.Month, export.Request{Period: j.Month, OrgIDs: j.Orgs}, name(j.Month), false)
			}()
		}
		wg.Wait()
		failed, first := 0, ""
		for i, ex := range results {
			if ex == nil {
				ex = &execution{Event: "result", Month: jobs[i].Month, Status: "NOT_STARTED", Error: "interrupted before it started"}
				results[i] = ex
			}
			if !ex.succeeded() {
				failed++
				first = cmp.Or(first, ex.failure())
			}
			p.JSON(ex)
		}
		p.Human(func(w io.Writer) { writeBackfillTable(w, results) })
		if failed > 0 {
			return fmt.Errorf("backfill: %d of %d months did not succeed; first: %s", failed, len(jobs), first)
		}
		return nil
	}
}

// failedJobs reads a run's outcomes (a path, or s3://BUCKET/KEY read with the AWS configuration
// resolve loaded) and groups its failed jobs by month.
func (s *sfnFlags) failedJobs(ctx context.Context, where string) ([]monthJobs, error) {
	var r io.ReadCloser
	if bucket, key, ok := strings.Cut(strings.TrimPrefix(where, "s3://"), "/"); strings.HasPrefix(where, "s3://") && ok && bucket != "" && key != "" {
		out, err := s3.NewFromConfig(s.aws).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			e, m := awsError(err)
			return nil, fmt.Errorf("--retry-failed %s: %s: %s", oneLine(where), e, m)
		}
		r = out.Body
	} else {
		f, err := os.Open(where)
		if err != nil {
			return nil, usagef("--retry-failed: %v", err)
		}
		r = f
	}
	defer r.Close()
	jobs, err := readFailed(r)
	if err != nil {
		return nil, usagef("--retry-failed %.80s: %v", where, err)
	}
	return jobs, nil
}

// readFailed groups the failed jobs of a run's outcomes (export.Outcome JSON lines) by month,
// months in order, each month's orgs in the order listed.
func readFailed(r io.Reader) ([]monthJobs, error) {
	byMonth := map[string][]string{}
	dec := json.NewDecoder(io.LimitReader(r, 1<<30))
	for line := 1; ; line++ {
		var o export.Outcome
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d is not a job's outcome: %v", line, err)
		}
		if !o.Failed() {
			continue
		}
		if atlas.ValidateOrgID(o.OrgID) != nil || o.Period.Start.IsZero() {
			return nil, fmt.Errorf("line %d: org %.40q, month %q: not a job", line, o.OrgID, o.Period)
		}
		m := o.Period.Label()
		if !slices.Contains(byMonth[m], o.OrgID) {
			byMonth[m] = append(byMonth[m], o.OrgID)
		}
	}
	var out []monthJobs
	for _, m := range slices.Sorted(maps.Keys(byMonth)) {
		out = append(out, monthJobs{Month: m, Orgs: byMonth[m]})
	}
	return out, nil
}

func writeBackfillTable(w io.Writer, results []*execution) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MONTH\tSTATUS\tJOBS\tOBJECTS\tWARNINGS\tEXECUTION\tERROR")
	for _, ex := range results {
		jobs, objs, warned := "-", "-", "-"
		if ex.Summary != nil {
			jobs, objs, warned = fmt.Sprint(ex.Summary.Jobs), fmt.Sprint(ex.Summary.Objects), fmt.Sprint(warnings(ex.Summary))
		}
		errText := ex.Error
		if ex.Cause != "" {
			errText += ": " + ex.Cause
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ex.Month, ex.Status, jobs, objs, warned, cmp.Or(ex.Name, "-"), oneLine(errText))
	}
	tw.Flush()
}
