package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	b, err := os.ReadFile(root + "/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("module github.com/atlas-billing-export/atlas-billing-export")) {
		t.Errorf("RepoRoot = %s: go.mod is not this module's", root)
	}
}

func TestVersity(t *testing.T) {
	s := Versity(t)
	ctx := testCtx(t)
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want loopback", s.Endpoint)
	}
	bucket := s.Bucket(t)
	if other := s.Bucket(t); other == bucket {
		t.Errorf("Bucket returned %q twice", bucket)
	}

	for _, key := range []string{"a/one.csv", "a/two.csv", "b/three.csv"} {
		if _, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(key), Body: strings.NewReader("body of " + key)}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	if got, want := strings.Join(s.Keys(t, bucket, "a/"), ","), "a/one.csv,a/two.csv"; got != want {
		t.Errorf("Keys(a/) = %s, want %s", got, want)
	}
	if got := string(s.Get(t, bucket, "b/three.csv")); got != "body of b/three.csv" {
		t.Errorf("Get = %q", got)
	}
	if h := s.Head(t, bucket, "missing"); h != nil {
		t.Errorf("Head(missing) = %+v, want nil", h)
	}
	if h := s.Head(t, bucket, "a/one.csv"); h == nil || aws.ToInt64(h.ContentLength) != int64(len("body of a/one.csv")) {
		t.Errorf("Head(a/one.csv) = %+v", h)
	}

	if n := s.OpenMultipartUploads(t, bucket); n != 0 {
		t.Fatalf("OpenMultipartUploads = %d before any upload", n)
	}
	mpu, err := s.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if n := s.OpenMultipartUploads(t, bucket); n != 1 {
		t.Errorf("OpenMultipartUploads = %d with one started, want 1", n)
	}
	if _, err := s.Client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String("big"), UploadId: mpu.UploadId}); err != nil {
		t.Fatal(err)
	}
	if n := s.OpenMultipartUploads(t, bucket); n != 0 {
		t.Errorf("OpenMultipartUploads = %d after abort, want 0", n)
	}

	// The gateway checks signatures: a client with a wrong secret is refused.
	bad := NewS3Client(s.Endpoint, s.AccessKey, "wrong"+s.SecretKey)
	if _, err := bad.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket}); err == nil {
		t.Error("a wrong secret key was accepted")
	}
}

func TestVersityTLS(t *testing.T) {
	s := VersityTLS(t)
	ctx := testCtx(t)
	if !strings.HasPrefix(s.Endpoint, "https://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want HTTPS on loopback", s.Endpoint)
	}
	bucket := s.Bucket(t)
	if _, err := s.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("body")}); err != nil {
		t.Fatalf("put over HTTPS: %v", err)
	}
	if got := string(s.Get(t, bucket, "k")); got != "body" {
		t.Errorf("Get = %q", got)
	}
	if resp, err := s.HTTPClient().Get(s.Endpoint + "/"); err != nil {
		t.Errorf("HTTPClient does not trust the gateway: %v", err)
	} else {
		resp.Body.Close()
	}
	// A client without the certificate is refused: the connection is TLS.
	untrusted := NewS3Client(s.Endpoint, s.AccessKey, s.SecretKey, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if _, err := untrusted.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket}); err == nil {
		t.Error("a client that does not trust the certificate connected")
	}
}

func TestSecretsManager(t *testing.T) {
	m := NewSecretsManager(t)
	ctx := testCtx(t)
	arn := m.Put("atlas/creds", `{"v":1}`)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:") || !strings.Contains(arn, ":secret:atlas/creds-") {
		t.Errorf("ARN = %q", arn)
	}

	get := func(id string) (*secretsmanager.GetSecretValueOutput, error) {
		return m.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	}
	for _, id := range []string{"atlas/creds", arn} {
		out, err := get(id)
		if err != nil {
			t.Fatalf("GetSecretValue(%s): %v", id, err)
		}
		if aws.ToString(out.SecretString) != `{"v":1}` || aws.ToString(out.ARN) != arn || aws.ToString(out.Name) != "atlas/creds" || aws.ToString(out.VersionId) == "" {
			t.Errorf("GetSecretValue(%s) = %+v", id, out)
		}
	}
	first, _ := get(arn)

	// Rotation: a new value under a new version id; the old one is AWSPREVIOUS.
	if again := m.Put("atlas/creds", `{"v":2}`); again != arn {
		t.Errorf("rotation changed the ARN: %s", again)
	}
	second, err := get(arn)
	if err != nil || aws.ToString(second.SecretString) != `{"v":2}` || aws.ToString(second.VersionId) == aws.ToString(first.VersionId) {
		t.Errorf("after rotation: %+v, %v", second, err)
	}
	prev, err := m.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: &arn, VersionStage: aws.String("AWSPREVIOUS")})
	if err != nil || aws.ToString(prev.SecretString) != `{"v":1}` {
		t.Errorf("AWSPREVIOUS: %+v, %v", prev, err)
	}

	// The SDK's own write operations work too.
	created, err := m.Client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("other"), SecretString: aws.String("x")})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	if _, err := m.Client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: created.ARN, SecretString: aws.String("y")}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	if out, err := get("other"); err != nil || aws.ToString(out.SecretString) != "y" {
		t.Errorf("after PutSecretValue: %+v, %v", out, err)
	}
	var exists *smtypes.ResourceExistsException
	if _, err := m.Client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("other"), SecretString: aws.String("z")}); !errors.As(err, &exists) {
		t.Errorf("CreateSecret twice: %v, want ResourceExistsException", err)
	}

	m.Delete("atlas/creds")
	var nf *smtypes.ResourceNotFoundException
	if _, err := get(arn); !errors.As(err, &nf) {
		t.Errorf("after Delete: %v, want ResourceNotFoundException", err)
	}

	m.Fail(1, "AccessDeniedException", 400)
	var api smithy.APIError
	if _, err := get("other"); !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" {
		t.Errorf("injected fault: %v", err)
	}
	if _, err := get("other"); err != nil {
		t.Errorf("fault applied more than once: %v", err)
	}
	// A 5xx is retried by the SDK: one fault, one success.
	before := m.Calls()
	m.Fail(1, "InternalServiceError", 500)
	if _, err := get("other"); err != nil {
		t.Errorf("5xx not retried: %v", err)
	}
	if n := m.Calls() - before; n != 2 {
		t.Errorf("Calls grew by %d over a retried 5xx, want 2", n)
	}

	// A client with other credentials is refused.
	stranger := secretsmanager.New(secretsmanager.Options{
		BaseEndpoint: aws.String(m.Endpoint), Region: Region,
		Credentials: credentials.NewStaticCredentialsProvider("someone", "else", ""),
	})
	if _, err := stranger.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("other")}); !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("foreign credentials: %v", err)
	}
}

func TestSecretsManagerCalls(t *testing.T) {
	m := NewSecretsManager(t)
	m.Put("s", "v")
	for i := range 3 {
		if _, err := m.Client.GetSecretValue(testCtx(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")}); err != nil {
			t.Fatal(err)
		}
		if got := m.Calls(); got != i+1 {
			t.Errorf("Calls = %d after %d reads", got, i+1)
		}
	}
}

func TestRunBootstrap(t *testing.T) {
	bin := BuildBootstrap(t, "./internal/testenv/testdata/echo")
	events := []json.RawMessage{
		json.RawMessage(`{"a":1}`),
		json.RawMessage(`"invalid"`),
		json.RawMessage(`"env"`),
		json.RawMessage(`"context"`),
		json.RawMessage(`"exit"`),
		json.RawMessage(`[1,2,3]`), // answered by a restarted process
	}
	got, output := RunBootstrapOutput(t, bin, []string{"ECHO_VALUE=from-env"}, events...)
	if len(got) != len(events) {
		t.Fatalf("%d invocations for %d events", len(got), len(events))
	}
	tests := []struct {
		name                  string
		inv                   Invocation
		payload, typ, message string
	}{
		{"echo", got[0], `{"a":1}`, "", ""},
		{"named error", got[1], "", "Input.Invalid", "input is invalid"},
		{"env passed", got[2], `"from-env"`, "", ""},
		{"exit", got[4], "", "Runtime.ExitError", "exit status 3"},
		{"after restart", got[5], `[1,2,3]`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.inv.Payload) != tt.payload || tt.inv.ErrorType != tt.typ || !strings.Contains(tt.inv.ErrorMessage, tt.message) {
				t.Errorf("got %+v (payload %s), want payload %s, error %s %q", tt.inv, tt.inv.Payload, tt.payload, tt.typ, tt.message)
			}
			if tt.inv.Failed() != (tt.typ != "") {
				t.Errorf("Failed() = %v", tt.inv.Failed())
			}
		})
	}
	var ctxInfo struct {
		RequestID   string `json:"requestId"`
		FunctionArn string `json:"functionArn"`
		DeadlineSet bool   `json:"deadlineSet"`
	}
	if err := json.Unmarshal(got[3].Payload, &ctxInfo); err != nil {
		t.Fatalf("context payload %s: %v", got[3].Payload, err)
	}
	if ctxInfo.RequestID == "" || ctxInfo.RequestID != got[3].RequestID || !strings.HasPrefix(ctxInfo.FunctionArn, "arn:aws:lambda:") || !ctxInfo.DeadlineSet {
		t.Errorf("Lambda context seen by the function = %+v (request id %s)", ctxInfo, got[3].RequestID)
	}
	if !strings.Contains(output, "echo: 7 bytes") {
		t.Errorf("function output not captured:\n%s", output)
	}
}

func TestRunBootstrapInitError(t *testing.T) {
	bin := BuildBootstrap(t, "./internal/testenv/testdata/echo")
	got, _ := RunBootstrapOutput(t, bin, []string{"ECHO_INIT_FAIL=missing ABX_BUCKET"}, json.RawMessage(`1`), json.RawMessage(`2`))
	if len(got) != 2 {
		t.Fatalf("%d invocations, want 2", len(got))
	}
	for i, inv := range got {
		if inv.ErrorType != "Config.Invalid" || inv.ErrorMessage != "missing ABX_BUCKET" {
			t.Errorf("event %d: %+v, want the init error", i, inv)
		}
	}
}

func TestRunTimed(t *testing.T) {
	bin := BuildBootstrap(t, "./internal/testenv/testdata/echo")
	t.Run("cold start", func(t *testing.T) {
		run := RunTimed(t, bin, nil, time.Minute)
		if run.Init <= 0 || run.Done != 0 || len(run.Invocations) != 0 || run.CPU < 0 {
			t.Errorf("run = %+v, want an init time and nothing else", run)
		}
		if runtime.GOOS == "linux" && run.PeakRSS < 1<<20 {
			t.Errorf("peak RSS %d bytes, want the process's (at least 1 MiB)", run.PeakRSS)
		}
	})
	t.Run("events", func(t *testing.T) {
		run := RunTimed(t, bin, nil, time.Minute, json.RawMessage(`{"a":1}`), json.RawMessage(`"sleep"`))
		if len(run.Invocations) != 2 || string(run.Invocations[0].Payload) != `{"a":1}` || string(run.Invocations[1].Payload) != `"slept"` {
			t.Fatalf("invocations = %+v", run.Invocations)
		}
		if d := run.Invocations[1].Duration; d < 50*time.Millisecond || d > 30*time.Second {
			t.Errorf("the sleeping invocation took %v, want at least its 50 ms", d)
		}
		if run.Invocations[0].Duration <= 0 || run.Done < run.Init+run.Invocations[1].Duration {
			t.Errorf("init %v, durations %v and %v, done %v: not in order", run.Init, run.Invocations[0].Duration, run.Invocations[1].Duration, run.Done)
		}
	})
}

func TestBuildBootstrapCached(t *testing.T) {
	const pkg = "./internal/testenv/testdata/echo"
	a := BuildBootstrap(t, pkg)
	b := BuildBootstrap(t, pkg)
	if a == b {
		t.Errorf("both calls returned %s; each caller gets its own file", a)
	}
	if !strings.HasSuffix(b, "/bootstrap") {
		t.Errorf("path %s is not named bootstrap", b)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if len(ab) == 0 || !bytes.Equal(ab, bb) {
		t.Errorf("cached build differs (%d vs %d bytes)", len(ab), len(bb))
	}
	v, _ := builds.Load(pkg)
	runs := v.(*build).runs
	if runs != 1 {
		t.Errorf("go build ran %d times for %s, want 1", runs, pkg)
	}
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"under limit", []string{"ab", "cd"}, "abcd"},
		{"over limit keeps the tail", []string{"abcdef", "gh"}, "[... earlier output dropped ...]\ndefgh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Buffer{Max: 5}
			for _, w := range tt.writes {
				b.Write([]byte(w))
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSecretsManagerFromEnv shows how a Lambda process reaches the endpoint:
// the SDK's default config with AWS_ENDPOINT_URL_SECRETS_MANAGER and the
// endpoint's access key.
func TestSecretsManagerFromEnv(t *testing.T) {
	m := NewSecretsManager(t)
	arn := m.Put("from-env", "value")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", m.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "any")
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	cfg, err := config.LoadDefaultConfig(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(testCtx(t), &secretsmanager.GetSecretValueInput{SecretId: &arn})
	if err != nil || aws.ToString(out.SecretString) != "value" {
		t.Errorf("GetSecretValue = %v, %v", out, err)
	}
}
