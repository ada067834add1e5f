//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// A month of monthOrgs orgs, as the monthly schedule exports it: one
// execution whose Distributed Map runs one child per org, each with one
// job. What one job costs comes from the cost rows (the job workflow run
// with the real handlers); what the run adds is measured here at full
// size: the real plan of monthOrgs orgs and the real summary read back from
// ResultWriter files of monthOrgs children.
const monthOrgs = 1000

// Transitions Step Functions bills beyond the job workflow's own states:
// per job, the start of its execution (a Distributed Map child); per org,
// the start of its child and its two states (ExportMonths, OrgDone); per
// run, Plan, ExportOrgs, Summarize, AnyJobFailed and Done.
const (
	transitionsPerJob = 1
	transitionsPerOrg = 1 + 2
	transitionsPerRun = 5
)

// S3 requests Step Functions makes itself: the ItemReader's GET of the
// plan, and each Map Run's ResultWriter: its result file and its manifest.
func stepFunctionsS3(orgs int) (writes, reads int) { return 2 * (orgs + 1), 1 }

type monthRow struct {
	Orgs                               int
	Transitions, Requests              int
	PlanMs, SummarizeMs                int64
	S3Writes, S3Reads                  int
	TransitionCost, LambdaCost, S3Cost *big.Rat
	Total                              *big.Rat
}

// benchMonth prices a month of monthOrgs orgs from job, the cost of one of
// its org-months (the cost row of a 120 s query).
func (p *pollEnv) month(t *testing.T, job costRow, run pollRow, outcome json.RawMessage) monthRow {
	t.Helper()
	p.w.clear(t, "atlas-billing/")
	lay, err := layout.New("atlas-billing")
	if err != nil {
		t.Fatal(err)
	}
	s3c := &s3Counter{hc: p.w.s3.HTTPClient()}
	counted := testenv.NewS3Client(p.w.s3.Endpoint, p.w.s3.AccessKey, p.w.s3.SecretKey, func(o *s3.Options) { o.HTTPClient = s3c })
	exp := &export.Exporter{
		Store:  sink.NewS3(counted, p.w.bucket, sink.S3Options{Logger: discard}),
		Layout: lay, Normalizer: normalize.Parquet{}, MaxAttempts: 40, Focus: true, Log: discard, Now: fixedNow,
	}
	orgs := make([]string, monthOrgs)
	for i := range orgs {
		orgs[i] = fmt.Sprintf("%024x", 0x6a0000+i)
	}
	start := time.Now()
	plan, err := exp.WritePlan(t.Context(), export.Request{OrgIDs: orgs, Period: "2024-06"}, "bench-month")
	planDur := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// Each child's result, as the ResultWriters write them (not counted:
	// Step Functions' requests are added by stepFunctionsS3).
	rw := sfntest.ResultWriter{Bucket: p.w.bucket, StateMachine: "bench-export", Put: func(key string, body []byte) error {
		_, err := p.w.s3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.w.bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}}
	var items []export.PlanItem
	if err := json.Unmarshal(p.w.s3.Get(t, p.w.bucket, plan.Plan), &items); err != nil {
		t.Fatal(err)
	}
	var o export.Outcome
	if err := json.Unmarshal(outcome, &o); err != nil {
		t.Fatal(err)
	}
	children := make([]sfntest.Child, len(items))
	for i, it := range items {
		o.OrgID = it.OrgID
		in, _ := json.Marshal(it.Jobs[0])
		out, _ := json.Marshal(o)
		mr, err := rw.Write(it.Results.Prefix, "ExportMonths", []sfntest.Child{{Input: in, Output: out}})
		if err != nil {
			t.Fatal(err)
		}
		itemJSON, _ := json.Marshal(it)
		orgOut, _ := json.Marshal(map[string]any{"orgId": it.OrgID, "months": mr})
		children[i] = sfntest.Child{Input: itemJSON, Output: orgOut}
	}
	mr, err := rw.Write(plan.Results.Prefix, "ExportOrgs", children)
	if err != nil {
		t.Fatal(err)
	}
	plan.MapRun, _ = json.Marshal(mr)
	start = time.Now()
	sum, err := exp.Summarize(t.Context(), plan)
	sumDur := time.Since(start)
	if err != nil || sum.Jobs != monthOrgs || sum.Failed != 0 {
		t.Fatalf("summary: %+v, %v", sum, err)
	}

	m := monthRow{Orgs: monthOrgs, PlanMs: planDur.Milliseconds() + 1, SummarizeMs: sumDur.Milliseconds() + 1}
	sfWrites, sfReads := stepFunctionsS3(monthOrgs)
	w, r, _ := s3c.counts()
	m.S3Writes = monthOrgs*run.S3Writes + w + sfWrites
	m.S3Reads = monthOrgs*run.S3Reads + r + sfReads
	m.Transitions = monthOrgs*job.Transitions + transitionsPerRun
	m.Requests = monthOrgs*job.Requests + 2
	runGBms := new(big.Rat).Mul(big.NewRat(int64(p.w.memMB["fetch-invoice"]), 1024), big.NewRat(m.PlanMs+m.SummarizeMs, 1))
	m.TransitionCost = mulInt(rat(priceTransition), m.Transitions)
	m.LambdaCost = new(big.Rat).Add(mulInt(new(big.Rat).Add(job.RequestCost, job.ComputeCost), monthOrgs),
		new(big.Rat).Add(mulInt(rat(priceRequest), 2), new(big.Rat).Mul(rat(priceGBSecond), new(big.Rat).Quo(runGBms, big.NewRat(1000, 1)))))
	m.S3Cost = new(big.Rat).Add(mulInt(rat(priceS3Write), m.S3Writes), mulInt(rat(priceS3Read), m.S3Reads))
	m.Total = new(big.Rat).Add(m.TransitionCost, new(big.Rat).Add(m.LambdaCost, m.S3Cost))
	return m
}
