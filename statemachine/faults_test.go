package statemachine_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	billingperiod "github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// TestFaultMatrix runs the whole workflow (the deployed definition in
// aws-local-stepfunctions, the functions' handlers, the Atlas simulator,
// versitygw behind a fault-injecting proxy, the Secrets Manager endpoint)
// once per row with one fault injected, and checks the outcome: a retry that
// succeeds (and which layer retried: the Atlas client, the AWS SDK, the
// state machine's Retry) or a named failure whose cause names the org. After
// every run: nothing in staging, no multipart upload open, and every object
// under a final key is byte for byte the one a clean run writes (nothing
// else). After a failure, a re-run with the fault cleared writes exactly the
// clean run's objects. Over the whole matrix, no log line, error text or
// state payload holds a credential or a bearer token. The matrix and its
// figures are logged at the end (go test -v -run TestFaultMatrix).
//
// Not parallel: a World sets the AWS SDK's environment.
func TestFaultMatrix(t *testing.T) {
	m := &faultMatrix{}
	for _, wc := range faultWorlds {
		t.Run(wc.name, func(t *testing.T) {
			fw := newFaultWorld(t, wc)
			for _, r := range faultRows {
				if r.world != wc.name {
					continue
				}
				t.Run(r.name, func(t *testing.T) { m.run(t, fw, r) })
			}
			m.collect(t, fw)
		})
	}
	t.Run("no secret or bearer token in logs, errors or payloads", m.checkSecrets)
	m.report(t)
}

const (
	fmMonth   = "2024-06"
	smGet     = "sm:GetSecretValue"
	netTotal  = "network" // Atlas + S3 + Secrets Manager requests
	s3Total   = "s3:*"    // every S3 request
	atlasAll  = "atlas:*" // every Atlas request, token endpoint and download host included
	bigInput  = 300 << 10 // bytes: more than a state payload may carry
	s3PartOne = "UploadPart#1"
)

func atlasReq(op string) string { return "atlas:" + op }
func s3Req(op string) string    { return "s3:" + op }

// fmAtlasOps are the simulator's operations, counted per run.
var fmAtlasOps = []string{
	atlassim.OpCreateUsage, atlassim.OpGetUsage, atlassim.OpListInvoices, atlassim.OpGetInvoice,
	atlassim.OpGetInvoiceCSV, atlassim.OpPendingInvoice, atlassim.OpCreateInvoiceReport,
	atlassim.OpGetInvoiceReport, atlassim.OpListInvoiceReports, atlassim.OpOAuthToken, atlassim.OpDownloadReport,
}

// fmInput is a clean request of the matrix; rows are compared with its
// clean run.
type fmInput struct {
	name    string
	orgs    func(fw *faultWorld) []string // the orgs it exports
	pending bool
}

func (in fmInput) body(fw *faultWorld) any {
	req := map[string]any{"period": fmMonth, "includePending": in.pending}
	if orgs := in.orgs(fw); len(orgs) == 1 {
		req["orgIds"] = orgs // else both, from ABX_ORG_IDS
	}
	return req
}

var (
	oneOrg  = func(fw *faultWorld) []string { return fw.Orgs[:1] }
	allOrgs = func(fw *faultWorld) []string { return fw.Orgs }
)

// faultWorldConfig is one World of the matrix: a simulator configuration
// and the clean requests its rows use.
type faultWorldConfig struct {
	name   string
	sim    atlassim.Config
	inputs []fmInput
}

var faultWorlds = []faultWorldConfig{
	{
		// Queries ready at the first poll: a poll fault hits the result.
		name: "atlas",
		sim:  atlassim.Config{ProcessingTime: -1},
		inputs: []fmInput{
			{name: "1org", orgs: oneOrg, pending: true},
			{name: "2orgs", orgs: allOrgs, pending: true},
		},
	},
	{
		// Invoices of 12 MiB: uploaded in two parts (sink.DefaultPartSize 8 MiB).
		name:   "s3",
		sim:    atlassim.Config{ProcessingTime: -1, InvoiceBytes: 12 << 20},
		inputs: []fmInput{{name: "1org", orgs: oneOrg}},
	},
}

// faultWorld is a World with an S3 fault proxy in front of versitygw (the
// functions' ABX_S3_ENDPOINT; the test's own S3 client talks to versitygw
// directly) and the clean runs to compare with.
type faultWorld struct {
	*e2e.World
	name   string
	proxy  *s3Proxy
	secret string // the secret's good value
	clean  map[string]*fmClean

	mu       sync.Mutex
	row      string   // the row running, for the texts' labels
	texts    []fmText // every payload, error text and cause seen
	usageTok []string // Cost Explorer query tokens (64 hex, like access tokens)
}

// fmText is a text the matrix-wide checks read, and where it came from.
type fmText struct{ where, text string }

// fmClean is what a clean run of one input did.
type fmClean struct {
	input   fmInput
	body    any
	objects map[string][]byte // final key -> bytes
	counts  map[string]int
	calls   map[string]int
}

func newFaultWorld(t *testing.T, wc faultWorldConfig) *faultWorld {
	t.Helper()
	w := e2e.New(t, e2e.Options{Sim: wc.sim})
	fw := &faultWorld{
		World:  w,
		name:   wc.name,
		secret: e2e.ServiceAccountSecret(atlassim.DefaultClientID, atlassim.DefaultClientSecret),
		clean:  map[string]*fmClean{},
	}
	fw.proxy = startS3Proxy(t, w.S3.Endpoint)
	w.Env["ABX_S3_ENDPOINT"] = fw.proxy.URL
	for _, in := range wc.inputs {
		fw.row = "clean run " + in.name
		fw.reset(t)
		c := &fmClean{input: in, body: in.body(fw)}
		got := fw.run(t, c.body, nil, 0)
		if !got.res.Succeeded() {
			t.Fatalf("clean run %s failed: %s: %s", in.name, got.res.Error, got.res.Cause)
		}
		if keys := fw.StagingKeys(t); len(keys) != 0 {
			t.Fatalf("clean run %s left staging objects %v", in.name, keys)
		}
		if n := fw.OpenUploads(t); n != 0 {
			t.Fatalf("clean run %s left %d multipart uploads open", in.name, n)
		}
		c.objects = map[string][]byte{}
		for _, k := range fw.FinalKeys(t) {
			c.objects[k] = fw.Object(t, k)
		}
		c.counts, c.calls = got.counts, got.res.Calls
		fw.checkServed(t, c)
		fw.clean[in.name] = c
	}
	return fw
}

// checkServed checks that the clean run stored what Atlas served: each
// org's usage and invoices, byte for byte. (It may store more: other
// objects derived from them.)
func (fw *faultWorld) checkServed(t *testing.T, c *fmClean) {
	t.Helper()
	for _, org := range c.input.orgs(fw) {
		want := map[string][]byte{fw.UsageKey(t, org, fmMonth): fw.ServedUsage(t, org, fmMonth)}
		months := []string{fmMonth}
		if c.input.pending {
			months = append(months, e2e.Now.Format("2006-01"))
		}
		for _, mo := range months {
			inv := fw.Invoice(t, org, mo)
			want[fw.InvoiceKey(t, org, mo, inv.ID)] = fw.ServedInvoice(t, org, inv.ID)
		}
		for k, body := range want {
			if got, ok := c.objects[k]; !ok || !bytes.Equal(got, body) {
				t.Fatalf("clean run %s: %s holds %d bytes, want the %d Atlas served", c.input.name, k, len(got), len(body))
			}
		}
	}
}

// reset empties the bucket and builds the handlers afresh (a cold start).
func (fw *faultWorld) reset(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, k := range fw.S3.Keys(t, fw.Bucket, "") {
		if _, err := fw.S3.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(fw.Bucket), Key: aws.String(k)}); err != nil {
			t.Fatalf("delete %s: %v", k, err)
		}
	}
	fw.H = fw.NewHandlers()
}

func (fw *faultWorld) counts() map[string]int {
	c := map[string]int{}
	for _, op := range fmAtlasOps {
		c[atlasReq(op)] = fw.Sim.Requests(op)
	}
	for op, n := range fw.proxy.Counts() {
		c[s3Req(op)] = n
	}
	c[smGet] = fw.SM.Calls()
	return c
}

// fmSince is what happened between two counts, with the totals.
func fmSince(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	for k, v := range d {
		switch {
		case strings.Contains(k, "#"): // a part of UploadPart, already counted
		case strings.HasPrefix(k, "atlas:"):
			d[atlasAll] += v
			d[netTotal] += v
		case strings.HasPrefix(k, "s3:"):
			d[s3Total] += v
			d[netTotal] += v
		default:
			d[netTotal] += v
		}
	}
	return d
}

func (fw *faultWorld) record(what string, texts ...string) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, text := range texts {
		if text != "" {
			fw.texts = append(fw.texts, fmText{where: fw.row + ": " + what, text: text})
		}
	}
}

// fmRun is one faulted or clean run.
type fmRun struct {
	res     sfntest.Result
	counts  map[string]int // requests during the run
	elapsed time.Duration
}

// run executes the state machine with the World's handlers. after[state]
// runs once, after the first call of that Task state returns; deadline, if
// set, is each call's context deadline, as Lambda gives a handler its
// function's timeout.
func (fw *faultWorld) run(t *testing.T, input any, after map[string]func(*faultWorld), deadline time.Duration) fmRun {
	t.Helper()
	before := fw.counts()
	var mu sync.Mutex
	done := map[string]bool{}
	routes := sfntest.Routes{}
	for state, fn := range fw.Routes() {
		routes[state] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			if deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, deadline)
				defer cancel()
			}
			out, err := fn(ctx, in)
			fw.record(state+" payload", string(in), string(out))
			if err != nil {
				fw.record(state+" error", err.Error())
			}
			if state == statemachine.StateSubmit && err == nil {
				var j struct{ Token string }
				if json.Unmarshal(out, &j) == nil && j.Token != "" {
					fw.mu.Lock()
					fw.usageTok = append(fw.usageTok, j.Token)
					fw.mu.Unlock()
				}
			}
			if hook := after[state]; hook != nil {
				mu.Lock()
				first := !done[state]
				done[state] = true
				mu.Unlock()
				if first {
					hook(fw)
				}
			}
			return out, err
		}
	}
	start := time.Now()
	res := sfntest.Run(t, e2e.Definition(t), input, routes.Handle, sfntest.Options{})
	elapsed := time.Since(start)
	fw.record("execution error", res.Error, res.Cause)
	return fmRun{res: res, counts: fmSince(fw.counts(), before), elapsed: elapsed}
}

// direct calls one Task state's handler with a raw event, outside the
// state machine.
func (fw *faultWorld) direct(t *testing.T, state string, raw []byte) fmRun {
	t.Helper()
	before := fw.counts()
	out, err := fw.Routes()[state](context.Background(), raw)
	fw.record(state+" payload", string(out))
	res := sfntest.Result{Output: out, Calls: map[string]int{state: 1}}
	var named *sfntest.Error
	switch {
	case errors.As(err, &named):
		res.Error, res.Cause = named.Name, named.Cause
	case err != nil:
		res.Error, res.Cause = "Harness.Unnamed", err.Error()
	}
	fw.record(state+" error", res.Error, res.Cause)
	return fmRun{res: res, counts: fmSince(fw.counts(), before)}
}

// checkStore checks the bucket after a run: nothing in staging, no open
// multipart upload, and each final object the clean run's, byte for byte.
// With all, every clean object must be there too. It returns the objects
// missing or different, and those the clean run does not write.
func (fw *faultWorld) checkStore(t *testing.T, c *fmClean, all bool) (lost, extra int) {
	t.Helper()
	if keys := fw.StagingKeys(t); len(keys) != 0 {
		t.Errorf("staging objects left: %v", keys)
	}
	if n := fw.OpenUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
	seen := map[string]bool{}
	for _, k := range fw.FinalKeys(t) {
		seen[k] = true
		want, ok := c.objects[k]
		if !ok {
			extra++
			t.Errorf("%s: not an object a clean run writes", k)
			continue
		}
		if got := fw.Object(t, k); !bytes.Equal(got, want) {
			lost++
			t.Errorf("%s: %d bytes differ from the clean run's %d", k, len(got), len(want))
		}
	}
	if all {
		for _, k := range slices.Sorted(maps.Keys(c.objects)) {
			if !seen[k] {
				lost++
				t.Errorf("%s: missing (a clean run writes it)", k)
			}
		}
	}
	return lost, extra
}

// faultRow is one row of the matrix: one fault and its expected outcome.
type faultRow struct {
	name  string
	world string // faultWorlds name
	input string // the clean input of the world the row uses and compares with

	setup    func(fw *faultWorld)                  // injects the fault before the run
	after    map[string]func(fw *faultWorld)       // or between two steps
	deadline time.Duration                         // each Task call's context deadline
	bad      func(fw *faultWorld) any              // the rejected request, instead of the clean one
	direct   func(fw *faultWorld) (string, []byte) // a handler called directly (state, event)
	clear    func(fw *faultWorld)                  // undoes the fault, after the run
	check    func(t *testing.T, fw *faultWorld, got fmRun)

	want fmWant
}

// fmWant is a row's expected outcome.
type fmWant struct {
	err     string // "" for success
	by      string // success: the layer whose retry absorbed the fault
	retried int    // the state machine's Retry: StateRetried events
	state   string // success with retried > 0: the Task state retried
	// extra are requests beyond the clean run's (success rows); exact are
	// the requests of the faulted run.
	extra, exact map[string]int
	// minElapsed is the Retry-After the client must have waited (a lower
	// bound only, so it cannot flake).
	minElapsed time.Duration
	// moreCalls are Task calls beyond the clean run's other than Retry's
	// (success rows): a poll loop going round again.
	moreCalls map[string]int
}

func (w fmWant) expected() string {
	out := "succeeded"
	if w.err != "" {
		out = w.err
	} else if w.by != "" {
		out += " by " + w.by
	}
	return out + w.numbers(w.retried, func(k string) int { return w.extra[k] }, func(k string) int { return w.exact[k] })
}

func (w fmWant) observed(got fmRun, clean *fmClean) string {
	out := "succeeded"
	if got.res.Error != "" {
		out = got.res.Error
	}
	return out + w.numbers(got.res.Retried, func(k string) int { return got.counts[k] - clean.counts[k] }, func(k string) int { return got.counts[k] })
}

// numbers shows the state machine's retries and the requests the row
// asserts, expected or observed.
func (w fmWant) numbers(retried int, extra, exact func(string) int) string {
	var b strings.Builder
	if retried > 0 || w.retried > 0 || w.err == "" {
		fmt.Fprintf(&b, "; SM retries %d", retried)
	}
	for _, k := range slices.Sorted(maps.Keys(w.extra)) {
		fmt.Fprintf(&b, "; %s %+d", fmLabel(k), extra(k))
	}
	for _, k := range slices.Sorted(maps.Keys(w.exact)) {
		fmt.Fprintf(&b, "; %s=%d", fmLabel(k), exact(k))
	}
	return b.String()
}

// fmLabel shortens a request counter's name for the printed matrix.
func fmLabel(k string) string {
	short := map[string]string{
		atlasReq(atlassim.OpCreateUsage):         "createUsage",
		atlasReq(atlassim.OpGetUsage):            "getUsage",
		atlasReq(atlassim.OpListInvoices):        "listInvoices",
		atlasReq(atlassim.OpPendingInvoice):      "pendingInvoice",
		atlasReq(atlassim.OpGetInvoiceCSV):       "invoiceCSV",
		atlasReq(atlassim.OpOAuthToken):          "oauthToken",
		atlasReq(atlassim.OpCreateInvoiceReport): "createReport",
		atlasReq(atlassim.OpGetInvoiceReport):    "getReport",
		atlasReq(atlassim.OpDownloadReport):      "download",
		atlasAll:                                 "atlas",
		s3Total:                                  "s3",
		smGet:                                    "secretReads",
	}
	if l, ok := short[k]; ok {
		return l
	}
	return k
}

// fmRecord is a printed row.
type fmRecord struct {
	fault, expected, observed string
	failed, retried, pass     bool
	lost, extra               int
}

type faultMatrix struct {
	records []*fmRecord
	secrets []string
	texts   []fmText // error texts, causes, payloads, logs
	logs    int
	allowed map[string]bool // 64-hex strings that are not access tokens
}

func (m *faultMatrix) run(t *testing.T, fw *faultWorld, r faultRow) {
	rec := &fmRecord{fault: r.world + ": " + r.name, expected: r.want.expected()}
	m.records = append(m.records, rec)
	defer func() { rec.pass = !t.Failed() }()
	c := fw.clean[r.input]
	if c == nil {
		t.Fatalf("row uses input %q, which world %s does not have", r.input, r.world)
	}
	fw.row = r.name
	fw.reset(t)
	if r.setup != nil {
		r.setup(fw)
	}
	var got fmRun
	switch {
	case r.direct != nil:
		state, raw := r.direct(fw)
		got = fw.direct(t, state, raw)
	case r.bad != nil:
		got = fw.run(t, r.bad(fw), r.after, r.deadline)
	default:
		got = fw.run(t, c.body, r.after, r.deadline)
	}
	rec.observed = r.want.observed(got, c)
	rec.failed = got.res.Error != ""

	if got.res.Error != r.want.err {
		t.Errorf("outcome %q (cause %q), want %q", got.res.Error, got.res.Cause, r.want.err)
	}
	if got.res.Retried != r.want.retried {
		t.Errorf("state machine retried %d times, want %d", got.res.Retried, r.want.retried)
	}
	for k, n := range r.want.extra {
		if d := got.counts[k] - c.counts[k]; d != n {
			t.Errorf("%s: %d requests beyond the clean run's, want %d", k, d, n)
		}
	}
	for k, n := range r.want.exact {
		if got.counts[k] != n {
			t.Errorf("%s: %d requests, want %d", k, got.counts[k], n)
		}
	}
	if got.elapsed < r.want.minElapsed {
		t.Errorf("run took %v, less than the %v of Retry-After asked for", got.elapsed, r.want.minElapsed)
	}
	if r.bad != nil || r.direct != nil {
		for state, n := range got.res.Calls {
			if state != statemachine.StatePlan && r.direct == nil && n > 0 {
				t.Errorf("%s called %d times after the plan refused the input", state, n)
			}
		}
	}
	if n := fw.Sim.PendingFaults(); n != 0 {
		t.Errorf("%d injected Atlas fault applications never happened", n)
	}
	if n, down := fw.proxy.Pending(); n > 0 || down {
		t.Errorf("S3 proxy: %d fault applications never happened (outage on: %v)", n, down)
	}
	if r.want.err == "" {
		rec.retried = got.res.Retried > 0 || len(r.want.moreCalls) > 0
		for k := range r.want.extra {
			rec.retried = rec.retried || got.counts[k] > c.counts[k]
		}
		// The retried state ran once more per retry; every other as often
		// as in the clean run.
		for state, n := range c.calls {
			if state == r.want.state {
				n += r.want.retried
			}
			n += r.want.moreCalls[state]
			if got.res.Calls[state] != n {
				t.Errorf("%s called %d times, want %d", state, got.res.Calls[state], n)
			}
		}
	} else {
		cause := got.res.Cause
		if cause == "" || len(cause) > 2048 {
			t.Errorf("cause is %d bytes: want a short explanation", len(cause))
		}
		if r.bad == nil && r.direct == nil && !slices.ContainsFunc(c.input.orgs(fw), func(org string) bool { return strings.Contains(cause, "org "+org) }) {
			t.Errorf("cause %q names no org", cause)
		}
	}
	if r.check != nil {
		r.check(t, fw, got)
	}
	lost, extra := fw.checkStore(t, c, r.want.err == "")
	rec.lost, rec.extra = lost, extra
	if r.clear != nil {
		r.clear(fw)
	}
	fw.proxy.Clear()
	if r.want.err == "" {
		return
	}

	// The re-run: the fault cleared, the same (warm) handlers.
	fw.row = r.name + " (re-run)"
	again := fw.run(t, c.body, nil, 0)
	if !again.res.Succeeded() {
		t.Fatalf("re-run failed: %s: %s", again.res.Error, again.res.Cause)
	}
	lost, extra = fw.checkStore(t, c, true)
	rec.lost += lost
	rec.extra += extra
}

// collect keeps a World's logs and texts for the matrix-wide checks.
func (m *faultMatrix) collect(t *testing.T, fw *faultWorld) {
	t.Helper()
	fw.mu.Lock()
	defer fw.mu.Unlock()
	m.secrets = append(m.secrets, fw.Secrets...)
	m.texts = append(m.texts, fw.texts...)
	m.texts = append(m.texts, fmText{where: "functions' logs (world " + fw.name + ")", text: fw.Logs()})
	m.logs++
	if m.allowed == nil {
		m.allowed = map[string]bool{}
	}
	for _, tok := range fw.usageTok {
		m.allowed[tok] = true
	}
	for _, c := range fw.clean {
		for _, body := range c.objects {
			sum := sha256.Sum256(body)
			m.allowed[hex.EncodeToString(sum[:])] = true
		}
	}
}

// accessToken matches what the simulator issues as an OAuth access token
// (32 random bytes in hex). Cost Explorer query tokens and SHA-256 sums
// have the same shape; the ones seen are allowed.
var accessToken = regexp.MustCompile(`[0-9a-f]{64}`)

func (m *faultMatrix) checkSecrets(t *testing.T) {
	if m.logs == 0 || len(m.texts) == 0 {
		t.Fatal("nothing collected")
	}
	for _, x := range m.texts {
		for i, sec := range m.secrets {
			if sec != "" && strings.Contains(x.text, sec) {
				t.Errorf("%s: holds secret value #%d", x.where, i)
			}
		}
		for _, bad := range []string{"Bearer ", "bearer ", "access_token", "Digest username"} {
			if strings.Contains(x.text, bad) {
				t.Errorf("%s: holds %q", x.where, bad)
			}
		}
		for _, h := range accessToken.FindAllString(x.text, -1) {
			if !m.allowed[h] {
				t.Errorf("%s: holds a 64-hex string that is neither a query token nor an object's SHA-256 (an access token? a URL signature?)", x.where)
			}
		}
	}
	t.Logf("checked %d texts (logs, error texts, causes, payloads) against %d secret values, bearer headers and unknown 64-hex strings", len(m.texts), len(m.secrets))
}

func (m *faultMatrix) report(t *testing.T) {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tfault\texpected\tobserved\tpass")
	var tried, survived, named, lostDup, failed int
	for i, r := range m.records {
		pass := "PASS"
		if !r.pass {
			pass = "FAIL"
			failed++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, r.fault, r.expected, r.observed, pass)
		tried++
		switch {
		case r.failed:
			named++
		case r.retried:
			survived++
		}
		lostDup += r.lost + r.extra
	}
	tw.Flush()
	fmt.Fprintf(&b, "faults tried: %d; survived by retry: %d; ended in a named failure: %d; objects lost or duplicated: %d; rows failing: %d\n",
		tried, survived, named, lostDup, failed)
	t.Log("fault matrix\n" + b.String())
	if tried < 30 {
		t.Errorf("the matrix has %d rows, want at least 30", tried)
	}
	if lostDup != 0 {
		t.Errorf("%d objects lost or duplicated", lostDup)
	}
	if survived+named != tried {
		t.Errorf("%d rows neither retried nor failed: their fault had no visible effect", tried-survived-named)
	}
}

// ---- the rows ----

func injectAtlas(fs ...atlassim.Fault) func(*faultWorld) {
	return func(fw *faultWorld) {
		for _, f := range fs {
			fw.Sim.Inject(f)
		}
	}
}

func injectS3(rs ...s3Rule) func(*faultWorld) {
	return func(fw *faultWorld) {
		for _, r := range rs {
			fw.proxy.Inject(r)
		}
	}
}

// putSecret sets the secret's value (a new version, same ARN).
func putSecret(value string) func(*faultWorld) {
	return func(fw *faultWorld) { fw.SM.Put(e2e.SecretName, value) }
}

func restoreSecret(fw *faultWorld) { fw.SM.Put(e2e.SecretName, fw.secret) }

// leakable returns a credential-like value for a broken secret, and adds
// it to the values no text may show.
func leakable(fw *faultWorld, label string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	v := label + "-" + hex.EncodeToString(b)
	fw.Secrets = append(fw.Secrets, v)
	return v
}

// pollEvent is the state machine's poll call of a Job with token.
// (Constant inputs: none of the calls can fail.)
func pollEvent(fw *faultWorld, token string) []byte {
	p, _ := billingperiod.Parse(fmMonth, e2e.Now)
	b, _ := json.Marshal(export.Job{OrgID: fw.Orgs[0], Period: p, MaxAttempts: 3, Token: token})
	_, call, _ := function.Call(function.ActionPoll, b)
	return call
}

func badRequest(extra map[string]any) func(fw *faultWorld) any {
	return func(fw *faultWorld) any {
		req := map[string]any{"orgIds": fw.Orgs[:1], "period": fmMonth}
		for k, v := range extra {
			req[k] = v
		}
		if _, ok := req["startDate"]; ok {
			delete(req, "period")
		}
		return req
	}
}

var (
	noNetwork = map[string]int{netTotal: 0}
	saID      = atlassim.DefaultClientID
)

var faultRows = []faultRow{
	// ---- Atlas ----
	{
		name: "429 with Retry-After 1 s, twice", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second, Times: 2}),
		want:  fmWant{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpListInvoices): 2}, minElapsed: 2 * time.Second},
	},
	{
		// The client makes 5 attempts (4 waits) and gives up with
		// Atlas.RateLimited; the state machine calls the step again, whose
		// client waits once more and succeeds.
		name: "429 with Retry-After 1 s, 6 times (over the client's 5 attempts)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second, Times: 6}),
		want: fmWant{by: "state machine Retry (Atlas.RateLimited)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpListInvoices): 6}, minElapsed: 5 * time.Second},
	},
	{
		// A Retry-After past the client's 2-minute budget: the client hands
		// the wait to the state machine at once.
		name: "429 with Retry-After 200 s (over the client's time budget)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 429, RetryAfter: 200 * time.Second}),
		want:  fmWant{by: "state machine Retry (Atlas.RateLimited)", retried: 1, state: statemachine.StateSubmit, extra: map[string]int{atlasReq(atlassim.OpCreateUsage): 1}},
	},
	{
		name: "429 with Retry-After 200 s, 5 times (over the ASL's MaxAttempts 4)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 429, RetryAfter: 200 * time.Second, Times: 5}),
		want:  fmWant{err: export.AtlasRateLimited, retried: 4, exact: map[string]int{atlasReq(atlassim.OpCreateUsage): 5, atlasReq(atlassim.OpGetUsage): 0}},
	},
	{
		name: "500 on create usage query", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 500}),
		want:  fmWant{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpCreateUsage): 1}},
	},
	{
		name: "502 on get usage", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Status, Status: 502}),
		want:  fmWant{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpGetUsage): 1}},
	},
	{
		name: "503 on list invoices", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 503}),
		want:  fmWant{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpListInvoices): 1}},
	},
	{
		name: "504 on invoice CSV", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Status, Status: 504}),
		want:  fmWant{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},
	{
		name: "503 with Retry-After 200 s on pending invoice (over the client's budget)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpPendingInvoice, Kind: atlassim.Status, Status: 503, RetryAfter: 200 * time.Second}),
		want: fmWant{by: "state machine Retry (Atlas.ServerError)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpListInvoices): 1, atlasReq(atlassim.OpPendingInvoice): 1}},
	},
	{
		name: "503 with Retry-After 200 s, 5 times (over the ASL's MaxAttempts 4)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 503, RetryAfter: 200 * time.Second, Times: 5}),
		want:  fmWant{err: export.AtlasServerError, retried: 4, exact: map[string]int{atlasReq(atlassim.OpListInvoices): 5, atlasReq(atlassim.OpGetInvoiceCSV): 0}},
	},
	{
		// The body is already streaming to S3: the client cannot retry; the
		// state machine runs the step again.
		name: "connection reset mid-body (invoice CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 4096}),
		want: fmWant{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1, atlasReq(atlassim.OpListInvoices): 1}},
	},
	{
		name: "connection reset mid-body (usage CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Reset, After: 512}),
		want:  fmWant{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StatePoll, extra: map[string]int{atlasReq(atlassim.OpGetUsage): 1}},
	},
	{
		name: "truncated body: fewer bytes than Content-Length (invoice CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Truncate, After: 10000}),
		want: fmWant{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},
	{
		name: "truncated body (usage CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Truncate, After: 100}),
		want:  fmWant{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StatePoll, extra: map[string]int{atlasReq(atlassim.OpGetUsage): 1}},
	},
	{
		// The step's context ends mid-body, as Lambda's deadline does; the
		// body (4 chunks 2 s apart) would take 8 s.
		name: "invoice CSV body slower than the step's 4 s deadline", world: "atlas", input: "1org",
		setup:    injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.SlowBody, Delay: 2 * time.Second}),
		deadline: 4 * time.Second,
		want: fmWant{by: "state machine Retry", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},
	{
		name: "401 expired access token", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.ExpiredToken}),
		want: fmWant{by: "Atlas client (new token)", extra: map[string]int{
			atlasReq(atlassim.OpOAuthToken): 1, atlasReq(atlassim.OpListInvoices): 1, smGet: 0}},
	},
	{
		name: "401 stale Digest nonce (API key secret)", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) {
			fw.SM.Put(e2e.SecretName, e2e.APIKeySecret(atlassim.DefaultPublicKey, atlassim.DefaultPrivateKey))
			fw.Sim.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.ExpiredToken})
		},
		clear: restoreSecret,
		want: fmWant{by: "Atlas client (new nonce)", extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1, smGet: 0},
			exact: map[string]int{atlasReq(atlassim.OpOAuthToken): 0}},
	},
	{
		// Poll's token is refused, a new one too; the secret is read again
		// once, in vain.
		name: "401 revoked service account (revoked between Submit and Poll)", world: "atlas", input: "1org",
		after: map[string]func(*faultWorld){statemachine.StateSubmit: func(fw *faultWorld) { fw.Sim.RevokeServiceAccount(saID) }},
		clear: func(fw *faultWorld) { fw.Sim.SetServiceAccount(saID, atlassim.DefaultClientSecret) },
		want: fmWant{err: export.AtlasUnauthorized, exact: map[string]int{
			smGet: 2, atlasReq(atlassim.OpOAuthToken): 3, atlasReq(atlassim.OpGetUsage): 0, atlasReq(atlassim.OpListInvoices): 0}},
	},
	{
		name: "404 for the usage query token", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.NotFound}),
		want:  fmWant{err: export.AtlasNotFound, exact: map[string]int{atlasReq(atlassim.OpGetUsage): 1, atlasReq(atlassim.OpListInvoices): 0}},
	},
	{
		// The fault hits whichever org asks first; the other's job still
		// writes all its objects.
		name: "404 for an invoice CSV, two orgs", world: "atlas", input: "2orgs",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.NotFound}),
		want:  fmWant{err: export.AtlasNotFound, exact: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 3}},
		check: func(t *testing.T, fw *faultWorld, got fmRun) {
			c := fw.clean["2orgs"]
			for _, org := range fw.Orgs {
				if strings.Contains(got.res.Cause, "org "+org) {
					continue
				}
				for k := range c.objects {
					if strings.Contains(k, "org_id="+org+"/") && fw.S3.Head(t, fw.Bucket, k) == nil {
						t.Errorf("%s of the org that did not fail is missing", k)
					}
				}
			}
		},
	},
	{
		name: "malformed JSON answer (list invoices)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.MalformedJSON}),
		want:  fmWant{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpListInvoices): 1, atlasReq(atlassim.OpGetInvoiceCSV): 0}},
	},
	{
		name: "malformed JSON answer (create usage query)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.MalformedJSON}),
		want:  fmWant{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpCreateUsage): 1, atlasReq(atlassim.OpGetUsage): 0}},
	},
	{
		name: "unexpected media type: text/html (list invoices)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.WrongMediaType}),
		want:  fmWant{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpListInvoices): 1, atlasReq(atlassim.OpGetInvoiceCSV): 0}},
	},
	{
		name: "unexpected media type: text/html (invoice CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.WrongMediaType}),
		want:  fmWant{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},

	// ---- Atlas: FOCUS reports ----
	{
		// The report (of the closed invoice; the pending one has none) goes
		// PENDING, RUNNING, then FAILED.
		name: "FOCUS report ends FAILED", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateInvoiceReport, Kind: atlassim.ReportFailed}),
		want: fmWant{err: export.AtlasReportFailed, exact: map[string]int{
			atlasReq(atlassim.OpCreateInvoiceReport): 1, atlasReq(atlassim.OpDownloadReport): 0}},
	},
	{
		// The poll asks for a new report and goes round until it is ready:
		// 3 more polls.
		name: "FOCUS download URL expired (403 from the download host)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.ExpiredURL}),
		want: fmWant{by: "PollFocus (report requested again)", moreCalls: map[string]int{statemachine.StatePollFocus: 3},
			extra: map[string]int{atlasReq(atlassim.OpCreateInvoiceReport): 1, atlasReq(atlassim.OpGetInvoiceReport): 3, atlasReq(atlassim.OpDownloadReport): 1}},
	},
	{
		name: "connection reset mid-body (FOCUS download)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.Reset, After: 1000}),
		want: fmWant{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StatePollFocus,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceReport): 1, atlasReq(atlassim.OpDownloadReport): 1}},
	},
	{
		name: "429 with Retry-After 1 s on get invoice report", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceReport, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second}),
		want:  fmWant{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpGetInvoiceReport): 1}, minElapsed: time.Second},
	},

	// ---- Secrets Manager ----
	{
		name: "secret missing", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Delete(e2e.SecretName) },
		clear: func(fw *faultWorld) {
			// Created again, the secret has a new ARN: a redeploy, a cold start.
			fw.SecretARN = fw.SM.Put(e2e.SecretName, fw.secret)
			fw.Env["ABX_SECRET_ARN"] = fw.SecretARN
			fw.H = fw.NewHandlers()
		},
		want: fmWant{err: export.SecretUnavailable, exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		name: "secret not JSON", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Put(e2e.SecretName, "clientSecret="+leakable(fw, "not-json")) },
		clear: restoreSecret,
		want:  fmWant{err: export.SecretInvalid, exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		name: "secret missing a field (clientId only)", world: "atlas", input: "1org",
		setup: putSecret(`{"clientId":"` + saID + `"}`),
		clear: restoreSecret,
		want:  fmWant{err: export.SecretInvalid, exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		name: "secret missing a field (privateKey only)", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Put(e2e.SecretName, `{"privateKey":"`+leakable(fw, "lonely-key")+`"}`) },
		clear: restoreSecret,
		want:  fmWant{err: export.SecretInvalid, exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		// Rotation that revokes the old secret and its tokens at once: Poll's
		// token and a new one from the cached secret are refused, the secret
		// is read again once and the call succeeds.
		name: "secret rotated between Submit and Poll", world: "atlas", input: "1org",
		after: map[string]func(*faultWorld){statemachine.StateSubmit: func(fw *faultWorld) {
			rotated := leakable(fw, "rotated")
			fw.SM.Put(e2e.SecretName, e2e.ServiceAccountSecret(saID, rotated))
			fw.Sim.RevokeServiceAccount(saID)
			fw.Sim.SetServiceAccount(saID, rotated)
		}},
		clear: func(fw *faultWorld) {
			fw.Sim.SetServiceAccount(saID, atlassim.DefaultClientSecret)
			restoreSecret(fw)
		},
		want: fmWant{by: "secret re-read after a 401", extra: map[string]int{smGet: 1, atlasReq(atlassim.OpOAuthToken): 2}},
	},
	{
		name: "Secrets Manager 500 once", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Fail(1, "InternalServiceError", 500) },
		want:  fmWant{by: "AWS SDK", extra: map[string]int{smGet: 1}},
	},
	{
		name: "Secrets Manager access denied", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Fail(1, "AccessDeniedException", 400) },
		want:  fmWant{err: export.SecretUnavailable, exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},

	// ---- input: rejected before any network call ----
	{
		name: "org id with ../", world: "atlas", input: "1org",
		bad: func(fw *faultWorld) any {
			return map[string]any{"orgIds": []string{"../" + fw.Orgs[0]}, "period": fmMonth}
		},
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "org id too short", world: "atlas", input: "1org",
		bad: func(fw *faultWorld) any {
			return map[string]any{"orgIds": []string{fw.Orgs[0][:23]}, "period": fmMonth}
		},
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "token of the wrong length (poll called directly)", world: "atlas", input: "1org",
		direct: func(fw *faultWorld) (string, []byte) {
			return statemachine.StatePoll, pollEvent(fw, strings.Repeat("ab", 31)+"a")
		},
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "token with path characters (poll called directly)", world: "atlas", input: "1org",
		direct: func(fw *faultWorld) (string, []byte) {
			return statemachine.StatePoll, pollEvent(fw, "../../"+strings.Repeat("a", 58))
		},
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "dates not on a month start", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"startDate": "2024-06-15", "endDate": "2024-07-01"}),
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "end before start", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"startDate": "2024-06-01", "endDate": "2024-05-01"}),
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "unknown service", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"services": []string{"Clusters", "Quantum Annealing"}}),
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "unknown groupBy", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"services": []string{"Clusters"}, "groupBy": "regions"}),
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "300 KiB input", world: "atlas", input: "1org",
		bad: func(fw *faultWorld) any {
			// Well-formed project ids, only too many of them.
			var ids []string
			for i := 0; len(ids)*27 < bigInput; i++ {
				ids = append(ids, fmt.Sprintf("%024x", i))
			}
			return badRequest(map[string]any{"projects": ids})(fw)
		},
		want: fmWant{err: export.InputInvalid, exact: noNetwork},
		check: func(t *testing.T, fw *faultWorld, got fmRun) {
			if !strings.Contains(got.res.Cause, "bytes") {
				t.Errorf("cause %q does not say the input is too large", got.res.Cause)
			}
		},
	},

	// ---- S3 (versitygw behind the fault proxy) ----
	{
		name: "500 on a part upload", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{"UploadPart#2"}, Action: s3Fail, Times: 1, Status: 500, Code: "InternalError"}),
		want:  fmWant{by: "AWS SDK", extra: map[string]int{s3Req("UploadPart#2"): 1}},
	},
	{
		// The SDK's 3 attempts all meet 503: Storage.Error, and the state
		// machine runs the step again.
		name: "503 SlowDown on a part upload, 3 times", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PartOne}, Action: s3Fail, Times: 3, Status: 503, Code: "SlowDown", SameUpload: true}),
		want:  fmWant{by: "state machine Retry (Storage.Error)", retried: 1, state: statemachine.StateFetchInvoices},
	},
	{
		name: "500 on a single-part upload (usage CSV)", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PutObject}, Action: s3Fail, Times: 1, Status: 500, Code: "InternalError"}),
		want:  fmWant{by: "AWS SDK", extra: map[string]int{s3Req(s3PutObject): 1}},
	},
	{
		name: "connection cut mid part upload", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PartOne}, Action: s3Cut, Times: 1}),
		want:  fmWant{by: "AWS SDK", extra: map[string]int{s3Req(s3PartOne): 1}},
	},
	{
		// Every request is cut from the first part on, until the sink's
		// abort (the server is back for the cleanup).
		name: "server stopped mid-upload", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PartOne}, Action: s3DownToAbort, Times: 1}),
		want:  fmWant{by: "state machine Retry (Storage.Error)", retried: 1, state: statemachine.StateFetchInvoices},
		check: func(t *testing.T, fw *faultWorld, got fmRun) {
			if got.counts[s3Req(s3AbortUpload)] < 1 {
				t.Errorf("the failed upload was not aborted")
			}
		},
	},
	{
		name: "access denied on every write", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: s3Writes, Action: s3Fail, Times: -1, Status: 403, Code: "AccessDenied"}),
		want:  fmWant{err: export.StorageError, retried: 4, exact: map[string]int{s3Req(s3PutObject): 5, s3Req(s3CopyObject): 0, atlasReq(atlassim.OpListInvoices): 0}},
	},
	{
		// Uploaded to staging, refused at the commit (once per attempt):
		// the staging objects go.
		name: "access denied on the commit (CopyObject)", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3CopyObject}, Action: s3Fail, Times: -1, Status: 403, Code: "AccessDenied"}),
		want:  fmWant{err: export.StorageError, retried: 4, exact: map[string]int{s3Req(s3CopyObject): 5, atlasReq(atlassim.OpListInvoices): 0}},
	},
}
