package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

type fakeInvoker struct {
	step  string
	event json.RawMessage
	out   json.RawMessage
	err   error
}

func (f *fakeInvoker) Invoke(_ context.Context, step string, event json.RawMessage) (json.RawMessage, error) {
	f.step, f.event = step, event
	return f.out, f.err
}

// namedErr is an error type like the functions' own: it carries its errorType.
type namedErr struct{ name, msg string }

func (e *namedErr) Error() string     { return e.name + ": " + e.msg }
func (e *namedErr) ErrorName() string { return e.name }

type plainErr struct{}

func (plainErr) Error() string { return "something broke" }

func TestInvoke(t *testing.T) {
	dir := t.TempDir()
	eventFile := filepath.Join(dir, "job.json")
	const job = `{"orgId":"5f1a2b3c4d5e6f7a8b9c0d1e","token":"t"}`
	if err := os.WriteFile(eventFile, []byte(job), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		args      []string
		stdin     string
		env       map[string]string
		inv       fakeInvoker
		wantCode  int
		wantOut   string
		wantErr   string
		wantEvent string
		check     func(t *testing.T, opt InvokeOptions)
	}{
		{
			name: "inline event", args: []string{"plan", `{"period":"2024-06"}`}, env: map[string]string{},
			inv: fakeInvoker{out: json.RawMessage(`{"jobs":[]}`)}, wantOut: "{\"jobs\":[]}\n", wantEvent: `{"period":"2024-06"}`,
		},
		{
			name: "file event, flags after the arguments", args: []string{"poll", "@" + eventFile, "--out", "s3://lake/x"}, env: saEnv,
			inv: fakeInvoker{out: json.RawMessage(`{"status":"READY"}`)}, wantOut: "{\"status\":\"READY\"}\n", wantEvent: job,
			check: func(t *testing.T, opt InvokeOptions) {
				if opt.Out != (Output{Bucket: "lake", Prefix: "x"}) || opt.Credentials.ClientID != "mdb_sa_id_x" {
					t.Fatalf("options = %+v", opt)
				}
			},
		},
		{
			name: "stdin event, function environment", args: []string{"fetch", "-"}, stdin: job,
			env: map[string]string{EnvBucket: "lake", EnvPrefix: "billing", EnvSecretARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a",
				EnvABXBaseURL: "http://127.0.0.1:8089", EnvMaxPolls: "12"},
			inv: fakeInvoker{out: json.RawMessage(`{"objects":[]}`)}, wantOut: "{\"objects\":[]}\n", wantEvent: job,
			check: func(t *testing.T, opt InvokeOptions) {
				if opt.Out != (Output{Bucket: "lake", Prefix: "billing"}) || opt.SecretARN == "" || opt.BaseURL != "http://127.0.0.1:8089" || opt.MaxPolls != 12 {
					t.Fatalf("options = %+v", opt)
				}
			},
		},
		{
			name: "Lambda error", args: []string{"fetch", job}, env: saEnv,
			inv:      fakeInvoker{err: fmt.Errorf("fetch: %w", messages.InvokeResponse_Error{Type: "Atlas.NotFound", Message: "org 5f1a: invoice 66 not found (RESOURCE_NOT_FOUND)"})},
			wantCode: ExitFailure, wantErr: "error: Atlas.NotFound: org 5f1a: invoice 66 not found (RESOURCE_NOT_FOUND)\n",
		},
		{
			name: "named error", args: []string{"submit", job}, env: saEnv,
			inv:      fakeInvoker{err: &namedErr{"Atlas.Unauthorized", "org 5f1a: 401 (UNAUTHORIZED)"}},
			wantCode: ExitFailure, wantErr: "error: Atlas.Unauthorized: org 5f1a: 401 (UNAUTHORIZED)\n",
		},
		{
			name: "plain error is named by its type, as Lambda does", args: []string{"submit", job}, env: saEnv,
			inv: fakeInvoker{err: plainErr{}}, wantCode: ExitFailure, wantErr: "error: plainErr: something broke\n",
		},
		{name: "unknown step", args: []string{"wait", job}, env: saEnv, wantCode: ExitUsage, wantErr: `unknown step "wait"`},
		{name: "invalid JSON", args: []string{"poll", `{"orgId":`}, env: saEnv, wantCode: ExitUsage, wantErr: "not valid JSON"},
		{name: "missing file", args: []string{"poll", "@" + filepath.Join(dir, "nope.json")}, env: saEnv, wantCode: ExitUsage, wantErr: "event file"},
		{name: "one argument", args: []string{"poll"}, env: saEnv, wantCode: ExitUsage, wantErr: "invoke needs STEP and EVENT"},
		{name: "submit needs credentials", args: []string{"submit", job}, env: map[string]string{}, wantCode: ExitUsage, wantErr: "no Atlas credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, stdout, stderr := testApp(t, tt.env)
			a.Stdin = strings.NewReader(tt.stdin)
			inv := tt.inv
			var gotOpt InvokeOptions
			a.NewInvoker = func(_ context.Context, opt InvokeOptions) (Invoker, error) {
				gotOpt = opt
				return &inv, nil
			}
			code := a.Main(context.Background(), append([]string{"invoke"}, tt.args...))
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			if tt.wantErr != "" {
				assertOneErrorLine(t, stderr.String(), tt.wantErr)
				if stdout.Len() != 0 {
					t.Fatalf("stdout = %q on failure", stdout)
				}
				return
			}
			if stdout.String() != tt.wantOut || string(inv.event) != tt.wantEvent || inv.step != tt.args[0] {
				t.Fatalf("stdout %q, step %q, event %s", stdout, inv.step, inv.event)
			}
			if tt.check != nil {
				tt.check(t, gotOpt)
			}
		})
	}
}

func TestInvokeNotWired(t *testing.T) {
	a, _, stderr := testApp(t, saEnv)
	if code := a.Main(context.Background(), []string{"invoke", "plan", "{}"}); code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	assertOneErrorLine(t, stderr.String(), "not wired")
}

func TestErrorName(t *testing.T) {
	tests := []struct {
		err           error
		name, message string
	}{
		{messages.InvokeResponse_Error{Type: "Input.Invalid", Message: "bad"}, "Input.Invalid", "bad"},
		{&messages.InvokeResponse_Error{Type: "Poll.AttemptsExhausted", Message: "40 polls"}, "Poll.AttemptsExhausted", "40 polls"},
		{fmt.Errorf("wrapped: %w", &namedErr{"Storage.Error", "put"}), "Storage.Error", "wrapped: Storage.Error: put"},
		{&namedErr{"Storage.Error", "put"}, "Storage.Error", "put"},
		{errors.New("x"), "errorString", "x"},
	}
	for _, tt := range tests {
		name, msg := ErrorName(tt.err)
		if name != tt.name || msg != tt.message {
			t.Errorf("ErrorName(%v) = %q, %q; want %q, %q", tt.err, name, msg, tt.name, tt.message)
		}
	}
}
