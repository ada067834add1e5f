package function_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
	"github.com/aws/aws-lambda-go/lambda/messages"
)

const prefix = "exports/atlas"

// world is one test's Atlas simulator, S3 server, Secrets Manager and the
// three functions' handlers built from their environment.
type world struct {
	sim     *atlassim.Server
	base    string
	s3      *testenv.S3
	bucket  string
	sm      *testenv.SecretsManager
	arn     string
	env     map[string]string
	logs    *syncBuffer
	h       *function.Handlers
	org     string
	secrets []string // every credential value, which no log may show
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func serviceAccountSecret(id, secret string) string {
	b, _ := json.Marshal(map[string]string{"clientId": id, "clientSecret": secret})
	return string(b)
}

func newWorld(t *testing.T, cfg atlassim.Config, secretJSON string) *world {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) }
	}
	if cfg.ReadyAfterPolls == 0 && cfg.ProcessingTime == 0 {
		cfg.ReadyAfterPolls = 2
	}
	w := &world{logs: &syncBuffer{}}
	w.sim, w.base = atlassimtest.Start(t, cfg)
	w.org = w.sim.Orgs()[0].ID
	w.s3 = testenv.Versity(t)
	w.bucket = w.s3.Bucket(t)
	w.sm = testenv.NewSecretsManager(t)
	// The functions sign both services' requests with the one set of AWS
	// credentials in their environment, as in Lambda.
	w.sm.AccessKey = w.s3.AccessKey
	if secretJSON == "" {
		secretJSON = serviceAccountSecret(atlassim.DefaultClientID, atlassim.DefaultClientSecret)
	}
	w.secrets = []string{atlassim.DefaultClientSecret, atlassim.DefaultPrivateKey}
	w.arn = w.sm.Put("atlas-billing", secretJSON)
	w.env = map[string]string{
		"ABX_BUCKET":         w.bucket,
		"ABX_PREFIX":         prefix,
		"ABX_SECRET_ARN":     w.arn,
		"ABX_ATLAS_BASE_URL": w.base,
		"ABX_S3_ENDPOINT":    w.s3.Endpoint,
		"ABX_ORG_IDS":        w.org,
	}
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                w.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY":            w.s3.SecretKey,
		"AWS_REGION":                       testenv.Region,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": w.sm.Endpoint,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_CONFIG_FILE":                  "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":      "/dev/null",
	} {
		t.Setenv(k, v)
	}
	w.h = function.New(context.Background(), func(k string) string { return w.env[k] }, w.logs)
	t.Cleanup(func() { w.checkLogs(t) })
	return w
}

// checkLogs is run after every test: no credential in any log line.
func (w *world) checkLogs(t *testing.T) {
	t.Helper()
	logs := w.logs.String()
	for _, s := range w.secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret value appears in the logs")
		}
	}
	for _, bad := range []string{"Bearer ", "access_token", "Digest "} {
		if strings.Contains(logs, bad) {
			t.Errorf("the logs contain %q", bad)
		}
	}
}

func call(t *testing.T, fn func(context.Context, json.RawMessage) (any, error), event any) (json.RawMessage, error) {
	t.Helper()
	raw, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := event.(string); ok {
		raw = json.RawMessage(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := fn(ctx, raw)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, nil
}

func mustCall[T any](t *testing.T, fn func(context.Context, json.RawMessage) (any, error), event any) T {
	t.Helper()
	raw, err := call(t, fn, event)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return v
}

func errorType(err error) string {
	if e, ok := err.(messages.InvokeResponse_Error); ok {
		return e.Type
	}
	return ""
}

// untilReady polls as the state machine would, without the waits.
func untilReady(t *testing.T, w *world, job export.Job) export.Job {
	t.Helper()
	for i := 0; i < 10; i++ {
		prev := job.Attempt
		job = mustCall[export.Job](t, w.h.Poll, job)
		if job.Status == export.StatusReady {
			return job
		}
		if job.Status != export.StatusProcessing || job.WaitSeconds <= 0 || job.Attempt != prev+1 {
			t.Fatalf("poll %d: %+v", i+1, job)
		}
	}
	t.Fatal("not ready after 10 polls")
	return job
}

func (w *world) atlasClient(t *testing.T) *atlas.Client {
	t.Helper()
	c, err := atlas.NewClient(atlas.WithBaseURL(w.base), atlas.WithServiceAccount(atlassim.DefaultClientID, atlassim.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExportOneOrgMonth(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")

	// A console test event: one org, one month.
	job := mustCall[export.Job](t, w.h.Submit, map[string]any{"orgId": w.org, "period": "2024-06", "includePending": true})
	if len(job.Token) != 64 || job.Status != export.StatusSubmitted || job.WaitSeconds != 5 || job.Period.Label() != "2024-06" {
		t.Fatalf("submit = %+v", job)
	}
	job = untilReady(t, w, job)
	if job.Attempt != 3 || job.Usage == nil {
		t.Fatalf("ready job = %+v", job)
	}

	// The stored usage is byte for byte what Atlas serves for the token.
	u, err := w.atlasClient(t).GetUsage(context.Background(), w.org, job.Token, atlas.CSV)
	if err != nil || u.Processing {
		t.Fatalf("GetUsage: %v %+v", err, u)
	}
	served, err := io.ReadAll(u.Body)
	u.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantKey := prefix + "/usage/org_id=" + w.org + "/billing_month=2024-06/usage.csv"
	if job.Usage.Key != wantKey || job.Usage.Bucket != w.bucket {
		t.Errorf("usage object = %+v, want key %s", job.Usage, wantKey)
	}
	if got := w.s3.Get(t, w.bucket, wantKey); !bytes.Equal(got, served) {
		t.Errorf("stored usage (%d bytes) differs from what Atlas served (%d bytes)", len(got), len(served))
	}
	if job.Usage.Rows != 100 || job.Usage.Bytes != int64(len(served)) {
		t.Errorf("usage rows/bytes = %d/%d", job.Usage.Rows, job.Usage.Bytes)
	}

	res := mustCall[export.Result](t, w.h.FetchInvoice, job)
	// usage, June's invoice, July's pending one
	if len(res.Objects) != 3 {
		t.Fatalf("objects = %+v", res.Objects)
	}
	byMonth := map[string]atlassim.Invoice{}
	for _, inv := range w.sim.Invoices(w.org) {
		byMonth[inv.Month] = inv
	}
	for _, month := range []string{"2024-06", "2024-07"} {
		inv := byMonth[month]
		key := prefix + "/invoices/org_id=" + w.org + "/billing_month=" + month + "/invoice_id=" + inv.ID + ".csv"
		var want bytes.Buffer
		if err := w.sim.WriteInvoiceCSV(&want, w.org, inv.ID); err != nil {
			t.Fatal(err)
		}
		if got := w.s3.Get(t, w.bucket, key); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: stored %d bytes differ from the %d Atlas served", key, len(got), want.Len())
		}
		head := w.s3.Head(t, w.bucket, key)
		if head == nil {
			t.Fatalf("%s: missing", key)
		}
		m := head.Metadata
		if m["org-id"] != w.org || m["billing-month"] != month || m["invoice-id"] != inv.ID || m["rows"] != itoa(inv.Rows) || len(m["sha256"]) != 64 || m["source"] != "atlas-invoice-csv" {
			t.Errorf("%s: metadata %v", key, m)
		}
	}

	// A re-run stores nothing new: same keys, every invoice skipped as unchanged.
	before := w.s3.Keys(t, w.bucket, prefix+"/")
	again := mustCall[export.Result](t, w.h.FetchInvoice, job)
	for _, o := range again.Objects[1:] {
		if !o.Skipped {
			t.Errorf("%s rewritten on an unchanged re-run", o.Key)
		}
	}
	if after := w.s3.Keys(t, w.bucket, prefix+"/"); strings.Join(after, ",") != strings.Join(before, ",") || len(after) != 3 {
		t.Errorf("keys after re-run = %v, before = %v", after, before)
	}
	if n := w.s3.OpenMultipartUploads(t, w.bucket); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestPlanAndDefaults(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	w.env["ABX_ORG_IDS"] = ""
	// No org configured and none in the secret: a clear configuration error.
	h := function.New(context.Background(), func(k string) string { return w.env[k] }, w.logs)
	_, err := call(t, h.Submit, `{"action":"plan","request":{}}`)
	if errorType(err) != export.ConfigInvalid {
		t.Fatalf("err = %v (%s)", err, errorType(err))
	}
	// The secret's orgIds are the default.
	orgs := w.sim.Orgs()
	secretJSON, _ := json.Marshal(map[string]any{"clientId": atlassim.DefaultClientID, "clientSecret": atlassim.DefaultClientSecret, "orgIds": []string{orgs[0].ID, orgs[1].ID}})
	w.sm.Put("atlas-billing", string(secretJSON))
	h = function.New(context.Background(), func(k string) string { return w.env[k] }, w.logs)
	plan := mustCall[export.Plan](t, h.Submit, `{"action":"plan","request":{"scheduledTime":"2024-03-01T06:00:00Z"}}`)
	if len(plan.Jobs) != 2 || plan.Jobs[0].OrgID != orgs[0].ID || plan.Jobs[1].Period.Label() != "2024-02" {
		t.Fatalf("plan = %+v", plan)
	}
}

func TestBadInputMakesNoCall(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	for _, ev := range []string{
		`{"orgId":"../../etc"}`,
		`{"orgId":"` + w.org + `","startDate":"2024-01-15","endDate":"2024-03-01"}`,
		`{"orgId":"` + w.org + `","services":["Snacks"]}`,
	} {
		_, err := call(t, w.h.Submit, ev)
		if errorType(err) != export.InputInvalid {
			t.Errorf("%s: err = %v (%s)", ev, err, errorType(err))
		}
	}
	if n := w.sim.Requests(atlassim.OpCreateUsage) + w.sim.Requests(atlassim.OpOAuthToken); n != 0 {
		t.Errorf("%d Atlas requests for bad input", n)
	}
	if n := w.sm.Calls(); n != 0 {
		t.Errorf("%d secret reads for bad input", n)
	}
}

func TestStreamCutMidBody(t *testing.T) {
	w := newWorld(t, atlassim.Config{InvoiceBytes: 12 << 20}, "")
	job := untilReady(t, w, mustCall[export.Job](t, w.h.Submit, map[string]any{"orgId": w.org, "period": "2024-06"}))
	w.sim.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 6 << 20})

	_, err := call(t, w.h.FetchInvoice, job)
	if errorType(err) != export.AtlasStreamBroken || !strings.Contains(err.Error(), w.org) {
		t.Fatalf("err = %v (%s), want %s naming the org", err, errorType(err), export.AtlasStreamBroken)
	}
	if keys := w.s3.Keys(t, w.bucket, prefix+"/invoices/"); len(keys) != 0 {
		t.Errorf("objects under a final key after a broken stream: %v", keys)
	}
	if keys := w.s3.Keys(t, w.bucket, prefix+"/_staging/"); len(keys) != 0 {
		t.Errorf("staging objects left: %v", keys)
	}
	if n := w.s3.OpenMultipartUploads(t, w.bucket); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}

	// The retry the state machine makes stores the whole invoice.
	res := mustCall[export.Result](t, w.h.FetchInvoice, job)
	if len(res.Objects) != 2 || res.Objects[1].Bytes < 12<<20-(1<<20) {
		t.Fatalf("retry objects = %+v", res.Objects)
	}
}

func TestSecretRotation(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	job := mustCall[export.Job](t, w.h.Submit, map[string]any{"orgId": w.org, "period": "2024-06"})
	if n := w.sm.Calls(); n != 1 {
		t.Fatalf("secret reads after the first call = %d, want 1", n)
	}

	// Rotate: the old secret stops working at Atlas (and its tokens with it),
	// the new one is in Secrets Manager.
	const newSecret = "mdb_sa_sk_rotated-0123456789abcdef0123"
	w.secrets = append(w.secrets, newSecret)
	w.sim.RevokeServiceAccount(atlassim.DefaultClientID)
	w.sim.SetServiceAccount(atlassim.DefaultClientID, newSecret)
	w.sm.Put("atlas-billing", serviceAccountSecret(atlassim.DefaultClientID, newSecret))

	job = mustCall[export.Job](t, w.h.Poll, job)
	if job.Status != export.StatusProcessing || job.Attempt != 1 {
		t.Fatalf("poll after rotation = %+v", job)
	}
	if n := w.sm.Calls(); n != 2 {
		t.Errorf("secret reads = %d, want 2 (one re-read after the 401)", n)
	}
	// Later calls use the new credentials without re-reading.
	untilReady(t, w, job)
	if n := w.sm.Calls(); n != 2 {
		t.Errorf("secret reads = %d after more polls, want 2", n)
	}
}

func TestRevokedCredentials(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	w.sim.RevokeServiceAccount(atlassim.DefaultClientID)
	_, err := call(t, w.h.Submit, map[string]any{"orgId": w.org, "period": "2024-06"})
	if errorType(err) != export.AtlasUnauthorized || !strings.Contains(err.Error(), w.org) {
		t.Fatalf("err = %v (%s)", err, errorType(err))
	}
	if n := w.sm.Calls(); n != 2 {
		t.Errorf("secret reads = %d, want 2 (one re-read, then give up)", n)
	}
}

func TestSecretProblems(t *testing.T) {
	tests := []struct {
		name, secret, want string
	}{
		{"not json", "clientId=x", export.SecretInvalid},
		{"missing fields", `{"clientId":"mdb_sa_id_x"}`, export.SecretInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, atlassim.Config{}, tt.secret)
			_, err := call(t, w.h.Submit, map[string]any{"orgId": w.org, "period": "2024-06"})
			if errorType(err) != tt.want {
				t.Fatalf("err = %v (%s), want %s", err, errorType(err), tt.want)
			}
		})
	}
	t.Run("missing secret", func(t *testing.T) {
		w := newWorld(t, atlassim.Config{}, "")
		w.sm.Delete("atlas-billing")
		_, err := call(t, w.h.Submit, map[string]any{"orgId": w.org, "period": "2024-06"})
		if errorType(err) != export.SecretUnavailable {
			t.Fatalf("err = %v (%s)", err, errorType(err))
		}
	})
}

// TestBootstrap drives the built submit function through the Lambda Runtime
// API, as Lambda runs it: one success, one named error.
func TestBootstrap(t *testing.T) {
	apiKey, _ := json.Marshal(map[string]string{"publicKey": atlassim.DefaultPublicKey, "privateKey": atlassim.DefaultPrivateKey})
	w := newWorld(t, atlassim.Config{}, string(apiKey))
	bin := testenv.BuildBootstrap(t, "./functions/submit")
	env := []string{
		"AWS_ACCESS_KEY_ID=" + w.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + w.s3.SecretKey,
		"AWS_REGION=" + testenv.Region, "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + w.sm.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	for k, v := range w.env {
		env = append(env, k+"="+v)
	}
	invs, output := testenv.RunBootstrapOutput(t, bin, env,
		json.RawMessage(`{"orgId":"`+w.org+`","period":"2024-06"}`),
		json.RawMessage(`{"orgId":"../`+w.org+`"}`),
	)
	if len(invs) != 2 {
		t.Fatalf("invocations = %+v", invs)
	}
	var job export.Job
	if invs[0].Failed() || json.Unmarshal(invs[0].Payload, &job) != nil || len(job.Token) != 64 {
		t.Errorf("first invocation = %+v", invs[0])
	}
	if invs[1].ErrorType != export.InputInvalid || !strings.Contains(invs[1].ErrorMessage, "org") {
		t.Errorf("second invocation = %+v", invs[1])
	}
	if w.sim.Requests(atlassim.OpCreateUsage) != 1 {
		t.Errorf("create requests = %d", w.sim.Requests(atlassim.OpCreateUsage))
	}
	for _, s := range w.secrets {
		if strings.Contains(output, s) {
			t.Error("a secret value appears in the function's output")
		}
	}
	if !strings.Contains(output, `"step":"submit"`) {
		t.Errorf("no structured log line for the step in:\n%s", output)
	}
}
