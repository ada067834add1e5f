package statemachine_test

// The rows of the fault matrix, each one fault and the outcome it must
// have; faultmatrix_test.go holds the harness that runs them.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	billingperiod "github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// faultWorlds are the Worlds of the matrix: the simulator of each and the
// clean requests its rows use.
var faultWorlds = []faultWorldConfig{
	{
		// Queries ready at the first poll: a poll fault hits the result.
		name: "atlas",
		sim:  atlassim.Config{ProcessingTime: -1},
		inputs: []cleanInput{
			{name: "1org", orgs: oneOrg, pending: true},
			{name: "2orgs", orgs: allOrgs, pending: true},
		},
	},
	{
		// Invoices of 12 MiB: uploaded in two parts (sink.DefaultPartSize 8 MiB).
		name:   "s3",
		sim:    atlassim.Config{ProcessingTime: -1, InvoiceBytes: 12 << 20},
		inputs: []cleanInput{{name: "1org", orgs: oneOrg}},
	},
}

var (
	oneOrg  = func(fw *faultWorld) []string { return fw.Orgs[:1] }
	allOrgs = func(fw *faultWorld) []string { return fw.Orgs }
)

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
	p, _ := billingperiod.Parse(june, e2e.Now)
	b, _ := json.Marshal(export.Job{OrgID: fw.Orgs[0], Period: p, MaxAttempts: 3, Token: token})
	_, call, _ := function.Call(function.ActionPoll, b)
	return call
}

func badRequest(extra map[string]any) func(fw *faultWorld) any {
	return func(fw *faultWorld) any {
		req := map[string]any{"orgIds": fw.Orgs[:1], "period": june}
		for k, v := range extra {
			req[k] = v
		}
		if _, ok := req["startDate"]; ok {
			delete(req, "period")
		}
		return req
	}
}

// checkNoFocus wants, after a FOCUS report was unavailable, every object of
// the clean run but the FOCUS ones, and none of those.
func checkNoFocus(t *testing.T, fw *faultWorld, got outcome) {
	t.Helper()
	c := fw.clean["1org"]
	focus := []string{fw.Layout.Prefix() + "/" + layout.FocusFolder + "/", fw.Layout.Prefix() + "/" + layout.NormalizedFocusFolder + "/"}
	for _, k := range slices.Sorted(maps.Keys(c.objects)) {
		isFocus := strings.HasPrefix(k, focus[0]) || strings.HasPrefix(k, focus[1])
		if stored := fw.S3.Head(t, fw.Bucket, k) != nil; stored == isFocus {
			t.Errorf("%s: stored %v, want %v", k, stored, !isFocus)
		}
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
		want:  expect{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpListInvoices): 2}, minElapsed: 2 * time.Second},
	},
	{
		// The client makes 5 attempts (4 waits) and gives up with
		// Atlas.RateLimited; the state machine calls the step again, whose
		// client waits once more and succeeds.
		name: "429 with Retry-After 1 s, 6 times (over the client's 5 attempts)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second, Times: 6}),
		want: expect{by: "state machine Retry (Atlas.RateLimited)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpListInvoices): 6}, minElapsed: 5 * time.Second},
	},
	{
		// A Retry-After past the client's 2-minute budget: the client hands
		// the wait to the state machine at once.
		name: "429 with Retry-After 200 s (over the client's time budget)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 429, RetryAfter: 200 * time.Second}),
		want:  expect{by: "state machine Retry (Atlas.RateLimited)", retried: 1, state: statemachine.StateSubmit, extra: map[string]int{atlasReq(atlassim.OpCreateUsage): 1}},
	},
	{
		name: "429 with Retry-After 200 s, 5 times (over the ASL's MaxAttempts 4)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 429, RetryAfter: 200 * time.Second, Times: 5}),
		want:  expect{err: export.AtlasRateLimited, retried: 4, exact: map[string]int{atlasReq(atlassim.OpCreateUsage): 5, atlasReq(atlassim.OpGetUsage): 0}},
	},
	{
		name: "500 on create usage query", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.Status, Status: 500}),
		want:  expect{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpCreateUsage): 1}},
	},
	{
		name: "502 on get usage", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Status, Status: 502}),
		want:  expect{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpGetUsage): 1}},
	},
	{
		name: "503 on list invoices", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 503}),
		want:  expect{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpListInvoices): 1}},
	},
	{
		name: "504 on invoice CSV", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Status, Status: 504}),
		want:  expect{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},
	{
		name: "503 with Retry-After 200 s on pending invoice (over the client's budget)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpPendingInvoice, Kind: atlassim.Status, Status: 503, RetryAfter: 200 * time.Second}),
		want: expect{by: "state machine Retry (Atlas.ServerError)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpListInvoices): 1, atlasReq(atlassim.OpPendingInvoice): 1}},
	},
	{
		name: "503 with Retry-After 200 s, 5 times (over the ASL's MaxAttempts 4)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.Status, Status: 503, RetryAfter: 200 * time.Second, Times: 5}),
		want:  expect{err: export.AtlasServerError, retried: 4, exact: map[string]int{atlasReq(atlassim.OpListInvoices): 5, atlasReq(atlassim.OpGetInvoiceCSV): 0}},
	},
	{
		// The body is already streaming to S3: the client cannot retry; the
		// state machine runs the step again.
		name: "connection reset mid-body (invoice CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 4096}),
		want: expect{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1, atlasReq(atlassim.OpListInvoices): 1}},
	},
	{
		// The retried poll reads the result again in both forms: the CSV
		// (stored as sent) and the JSON (what it is normalized from).
		name: "connection reset mid-body (usage CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Reset, After: 512}),
		want:  expect{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StatePoll, extra: map[string]int{atlasReq(atlassim.OpGetUsage): 2}},
	},
	{
		name: "truncated body: fewer bytes than Content-Length (invoice CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Truncate, After: 10000}),
		want: expect{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},
	{
		name: "truncated body (usage CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.Truncate, After: 100}),
		want:  expect{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StatePoll, extra: map[string]int{atlasReq(atlassim.OpGetUsage): 2}},
	},
	{
		// The step's context ends mid-body, as Lambda's deadline does; the
		// body (4 chunks 2 s apart) would take 8 s.
		name: "invoice CSV body slower than the step's 4 s deadline", world: "atlas", input: "1org",
		setup:    injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.SlowBody, Delay: 2 * time.Second}),
		deadline: 4 * time.Second,
		want: expect{by: "state machine Retry", retried: 1, state: statemachine.StateFetchInvoices,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},
	{
		name: "401 expired access token", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.ExpiredToken}),
		want: expect{by: "Atlas client (new token)", extra: map[string]int{
			atlasReq(atlassim.OpOAuthToken): 1, atlasReq(atlassim.OpListInvoices): 1, smGet: 0}},
	},
	{
		name: "401 stale Digest nonce (API key secret)", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) {
			fw.SM.Put(e2e.SecretName, e2e.APIKeySecret(atlassim.DefaultPublicKey, atlassim.DefaultPrivateKey))
			fw.Sim.Inject(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.ExpiredToken})
		},
		clear: restoreSecret,
		want: expect{by: "Atlas client (new nonce)", extra: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1, smGet: 0},
			exact: map[string]int{atlasReq(atlassim.OpOAuthToken): 0}},
	},
	{
		// Poll's token is refused, a new one too; the secret is read again
		// once, in vain.
		name: "401 revoked service account (revoked between Submit and Poll)", world: "atlas", input: "1org",
		after: map[string]func(*faultWorld){statemachine.StateSubmit: func(fw *faultWorld) { fw.Sim.RevokeServiceAccount(saID) }},
		clear: func(fw *faultWorld) { fw.Sim.SetServiceAccount(saID, atlassim.DefaultClientSecret) },
		want: expect{err: export.AtlasUnauthorized, exact: map[string]int{
			smGet: 2, atlasReq(atlassim.OpOAuthToken): 3, atlasReq(atlassim.OpGetUsage): 0, atlasReq(atlassim.OpListInvoices): 0}},
	},
	{
		name: "404 for the usage query token", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetUsage, Kind: atlassim.NotFound}),
		want:  expect{err: export.AtlasNotFound, exact: map[string]int{atlasReq(atlassim.OpGetUsage): 1, atlasReq(atlassim.OpListInvoices): 0}},
	},
	{
		// The fault hits whichever org asks first; the other's job still
		// writes all its objects.
		name: "404 for an invoice CSV, two orgs", world: "atlas", input: "2orgs",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.NotFound}),
		want:  expect{err: export.AtlasNotFound, exact: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 3}},
		check: func(t *testing.T, fw *faultWorld, got outcome) {
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
		want:  expect{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpListInvoices): 1, atlasReq(atlassim.OpGetInvoiceCSV): 0}},
	},
	{
		name: "malformed JSON answer (create usage query)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateUsage, Kind: atlassim.MalformedJSON}),
		want:  expect{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpCreateUsage): 1, atlasReq(atlassim.OpGetUsage): 0}},
	},
	{
		name: "unexpected media type: text/html (list invoices)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpListInvoices, Kind: atlassim.WrongMediaType}),
		want:  expect{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpListInvoices): 1, atlasReq(atlassim.OpGetInvoiceCSV): 0}},
	},
	{
		name: "unexpected media type: text/html (invoice CSV)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.WrongMediaType}),
		want:  expect{err: export.AtlasError, exact: map[string]int{atlasReq(atlassim.OpGetInvoiceCSV): 1}},
	},

	// ---- Atlas: FOCUS reports ----
	{
		// The report (of the closed invoice; the pending one has none) goes
		// PENDING, RUNNING, then FAILED: a warning, the month's usage and
		// invoices stored, no FOCUS files.
		name: "FOCUS report ends FAILED", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateInvoiceReport, Kind: atlassim.ReportFailed}),
		want: expect{warning: export.FocusUnavailable, exact: map[string]int{
			atlasReq(atlassim.OpCreateInvoiceReport): 1, atlasReq(atlassim.OpDownloadReport): 0}},
		check: checkNoFocus,
	},
	{
		// Atlas will not create the report of this invoice: a warning at
		// once, no poll.
		name: "FOCUS report refused (404)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpCreateInvoiceReport, Kind: atlassim.NotFound}),
		want: expect{warning: export.FocusUnavailable, exact: map[string]int{
			atlasReq(atlassim.OpCreateInvoiceReport): 1, atlasReq(atlassim.OpGetInvoiceReport): 0, atlasReq(atlassim.OpDownloadReport): 0}},
		check: checkNoFocus,
	},
	{
		// The poll asks for a new report and goes round until it is ready:
		// 3 more polls.
		name: "FOCUS download URL expired (403 from the download host)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.ExpiredURL}),
		want: expect{by: "PollFocus (report requested again)", moreCalls: map[string]int{statemachine.StatePollFocus: 3},
			extra: map[string]int{atlasReq(atlassim.OpCreateInvoiceReport): 1, atlasReq(atlassim.OpGetInvoiceReport): 3, atlasReq(atlassim.OpDownloadReport): 1}},
	},
	{
		name: "connection reset mid-body (FOCUS download)", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpDownloadReport, Kind: atlassim.Reset, After: 1000}),
		want: expect{by: "state machine Retry (Atlas.StreamBroken)", retried: 1, state: statemachine.StatePollFocus,
			extra: map[string]int{atlasReq(atlassim.OpGetInvoiceReport): 1, atlasReq(atlassim.OpDownloadReport): 1}},
	},
	{
		name: "429 with Retry-After 1 s on get invoice report", world: "atlas", input: "1org",
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceReport, Kind: atlassim.Status, Status: 429, RetryAfter: time.Second}),
		want:  expect{by: "Atlas client", extra: map[string]int{atlasReq(atlassim.OpGetInvoiceReport): 1}, minElapsed: time.Second},
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
		want: expect{err: export.SecretUnavailable, cause: "ResourceNotFoundException", exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		name: "secret not JSON", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Put(e2e.SecretName, "clientSecret="+leakable(fw, "not-json")) },
		clear: restoreSecret,
		want:  expect{err: export.SecretInvalid, cause: "secret is not a JSON object", exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		name: "secret missing a field (clientId only)", world: "atlas", input: "1org",
		setup: putSecret(`{"clientId":"` + saID + `"}`),
		clear: restoreSecret,
		want:  expect{err: export.SecretInvalid, cause: "only one of clientId and clientSecret", exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},
	{
		name: "secret missing a field (privateKey only)", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Put(e2e.SecretName, `{"privateKey":"`+leakable(fw, "lonely-key")+`"}`) },
		clear: restoreSecret,
		want:  expect{err: export.SecretInvalid, cause: "only one of publicKey and privateKey", exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
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
		want: expect{by: "secret re-read after a 401", extra: map[string]int{smGet: 1, atlasReq(atlassim.OpOAuthToken): 2}},
	},
	{
		name: "Secrets Manager 500 once", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Fail(1, "InternalServiceError", 500) },
		want:  expect{by: "AWS SDK", extra: map[string]int{smGet: 1}},
	},
	{
		name: "Secrets Manager access denied", world: "atlas", input: "1org",
		setup: func(fw *faultWorld) { fw.SM.Fail(1, "AccessDeniedException", 400) },
		want:  expect{err: export.SecretUnavailable, cause: "AccessDeniedException", exact: map[string]int{smGet: 1, atlasAll: 0, s3Total: 0}},
	},

	// ---- input: rejected before any network call ----
	{
		name: "org id with ../", world: "atlas", input: "1org",
		bad: func(fw *faultWorld) any {
			return map[string]any{"orgIds": []string{"../" + fw.Orgs[0]}, "period": june}
		},
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "org id too short", world: "atlas", input: "1org",
		bad: func(fw *faultWorld) any {
			return map[string]any{"orgIds": []string{fw.Orgs[0][:23]}, "period": june}
		},
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "token of the wrong length (poll called directly)", world: "atlas", input: "1org",
		direct: func(fw *faultWorld) (string, []byte) {
			return statemachine.StatePoll, pollEvent(fw, strings.Repeat("ab", 31)+"a")
		},
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "token with path characters (poll called directly)", world: "atlas", input: "1org",
		direct: func(fw *faultWorld) (string, []byte) {
			return statemachine.StatePoll, pollEvent(fw, "../../"+strings.Repeat("a", 58))
		},
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "dates not on a month start", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"startDate": "2024-06-15", "endDate": "2024-07-01"}),
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "end before start", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"startDate": "2024-06-01", "endDate": "2024-05-01"}),
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "unknown service", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"services": []string{"Clusters", "Quantum Annealing"}}),
		want: expect{err: export.InputInvalid, exact: noNetwork},
	},
	{
		name: "unknown groupBy", world: "atlas", input: "1org",
		bad:  badRequest(map[string]any{"services": []string{"Clusters"}, "groupBy": "regions"}),
		want: expect{err: export.InputInvalid, exact: noNetwork},
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
		want: expect{err: export.InputInvalid, exact: noNetwork},
		check: func(t *testing.T, fw *faultWorld, got outcome) {
			if !strings.Contains(got.res.Cause, "bytes") {
				t.Errorf("cause %q does not say the input is too large", got.res.Cause)
			}
		},
	},

	// ---- S3 (versitygw behind the fault proxy) ----
	{
		name: "500 on a part upload", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{"UploadPart#2"}, Action: s3Fail, Times: 1, Status: 500, Code: "InternalError"}),
		want:  expect{by: "AWS SDK", extra: map[string]int{s3Req("UploadPart#2"): 1}},
	},
	{
		// The SDK's 3 attempts all meet 503: Storage.Error, and the state
		// machine runs the step again.
		name: "503 SlowDown on a part upload, 3 times", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PartOne}, Action: s3Fail, Times: 3, Status: 503, Code: "SlowDown", SameUpload: true}),
		want:  expect{by: "state machine Retry (Storage.Error)", retried: 1, state: statemachine.StateFetchInvoices},
	},
	{
		name: "500 on a single-part upload (usage CSV)", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PutObject}, Action: s3Fail, Times: 1, Status: 500, Code: "InternalError"}),
		want:  expect{by: "AWS SDK", extra: map[string]int{s3Req(s3PutObject): 1}},
	},
	{
		name: "connection cut mid part upload", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PartOne}, Action: s3Cut, Times: 1}),
		want:  expect{by: "AWS SDK", extra: map[string]int{s3Req(s3PartOne): 1}},
	},
	{
		// Every request is cut from the first part on, until the sink's
		// abort (the server is back for the cleanup).
		name: "server stopped mid-upload", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3PartOne}, Action: s3DownToAbort, Times: 1}),
		want:  expect{by: "state machine Retry (Storage.Error)", retried: 1, state: statemachine.StateFetchInvoices},
		check: func(t *testing.T, fw *faultWorld, got outcome) {
			if got.counts[s3Req(s3AbortUpload)] < 1 {
				t.Errorf("the failed upload was not aborted")
			}
		},
	},
	{
		name: "access denied on every write", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: s3Writes, Action: s3Fail, Times: -1, Status: 403, Code: "AccessDenied"}),
		// The usage CSV is refused (a single PutObject, once per attempt);
		// its normalized form, never committed, sends nothing.
		want: expect{err: export.StorageError, retried: 4, exact: map[string]int{s3Req(s3PutObject): 5, s3Req(s3CopyObject): 0, atlasReq(atlassim.OpListInvoices): 0}},
	},
	{
		// The invoice's parts went straight to its key, but it is refused
		// at the commit (once per attempt): its upload is aborted, and its
		// normalized form is never committed.
		name: "access denied on completing an upload (CompleteMultipartUpload)", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{s3CompleteUpload}, Action: s3Fail, Times: -1, Status: 403, Code: "AccessDenied"}),
		want: expect{err: export.StorageError, retried: 4, exact: map[string]int{
			s3Req(s3CompleteUpload): 5, s3Req(s3AbortUpload): 5, s3Req(s3CopyObject): 0, atlasReq(atlassim.OpGetInvoiceCSV): 5}},
	},
	{
		// Every attempt breaks off mid-body, after parts of the invoice went
		// to its key: both objects of the pair keep their previous versions,
		// and no upload stays open.
		name: "connection reset mid-body (invoice CSV), every attempt, over a previous export", world: "s3", input: "1org",
		previous: func(t *testing.T, fw *faultWorld) map[string][]byte {
			org := fw.Orgs[0]
			inv := fw.Invoice(t, org, june)
			p, _ := billingperiod.Parse(june, time.Time{})
			lineItems, _ := fw.Layout.NormalizedInvoice(org, p, inv.ID)
			return map[string][]byte{
				fw.InvoiceKey(t, org, june, inv.ID): []byte("the previous export of this invoice\n"),
				lineItems:                           []byte("its previous line items\n"),
			}
		},
		setup: injectAtlas(atlassim.Fault{Op: atlassim.OpGetInvoiceCSV, Kind: atlassim.Reset, After: 11 << 20, Times: 5}),
		want: expect{err: export.AtlasStreamBroken, retried: 4, exact: map[string]int{
			atlasReq(atlassim.OpGetInvoiceCSV): 5, s3Req(s3CompleteUpload): 0, s3Req(s3CopyObject): 0}},
		check: func(t *testing.T, fw *faultWorld, got outcome) {
			// Parts were sent before each break: each upload was aborted.
			if got.counts[s3Req(s3UploadPart)] == 0 || got.counts[s3Req(s3AbortUpload)] != got.counts[s3Req(s3CreateUpload)] {
				t.Errorf("%d parts sent, %d uploads started, %d aborted: want parts, and every upload aborted",
					got.counts[s3Req(s3UploadPart)], got.counts[s3Req(s3CreateUpload)], got.counts[s3Req(s3AbortUpload)])
			}
		},
	},
	{
		// The plan cannot be written: no job starts.
		name: "access denied writing the plan", world: "s3", input: "1org",
		setup: injectS3(s3Rule{Ops: []string{runsOp(s3PutObject)}, Action: s3Fail, Times: -1, Status: 403, Code: "AccessDenied"}),
		want:  expect{err: export.StorageError, retried: 4, cause: "plan.json", exact: map[string]int{s3Req(runsOp(s3PutObject)): 5, atlasAll: 0, s3Total: 0}},
	},
	{
		// Every job ran and stored its files; the run's outcomes cannot be
		// written, so the execution fails, naming it. The re-run writes it.
		name: "access denied writing the run's outcomes", world: "s3", input: "1org",
		after: map[string]func(*faultWorld){statemachine.StateFetchInvoices: injectS3(s3Rule{Ops: []string{runsOp(s3PutObject)}, Action: s3Fail, Times: -1, Status: 403, Code: "AccessDenied"})},
		want:  expect{err: export.StorageError, retried: 4, cause: "outcomes.jsonl", exact: map[string]int{s3Req(runsOp(s3PutObject)): 1 + 5}},
	},
}
