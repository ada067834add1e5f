package function_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/aws/aws-lambda-go/lambda/messages"
)

// decoy is a second loopback server: a request reaching it would mean an
// event chose where the functions connect.
func decoy(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		t.Errorf("decoy got %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(s.Close)
	return s.URL, &n
}

// simRequests counts every operation the simulator served.
func simRequests(w *e2e.World) int {
	n := 0
	for _, op := range []string{atlassim.OpOAuthToken, atlassim.OpCreateUsage, atlassim.OpGetUsage,
		atlassim.OpListInvoices, atlassim.OpGetInvoice, atlassim.OpGetInvoiceCSV, atlassim.OpPendingInvoice} {
		n += w.Sim.Requests(op)
	}
	return n
}

// invoke runs a handler on a raw event and returns its answer as JSON and
// the Lambda error type ("" on success).
func invoke(t *testing.T, fn func(context.Context, json.RawMessage) (any, error), event string) (json.RawMessage, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := fn(ctx, json.RawMessage(event))
	if err != nil {
		e, ok := err.(messages.InvokeResponse_Error)
		if !ok {
			t.Fatalf("error %T %v is not a Lambda error", err, err)
		}
		return nil, e.Type
	}
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, ""
}

// sent is an event and the function it is sent to.
type sent struct{ fn, event string }

// toAll sends each event to the functions that take requests (and to poll,
// which refuses them), and each job in a call of every action that takes one.
func toAll(t *testing.T, requests []string, jobs []map[string]any) []sent {
	t.Helper()
	var out []sent
	for _, ev := range requests {
		for _, fn := range []string{"submit", "poll", "fetch-invoice"} {
			out = append(out, sent{fn, ev})
		}
	}
	for _, j := range jobs {
		for action, fn := range map[string]string{"submit": "submit", "poll": "poll", "fetch": "fetch-invoice"} {
			out = append(out, sent{fn, withField(t, map[string]any{"action": action}, "job", j)})
		}
	}
	return out
}

func withField(t *testing.T, event map[string]any, key string, value any) string {
	t.Helper()
	m := make(map[string]any, len(event)+1)
	for k, v := range event {
		m[k] = v
	}
	m[key] = value
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// No event field can send a function to another host: fields naming a host
// are refused as unknown wherever they appear, ids holding a URL are
// refused as invalid, and a whole export driven by events that carry such
// fields only ever talks to ABX_ATLAS_BASE_URL.
func TestEventCannotChangeAtlasHost(t *testing.T) {
	w := e2e.New(t, e2e.Options{})
	other, hits := decoy(t)
	org := w.Orgs[0]

	request := map[string]any{"orgId": org, "period": "2024-06"}
	job := map[string]any{"orgId": org, "period": map[string]string{"month": "2024-06"}, "maxAttempts": 5}
	var requests []string
	var jobs []map[string]any
	for _, key := range []string{"baseUrl", "baseURL", "base_url", "atlasBaseUrl", "AtlasBaseUrl", "ABX_ATLAS_BASE_URL",
		"host", "Host", "endpoint", "url", "apiUrl", "server", "tokenUrl", "proxy", "s3Endpoint", "secretArn"} {
		requests = append(requests,
			withField(t, request, key, other),
			withField(t, map[string]any{"action": "plan", "request": request}, key, other),
			`{"action":"plan","request":`+withField(t, request, key, other)+`}`,
			`{"detail-type":"Scheduled Event","time":"2024-07-02T06:00:00Z","detail":`+withField(t, request, key, other)+`}`,
		)
		jobs = append(jobs,
			map[string]any{"orgId": org, "period": map[string]string{"month": "2024-06"}, "maxAttempts": 5, key: other},
			map[string]any{"orgId": org, "period": map[string]string{"month": "2024-06"}, "maxAttempts": 5, "filters": map[string]any{"services": []string{"Atlas"}, key: other}},
			map[string]any{"orgId": org, "period": map[string]string{"month": "2024-06"}, "maxAttempts": 5, "usage": map[string]any{"bucket": w.Bucket, "key": "k", key: other}},
		)
	}
	for _, id := range []string{other, other + "/api/atlas/v2", "//" + strings.TrimPrefix(other, "http://")} {
		requests = append(requests,
			withField(t, request, "orgId", id),
			withField(t, request, "orgIds", []string{id}),
			withField(t, request, "invoiceId", id),
			withField(t, request, "projects", []string{id}),
		)
		for _, field := range []string{"orgId", "token", "invoiceId"} {
			j := map[string]any{field: id}
			for k, v := range job {
				if k != field {
					j[k] = v
				}
			}
			jobs = append(jobs, j)
		}
	}
	for _, s := range toAll(t, requests, jobs) {
		if _, typ := invoke(t, w.H.Handler(s.fn), s.event); typ != export.InputInvalid {
			t.Errorf("%s(%s) = %q, want %s", s.fn, s.event, typ, export.InputInvalid)
		}
	}
	if n := simRequests(w); n != 0 {
		t.Errorf("the simulator saw %d requests for refused events", n)
	}

	// An EventBridge event describes itself in fields of its own, which are
	// not the request: they are ignored, and the export goes to the
	// configured Atlas.
	ev := `{"detail-type":"Scheduled Event","source":"aws.scheduler","baseUrl":"` + other + `","resources":["` + other + `"],` +
		`"time":"2024-07-02T06:00:00Z","detail":{"orgId":"` + org + `"}}`
	out, typ := invoke(t, w.H.Handler("submit"), ev)
	if typ != "" {
		t.Fatalf("submit of an EventBridge event: %s", typ)
	}
	var j export.Job
	if err := json.Unmarshal(out, &j); err != nil || j.Period.Label() != "2024-06" {
		t.Fatalf("submit = %s, %v", out, err)
	}
	for i := 0; i < 10 && j.Status != export.StatusReady; i++ {
		out, typ = invoke(t, w.H.Handler("poll"), `{"action":"poll","job":`+string(out)+`}`)
		if typ != "" {
			t.Fatalf("poll: %s", typ)
		}
		if err := json.Unmarshal(out, &j); err != nil {
			t.Fatal(err)
		}
	}
	if j.Status != export.StatusReady {
		t.Fatalf("not ready after 10 polls: %+v", j)
	}
	if _, typ := invoke(t, w.H.Handler("fetch-invoice"), `{"action":"fetch","job":`+string(out)+`}`); typ != "" {
		t.Fatalf("fetch-invoice: %s", typ)
	}
	if w.Sim.Requests(atlassim.OpCreateUsage) != 1 || w.Sim.Requests(atlassim.OpGetInvoiceCSV) == 0 {
		t.Errorf("the configured Atlas saw %d submits and %d invoice downloads", w.Sim.Requests(atlassim.OpCreateUsage), w.Sim.Requests(atlassim.OpGetInvoiceCSV))
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the decoy host got %d requests", n)
	}
}

// Ids with path characters are refused by every function before any
// request or key: the simulator sees nothing and nothing is stored.
func TestHostileIDsThroughFunctions(t *testing.T) {
	w := e2e.New(t, e2e.Options{})
	org := w.Orgs[0]
	token := strings.Repeat("a", 64)
	job := func(field, value string) map[string]any {
		m := map[string]any{"orgId": org, "period": map[string]string{"month": "2024-06"}, "maxAttempts": 5, "token": token}
		m[field] = value
		return m
	}
	var events []string
	var jobs []map[string]any
	for _, id := range []string{"../" + org[3:], org[:21] + "/..", "..%2f" + org[5:], "%2e%2e%2f" + org[9:], org[:12] + "/" + org[13:],
		org[:23] + "\\", org[:23] + "?", org[:23] + "#", org[:23] + "\x00", org[:23] + "\n", strings.ToUpper(org), org[:23], org + "/x"} {
		events = append(events,
			`{"orgId":`+quote(id)+`,"period":"2024-06"}`,
			`{"orgIds":[`+quote(org)+`,`+quote(id)+`],"period":"2024-06"}`,
			`{"orgId":`+quote(org)+`,"period":"2024-06","invoiceId":`+quote(id)+`}`,
			`{"orgId":`+quote(org)+`,"period":"2024-06","clusters":[`+quote(id)+`]}`,
			`{"action":"plan","request":{"orgId":`+quote(id)+`}}`,
		)
		jobs = append(jobs, job("orgId", id), job("invoiceId", id))
	}
	for _, tok := range []string{"../" + token[3:], token[:61] + "/..", "%2F" + token[3:], token[:32] + "/" + token[33:], token[:63] + ".", token[:63]} {
		jobs = append(jobs, job("token", tok))
	}
	for _, s := range toAll(t, events, jobs) {
		if _, typ := invoke(t, w.H.Handler(s.fn), s.event); typ != export.InputInvalid {
			t.Errorf("%s(%q) = %q, want %s", s.fn, s.event, typ, export.InputInvalid)
		}
	}
	if n := simRequests(w); n != 0 {
		t.Errorf("the simulator saw %d requests for hostile ids", n)
	}
	if keys := w.S3.Keys(t, w.Bucket, ""); len(keys) != 0 {
		t.Errorf("objects stored for hostile ids: %q", keys)
	}
	if n := w.SM.Calls(); n != 0 {
		t.Errorf("%d secret reads for hostile ids", n)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
