package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// TestInvoke runs steps through the functions' handlers against the simulator, into a folder, as
// Lambda would run them: the same configuration rules, the same answers and error names.
func TestInvoke(t *testing.T) {
	sim, env := simEnv(t)
	org := atlassim.DefaultOrgs[0].ID
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range env {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	dir := t.TempDir()
	invoke := func(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
		t.Helper()
		a, stdout, stderr := testApp(t, env)
		a.Stdin = strings.NewReader(stdin)
		code := a.Main(context.Background(), append([]string{"invoke", "--out", dir}, args...))
		return code, stdout.String(), stderr.String()
	}

	// plan: the request, the configured org, the previous month of the real clock.
	code, out, stderr := invoke(t, env, "", "plan", `{"period":"2024-06"}`)
	var plan export.Plan
	if code != ExitOK || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Jobs) != 1 || plan.Jobs[0].OrgID != org || !plan.Jobs[0].Focus {
		t.Fatalf("plan: exit %d, %s %s", code, out, stderr)
	}
	// submit, from a file, flags after the arguments.
	jobFile := filepath.Join(t.TempDir(), "job.json")
	b, _ := json.Marshal(plan.Jobs[0])
	if err := os.WriteFile(jobFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	a, stdout, stderrBuf := testApp(t, env)
	if code := a.Main(context.Background(), []string{"invoke", "submit", "@" + jobFile, "--out", dir}); code != ExitOK {
		t.Fatalf("submit: exit %d: %s", code, stderrBuf)
	}
	job := stdout.String()
	// poll, from stdin, until ready.
	for i := 0; i < 3 && !strings.Contains(job, `"READY"`); i++ {
		if code, job, stderr = invoke(t, env, job, "poll", "-"); code != ExitOK {
			t.Fatalf("poll: exit %d: %s", code, stderr)
		}
	}
	var j export.Job
	if err := json.Unmarshal([]byte(job), &j); err != nil || j.Status != export.StatusReady || j.Usage == nil {
		t.Fatalf("poll: %s (%v)", job, err)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(j.Usage.Key))); err != nil {
		t.Errorf("usage not in the folder: %v", err)
	}
	code, out, stderr = invoke(t, env, "", "fetch", job)
	if code != ExitOK || !strings.Contains(out, "invoice_line_items/org_id="+org) {
		t.Fatalf("fetch: exit %d, %s %s", code, out, stderr)
	}

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"the functions' configuration: ABX_FOCUS_REPORTS", with(config.EnvFocus, "maybe"), []string{"plan", "{}"}, ExitUsage, `error: Config.Invalid: configuration: ABX_FOCUS_REPORTS "maybe": want true or false`},
		{"the functions' bounds", with(config.EnvMaxPolls, "1001"), []string{"plan", "{}"}, ExitUsage, "ABX_MAX_POLL_ATTEMPTS \"1001\": want a number from 1 to 1000"},
		{"bad input", env, []string{"plan", `{"orgid":"` + org + `"}`}, ExitUsage, `error: Input.Invalid: event: unknown field "orgid"`},
		{"Atlas error", env, []string{"fetch", `{"orgId":"` + org + `","period":{"month":"2024-06"},"invoiceId":"000000000000000000000000","maxAttempts":1}`},
			ExitFailure, "error: Atlas.NotFound: org " + org + ", 2024-06: invoice 000000000000000000000000 is not among"},
		{"unknown step", env, []string{"wait", "{}"}, ExitUsage, `unknown step "wait"`},
		{"invalid JSON", env, []string{"poll", `{"orgId":`}, ExitUsage, "not valid JSON"},
		{"missing file", env, []string{"poll", "@" + filepath.Join(dir, "nope.json")}, ExitUsage, "event file"},
		{"one argument", env, []string{"poll"}, ExitUsage, "invoke needs STEP and EVENT"},
		{"submit needs credentials", with(secret.EnvClientID, "", secret.EnvClientSecret, ""), []string{"submit", job}, ExitUsage, "Config.Invalid: no Atlas credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := invoke(t, tt.env, "", tt.args...)
			if code != tt.wantCode || out != "" {
				t.Fatalf("exit %d, want %d; stdout %q, stderr %q", code, tt.wantCode, out, stderr)
			}
			assertOneErrorLine(t, stderr, tt.wantErr)
		})
	}
	if n := sim.Requests(atlassim.OpCreateUsage); n != 1 {
		t.Errorf("%d usage queries, want the one submit", n)
	}
}

// TestFrontEndsAgree: a setting means the same to invoke as to the Lambda
// function, which both read with internal/config: the same plan, or the
// same error name and message.
func TestFrontEndsAgree(t *testing.T) {
	// The function's plan reads its secret.
	sm := testenv.NewSecretsManager(t)
	lambdaEnv := map[string]string{
		config.EnvBucket: "my-lake", config.EnvSecretARN: sm.Put("atlas", `{"clientId":"mdb_sa_id_x","clientSecret":"topsecret"}`),
		"AWS_REGION": testenv.Region, "AWS_ACCESS_KEY_ID": sm.AccessKey, "AWS_SECRET_ACCESS_KEY": "example", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": sm.Endpoint,
	}
	for _, tt := range []struct{ name, key, value string }{
		{"defaults", "", ""},
		{"FOCUS off", config.EnvFocus, "false"},
		{"FOCUS neither true nor false", config.EnvFocus, "maybe"},
		{"the most polls", config.EnvMaxPolls, "1000"},
		{"one poll too many", config.EnvMaxPolls, "1001"},
		{"no polls", config.EnvMaxPolls, "0"},
		{"strict", config.EnvStrict, "yes"},
		{"an unknown zone", config.EnvZone, "Mars/Olympus_Mons"},
		{"a bad org", config.EnvOrgIDs, "5F1A"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			setting := func(env map[string]string) map[string]string {
				out := map[string]string{config.EnvOrgIDs: testOrg1}
				for k, v := range env {
					out[k] = v
				}
				if tt.key != "" {
					out[tt.key] = tt.value
				}
				return out
			}
			h := function.New(context.Background(), envMap(setting(lambdaEnv)), io.Discard, normalize.Parquet{})
			lambdaOut, lambdaErr := h.Handler("fetch-invoice")(context.Background(), json.RawMessage(`{"action": "plan", "request": {"period": "2024-06"}}`))
			a, stdout, stderr := testApp(t, setting(nil))
			code := a.Main(context.Background(), []string{"invoke", "--out", t.TempDir(), "plan", `{"period": "2024-06"}`})
			if lambdaErr != nil {
				e, ok := lambdaErr.(messages.InvokeResponse_Error)
				if want := "error: " + e.Type + ": " + e.Message + "\n"; !ok || code != ExitUsage || stderr.String() != want {
					t.Fatalf("invoke: exit %d, stderr %q; Lambda: %q", code, stderr, want)
				}
				return
			}
			var fromLambda, fromInvoke any
			b, _ := json.Marshal(lambdaOut)
			if err := json.Unmarshal(b, &fromLambda); err != nil || code != ExitOK || json.Unmarshal(stdout.Bytes(), &fromInvoke) != nil || !reflect.DeepEqual(fromLambda, fromInvoke) {
				t.Fatalf("invoke: exit %d, %s%s; Lambda: %s", code, stdout, stderr, b)
			}
		})
	}
}

// TestInvokeConsoleComment: the Step Functions console's default input plans the previous month.
func TestInvokeConsoleComment(t *testing.T) {
	a, stdout, stderr := testApp(t, map[string]string{config.EnvOrgIDs: testOrg1})
	if code := a.Main(context.Background(), []string{"invoke", "--out", t.TempDir(), "plan", `{"Comment": "Insert your JSON here"}`}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var plan export.Plan
	if err := json.Unmarshal(stdout.Bytes(), &plan); err != nil || len(plan.Jobs) != 1 || plan.Jobs[0].Period.Label() != time.Now().UTC().AddDate(0, 0, -time.Now().UTC().Day()).Format("2006-01") {
		t.Fatalf("plan %s (%v), want the previous month", stdout, err)
	}
}

// TestInvokeFocusOff: ABX_FOCUS_REPORTS=false plans without FOCUS reports, as in Lambda.
func TestInvokeFocusOff(t *testing.T) {
	a, stdout, stderr := testApp(t, map[string]string{config.EnvOrgIDs: testOrg1, config.EnvFocus: "false"})
	if code := a.Main(context.Background(), []string{"invoke", "--out", t.TempDir(), "plan", `{"period":"2024-06"}`}); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var plan export.Plan
	if err := json.Unmarshal(stdout.Bytes(), &plan); err != nil || len(plan.Jobs) != 1 || plan.Jobs[0].Focus {
		t.Fatalf("plan %s (%v), want one job without FOCUS", stdout, err)
	}
}

// TestOutputModes: --json and --quiet apply to every command.
func TestOutputModes(t *testing.T) {
	env := map[string]string{config.EnvOrgIDs: testOrg1}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"invoke", []string{"invoke", "--out", t.TempDir(), "plan", `{"period":"2024-06"}`}},
		{"version", []string{"version"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, stdout, stderr := testApp(t, env)
			if code := a.Main(context.Background(), append(tt.args, "--json")); code != ExitOK || strings.Count(stdout.String(), "\n") != 1 || !json.Valid(stdout.Bytes()) {
				t.Errorf("--json: exit %d, stdout %q, stderr %q; want one JSON line", code, stdout, stderr)
			}
			a, stdout, stderr = testApp(t, env)
			if code := a.Main(context.Background(), append(tt.args, "--quiet")); code != ExitOK || stdout.Len()+stderr.Len() != 0 {
				t.Errorf("--quiet: exit %d, stdout %q, stderr %q; want nothing", code, stdout, stderr)
			}
			a, _, stderr = testApp(t, env)
			if code := a.Main(context.Background(), append(tt.args, "--quiet", "--json")); code != ExitUsage {
				t.Errorf("--quiet --json: exit %d, stderr %q", code, stderr)
			}
		})
	}
}
