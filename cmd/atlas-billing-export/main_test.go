package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/cli"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// bin is the tool, built once for all tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "abx-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "atlas-billing-export")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// run executes the tool with a clean environment (nothing of the developer's AWS or Atlas setup leaks
// in) plus env, bounded to a minute.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return start(t, env, args...).wait(t)
}

// started is a run of the tool going on.
type started struct {
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	args           []string
	stdout, stderr testenv.Buffer // read while it runs, too
	res            *result        // once it ended
}

// start starts the tool as run does and returns at once.
func start(t *testing.T, env []string, args ...string) *started {
	t.Helper()
	return startIn(t, "", time.Minute, env, args...)
}

// startIn is start in the folder dir (empty: the test's), bounded to limit.
func startIn(t *testing.T, dir string, limit time.Duration, env []string, args ...string) *started {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	s := &started{cmd: exec.CommandContext(ctx, bin, args...), cancel: cancel, args: args}
	s.cmd.Dir = dir
	s.cmd.Env = append([]string{
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLETEST",
		"AWS_SECRET_ACCESS_KEY=test-secret-key",
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}, env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.stdout, &s.stderr
	if err := s.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("run %q: %v", args, err)
	}
	t.Cleanup(func() { s.wait(t) }) // a test that stopped early still reaps it
	return s
}

// wait waits for the run to end and returns its result.
func (s *started) wait(t *testing.T) result {
	t.Helper()
	if s.res != nil {
		return *s.res
	}
	err := s.cmd.Wait()
	s.cancel()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %q: %v", s.args, err)
	}
	s.res = &result{code: s.cmd.ProcessState.ExitCode(), stdout: s.stdout.String(), stderr: s.stderr.String()}
	return *s.res
}

func TestHelp(t *testing.T) {
	for _, name := range append([]string{""}, cli.Commands()...) {
		t.Run("help "+name, func(t *testing.T) {
			args := []string{"--help"}
			if name != "" {
				args = []string{name, "--help"}
			}
			r := run(t, nil, args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stdout, "Usage: atlas-billing-export") || !strings.Contains(r.stdout, "Example") {
				t.Fatalf("help lacks a usage line or an example:\n%s", r.stdout)
			}
			if name == "" {
				for _, c := range cli.Commands() {
					if !strings.Contains(r.stdout, "\n  "+c+" ") {
						t.Errorf("top-level help does not list %s", c)
					}
				}
				return
			}
			fs, err := cli.FlagSet(name)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			fs.VisitAll(func(f *flag.Flag) {
				n++
				if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(r.stdout) {
					t.Errorf("help does not name --%s:\n%s", f.Name, r.stdout)
				}
			})
			if name != "version" && n == 0 {
				t.Fatalf("%s defines no flags", name)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:atlas-billing-export"
	creds := []string{"MONGODB_ATLAS_CLIENT_ID=id", "MONGODB_ATLAS_CLIENT_SECRET=s", "ABX_ORG_IDS=5f1a2b3c4d5e6f7a8b9c0d1e"}
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown subcommand", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"run: bad period", creds, []string{"run", "--period", "2024-6"}, `Input.Invalid: period "2024-6"`},
		{"run: from after to", creds, []string{"run", "--from", "2024-06", "--to", "2024-04"}, "--from/--to: range end 2024-04 is before its start 2024-06"},
		{"run: no credentials", []string{"ABX_ORG_IDS=5f1a2b3c4d5e6f7a8b9c0d1e"}, []string{"run"}, "no Atlas credentials"},
		{"run: unknown flag", creds, []string{"run", "--bogus"}, "flag provided but not defined: -bogus"},
		{"backfill: from after to", nil, []string{"backfill", "--state-machine-arn", arn, "--from", "2024-06", "--to", "2024-04"}, "--from/--to: range end 2024-04 is before its start 2024-06"},
		{"backfill: missing to", nil, []string{"backfill", "--state-machine-arn", arn, "--from", "2024-06"}, "--from and --to are required"},
		{"backfill: zero concurrency", nil, []string{"backfill", "--state-machine-arn", arn, "--from", "2024-04", "--to", "2024-05", "--concurrency", "0"}, "--concurrency 0"},
		{"start: bad period", nil, []string{"start", "--state-machine-arn", arn, "--period", "last-month"}, `--period: period "last-month"`},
		{"start: no state machine", nil, []string{"start", "--period", "2024-06"}, "no state machine"},
		{"start: bad ARN", nil, []string{"start", "--state-machine-arn", "atlas-billing-export"}, "--state-machine-arn"},
		{"start: bad name", nil, []string{"start", "--state-machine-arn", arn, "--name", "june run!"}, `--name "june run!"`},
		{"start: bad org", nil, []string{"start", "--state-machine-arn", arn, "--org", "acme"}, `--org "acme"`},
		{"start: period and range", nil, []string{"start", "--state-machine-arn", arn, "--period", "2024-06", "--from", "2024-01", "--to", "2024-02"}, "give --period or --from/--to, not both"},
		{"start: half a range", nil, []string{"start", "--state-machine-arn", arn, "--from", "2024-01"}, "--from and --to go together"},
		{"backfill: retry and range", nil, []string{"backfill", "--state-machine-arn", arn, "--retry-failed", "m.jsonl", "--from", "2024-01", "--to", "2024-02"}, "--retry-failed takes its months and orgs from the outcomes"},
		{"invoke: unknown step", creds, []string{"invoke", "wait", "{}"}, `unknown step "wait"`},
		// One rule for every subcommand: 2 for anything wrong with what was asked or configured,
		// found before any work.
		{"run: unknown service", creds, []string{"run", "--services", "Nope"}, "Input.Invalid: invalid filters"},
		{"run: groupBy without a filter", creds, []string{"run", "--group-by", "services"}, "Input.Invalid: invalid filters"},
		{"start: no AWS credentials", []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, []string{"start", "--state-machine-arn", arn, "--period", "2024-06"}, "Config.Invalid: no AWS credentials"},
		{"invoke: bad setting", append([]string{"ABX_FOCUS_REPORTS=maybe"}, creds...), []string{"invoke", "plan", "{}"}, `Config.Invalid: configuration: ABX_FOCUS_REPORTS "maybe"`},
		{"simulate: --json and --quiet", nil, []string{"simulate", "--json", "--quiet"}, "exclude each other"},
		{"version: an argument", nil, []string{"version", "now"}, "version takes no arguments"},
		// Configuration is checked before any network call: nothing listens at this base URL, so a
		// request would fail otherwise (exit 1), and no upload was started to warn about.
		{"run: S3 without a region", append([]string{"MONGODB_ATLAS_BASE_URL=http://127.0.0.1:9"}, creds...), []string{"run", "--out", "s3://lake/atlas"}, "Config.Invalid: no AWS region"},
		{"run: --out names a file", append([]string{"MONGODB_ATLAS_BASE_URL=http://127.0.0.1:9"}, creds...), []string{"run", "--out", "main.go"}, `Config.Invalid: --out "main.go": not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.env, tt.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("stderr = %q, want one line naming %q", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Fatalf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// TestLongValuesNotEchoed: bad input gets a clear error before any network call, quoting at most a
// few dozen characters of the bad value.
func TestLongValuesNotEchoed(t *testing.T) {
	const arn = "arn:aws:states:us-east-1:123456789012:stateMachine:atlas-billing-export"
	long := strings.Repeat("5f1a2b3c", 625) // 5,000 characters
	env := []string{"MONGODB_ATLAS_CLIENT_ID=id", "MONGODB_ATLAS_CLIENT_SECRET=s", "ABX_ORG_IDS=5f1a2b3c4d5e6f7a8b9c0d1e", "MONGODB_ATLAS_BASE_URL=http://127.0.0.1:9"}
	for _, args := range [][]string{
		{"run", "--org", long}, {"run", "--period", long}, {"run", "--from", long, "--to", "2024-06"}, {"run", "--services", long},
		{"run", "--projects", long}, {"run", "--group-by", long, "--services", "Atlas"}, {"run", "--out", "s3://" + long},
		{"run", "--base-url", "https://" + long + ".com"}, {"run", "--secret-arn", long + " x"}, {"run", "--s3-endpoint", long},
		{"run", "--max-polls", long}, {"run", long}, {"run", "--" + long}, {"invoke", long, "{}"}, {"invoke", "plan", `{"` + long + `":1}`},
		{"invoke", "plan", `{"period":"` + long + `"}`}, {"start", "--state-machine-arn", long}, {"start", "--state-machine-arn", arn, "--name", long},
		{"start", "--state-machine-arn", arn, "--period", long}, {"backfill", "--state-machine-arn", arn, "--from", long, "--to", "2024-06"},
		{long}, {"help", long}, {"simulate", "--fault", "kind=" + long}, {"simulate", long},
	} {
		if args[0] == "run" && args[1] != "--out" {
			args = append(args, "--out", t.TempDir())
		}
		r := run(t, env, args...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || len(r.stderr) > 300 || strings.Contains(r.stderr, long[:100]) {
			t.Errorf("%.60q: exit %d, %d bytes on stderr: %.300s", args, r.code, len(r.stderr), r.stderr)
		}
	}
}

// fakeSFN speaks the Step Functions JSON 1.0 protocol for StartExecution and DescribeExecution. Each
// execution answers RUNNING to its first DescribeExecution and its final status to the next.
type fakeSFN struct {
	t      *testing.T
	failed map[string][2]string // period -> error, cause: that execution FAILS

	mu         sync.Mutex
	starts     []startRequest
	execs      map[string]*fakeExec // by execution ARN
	names      map[string]bool
	running    int
	maxRunning int
	problems   []string
}

type startRequest struct {
	StateMachineArn string `json:"stateMachineArn"`
	Name            string `json:"name"`
	Input           string `json:"input"`
}

type executionInput struct {
	Period         string   `json:"period"`
	StartDate      string   `json:"startDate"`
	EndDate        string   `json:"endDate"`
	OrgIDs         []string `json:"orgIds"`
	IncludePending bool     `json:"includePending"`
}

type fakeExec struct {
	start     startRequest
	period    string
	describes int
	status    string
}

func newFakeSFN(t *testing.T, failed map[string][2]string) (*fakeSFN, string) {
	f := &fakeSFN{t: t, failed: failed, execs: map[string]*fakeExec{}, names: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeSFN) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	target := r.Header.Get("X-Amz-Target")
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" ||
		!strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		f.problems = append(f.problems, fmt.Sprintf("%s %s %s: content type %q, auth %q", r.Method, r.URL.Path, target,
			r.Header.Get("Content-Type"), r.Header.Get("Authorization")))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	reply := func(status int, v any) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	switch target {
	case "AWSStepFunctions.StartExecution":
		var in startRequest
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			reply(400, map[string]string{"__type": "com.amazonaws.states#InvalidExecutionInput", "message": err.Error()})
			return
		}
		if f.names[in.Name] {
			reply(400, map[string]string{"__type": "com.amazonaws.states#ExecutionAlreadyExists", "message": "Execution Already Exists: '" + in.Name + "'"})
			return
		}
		f.names[in.Name] = true
		f.starts = append(f.starts, in)
		var ei executionInput
		json.Unmarshal([]byte(in.Input), &ei)
		arn := strings.Replace(in.StateMachineArn, ":stateMachine:", ":execution:", 1) + ":" + in.Name
		f.execs[arn] = &fakeExec{start: in, period: ei.Period, status: "RUNNING"}
		f.running++
		f.maxRunning = max(f.maxRunning, f.running)
		reply(200, map[string]any{"executionArn": arn, "startDate": 1718000000.5})
	case "AWSStepFunctions.DescribeExecution":
		var in struct {
			ExecutionArn string `json:"executionArn"`
		}
		json.NewDecoder(r.Body).Decode(&in)
		ex := f.execs[in.ExecutionArn]
		if ex == nil {
			reply(400, map[string]string{"__type": "com.amazonaws.states#ExecutionDoesNotExist", "message": "no " + in.ExecutionArn})
			return
		}
		ex.describes++
		out := map[string]any{"executionArn": in.ExecutionArn, "stateMachineArn": ex.start.StateMachineArn, "name": ex.start.Name,
			"status": "RUNNING", "startDate": 1718000000.5, "input": ex.start.Input}
		if ex.describes >= 2 {
			if ex.status == "RUNNING" {
				f.running--
			}
			if fail, ok := f.failed[ex.period]; ok {
				ex.status = "FAILED"
				out["error"], out["cause"] = fail[0], fail[1]
			} else {
				ex.status = "SUCCEEDED"
				// The state machine's summary: one job that wrote two objects.
				out["output"] = fmt.Sprintf(`{"execution":%[1]q,"orgs":1,"months":1,"jobs":1,"succeeded":1,"failed":0,"objects":2,"unchanged":1,"bytes":2948,`+
					`"failures":[],"warnings":{},"warningList":[],"bucket":"lake","outcomes":"atlas-billing/_runs/%[1]s/outcomes.jsonl","summary":"atlas-billing/_runs/%[1]s/summary.json"}`, ex.start.Name)
			}
			out["status"] = ex.status
			out["stopDate"] = 1718000060.0
		}
		reply(200, out)
	default:
		f.problems = append(f.problems, "unexpected target "+target)
		reply(400, map[string]string{"__type": "com.amazonaws.states#UnknownOperationException", "message": target})
	}
}

// check fails the test on any malformed request and returns the recorded starts, sorted by period.
func (f *fakeSFN) check(t *testing.T) ([]startRequest, []executionInput, map[string]*fakeExec) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Errorf("request: %s", p)
	}
	starts := append([]startRequest(nil), f.starts...)
	inputs := make([]executionInput, len(starts))
	for i, s := range starts {
		if err := json.Unmarshal([]byte(s.Input), &inputs[i]); err != nil {
			t.Fatalf("input %q: %v", s.Input, err)
		}
	}
	sort.SliceStable(inputs, func(i, j int) bool { return inputs[i].Period < inputs[j].Period })
	sort.SliceStable(starts, func(i, j int) bool { return starts[i].Name < starts[j].Name })
	byPeriod := map[string]*fakeExec{}
	for _, e := range f.execs {
		byPeriod[e.period] = e
	}
	return starts, inputs, byPeriod
}

const (
	testARN = "arn:aws:states:us-east-1:123456789012:stateMachine:atlas-billing-export"
	org1    = "5f1a2b3c4d5e6f7a8b9c0d1e"
	org2    = "65ab12cd34ef56ab78cd90ef"
)

func TestBackfill(t *testing.T) {
	for _, concurrency := range []int{1, 2} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) {
			f, endpoint := newFakeSFN(t, nil)
			r := run(t, nil, "backfill", "--state-machine-arn", testARN, "--from", "2024-04", "--to", "2024-06",
				"--org", org1+","+org2, "--include-pending", "--concurrency", fmt.Sprint(concurrency),
				"--endpoint", endpoint, "--interval", "10ms")
			if r.code != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
			}
			starts, inputs, execs := f.check(t)
			if len(starts) != 3 {
				t.Fatalf("%d StartExecution calls, want 3: %+v", len(starts), starts)
			}
			for i, month := range []string{"2024-04", "2024-05", "2024-06"} {
				in := inputs[i]
				if in.Period != month || strings.Join(in.OrgIDs, ",") != org1+","+org2 || !in.IncludePending {
					t.Errorf("input %d = %+v, want period %s, both orgs, includePending", i, in, month)
				}
				s := starts[i]
				if s.StateMachineArn != testARN || !regexp.MustCompile(`^abx-`+month+`-\d+$`).MatchString(s.Name) {
					t.Errorf("start %d: state machine %q, name %q", i, s.StateMachineArn, s.Name)
				}
				ex := execs[month]
				if ex == nil || ex.status != "SUCCEEDED" || ex.describes != 2 {
					t.Errorf("%s: execution %+v, want followed (2 describes) to SUCCEEDED", month, ex)
				}
				if !regexp.MustCompile(`(?m)^` + month + `\s+SUCCEEDED\s+1\s+2\s+0\s+abx-` + month + `-\d+`).MatchString(r.stdout) {
					t.Errorf("table has no SUCCEEDED row for %s:\n%s", month, r.stdout)
				}
			}
			if f.maxRunning > concurrency {
				t.Errorf("%d executions ran at once, want at most %d", f.maxRunning, concurrency)
			}
			if concurrency == 1 {
				// One at a time means in order, oldest first.
				f.mu.Lock()
				var order []string
				for _, s := range f.starts {
					order = append(order, s.Name[4:11])
				}
				f.mu.Unlock()
				if got := strings.Join(order, ","); got != "2024-04,2024-05,2024-06" {
					t.Errorf("start order %s", got)
				}
			}
		})
	}
}

func TestBackfillFailure(t *testing.T) {
	const cause = "org 5f1a2b3c4d5e6f7a8b9c0d1e: 401 Unauthorized (UNAUTHORIZED): check the API access list"
	f, endpoint := newFakeSFN(t, map[string][2]string{"2024-05": {"Atlas.Unauthorized", cause}})
	r := run(t, nil, "backfill", "--state-machine-arn", testARN, "--from", "2024-04", "--to", "2024-06",
		"--endpoint", endpoint, "--interval", "10ms")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	_, inputs, execs := f.check(t)
	if len(inputs) != 3 || execs["2024-06"] == nil || execs["2024-06"].status != "SUCCEEDED" {
		t.Fatalf("a failed month stopped the others: %+v", inputs)
	}
	for _, in := range inputs {
		if in.OrgIDs != nil {
			t.Errorf("input %+v names orgs; without --org it must leave them to the functions' configuration", in)
		}
	}
	for _, row := range []string{`2024-04\s+SUCCEEDED`, `2024-05\s+FAILED\s+-\s+-\s+-\s+abx-2024-05-\d+\s+Atlas.Unauthorized: ` + regexp.QuoteMeta(cause), `2024-06\s+SUCCEEDED`} {
		if !regexp.MustCompile(`(?m)^` + row).MatchString(r.stdout) {
			t.Errorf("table lacks %s:\n%s", row, r.stdout)
		}
	}
	errLine := lastLine(r.stderr)
	if !strings.HasPrefix(errLine, "error: ") || !strings.Contains(errLine, "2024-05") || !strings.Contains(errLine, "FAILED") ||
		!strings.Contains(errLine, "Atlas.Unauthorized") || !strings.Contains(errLine, cause) {
		t.Fatalf("error line %q does not name the month, error and cause", errLine)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// One execution exports a whole range: the state machine takes 1,000 orgs x 120 months.
func TestStartRange(t *testing.T) {
	f, endpoint := newFakeSFN(t, nil)
	r := run(t, nil, "start", "--state-machine-arn", testARN, "--from", "2023-01", "--to", "2024-06", "--org", org1+","+org2,
		"--endpoint", endpoint, "--interval", "10ms")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	starts, inputs, _ := f.check(t)
	if len(starts) != 1 || inputs[0].Period != "" || inputs[0].StartDate != "2023-01-01" || inputs[0].EndDate != "2024-07-01" ||
		strings.Join(inputs[0].OrgIDs, ",") != org1+","+org2 || !regexp.MustCompile(`^abx-2023-01-to-2024-06-\d+$`).MatchString(starts[0].Name) {
		t.Fatalf("starts %+v, inputs %+v; want one execution for the range", starts, inputs)
	}
	if !strings.Contains(r.stdout, "(2023-01..2024-06): SUCCEEDED") {
		t.Errorf("stdout %s", r.stdout)
	}
}

// backfill --retry-failed exports again what a run's outcomes say failed: per month, its orgs.
func TestBackfillRetryFailed(t *testing.T) {
	job := func(org, start, end, month, errName string) string {
		return `{"orgId":"` + org + `","period":{"start":"` + start + `","end":"` + end + `","month":"` + month + `"},"objects":[],"error":"` + errName + `"}` + "\n"
	}
	outcomes := filepath.Join(t.TempDir(), "outcomes.jsonl")
	body := job(org1, "2024-04-01", "2024-05-01", "2024-04", "") + job(org2, "2024-04-01", "2024-05-01", "2024-04", "Atlas.ServerError") +
		job(org1, "2024-05-01", "2024-06-01", "2024-05", "Export.NoResult") + job(org2, "2024-05-01", "2024-06-01", "2024-05", "Atlas.NotFound") +
		job(org1, "2024-06-01", "2024-07-01", "2024-06", "")
	if err := os.WriteFile(outcomes, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	f, endpoint := newFakeSFN(t, nil)
	r := run(t, nil, "backfill", "--state-machine-arn", testARN, "--retry-failed", outcomes, "--endpoint", endpoint, "--interval", "10ms")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	starts, inputs, _ := f.check(t)
	if len(inputs) != 2 || inputs[0].Period != "2024-04" || strings.Join(inputs[0].OrgIDs, ",") != org2 ||
		inputs[1].Period != "2024-05" || strings.Join(inputs[1].OrgIDs, ",") != org1+","+org2 {
		t.Fatalf("inputs %+v, want April for %s and May for both", inputs, org2)
	}
	for _, s := range starts {
		if !regexp.MustCompile(`^abx-2024-0[45]-retry-\d+$`).MatchString(s.Name) {
			t.Errorf("name %q", s.Name)
		}
	}
}

func TestStart(t *testing.T) {
	t.Run("succeeded", func(t *testing.T) {
		f, endpoint := newFakeSFN(t, nil)
		r := run(t, []string{"ABX_STATE_MACHINE_ARN=" + testARN}, "start", "--period", "2024-06", "--org", org1, "--name", "june-2024",
			"--endpoint", endpoint, "--interval", "10ms")
		if r.code != 0 {
			t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
		}
		starts, inputs, execs := f.check(t)
		if len(starts) != 1 || starts[0].Name != "june-2024" || starts[0].StateMachineArn != testARN ||
			inputs[0].Period != "2024-06" || strings.Join(inputs[0].OrgIDs, ",") != org1 || inputs[0].IncludePending {
			t.Fatalf("start %+v, input %+v", starts, inputs)
		}
		if execs["2024-06"].status != "SUCCEEDED" {
			t.Fatalf("not followed to the end: %+v", execs["2024-06"])
		}
		for _, want := range []string{"execution june-2024 (2024-06): SUCCEEDED: 1 org(s) x 1 month(s), 2 objects (1 unchanged), 2.9 KiB, 0 warning(s)",
			"every object and warning: s3://lake/atlas-billing/_runs/june-2024/outcomes.jsonl"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
			}
		}
		if !strings.Contains(r.stderr, "execution june-2024: SUCCEEDED") {
			t.Errorf("progress lacks the status change:\n%s", r.stderr)
		}
	})

	t.Run("failed", func(t *testing.T) {
		const cause = "org 5f1a2b3c4d5e6f7a8b9c0d1e: invoice 66aa not found (RESOURCE_NOT_FOUND)"
		_, endpoint := newFakeSFN(t, map[string][2]string{"2024-06": {"Atlas.NotFound", cause}})
		r := run(t, nil, "start", "--state-machine-arn", testARN, "--period", "2024-06", "--endpoint", endpoint, "--interval", "10ms", "--quiet")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
		}
		if r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "error: ") ||
			!strings.Contains(r.stderr, "FAILED: Atlas.NotFound: "+cause) {
			t.Fatalf("stdout %q, stderr %q; want one line naming the error and cause", r.stdout, r.stderr)
		}
	})

	t.Run("default name and period", func(t *testing.T) {
		f, endpoint := newFakeSFN(t, nil)
		before := previousMonth(time.Now())
		r := run(t, nil, "start", "--state-machine-arn", testARN, "--endpoint", endpoint, "--interval", "10ms", "--json")
		after := previousMonth(time.Now())
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		starts, inputs, _ := f.check(t)
		if len(inputs) != 1 || (inputs[0].Period != before && inputs[0].Period != after) {
			t.Fatalf("inputs %+v, want the previous month %s", inputs, before)
		}
		if !regexp.MustCompile(`^abx-` + inputs[0].Period + `-\d{10}$`).MatchString(starts[0].Name) {
			t.Fatalf("name %q", starts[0].Name)
		}
		var last struct {
			Event, Status string
			Summary       struct{ Jobs, Objects int }
		}
		if err := json.Unmarshal([]byte(lastLine(r.stdout)), &last); err != nil || last.Event != "result" || last.Status != "SUCCEEDED" || last.Summary.Objects != 2 {
			t.Fatalf("last JSON line %q: %+v, %v", lastLine(r.stdout), last, err)
		}
	})

	t.Run("no wait", func(t *testing.T) {
		f, endpoint := newFakeSFN(t, nil)
		r := run(t, nil, "start", "--state-machine-arn", testARN, "--period", "2024-06", "--endpoint", endpoint, "--no-wait")
		_, _, execs := f.check(t)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "arn:aws:states:us-east-1:123456789012:execution:") || execs["2024-06"].describes != 0 {
			t.Fatalf("exit %d, stdout %q, describes %d", r.code, r.stdout, execs["2024-06"].describes)
		}
	})

	t.Run("name used before", func(t *testing.T) {
		_, endpoint := newFakeSFN(t, nil)
		args := []string{"start", "--state-machine-arn", testARN, "--period", "2024-06", "--endpoint", endpoint, "--name", "june", "--no-wait"}
		if r := run(t, nil, args...); r.code != 0 {
			t.Fatalf("first start: exit %d: %s", r.code, r.stderr)
		}
		r := run(t, nil, args...)
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 ||
			!strings.Contains(r.stderr, "error: start execution june: ExecutionAlreadyExists: Execution Already Exists: 'june'") {
			t.Fatalf("second start: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

func previousMonth(now time.Time) string {
	now = now.UTC()
	return time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
}
