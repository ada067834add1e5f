package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

const (
	testOrg1 = "5f1a2b3c4d5e6f7a8b9c0d1e"
	testOrg2 = "65ab12cd34ef56ab78cd90ef"
)

// fixedNow is mid-July 2024: previous-month is 2024-06.
var fixedNow = time.Date(2024, 7, 15, 10, 0, 0, 0, time.UTC)

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// testApp is an App on buffers with a fixed clock, no waits between polls and the given environment.
func testApp(t *testing.T, env map[string]string) (*App, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Getenv: envMap(env), Now: func() time.Time { return fixedNow },
		sleep: func(context.Context, time.Duration) error { return nil }}
	return a, &stdout, &stderr
}

var saEnv = map[string]string{secret.EnvClientID: "mdb_sa_id_x", secret.EnvClientSecret: "topsecret", config.EnvOrgIDs: testOrg1}

// simEnv starts the simulator (its calendar at fixedNow, queries ready at the second poll) and returns
// it with an environment that points run and invoke at it.
func simEnv(t *testing.T) (*atlassim.Server, map[string]string) {
	t.Helper()
	sim, base := atlassimtest.Start(t, atlassim.Config{ReadyAfterPolls: 1, ReportReadyAfterPolls: 1, Now: func() time.Time { return fixedNow }})
	return sim, map[string]string{
		config.EnvAtlasBaseURL: base, config.EnvOrgIDs: atlassim.DefaultOrgs[0].ID,
		secret.EnvClientID: atlassim.DefaultClientID, secret.EnvClientSecret: atlassim.DefaultClientSecret,
	}
}

// parseRun parses run's flags and returns the configuration and request they make.
func parseRun(t *testing.T, env map[string]string, args ...string) (config.Config, export.Request, error) {
	t.Helper()
	fs := newTestFlagSet()
	var s settings
	s.define(fs)
	var r runFlags
	r.define(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	req, err := r.request(fs)
	if err != nil {
		return config.Config{}, req, err
	}
	cfg, err := s.config(envMap(env))
	return cfg, req, err
}

func TestRunParsesOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantCfg config.Config
		wantReq export.Request
	}{
		{
			name: "defaults",
			env:  saEnv,
			wantCfg: config.Config{Dir: "./out", BaseURL: "https://cloud.mongodb.com", MaxPollAttempts: 40, FocusReports: true,
				OrgIDs: []string{testOrg1}, Credentials: secret.Credentials{ClientID: "mdb_sa_id_x", ClientSecret: "topsecret"}},
			wantReq: export.Request{Period: "previous-month"},
		},
		{
			name: "everything",
			args: []string{"--org", testOrg1 + "," + testOrg2, "--org", testOrg1, "--from", "2024-04", "--to", "2024-06",
				"--services", "Clusters,Data Transfer", "--services", "Atlas", "--projects", "aaaaaaaaaaaaaaaaaaaaaaaa",
				"--clusters", "bbbbbbbbbbbbbbbbbbbbbbbb", "--group-by", "services", "--include-pending", "--out", "s3://lake/atlas",
				"--base-url", "http://127.0.0.1:8089", "--s3-endpoint", "http://127.0.0.1:7070", "--max-polls", "5",
				"--kms-key-id", "alias/abx", "--region", "eu-west-1", "--concurrency", "6", "--focus=false"},
			env: map[string]string{secret.EnvPublicKey: "pub", secret.EnvPrivateKey: "priv"},
			wantCfg: config.Config{Bucket: "lake", Prefix: "atlas", BaseURL: "http://127.0.0.1:8089", MaxPollAttempts: 5,
				OrgIDs: []string{testOrg1, testOrg2, testOrg1}, Credentials: secret.Credentials{PublicKey: "pub", PrivateKey: "priv"},
				S3Endpoint: "http://127.0.0.1:7070", KMSKeyID: "alias/abx"},
			wantReq: export.Request{StartDate: "2024-04-01", EndDate: "2024-07-01", Services: []string{"Clusters", "Data Transfer", "Atlas"},
				Projects: []string{"aaaaaaaaaaaaaaaaaaaaaaaa"}, Clusters: []string{"bbbbbbbbbbbbbbbbbbbbbbbb"},
				GroupBy: "services", IncludePending: true},
		},
		{
			name: "secret instead of env credentials; orgs may come from it",
			args: []string{"--secret-arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:atlas", "--period", "month-to-date"},
			env:  map[string]string{},
			wantCfg: config.Config{Dir: "./out", BaseURL: "https://cloud.mongodb.com", MaxPollAttempts: 40, FocusReports: true,
				SecretARN: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:atlas"},
			wantReq: export.Request{Period: "month-to-date"},
		},
		{
			name: "the functions' variables, a flag over each",
			args: []string{"--max-polls", "3"},
			env: map[string]string{config.EnvBucket: "lake", config.EnvPrefix: "billing", config.EnvMaxPolls: "7", config.EnvFocus: "false",
				config.EnvBaseURL: "http://127.0.0.1:5", secret.EnvClientID: "id", secret.EnvClientSecret: "s"},
			wantCfg: config.Config{Bucket: "lake", Prefix: "billing", BaseURL: "http://127.0.0.1:5", MaxPollAttempts: 3,
				Credentials: secret.Credentials{ClientID: "id", ClientSecret: "s"}},
			wantReq: export.Request{Period: "previous-month"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, req, err := parseRun(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, tt.wantCfg) {
				t.Errorf("config\n got  %+v\n want %+v", cfg, tt.wantCfg)
			}
			if !reflect.DeepEqual(req, tt.wantReq) {
				t.Errorf("request\n got  %+v\n want %+v", req, tt.wantReq)
			}
		})
	}
}

// TestRunUsageErrors: each mistake exits 2 with one line, before any network call (nothing listens
// at the default base URL's loopback stand-in), printing no secret.
func TestRunUsageErrors(t *testing.T) {
	withURL := func(m map[string]string) map[string]string {
		out := map[string]string{config.EnvAtlasBaseURL: "http://127.0.0.1:9"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{name: "bad period", args: []string{"--period", "2024-6"}, env: saEnv, want: `period "2024-6"`},
		{name: "future period", args: []string{"--period", "2031-01"}, env: saEnv, want: "in the future"},
		{name: "before 2000", args: []string{"--period", "1999-12"}, env: saEnv, want: "2000"},
		{name: "to in the future", args: []string{"--from", "2024-06", "--to", "2024-09"}, env: saEnv, want: "2024-08 is in the future"},
		{name: "from after to", args: []string{"--from", "2024-06", "--to", "2024-04"}, env: saEnv, want: "--from/--to: range end 2024-04 is before its start 2024-06"},
		{name: "bad from", args: []string{"--from", "24-06", "--to", "2024-09"}, env: saEnv, want: "--from/--to"},
		{name: "from without to", args: []string{"--from", "2024-06"}, env: saEnv, want: "--from and --to go together"},
		{name: "period and range", args: []string{"--period", "2024-06", "--from", "2024-04", "--to", "2024-05"}, env: saEnv, want: "not both"},
		{name: "no credentials", env: map[string]string{config.EnvOrgIDs: testOrg1}, want: "no Atlas credentials"},
		{name: "half a pair", env: map[string]string{config.EnvOrgIDs: testOrg1, secret.EnvClientID: "x"}, want: secret.EnvClientSecret + " is not"},
		{name: "no org", env: map[string]string{secret.EnvClientID: "x", secret.EnvClientSecret: "y"}, want: "no organization"},
		{name: "bad org", args: []string{"--org", "xyz"}, env: saEnv, want: `--org: "xyz"`},
		{name: "bad group-by", args: []string{"--group-by", "regions", "--services", "Atlas"}, env: saEnv, want: "groupBy"},
		{name: "bad project", args: []string{"--projects", "p1"}, env: saEnv, want: "projects"},
		{name: "bad max polls", args: []string{"--max-polls", "1001"}, env: saEnv, want: `--max-polls "1001": want a number from 1 to 1000`},
		{name: "bad out", args: []string{"--out", "gs://lake/x"}, env: saEnv, want: "only s3://"},
		{name: "remote http", args: []string{"--base-url", "http://example.com"}, env: saEnv, want: "loopback"},
		{name: "concurrency", args: []string{"--concurrency", "65"}, env: saEnv, want: "--concurrency 65"},
		{name: "negative timeout", args: []string{"--timeout", "-1s"}, env: saEnv, want: "--timeout -1s"},
		{name: "quiet and json", args: []string{"--quiet", "--json"}, env: saEnv, want: "exclude each other"},
		{name: "unknown flag", args: []string{"--orgs", testOrg1}, env: saEnv, want: "flag provided but not defined: -orgs"},
		{name: "argument", args: []string{"now"}, env: saEnv, want: `run takes no arguments, got "now"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, stdout, stderr := testApp(t, withURL(tt.env))
			code := a.Main(context.Background(), append([]string{"run", "--out", t.TempDir()}, tt.args...))
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
			assertOneErrorLine(t, stderr.String(), tt.want)
			if strings.Contains(stderr.String(), "topsecret") || stdout.Len() > 0 {
				t.Fatalf("stdout %q, stderr %q", stdout, stderr)
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

// TestRunOutput runs a whole export against the simulator in each output mode.
func TestRunOutput(t *testing.T) {
	t.Run("human", func(t *testing.T) {
		_, env := simEnv(t)
		dir := t.TempDir()
		a, stdout, stderr := testApp(t, env)
		if code := a.Main(context.Background(), []string{"run", "--out", dir, "--period", "2024-06"}); code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		usage := "usage/org_id=" + testOrg1 + "/billing_month=2024-06/usage.csv"
		for _, want := range []string{
			"plan: 1 org-month(s) to export",
			"org " + testOrg1 + " 2024-06: submit",
			"org " + testOrg1 + " 2024-06: waiting 5s before poll attempt 1",
			"poll attempt 1: PROCESSING",
			"waiting 10s before poll attempt 2",
			"poll attempt 2: READY",
			"wrote " + usage + " (",
			"org " + testOrg1 + " 2024-06: fetch-invoice",
			"org " + testOrg1 + " 2024-06: focus-submit",
			": READY: FOCUS reports",
			"org " + testOrg1 + " 2024-06: done",
		} {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr)
			}
		}
		for _, want := range []string{
			"6 files (6 written, 0 unchanged)", "in " + dir + " for 1 org(s), 2024-06",
			filepath.Join(dir, "usage", "org_id="+testOrg1, "billing_month=2024-06", "usage.csv"),
			"USAGE (USD)", "total", "RECONCILIATION: 1 of 1", "done in",
		} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
		if strings.Contains(stdout.String(), "NO INVOICE") {
			t.Errorf("a month with its invoice is listed without one:\n%s", stdout)
		}
		// Again: every file unchanged.
		a, stdout, _ = testApp(t, env)
		if code := a.Main(context.Background(), []string{"run", "--out", dir, "--period", "2024-06"}); code != ExitOK || !strings.Contains(stdout.String(), "6 files (0 written, 6 unchanged)") {
			t.Errorf("second run: exit %d:\n%s", code, stdout)
		}
	})

	// A month Atlas has no invoice for says so, rather than showing only fewer files.
	t.Run("a month without an invoice", func(t *testing.T) {
		_, env := simEnv(t)
		a, stdout, stderr := testApp(t, env)
		if code := a.Main(context.Background(), []string{"run", "--out", t.TempDir(), "--from", "2020-01", "--to", "2020-02"}); code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		want := "NO INVOICE: Atlas listed no invoice for these months: only their usage is stored\n  org " + testOrg1 + ": 2020-01, 2020-02\n"
		if !strings.Contains(stdout.String(), want) || strings.Contains(stdout.String(), "RECONCILIATION") {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	})

	t.Run("json", func(t *testing.T) {
		_, env := simEnv(t)
		a, stdout, stderr := testApp(t, env)
		if code := a.Main(context.Background(), []string{"run", "--out", t.TempDir(), "--period", "2024-06", "--json"}); code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if stderr.Len() != 0 {
			t.Fatalf("stderr = %q, want nothing", stderr)
		}
		var kinds []string
		var last struct {
			Event       string
			Objects     []json.RawMessage
			UsageTotals []json.RawMessage
		}
		for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if k := m["event"].(string); len(kinds) == 0 || kinds[len(kinds)-1] != k {
				kinds = append(kinds, k)
			}
			if m["event"] == "wait" && m["waitSeconds"] != 5.0 && m["waitSeconds"] != 10.0 {
				t.Errorf("wait line %s", l)
			}
			json.Unmarshal([]byte(l), &last)
		}
		if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "step,wait,poll,wait,object,poll,step,object") || !strings.HasSuffix(got, "org,summary") {
			t.Errorf("events = %s", got)
		}
		if last.Event != "summary" || len(last.Objects) != 6 || len(last.UsageTotals) == 0 {
			t.Errorf("summary: %+v", last)
		}
	})

	t.Run("quiet", func(t *testing.T) {
		_, env := simEnv(t)
		a, stdout, stderr := testApp(t, env)
		if code := a.Main(context.Background(), []string{"run", "--out", t.TempDir(), "--period", "2024-06", "--quiet"}); code != ExitOK || stdout.Len()+stderr.Len() != 0 {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and nothing", code, stdout, stderr)
		}
	})

	t.Run("a failing org", func(t *testing.T) {
		// The second org is unknown to Atlas: each of its months fails, the
		// first org's are all exported, the summary names the failures.
		const unknown = "0123456789abcdef01234567"
		_, env := simEnv(t)
		env[config.EnvOrgIDs] = atlassim.DefaultOrgs[0].ID + "," + unknown
		dir := t.TempDir()
		a, stdout, stderr := testApp(t, env)
		code := a.Main(context.Background(), []string{"run", "--out", dir, "--from", "2024-05", "--to", "2024-06", "--focus=false", "--json"})
		if code != ExitFailure {
			t.Fatalf("exit %d, want %d; stderr %s", code, ExitFailure, stderr)
		}
		var last struct {
			Event    string
			Objects  []json.RawMessage
			Failures []export.Failure
		}
		if err := json.Unmarshal([]byte(lastLine(stdout.String())), &last); err != nil || last.Event != "summary" {
			t.Fatalf("last line %q: %v", lastLine(stdout.String()), err)
		}
		if len(last.Objects) != 8 || len(last.Failures) != 2 || last.Failures[0].OrgID != unknown || last.Failures[0].Month != "2024-05" ||
			last.Failures[1].Month != "2024-06" || last.Failures[0].Error != export.AtlasNotFound {
			t.Errorf("summary: %d objects, failures %+v; want the first org's 8 and the other's 2 months", len(last.Objects), last.Failures)
		}
		if !strings.Contains(stderr.String(), "error: Atlas.NotFound: 2 of 4 jobs failed; org "+unknown+", 2024-05: Atlas.NotFound") {
			t.Errorf("stderr %q", stderr)
		}
	})

	t.Run("failure", func(t *testing.T) {
		sim, env := simEnv(t)
		sim.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.NotFound, Times: 10})
		a, stdout, stderr := testApp(t, env)
		if code := a.Main(context.Background(), []string{"run", "--out", t.TempDir(), "--period", "2024-06", "--quiet"}); code != ExitFailure {
			t.Fatalf("exit %d, want %d", code, ExitFailure)
		}
		assertOneErrorLine(t, stderr.String(), "error: Atlas.NotFound: 1 of 1 jobs failed; org "+testOrg1+", 2024-06: Atlas.NotFound: invoice ")
		if stdout.Len() != 0 {
			t.Fatalf("quiet printed %q", stdout)
		}
	})
}

// TestRunMonths: the months a run's flags name, planned as the functions plan them.
func TestRunMonths(t *testing.T) {
	tests := []struct {
		name string
		args []string
		now  time.Time
		want string
	}{
		{"previous month", nil, fixedNow, "2024-06"},
		{"previous month in January", nil, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "2024-12"},
		{"previous month uses UTC", nil, time.Date(2024, 8, 1, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)), "2024-06"},
		{"month to date", []string{"--period", "month-to-date"}, fixedNow, "2024-07"},
		{"a month", []string{"--period", "2024-02"}, fixedNow, "2024-02"},
		{"the current month", []string{"--period", "2024-07"}, fixedNow, "2024-07"},
		{"range over a year end", []string{"--from", "2023-11", "--to", "2024-02"}, fixedNow, "2023-11,2023-12,2024-01,2024-02"},
		{"range of one", []string{"--from", "2024-05", "--to", "2024-05"}, fixedNow, "2024-05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, req, err := parseRun(t, saEnv, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			exp := &export.Exporter{Now: func() time.Time { return tt.now }, MaxAttempts: 1,
				Orgs: func(context.Context) ([]string, error) { return []string{testOrg1}, nil }}
			p, err := exp.Plan(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range p.Jobs {
				got = append(got, j.Period.Label())
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("months %v, want %s", got, tt.want)
			}
		})
	}
}

// TestRunTimeout: --timeout bounds the whole run, so a server that trickles a body cannot hang it.
func TestRunTimeout(t *testing.T) {
	sim, env := simEnv(t)
	sim.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.SlowBody, Delay: time.Minute, Times: 10})
	a, _, stderr := testApp(t, env)
	start := time.Now()
	code := a.Main(context.Background(), []string{"run", "--out", t.TempDir(), "--period", "2024-06", "--quiet", "--timeout", "2s"})
	if code != ExitFailure || time.Since(start) > 30*time.Second {
		t.Fatalf("exit %d after %v, want %d within the timeout", code, time.Since(start), ExitFailure)
	}
	assertOneErrorLine(t, stderr.String(), "stopped after --timeout 2s")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestRunUnreadableSecret: a secret that cannot be read fails the run once, at its plan, before any
// request to Atlas, whatever the number of org-months named; not once per job after its retries.
func TestRunUnreadableSecret(t *testing.T) {
	tests := []struct {
		name  string
		setup func(sm *testenv.SecretsManager) (arn string)
		want  string
	}{
		{"no such secret", func(*testenv.SecretsManager) string {
			return "arn:aws:secretsmanager:" + testenv.Region + ":123456789012:secret:atlas-gone-AbCdEf"
		}, "ResourceNotFoundException"},
		{"access denied", func(sm *testenv.SecretsManager) string {
			sm.Fail(100, "AccessDeniedException", 400)
			return sm.Put("atlas", `{"clientId":"mdb_sa_id_x","clientSecret":"topsecret"}`)
		}, "AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			atlasLog := &testenv.Buffer{}
			_, base := atlassimtest.Start(t, atlassim.Config{Now: func() time.Time { return fixedNow },
				Logger: slog.New(slog.NewTextHandler(atlasLog, nil))})
			sm := testenv.NewSecretsManager(t)
			arn := tt.setup(sm)
			// The AWS SDK's default chain (loadAWS) reads the process environment.
			for k, v := range map[string]string{
				"AWS_ACCESS_KEY_ID": sm.AccessKey, "AWS_SECRET_ACCESS_KEY": "example", "AWS_REGION": testenv.Region,
				"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
			} {
				t.Setenv(k, v)
			}
			a, stdout, stderr := testApp(t, map[string]string{
				config.EnvAtlasBaseURL: base, "AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.Endpoint,
			})
			code := a.Main(context.Background(), []string{"run", "--out", t.TempDir(), "--secret-arn", arn,
				"--org", testOrg1 + "," + testOrg2, "--from", "2024-01", "--to", "2024-06"})
			if code != ExitFailure {
				t.Fatalf("exit %d, want %d; stderr %q", code, ExitFailure, stderr)
			}
			assertOneErrorLine(t, stderr.String(), export.SecretUnavailable+": ")
			if !strings.Contains(stderr.String(), arn) || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q names neither the secret nor %s", stderr, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout %q", stdout)
			}
			if n := sm.Calls(); n != 1 {
				t.Errorf("the secret was asked for %d times for 12 org-months, want once", n)
			}
			if n := strings.Count(atlasLog.String(), "atlas request"); n != 0 {
				t.Errorf("%d requests reached Atlas", n)
			}
		})
	}
}
