package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	testOrg1 = "5f1a2b3c4d5e6f7a8b9c0d1e"
	testOrg2 = "65ab12cd34ef56ab78cd90ef"
)

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// testApp is an App on buffers with a fixed clock and the given environment.
func testApp(t *testing.T, env map[string]string) (*App, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: envMap(env), Now: func() time.Time { return fixedNow }}
	return a, &stdout, &stderr
}

// fakeExporter records the options it was called with and replays events and a result.
type fakeExporter struct {
	got    RunOptions
	calls  int
	events []Event
	sum    Summary
	err    error
}

func (f *fakeExporter) Run(_ context.Context, opt RunOptions, p Progress) (Summary, error) {
	f.calls++
	f.got = opt
	for _, e := range f.events {
		p.Report(e)
	}
	return f.sum, f.err
}

var saEnv = map[string]string{EnvClientID: "mdb_sa_id_x", EnvClientSecret: "topsecret", EnvOrgIDs: testOrg1}

func TestRunParsesOptions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want RunOptions
	}{
		{
			name: "defaults",
			env:  saEnv,
			want: RunOptions{Config: Config{Out: Output{Dir: "./out"}, BaseURL: DefaultBaseURL, MaxPolls: DefaultMaxPolls,
				OrgIDs: []string{testOrg1}, Credentials: Credentials{ClientID: "mdb_sa_id_x", ClientSecret: "topsecret"}}, Period: PreviousMonth, Concurrency: 2, Focus: true},
		},
		{
			name: "everything",
			args: []string{"--org", testOrg1 + "," + testOrg2, "--org", testOrg1, "--from", "2024-04", "--to", "2024-06",
				"--services", "Clusters,Data Transfer", "--services", "Atlas", "--projects", "aaaaaaaaaaaaaaaaaaaaaaaa",
				"--clusters", "bbbbbbbbbbbbbbbbbbbbbbbb", "--group-by", "services", "--include-pending", "--out", "s3://lake/atlas",
				"--base-url", "http://127.0.0.1:8089", "--s3-endpoint", "http://127.0.0.1:7070", "--max-polls", "5",
				"--kms-key-id", "alias/abx", "--region", "eu-west-1", "--concurrency", "6", "--focus=false", "--quiet"},
			env: map[string]string{EnvPublicKey: "pub", EnvPrivateKey: "priv"},
			want: RunOptions{
				Config: Config{Out: Output{Bucket: "lake", Prefix: "atlas"}, BaseURL: "http://127.0.0.1:8089", MaxPolls: 5,
					OrgIDs: []string{testOrg1, testOrg2}, Credentials: Credentials{PublicKey: "pub", PrivateKey: "priv"},
					S3Endpoint: "http://127.0.0.1:7070", KMSKeyID: "alias/abx", Region: "eu-west-1"},
				From: "2024-04", To: "2024-06", Services: []string{"Clusters", "Data Transfer", "Atlas"},
				Projects: []string{"aaaaaaaaaaaaaaaaaaaaaaaa"}, Clusters: []string{"bbbbbbbbbbbbbbbbbbbbbbbb"},
				GroupBy: "services", IncludePending: true, Concurrency: 6,
			},
		},
		{
			name: "secret instead of env credentials; orgs may come from it",
			args: []string{"--secret-arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:atlas", "--period", MonthToDate},
			env:  map[string]string{},
			want: RunOptions{Config: Config{Out: Output{Dir: "./out"}, BaseURL: DefaultBaseURL, MaxPolls: DefaultMaxPolls,
				SecretARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:atlas"}, Period: MonthToDate, Concurrency: 2, Focus: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, stderr := testApp(t, tt.env)
			fe := &fakeExporter{}
			a.Exporter = fe
			if code := a.Main(context.Background(), append([]string{"run"}, tt.args...)); code != ExitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !reflect.DeepEqual(fe.got, tt.want) {
				t.Fatalf("RunOptions\n got  %+v\n want %+v", fe.got, tt.want)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "bad period", args: []string{"--period", "2024-6"}, env: saEnv, want: `--period "2024-6"`},
		{name: "future period", args: []string{"--period", "2031-01"}, env: saEnv, want: "in the future"},
		{name: "from after to", args: []string{"--from", "2024-06", "--to", "2024-04"}, env: saEnv, want: "--from 2024-06 is after --to 2024-04"},
		{name: "from without to", args: []string{"--from", "2024-06"}, env: saEnv, want: "--from and --to go together"},
		{name: "period and range", args: []string{"--period", "2024-06", "--from", "2024-04", "--to", "2024-05"}, env: saEnv, want: "not both"},
		{name: "no credentials", env: map[string]string{EnvOrgIDs: testOrg1}, want: "no Atlas credentials"},
		{name: "half a pair", env: map[string]string{EnvOrgIDs: testOrg1, EnvClientID: "x"}, want: EnvClientSecret + " is not"},
		{name: "no org", env: map[string]string{EnvClientID: "x", EnvClientSecret: "y"}, want: "no organization"},
		{name: "bad group-by", args: []string{"--group-by", "regions"}, env: saEnv, want: "--group-by"},
		{name: "bad project", args: []string{"--projects", "p1"}, env: saEnv, want: `--projects "p1"`},
		{name: "quiet and json", args: []string{"--quiet", "--json"}, env: saEnv, want: "exclude each other"},
		{name: "unknown flag", args: []string{"--orgs", testOrg1}, env: saEnv, want: "flag provided but not defined: -orgs"},
		{name: "argument", args: []string{"now"}, env: saEnv, want: `run takes no arguments, got "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, stdout, stderr := testApp(t, tt.env)
			fe := &fakeExporter{}
			a.Exporter = fe
			code := a.Main(context.Background(), append([]string{"run"}, tt.args...))
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
			assertOneErrorLine(t, stderr.String(), tt.want)
			if strings.Contains(stderr.String(), "topsecret") || stdout.Len() > 0 || fe.calls != 0 {
				t.Fatalf("stdout %q, stderr %q, exporter calls %d", stdout, stderr, fe.calls)
			}
		})
	}
}

func assertOneErrorLine(t *testing.T, stderr, want string) {
	t.Helper()
	if !strings.HasPrefix(stderr, "error: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("stderr = %q, want one line \"error: ...%s...\"", stderr, want)
	}
}

func TestRunNotWired(t *testing.T) {
	a, _, stderr := testApp(t, saEnv)
	if code := a.Main(context.Background(), []string{"run", "--period", "2024-06"}); code != ExitFailure {
		t.Fatalf("exit %d, want %d", code, ExitFailure)
	}
	assertOneErrorLine(t, stderr.String(), "not wired")
}

func TestRunOutput(t *testing.T) {
	usage := Object{Kind: "usage", Org: testOrg1, Month: "2024-06", Key: "usage/org_id=" + testOrg1 + "/billing_month=2024-06/usage.csv", Bytes: 2048, Rows: 100}
	invoice := Object{Kind: "invoice", Org: testOrg1, Month: "2024-06", InvoiceID: "66aa", Key: "invoices/org_id=" + testOrg1 + "/billing_month=2024-06/invoice_id=66aa.csv", Bytes: 900, Rows: 200, Skipped: true}
	events := []Event{
		{Kind: EventOrg, Org: testOrg1, Month: "2024-06"},
		{Kind: EventStep, Org: testOrg1, Month: "2024-06", Step: "submit"},
		{Kind: EventWait, Org: testOrg1, Month: "2024-06", Wait: 5 * time.Second, Attempt: 1},
		{Kind: EventPoll, Org: testOrg1, Month: "2024-06", Attempt: 1, Status: "READY"},
		{Kind: EventBytes, Org: testOrg1, Month: "2024-06", Key: usage.Key, Bytes: 2048},
		{Kind: EventObject, Org: testOrg1, Month: "2024-06", Object: &usage},
		{Kind: EventObject, Org: testOrg1, Month: "2024-06", Object: &invoice},
	}
	sum := Summary{Orgs: []string{testOrg1}, Months: []string{"2024-06"}, Objects: []Object{usage, invoice}}
	outDir := filepath.Join("some", "dir")

	t.Run("human", func(t *testing.T) {
		a, stdout, stderr := testApp(t, saEnv)
		a.Exporter = &fakeExporter{events: events, sum: sum}
		if code := a.Main(context.Background(), []string{"run", "--out", outDir}); code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, want := range []string{
			"org " + testOrg1 + " 2024-06: started",
			"org " + testOrg1 + " 2024-06: submit",
			"waiting 5s before poll attempt 1",
			"poll attempt 1: READY",
			"2.0 KiB streamed into " + usage.Key,
			"wrote " + usage.Key + " (2.0 KiB, 100 rows)",
			"unchanged " + invoice.Key,
		} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		for _, want := range []string{
			"2 files (1 written, 1 unchanged)",
			filepath.Join(outDir, "usage", "org_id="+testOrg1, "billing_month=2024-06", "usage.csv"),
			filepath.Join(outDir, "invoices", "org_id="+testOrg1, "billing_month=2024-06", "invoice_id=66aa.csv"),
		} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		a, stdout, stderr := testApp(t, saEnv)
		a.Exporter = &fakeExporter{events: events, sum: sum}
		if code := a.Main(context.Background(), []string{"run", "--json"}); code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if stderr.Len() != 0 {
			t.Fatalf("stderr = %q, want nothing", stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != len(events)+1 {
			t.Fatalf("%d JSON lines, want %d:\n%s", len(lines), len(events)+1, stdout)
		}
		var kinds []string
		for _, l := range lines {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			kinds = append(kinds, m["event"].(string))
		}
		if got := strings.Join(kinds, ","); got != "org,step,wait,poll,bytes,object,object,summary" {
			t.Fatalf("events = %s", got)
		}
		var last struct {
			Objects     []Object `json:"objects"`
			WaitSeconds float64  `json:"waitSeconds"`
		}
		json.Unmarshal([]byte(lines[len(lines)-1]), &last)
		if !reflect.DeepEqual(last.Objects, sum.Objects) {
			t.Fatalf("summary objects = %+v", last.Objects)
		}
		var wait struct {
			WaitSeconds float64 `json:"waitSeconds"`
			Attempt     int     `json:"attempt"`
		}
		json.Unmarshal([]byte(lines[2]), &wait)
		if wait.WaitSeconds != 5 || wait.Attempt != 1 {
			t.Fatalf("wait line = %s", lines[2])
		}
	})

	t.Run("quiet", func(t *testing.T) {
		a, stdout, stderr := testApp(t, saEnv)
		a.Exporter = &fakeExporter{events: events, sum: sum}
		if code := a.Main(context.Background(), []string{"run", "--quiet"}); code != ExitOK || stdout.Len()+stderr.Len() != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and nothing", code, stdout, stderr)
		}
	})

	t.Run("failure", func(t *testing.T) {
		a, stdout, stderr := testApp(t, saEnv)
		a.Exporter = &fakeExporter{events: events[:6], sum: Summary{Objects: []Object{usage}},
			err: errors.New("org " + testOrg1 + ": invoice 66aa not found (RESOURCE_NOT_FOUND)")}
		if code := a.Main(context.Background(), []string{"run", "--quiet"}); code != ExitFailure {
			t.Fatalf("exit %d, want %d", code, ExitFailure)
		}
		assertOneErrorLine(t, stderr.String(), "export: org "+testOrg1+": invoice 66aa not found")
		if stdout.Len() != 0 {
			t.Fatalf("quiet printed %q", stdout)
		}
	})
}
