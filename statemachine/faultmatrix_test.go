package statemachine_test

import (
	"bytes"
	"context"
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
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// TestFaultMatrix runs the whole workflow (the deployed definition in
// aws-local-stepfunctions, the functions' handlers, the Atlas simulator,
// versitygw behind a fault-injecting proxy, the Secrets Manager endpoint)
// once per row with one fault injected, and checks the outcome: a retry that
// succeeds (and which layer retried: the Atlas client, the AWS SDK, the
// state machine's Retry) or a named failure whose cause names the org. After
// every run: no multipart upload open, and every object under a final key
// is byte for byte the one a clean run writes (nothing else), or, after a
// failure, the one it held before the run (rows with previous objects). A
// month's manifest may be partial after a failure, but lists only what is
// there. After a failure, a re-run with the fault cleared writes exactly the
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
	june      = "2024-06"
	smGet     = "sm:GetSecretValue"
	netTotal  = "network" // Atlas + S3 + Secrets Manager requests
	s3Total   = "s3:*"    // every S3 request
	atlasAll  = "atlas:*" // every Atlas request, token endpoint and download host included
	bigInput  = 300 << 10 // bytes: more than a state payload may carry
	s3PartOne = "UploadPart#1"
)

func atlasReq(op string) string { return "atlas:" + op }
func s3Req(op string) string    { return "s3:" + op }

// atlasOps are the simulator's operations, counted per run.
var atlasOps = []string{
	atlassim.OpCreateUsage, atlassim.OpGetUsage, atlassim.OpListInvoices, atlassim.OpGetInvoice,
	atlassim.OpGetInvoiceCSV, atlassim.OpPendingInvoice, atlassim.OpCreateInvoiceReport,
	atlassim.OpGetInvoiceReport, atlassim.OpListInvoiceReports, atlassim.OpOAuthToken, atlassim.OpDownloadReport,
}

// cleanInput is a clean request of the matrix; rows are compared with its
// clean run.
type cleanInput struct {
	name    string
	orgs    func(fw *faultWorld) []string // the orgs it exports
	pending bool
}

func (in cleanInput) body(fw *faultWorld) any {
	req := map[string]any{"period": june, "includePending": in.pending}
	if orgs := in.orgs(fw); len(orgs) == 1 {
		req["orgIds"] = orgs // else both, from ABX_ORG_IDS
	}
	return req
}

// faultWorldConfig is one World of the matrix: a simulator configuration
// and the clean requests its rows use.
type faultWorldConfig struct {
	name   string
	sim    atlassim.Config
	inputs []cleanInput
}

// faultWorld is a World with an S3 fault proxy in front of versitygw (the
// functions' ABX_S3_ENDPOINT; the test's own S3 client talks to versitygw
// directly) and the clean runs to compare with.
type faultWorld struct {
	*e2e.World
	name   string
	proxy  *s3Proxy
	secret string // the secret's good value
	clean  map[string]*cleanRun

	mu       sync.Mutex
	row      string     // the row running, for the texts' labels
	texts    []seenText // every payload, error text and cause seen
	usageTok []string   // Cost Explorer query tokens (64 hex, like access tokens)
}

// seenText is a text the matrix-wide checks read, and where it came from.
type seenText struct{ where, text string }

// cleanRun is what a clean run of one input did.
type cleanRun struct {
	input   cleanInput
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
		clean:  map[string]*cleanRun{},
	}
	fw.proxy = startS3Proxy(t, w.S3.Endpoint)
	w.Env["ABX_S3_ENDPOINT"] = fw.proxy.URL
	for _, in := range wc.inputs {
		fw.row = "clean run " + in.name
		fw.reset(t)
		c := &cleanRun{input: in, body: in.body(fw)}
		got := fw.run(t, c.body, nil, 0)
		if !got.res.Succeeded() {
			t.Fatalf("clean run %s failed: %s: %s", in.name, got.res.Error, got.res.Cause)
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
func (fw *faultWorld) checkServed(t *testing.T, c *cleanRun) {
	t.Helper()
	for _, org := range c.input.orgs(fw) {
		want := map[string][]byte{fw.UsageKey(t, org, june): fw.ServedUsage(t, org, june)}
		months := []string{june}
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
	for _, op := range atlasOps {
		c[atlasReq(op)] = fw.Sim.Requests(op)
	}
	for op, n := range fw.proxy.Counts() {
		c[s3Req(op)] = n
	}
	c[smGet] = fw.SM.Calls()
	return c
}

// since is what happened between two counts, with the totals.
func since(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		d[k] = v - before[k]
	}
	for k, v := range d {
		switch {
		case strings.Contains(k, "#"): // a part of UploadPart, already counted
		case strings.HasPrefix(k, s3Req(runsOp(""))), strings.HasPrefix(k, s3Req(bucketOp(""))): // a run's own files, the bucket: not exported data
			d[netTotal] += v
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
			fw.texts = append(fw.texts, seenText{where: fw.row + ": " + what, text: text})
		}
	}
}

// outcome is one faulted or clean run.
type outcome struct {
	res     sfntest.Result
	counts  map[string]int // requests during the run
	elapsed time.Duration
}

// run executes the state machine with the World's handlers. after[state]
// runs once, after the first call of that Task state returns; deadline, if
// set, is each call's context deadline, as Lambda gives a handler its
// function's timeout.
func (fw *faultWorld) run(t *testing.T, input any, after map[string]func(*faultWorld), deadline time.Duration) outcome {
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
	res := fw.RunWith(t, input, routes)
	elapsed := time.Since(start)
	fw.record("execution error", res.Error, res.Cause)
	return outcome{res: res, counts: since(fw.counts(), before), elapsed: elapsed}
}

// direct calls one Task state's handler with a raw event, outside the
// state machine.
func (fw *faultWorld) direct(t *testing.T, state string, raw []byte) outcome {
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
	return outcome{res: res, counts: since(fw.counts(), before)}
}

// warningNames are the names of the warnings an execution's summary lists
// (the first export.Listed), in order.
func warningNames(output []byte) []string {
	var sum struct {
		WarningList []export.Warning `json:"warningList"`
	}
	_ = json.Unmarshal(output, &sum) // a failed execution has no output: no warnings
	var names []string
	for _, w := range sum.WarningList {
		names = append(names, w.Name)
	}
	return names
}

// checkStore checks the bucket after a run: no open multipart upload, and
// each final object the clean run's, byte for byte, or the one it held
// before the run (prev; after a failure). With all (after a success),
// every clean object must be there too, and no previous one. A manifest
// that is not the clean run's must list only objects that are there, as
// they are. It returns the objects missing or different, and those the
// clean run does not write.
func (fw *faultWorld) checkStore(t *testing.T, c *cleanRun, all bool, prev map[string][]byte) (lost, extra int) {
	t.Helper()
	if n := fw.OpenUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
	seen := map[string]bool{}
	for _, k := range fw.FinalKeys(t) {
		seen[k] = true
		got := fw.Object(t, k)
		if before, ok := prev[k]; ok && !all {
			if !bytes.Equal(got, before) {
				lost++
				t.Errorf("%s: %d bytes, not the %d it held before the failed run", k, len(got), len(before))
			}
			continue
		}
		want, ok := c.objects[k]
		if !ok {
			extra++
			t.Errorf("%s: not an object a clean run writes", k)
			continue
		}
		if !bytes.Equal(got, want) {
			if !all && strings.Contains(k, "/_manifests/") && fw.manifestTrue(t, got) {
				continue // partial, as the run was
			}
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

// manifestTrue reports whether a manifest lists only objects that are in
// the bucket, with their checksums.
func (fw *faultWorld) manifestTrue(t *testing.T, b []byte) bool {
	t.Helper()
	var m export.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("manifest: %v", err)
		return false
	}
	for _, e := range m.Objects {
		sum := sha256.Sum256(fw.Object(t, e.Key))
		if hex.EncodeToString(sum[:]) != e.SHA256 {
			t.Errorf("manifest lists %s with sha256 %s, the bucket holds other bytes", e.Key, e.SHA256)
			return false
		}
	}
	return true
}

// faultRow is one row of the matrix: one fault and its expected outcome.
type faultRow struct {
	name  string
	world string // faultWorlds name
	input string // the clean input of the world the row uses and compares with

	// previous are objects the bucket holds before the run (keys, bytes
	// unlike any clean run's): a failed run must leave them as they are.
	previous func(t *testing.T, fw *faultWorld) map[string][]byte

	setup    func(fw *faultWorld)                  // injects the fault before the run
	after    map[string]func(fw *faultWorld)       // or between two steps
	deadline time.Duration                         // each Task call's context deadline
	bad      func(fw *faultWorld) any              // the rejected request, instead of the clean one
	direct   func(fw *faultWorld) (string, []byte) // a handler called directly (state, event)
	clear    func(fw *faultWorld)                  // undoes the fault, after the run
	check    func(t *testing.T, fw *faultWorld, got outcome)

	want expect
}

// expect is a row's expected outcome.
type expect struct {
	err     string // "" for success
	warning string // success: the warning the fault gave (the output names it); "": none
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
	// cause, for a failure that is no job's (the run's own files, the
	// secret read at the plan), is what the cause names instead of an org.
	cause string
}

func (w expect) expected() string {
	out := "succeeded"
	switch {
	case w.err != "":
		out = w.err
	case w.warning != "":
		out += " with warning " + w.warning
	case w.by != "":
		out += " by " + w.by
	}
	return out + w.numbers(w.retried, func(k string) int { return w.extra[k] }, func(k string) int { return w.exact[k] })
}

func (w expect) observed(got outcome, clean *cleanRun) string {
	out := "succeeded"
	if got.res.Error != "" {
		out = got.res.Error
	} else if names := warningNames(got.res.Output); len(names) > 0 {
		out += " with warning " + strings.Join(names, ", ")
	}
	return out + w.numbers(got.res.Retried, func(k string) int { return got.counts[k] - clean.counts[k] }, func(k string) int { return got.counts[k] })
}

// numbers shows the state machine's retries and the requests the row
// asserts, expected or observed.
func (w expect) numbers(retried int, extra, exact func(string) int) string {
	var b strings.Builder
	if retried > 0 || w.retried > 0 || w.err == "" {
		fmt.Fprintf(&b, "; SM retries %d", retried)
	}
	for _, k := range slices.Sorted(maps.Keys(w.extra)) {
		fmt.Fprintf(&b, "; %s %+d", label(k), extra(k))
	}
	for _, k := range slices.Sorted(maps.Keys(w.exact)) {
		fmt.Fprintf(&b, "; %s=%d", label(k), exact(k))
	}
	return b.String()
}

// label shortens a request counter's name for the printed matrix.
func label(k string) string {
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

// printedRow is a printed row.
type printedRow struct {
	fault, expected, observed string
	failed, retried, warned   bool
	pass                      bool
	lost, extra               int
}

type faultMatrix struct {
	records []*printedRow
	secrets []string
	texts   []seenText // error texts, causes, payloads, logs
	logs    int
	allowed map[string]bool // 64-hex strings that are not access tokens
}

func (m *faultMatrix) run(t *testing.T, fw *faultWorld, r faultRow) {
	rec := &printedRow{fault: r.world + ": " + r.name, expected: r.want.expected()}
	m.records = append(m.records, rec)
	defer func() { rec.pass = !t.Failed() }()
	c := fw.clean[r.input]
	if c == nil {
		t.Fatalf("row uses input %q, which world %s does not have", r.input, r.world)
	}
	fw.row = r.name
	fw.reset(t)
	var prev map[string][]byte
	if r.previous != nil {
		prev = r.previous(t, fw)
		for k, b := range prev {
			if _, err := fw.S3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(fw.Bucket), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r.setup != nil {
		r.setup(fw)
	}
	var got outcome
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
	// A fault the export survives gives no warning unless it cost a file.
	var wantWarnings []string
	if r.want.warning != "" {
		wantWarnings = []string{r.want.warning}
	}
	if names := warningNames(got.res.Output); got.res.Error == "" && r.direct == nil && !slices.Equal(names, wantWarnings) {
		t.Errorf("warnings %v, want %v", names, wantWarnings)
	}
	rec.warned = r.want.warning != "" && got.res.Error == ""
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
	switch {
	case r.want.warning != "":
		// A warning's outcome is the row's check: which files it cost.
	case r.want.err == "":
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
	default:
		cause := got.res.Cause
		if cause == "" || len(cause) > 2048 {
			t.Errorf("cause is %d bytes: want a short explanation", len(cause))
		}
		switch {
		case r.want.cause != "":
			if !strings.Contains(cause, r.want.cause) {
				t.Errorf("cause %q does not name %s", cause, r.want.cause)
			}
		case r.bad == nil && r.direct == nil && !slices.ContainsFunc(c.input.orgs(fw), func(org string) bool { return strings.Contains(cause, "org "+org) }):
			t.Errorf("cause %q names no org", cause)
		}
	}
	if r.check != nil {
		r.check(t, fw, got)
	}
	// A warning stands for a file not written: the row's check says which.
	lost, extra := fw.checkStore(t, c, r.want.err == "" && r.want.warning == "", prev)
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
	lost, extra = fw.checkStore(t, c, true, nil)
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
	m.texts = append(m.texts, seenText{where: "functions' logs (world " + fw.name + ")", text: fw.Logs()})
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
	var tried, survived, named, warned, lostDup, failed int
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
		case r.warned:
			warned++
		case r.retried:
			survived++
		}
		lostDup += r.lost + r.extra
	}
	tw.Flush()
	fmt.Fprintf(&b, "faults tried: %d; survived by retry: %d; ended in a named failure: %d; in a named warning: %d; objects lost or duplicated: %d; rows failing: %d\n",
		tried, survived, named, warned, lostDup, failed)
	t.Log("fault matrix\n" + b.String())
	if tried < 30 {
		t.Errorf("the matrix has %d rows, want at least 30", tried)
	}
	if lostDup != 0 {
		t.Errorf("%d objects lost or duplicated", lostDup)
	}
	if survived+named+warned != tried {
		t.Errorf("%d rows neither retried, failed nor warned: their fault had no visible effect", tried-survived-named-warned)
	}
}
