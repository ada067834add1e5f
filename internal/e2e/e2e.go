// Package e2e stands up a whole export for tests: the Atlas simulator,
// versitygw for S3, a Secrets Manager endpoint, and the three functions'
// real handlers built from their environment as in Lambda. Run executes the
// deployed state machine definition in aws-local-stepfunctions with each
// Task state answered by those handlers (through sfntest's bridge), its
// Distributed Map played as Step Functions runs it (distmap.go).
//
// It is test-harness code: import it only from _test.go files. A test that
// builds a World cannot be parallel, because the AWS SDK reads its
// credentials and the Secrets Manager endpoint from the process environment
// (as it does in Lambda), which New sets with t.Setenv.
package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// Prefix is the export prefix (ABX_PREFIX) of every World.
const Prefix = "exports/atlas"

// SecretName is the name of the Atlas credentials' secret.
const SecretName = "atlas-billing"

// Now is the simulator's calendar clock unless Options.Sim sets one: mid-July
// 2024, so June 2024 is the last closed month and July's invoice is pending.
var Now = time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC)

// Options configure a World. The zero value is usable.
type Options struct {
	// Sim configures the simulator. Now defaults to Now; when neither
	// ReadyAfterPolls nor ProcessingTime is set, queries are ready on the
	// third poll (ReadyAfterPolls 2), so tests never depend on time; FOCUS
	// reports likewise (ReportReadyAfterPolls 2).
	Sim atlassim.Config
	// Env overrides the functions' environment (ABX_*), after the defaults:
	// ABX_BUCKET, ABX_PREFIX, ABX_SECRET_ARN, ABX_ATLAS_BASE_URL,
	// ABX_S3_ENDPOINT, and ABX_ORG_IDS = every simulator org. An empty value
	// unsets the variable.
	Env map[string]string
	// Secret is the secret's JSON, default the simulator's service account
	// (ServiceAccountSecret).
	Secret string
}

// World is one test's running export.
type World struct {
	Sim       *atlassim.Server
	BaseURL   string // the simulator's, http://127.0.0.1:PORT
	S3        *testenv.S3
	Bucket    string
	SM        *testenv.SecretsManager
	SecretARN string
	// Env is the functions' environment, read live by Getenv: change it,
	// then call NewHandlers, to see a cold start with other settings.
	Env map[string]string
	// H are the handlers built by New from Env.
	H *function.Handlers
	// Orgs are the simulator's org ids, in its order.
	Orgs []string
	// Secrets are credential values no log line may contain (checked in
	// t.Cleanup); append rotated ones.
	Secrets []string
	Layout  layout.Layout

	logs *testenv.Buffer // log lines from concurrent handler calls
}

// ServiceAccountSecret is the secret JSON for a service account.
func ServiceAccountSecret(clientID, clientSecret string) string {
	b, _ := json.Marshal(map[string]string{"clientId": clientID, "clientSecret": clientSecret}) // strings: cannot fail
	return string(b)
}

// APIKeySecret is the secret JSON for an API key.
func APIKeySecret(publicKey, privateKey string) string {
	b, _ := json.Marshal(map[string]string{"publicKey": publicKey, "privateKey": privateKey})
	return string(b)
}

// New starts the simulator, versitygw (with a fresh bucket) and the Secrets
// Manager endpoint (with the secret), points the AWS SDK at them through the
// process environment, and builds the handlers. Everything stops in
// t.Cleanup, which also checks that no log line shows a credential.
func New(t testing.TB, opts Options) *World {
	t.Helper()
	cfg := opts.Sim
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return Now }
	}
	if cfg.ReportReadyAfterPolls == 0 && cfg.ReportProcessingTime == 0 {
		cfg.ReportReadyAfterPolls = 2
	}
	if cfg.ReadyAfterPolls == 0 && cfg.ProcessingTime == 0 {
		cfg.ReadyAfterPolls = 2
	}
	lay, err := layout.New(Prefix)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	w := &World{Layout: lay, logs: &testenv.Buffer{}}
	w.Sim, w.BaseURL = atlassimtest.Start(t, cfg)
	for _, o := range w.Sim.Orgs() {
		w.Orgs = append(w.Orgs, o.ID)
	}
	w.S3 = testenv.Versity(t)
	w.Bucket = w.S3.Bucket(t)
	w.SM = testenv.NewSecretsManager(t)
	// The functions sign both services' requests with the one set of AWS
	// credentials in their environment, as in Lambda.
	w.SM.AccessKey = w.S3.AccessKey
	secretJSON := cmp.Or(opts.Secret, ServiceAccountSecret(atlassim.DefaultClientID, atlassim.DefaultClientSecret))
	w.Secrets = []string{atlassim.DefaultClientSecret, atlassim.DefaultPrivateKey}
	w.SecretARN = w.SM.Put(SecretName, secretJSON)
	w.Env = map[string]string{
		"ABX_BUCKET":         w.Bucket,
		"ABX_PREFIX":         Prefix,
		"ABX_SECRET_ARN":     w.SecretARN,
		"ABX_ATLAS_BASE_URL": w.BaseURL,
		"ABX_S3_ENDPOINT":    w.S3.Endpoint,
		"ABX_ORG_IDS":        strings.Join(w.Orgs, ","),
	}
	for k, v := range opts.Env {
		if v == "" {
			delete(w.Env, k)
			continue
		}
		w.Env[k] = v
	}
	for k, v := range w.AWSEnv() {
		t.Setenv(k, v)
	}
	w.H = w.NewHandlers()
	t.Cleanup(func() { w.CheckLogs(t) })
	return w
}

// AWSEnv is what the AWS SDK in a function reads from its environment here:
// versitygw's credentials, the region, the Secrets Manager endpoint, and no
// shared config or instance metadata.
func (w *World) AWSEnv() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":                w.S3.AccessKey,
		"AWS_SECRET_ACCESS_KEY":            w.S3.SecretKey,
		"AWS_REGION":                       testenv.Region,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": w.SM.Endpoint,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_CONFIG_FILE":                  "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":      "/dev/null",
	}
}

// Getenv reads the functions' environment: Env, then AWSEnv.
func (w *World) Getenv(k string) string {
	if v, ok := w.Env[k]; ok {
		return v
	}
	return w.AWSEnv()[k]
}

// NewHandlers builds the handlers afresh from Env, as a cold start does.
func (w *World) NewHandlers() *function.Handlers {
	return function.New(context.Background(), w.Getenv, w.logs, normalize.Parquet{})
}

// Logs returns the functions' JSON log lines so far.
func (w *World) Logs() string { return w.logs.String() }

// CheckLogs fails t if any log line shows a credential. New runs it in
// t.Cleanup.
func (w *World) CheckLogs(t testing.TB) {
	t.Helper()
	logs := w.logs.String()
	for _, s := range w.Secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("e2e: a secret value appears in the functions' logs")
		}
	}
	for _, bad := range []string{"Bearer ", "access_token", "Digest "} {
		if strings.Contains(logs, bad) {
			t.Errorf("e2e: the functions' logs contain %q", bad)
		}
	}
}

// Routes sends each Task state of the definition to the handler of the
// function it invokes (statemachine.Functions), and reports a handler's
// Lambda error (errorType, errorMessage) as the Step Functions error name
// and cause, as the Lambda integration does.
func (w *World) Routes() sfntest.Routes {
	r := sfntest.Routes{}
	for state, name := range statemachine.Functions {
		r[state] = bridge(w.H.Handler(name))
	}
	return r
}

func bridge(fn func(context.Context, json.RawMessage) (any, error)) func(context.Context, json.RawMessage) (json.RawMessage, error) {
	return func(ctx context.Context, input json.RawMessage) (json.RawMessage, error) {
		out, err := fn(ctx, input)
		if err != nil {
			var le messages.InvokeResponse_Error
			if errors.As(err, &le) {
				return nil, &sfntest.Error{Name: le.Type, Cause: le.Message}
			}
			return nil, err
		}
		// As the Lambda runtime answers: JSON without HTML escaping.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return nil, &sfntest.Error{Name: "Runtime.MarshalError", Cause: err.Error()}
		}
		return bytes.TrimRight(b.Bytes(), "\n"), nil
	}
}

// Definition is the deployed definition with the local substitutions.
func Definition(t testing.TB) []byte {
	t.Helper()
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return def
}

// Run executes the state machine once with input, every Task state running
// the real handlers against this World (see RunWith).
func (w *World) Run(t testing.TB, input any) sfntest.Result {
	t.Helper()
	return w.RunWith(t, input, w.Routes())
}

// FinalKeys lists the keys under the export prefix: every object a reader
// may see (uploads go straight to their final keys), but the executions'
// working files (layout.RunsFolder).
func (w *World) FinalKeys(t testing.TB) []string {
	t.Helper()
	runs := w.Layout.Prefix() + "/" + layout.RunsFolder + "/"
	keys := slices.DeleteFunc(w.S3.Keys(t, w.Bucket, w.Layout.Prefix()+"/"), func(k string) bool { return strings.HasPrefix(k, runs) })
	slices.Sort(keys)
	return keys
}

// KeysUnder lists the keys under the export prefix joined with rel (for
// example "invoices/org_id=<org>/").
func (w *World) KeysUnder(t testing.TB, rel string) []string {
	t.Helper()
	keys := w.S3.Keys(t, w.Bucket, w.Layout.Prefix()+"/"+rel)
	slices.Sort(keys)
	return keys
}

// OpenUploads counts the multipart uploads left open in the bucket.
func (w *World) OpenUploads(t testing.TB) int {
	t.Helper()
	return w.S3.OpenMultipartUploads(t, w.Bucket)
}

// Object returns a stored object's bytes.
func (w *World) Object(t testing.TB, key string) []byte {
	t.Helper()
	return w.S3.Get(t, w.Bucket, key)
}

// UsageKey is where one org's usage of one month ("YYYY-MM") is stored.
func (w *World) UsageKey(t testing.TB, org, month string) string {
	t.Helper()
	k, err := w.Layout.Usage(org, mustMonth(t, month))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return k
}

// InvoiceKey is where one invoice of one month ("YYYY-MM") is stored.
func (w *World) InvoiceKey(t testing.TB, org, month, invoiceID string) string {
	t.Helper()
	k, err := w.Layout.Invoice(org, mustMonth(t, month), invoiceID)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return k
}

// ServedUsage is the usage CSV the simulator serves for one org's
// unfiltered query of one month ("YYYY-MM"), byte for byte.
func (w *World) ServedUsage(t testing.TB, org, month string) []byte {
	t.Helper()
	p := mustMonth(t, month)
	var b bytes.Buffer
	if err := w.Sim.WriteUsageCSV(&b, org, atlassim.UsageQuery{StartDate: p.StartDate(), EndDate: p.EndDate()}); err != nil {
		t.Fatalf("e2e: usage CSV of %s %s: %v", org, month, err)
	}
	return b.Bytes()
}

// ServedUsageJSON is the JSON form of the month's usage the simulator
// serves, byte for byte: what the normalized usage is made of.
func (w *World) ServedUsageJSON(t testing.TB, org, month string) []byte {
	t.Helper()
	p := mustMonth(t, month)
	var b bytes.Buffer
	if err := w.Sim.WriteUsageJSON(&b, org, atlassim.UsageQuery{StartDate: p.StartDate(), EndDate: p.EndDate()}); err != nil {
		t.Fatalf("e2e: usage JSON of %s %s: %v", org, month, err)
	}
	return b.Bytes()
}

// ServedInvoice is the invoice CSV the simulator serves, byte for byte.
func (w *World) ServedInvoice(t testing.TB, org, invoiceID string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := w.Sim.WriteInvoiceCSV(&b, org, invoiceID); err != nil {
		t.Fatalf("e2e: invoice CSV %s of %s: %v", invoiceID, org, err)
	}
	return b.Bytes()
}

// Invoice is the simulator's invoice of org for month ("YYYY-MM").
func (w *World) Invoice(t testing.TB, org, month string) atlassim.Invoice {
	t.Helper()
	for _, inv := range w.Sim.Invoices(org) {
		if inv.Month == month {
			return inv
		}
	}
	t.Fatalf("e2e: the simulator has no invoice of %s for %s", org, month)
	return atlassim.Invoice{}
}

func mustMonth(t testing.TB, month string) period.Period {
	t.Helper()
	p, err := period.Parse(month, Now)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	return p
}

// Outcome is one job's line in a run's outcomes, and the line as written.
type Outcome struct {
	export.Outcome
	Raw json.RawMessage `json:"-"`
}

// Outcomes reads the outcomes the execution res wrote (every job's),
// in plan order: org by org in the order the request names them, each org's
// months in order.
func (w *World) Outcomes(t testing.TB, res sfntest.Result) []Outcome {
	t.Helper()
	keys, err := w.Layout.Run(res.Execution)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	var out []Outcome
	for line := range bytes.Lines(w.S3.Get(t, w.Bucket, keys.Outcomes)) {
		var o Outcome
		if err := json.Unmarshal(line, &o); err != nil {
			t.Fatalf("e2e: outcome line %.200s: %v", line, err)
		}
		o.Raw = bytes.TrimSpace(line)
		out = append(out, o)
	}
	rank := map[string]int{}
	for i, org := range w.Orgs {
		rank[org] = i
	}
	slices.SortStableFunc(out, func(a, b Outcome) int {
		if a.OrgID != b.OrgID {
			return rank[a.OrgID] - rank[b.OrgID]
		}
		return a.Period.Start.Compare(b.Period.Start)
	})
	return out
}
