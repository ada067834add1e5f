package function_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"reflect"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const prefix = e2e.Prefix

// world is one test's Atlas simulator, S3 server, Secrets Manager and the
// three functions' handlers built from their environment (internal/e2e),
// with the first simulator org at hand.
type world struct {
	*e2e.World
	org string
}

func newWorld(t *testing.T, cfg atlassim.Config, secretJSON string) *world {
	t.Helper()
	w := e2e.New(t, e2e.Options{Sim: cfg, Secret: secretJSON})
	return &world{World: w, org: w.Orgs[0]}
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

// jobCall is the state machine's call of action on job.
func jobCall(action string, job export.Job) map[string]any {
	return map[string]any{"action": action, "job": job}
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
		job = mustCall[export.Job](t, w.H.Handler("poll"), jobCall("poll", job))
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
	c, err := atlas.NewClient(atlas.WithBaseURL(w.BaseURL), atlas.WithServiceAccount(atlassim.DefaultClientID, atlassim.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExportOneOrgMonth(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")

	// A console test event: one org, one month.
	job := mustCall[export.Job](t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-06", "includePending": true})
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
	if job.Usage.Key != wantKey || job.Usage.Bucket != w.Bucket {
		t.Errorf("usage object = %+v, want key %s", job.Usage, wantKey)
	}
	if got := w.S3.Get(t, w.Bucket, wantKey); !bytes.Equal(got, served) {
		t.Errorf("stored usage (%d bytes) differs from what Atlas served (%d bytes)", len(got), len(served))
	}
	if job.Usage.Rows != int64(bytes.Count(served, []byte{'\n'})-1) || job.Usage.Bytes != int64(len(served)) {
		t.Errorf("usage rows/bytes = %d/%d", job.Usage.Rows, job.Usage.Bytes)
	}

	res := mustCall[export.Result](t, w.H.Handler("fetch-invoice"), jobCall("fetch", job))
	// usage, June's invoice, July's pending one; each raw and normalized
	if len(res.Objects) != 6 {
		t.Fatalf("objects = %+v", res.Objects)
	}
	byMonth := map[string]atlassim.Invoice{}
	for _, inv := range w.Sim.Invoices(w.org) {
		byMonth[inv.Month] = inv
	}
	for _, month := range []string{"2024-06", "2024-07"} {
		inv := byMonth[month]
		key := prefix + "/invoices/org_id=" + w.org + "/billing_month=" + month + "/invoice_id=" + inv.ID + ".csv"
		var want bytes.Buffer
		if err := w.Sim.WriteInvoiceCSV(&want, w.org, inv.ID); err != nil {
			t.Fatal(err)
		}
		if got := w.S3.Get(t, w.Bucket, key); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: stored %d bytes differ from the %d Atlas served", key, len(got), want.Len())
		}
		head := w.S3.Head(t, w.Bucket, key)
		if head == nil {
			t.Fatalf("%s: missing", key)
		}
		m := head.Metadata
		if m["org-id"] != w.org || m["billing-month"] != month || m["invoice-id"] != inv.ID || m["source"] != "atlas-invoice-csv" {
			t.Errorf("%s: metadata %v", key, m)
		}
	}

	// A re-run stores nothing new: same keys (the objects and the month's
	// manifest), every invoice skipped as unchanged.
	before := w.S3.Keys(t, w.Bucket, prefix+"/")
	again := mustCall[export.Result](t, w.H.Handler("fetch-invoice"), jobCall("fetch", job))
	for _, o := range again.Objects[2:] {
		if !o.Skipped {
			t.Errorf("%s rewritten on an unchanged re-run", o.Key)
		}
	}
	if after := w.S3.Keys(t, w.Bucket, prefix+"/"); strings.Join(after, ",") != strings.Join(before, ",") || len(after) != 7 {
		t.Errorf("keys after re-run = %v, before = %v", after, before)
	}
	if n := w.S3.OpenMultipartUploads(t, w.Bucket); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

func TestPlanAndDefaults(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	w.Env["ABX_ORG_IDS"] = ""
	// No org configured and none in the secret: a clear configuration error.
	h := w.NewHandlers()
	_, err := call(t, h.Handler("fetch-invoice"), `{"action":"plan","request":{}}`)
	if errorType(err) != export.ConfigInvalid {
		t.Fatalf("err = %v (%s)", err, errorType(err))
	}
	// The secret's orgIds are the default.
	orgs := w.Sim.Orgs()
	secretJSON, _ := json.Marshal(map[string]any{"clientId": atlassim.DefaultClientID, "clientSecret": atlassim.DefaultClientSecret, "orgIds": []string{orgs[0].ID, orgs[1].ID}})
	w.SM.Put(e2e.SecretName, string(secretJSON))
	h = w.NewHandlers()
	plan := mustCall[export.Plan](t, h.Handler("fetch-invoice"), `{"action":"plan","request":{"scheduledTime":"2024-03-01T06:00:00Z"}}`)
	if len(plan.Jobs) != 2 || plan.Jobs[0].OrgID != orgs[0].ID || plan.Jobs[1].Period.Label() != "2024-02" {
		t.Fatalf("plan = %+v", plan)
	}
}

// The template gives the functions the schedules' zone: 07:00 on July 1st in
// Auckland (19:00 on June 30th UTC) is in July there.
func TestPlanInScheduleZone(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	event := `{"action":"plan","request":{"period":"month-to-date","scheduledTime":"2024-06-30T19:00:00Z"}}`
	for zone, want := range map[string]string{"": "2024-06", "UTC": "2024-06", "Pacific/Auckland": "2024-07"} {
		w.Env["ABX_SCHEDULE_TIMEZONE"] = zone
		plan := mustCall[export.Plan](t, w.NewHandlers().Handler("fetch-invoice"), event)
		if len(plan.Jobs) == 0 || plan.Jobs[0].Period.Label() != want {
			t.Errorf("ABX_SCHEDULE_TIMEZONE=%q: plan %+v, want %s", zone, plan, want)
		}
	}
	w.Env["ABX_SCHEDULE_TIMEZONE"] = "Mars/Olympus"
	if _, err := call(t, w.NewHandlers().Handler("fetch-invoice"), event); errorType(err) != export.ConfigInvalid {
		t.Errorf("unknown zone: err = %v, want %s", err, export.ConfigInvalid)
	}
}

func TestBadInputMakesNoCall(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	for _, ev := range []string{
		`{"orgId":"../../etc"}`,
		`{"orgId":"` + w.org + `","startDate":"2024-01-15","endDate":"2024-03-01"}`,
		`{"orgId":"` + w.org + `","services":["Snacks"]}`,
	} {
		_, err := call(t, w.H.Handler("submit"), ev)
		if errorType(err) != export.InputInvalid {
			t.Errorf("%s: err = %v (%s)", ev, err, errorType(err))
		}
	}
	if n := w.Sim.Requests(atlassim.OpCreateUsage) + w.Sim.Requests(atlassim.OpOAuthToken); n != 0 {
		t.Errorf("%d Atlas requests for bad input", n)
	}
	if n := w.SM.Calls(); n != 0 {
		t.Errorf("%d secret reads for bad input", n)
	}
}

func TestStreamCutMidBody(t *testing.T) {
	w := newWorld(t, atlassim.Config{InvoiceBytes: 12 << 20}, "")
	job := untilReady(t, w, mustCall[export.Job](t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-06"}))
	w.Sim.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 6 << 20})

	_, err := call(t, w.H.Handler("fetch-invoice"), jobCall("fetch", job))
	if errorType(err) != export.AtlasStreamBroken || !strings.Contains(err.Error(), w.org) {
		t.Fatalf("err = %v (%s), want %s naming the org", err, errorType(err), export.AtlasStreamBroken)
	}
	if keys := w.S3.Keys(t, w.Bucket, prefix+"/invoices/"); len(keys) != 0 {
		t.Errorf("objects under a final key after a broken stream: %v", keys)
	}
	if n := w.S3.OpenMultipartUploads(t, w.Bucket); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}

	// The retry the state machine makes stores the whole invoice.
	res := mustCall[export.Result](t, w.H.Handler("fetch-invoice"), jobCall("fetch", job))
	if len(res.Objects) != 4 || res.Objects[2].Bytes < 12<<20-(1<<20) {
		t.Fatalf("retry objects = %+v", res.Objects)
	}
}

func TestSecretRotation(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	job := mustCall[export.Job](t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-06"})
	if n := w.SM.Calls(); n != 1 {
		t.Fatalf("secret reads after the first call = %d, want 1", n)
	}

	// Rotate: the old secret stops working at Atlas (and its tokens with it),
	// the new one is in Secrets Manager.
	const newSecret = "mdb_sa_sk_rotated-0123456789abcdef0123"
	w.Secrets = append(w.Secrets, newSecret)
	w.Sim.RevokeServiceAccount(atlassim.DefaultClientID)
	w.Sim.SetServiceAccount(atlassim.DefaultClientID, newSecret)
	w.SM.Put(e2e.SecretName, e2e.ServiceAccountSecret(atlassim.DefaultClientID, newSecret))

	job = mustCall[export.Job](t, w.H.Handler("poll"), jobCall("poll", job))
	if job.Status != export.StatusProcessing || job.Attempt != 1 {
		t.Fatalf("poll after rotation = %+v", job)
	}
	if n := w.SM.Calls(); n != 2 {
		t.Errorf("secret reads = %d, want 2 (one re-read after the 401)", n)
	}
	// Later calls use the new credentials without re-reading.
	untilReady(t, w, job)
	if n := w.SM.Calls(); n != 2 {
		t.Errorf("secret reads = %d after more polls, want 2", n)
	}
}

func TestRevokedCredentials(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	w.Sim.RevokeServiceAccount(atlassim.DefaultClientID)
	_, err := call(t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-06"})
	if errorType(err) != export.AtlasUnauthorized || !strings.Contains(err.Error(), w.org) {
		t.Fatalf("err = %v (%s)", err, errorType(err))
	}
	if n := w.SM.Calls(); n != 2 {
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
			_, err := call(t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-06"})
			if errorType(err) != tt.want {
				t.Fatalf("err = %v (%s), want %s", err, errorType(err), tt.want)
			}
			// The name is the error's type, not part of its message again.
			if msg := err.(messages.InvokeResponse_Error).Message; strings.Contains(msg, tt.want) {
				t.Errorf("message %q repeats the name", msg)
			}
		})
	}
	t.Run("missing secret", func(t *testing.T) {
		w := newWorld(t, atlassim.Config{}, "")
		w.SM.Delete(e2e.SecretName)
		_, err := call(t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-06"})
		if errorType(err) != export.SecretUnavailable {
			t.Fatalf("err = %v (%s)", err, errorType(err))
		}
		if msg := err.(messages.InvokeResponse_Error).Message; strings.Contains(msg, export.SecretUnavailable) {
			t.Errorf("message %q repeats the name", msg)
		}
	})
}

// TestPlanReadsSecretOnce: with the orgs configured (ABX_ORG_IDS) and the
// secret gone, the plan step reads the secret once and fails with its name,
// before any job, any request to Atlas or any file of the run.
func TestPlanReadsSecretOnce(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	w.SM.Delete(e2e.SecretName)
	_, err := call(t, w.H.Handler("fetch-invoice"), map[string]any{"action": "plan", "execution": "abx-1",
		"request": map[string]any{"startDate": "2024-01-01", "endDate": "2024-07-01"}})
	if errorType(err) != export.SecretUnavailable || !strings.Contains(err.Error(), w.SecretARN) {
		t.Fatalf("err = %v (%s), want %s naming the secret", err, errorType(err), export.SecretUnavailable)
	}
	if n := w.SM.Calls(); n != 1 {
		t.Errorf("secret reads = %d, want 1", n)
	}
	if n := simRequests(w.World); n != 0 {
		t.Errorf("%d Atlas requests", n)
	}
	if keys := w.S3.Keys(t, w.Bucket, ""); len(keys) != 0 {
		t.Errorf("objects stored: %q", keys)
	}
}

// TestBootstrap drives the built submit function through the Lambda Runtime
// API, as Lambda runs it: one success, one named error.
func TestBootstrap(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, e2e.APIKeySecret(atlassim.DefaultPublicKey, atlassim.DefaultPrivateKey))
	bin := testenv.BuildBootstrap(t, "./functions/submit")
	var env []string
	for k, v := range w.AWSEnv() {
		env = append(env, k+"="+v)
	}
	for k, v := range w.Env {
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
	if w.Sim.Requests(atlassim.OpCreateUsage) != 1 {
		t.Errorf("create requests = %d", w.Sim.Requests(atlassim.OpCreateUsage))
	}
	for _, s := range w.Secrets {
		if strings.Contains(output, s) {
			t.Error("a secret value appears in the function's output")
		}
	}
	if !strings.Contains(output, `"step":"submit"`) {
		t.Errorf("no structured log line for the step in:\n%s", output)
	}
}

func TestHeadroom(t *testing.T) {
	long, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ctx, cancel2 := function.WithHeadroom(long)
	defer cancel2()
	dl, _ := ctx.Deadline()
	if left := time.Until(dl); left > time.Minute-function.Headroom || left < time.Minute-function.Headroom-5*time.Second {
		t.Errorf("a minute's invocation leaves %v, want a minute less the headroom", left)
	}
	short, cancel3 := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel3()
	ctx, cancel4 := function.WithHeadroom(short)
	defer cancel4()
	if dl, _ := ctx.Deadline(); time.Until(dl) < 14*time.Second {
		t.Errorf("a short invocation lost its time to the headroom")
	}
}

func TestLimitMemory(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		name, env string
		want      int64
	}{
		{"unset: the streaming limit", "", function.MemoryLimit},
		{"GOMEMLIMIT set: left to the runtime", "200MiB", 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(1 << 40) // stands for what the runtime read from GOMEMLIMIT
			got := function.LimitMemory(func(k string) string {
				if k == "GOMEMLIMIT" {
					return tc.env
				}
				return ""
			})
			if got != tc.want || debug.SetMemoryLimit(-1) != tc.want {
				t.Errorf("limit = %d, want %d", got, tc.want)
			}
		})
	}
}

// A re-run downloads again only the invoices Atlas changed (issue 14, item
// 4): an invoice whose id, status and updated time match what the month's
// manifest recorded, and whose stored objects are still those written, is
// skipped before its CSV is asked for; its reconciliation is made again
// from the recorded line items.
func TestRerunDownloadsOnlyChangedInvoices(t *testing.T) {
	var now atomic.Pointer[time.Time]
	setNow := func(tm time.Time) { now.Store(&tm) }
	setNow(time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC))
	w := newWorld(t, atlassim.Config{Now: func() time.Time { return *now.Load() }}, "")
	job := untilReady(t, w, mustCall[export.Job](t, w.H.Handler("submit"), map[string]any{"orgId": w.org, "period": "2024-07"}))
	inv := w.Invoice(t, w.org, "2024-07")
	key := w.InvoiceKey(t, w.org, "2024-07", inv.ID)
	p, _ := period.Parse("2024-07", time.Time{})
	mkey, err := w.Layout.Manifest(w.org, p)
	if err != nil {
		t.Fatal(err)
	}
	manifest := func() export.Entry {
		t.Helper()
		var m export.Manifest
		if err := json.Unmarshal(w.Object(t, mkey), &m); err != nil {
			t.Fatal(err)
		}
		e, ok := m.Invoice(inv.ID)
		if !ok {
			t.Fatalf("no manifest entry for invoice %s", inv.ID)
		}
		return e
	}

	prev := mustCall[export.Result](t, w.H.Handler("fetch-invoice"), jobCall("fetch", job))
	for _, step := range []struct {
		name      string
		before    func()
		downloads int    // invoice CSVs asked for
		status    string // recorded after
	}{
		{name: "unchanged", downloads: 0, status: "PENDING"},
		{name: "stored object replaced", downloads: 1, status: "PENDING", before: func() {
			_, err := w.S3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.Bucket), Key: aws.String(key), Body: strings.NewReader("not the invoice\n")})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{name: "unchanged again", downloads: 0, status: "PENDING"},
		// August: July's invoice closed, its updated time moved on.
		{name: "invoice closed", downloads: 1, status: "CLOSED", before: func() { setNow(time.Date(2024, time.August, 15, 12, 0, 0, 0, time.UTC)) }},
		{name: "closed, unchanged", downloads: 0, status: "CLOSED"},
	} {
		if step.before != nil {
			step.before()
		}
		asked := w.Sim.Requests(atlassim.OpGetInvoiceCSV)
		res := mustCall[export.Result](t, w.H.Handler("fetch-invoice"), jobCall("fetch", job))
		if n := w.Sim.Requests(atlassim.OpGetInvoiceCSV) - asked; n != step.downloads {
			t.Errorf("%s: %d invoice CSVs downloaded, want %d", step.name, n, step.downloads)
		}
		// Downloaded, the CSV is written (its line items only if they changed).
		for _, o := range res.Objects[2:] { // after the usage
			if o.Key == key && o.Skipped != (step.downloads == 0) || step.downloads == 0 && !o.Skipped {
				t.Errorf("%s: %s skipped %v", step.name, o.Key, o.Skipped)
			}
		}
		var served bytes.Buffer
		if err := w.Sim.WriteInvoiceCSV(&served, w.org, inv.ID); err != nil {
			t.Fatal(err)
		}
		e := manifest()
		if got := w.Object(t, key); !bytes.Equal(got, served.Bytes()) || e.InvoiceStatus != step.status || e.LineItems == "" || e.Totals == nil {
			t.Errorf("%s: stored invoice (%d bytes, Atlas serves %d), recorded %s, line items %q, totals %v", step.name, len(got), served.Len(), e.InvoiceStatus, e.LineItems, e.Totals)
		}
		// Skipped, the invoice reconciles as it did when downloaded.
		if len(res.Objects) != len(prev.Objects) || step.downloads == 0 && !reflect.DeepEqual(res.Reconciliations, prev.Reconciliations) {
			t.Errorf("%s: %d objects, reconciliations %+v; the run before: %d, %+v", step.name, len(res.Objects), res.Reconciliations, len(prev.Objects), prev.Reconciliations)
		}
		prev = res
	}
}
