package function_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// The plan writer and the summarizer against versitygw: Plan writes what a
// Distributed Map's ItemReader reads, Summarize reads what its ResultWriters
// write (sfntest.ResultWriter writes them as AWS documents them).

// planFor calls plan as the state machine does, for the execution name.
func planFor(t *testing.T, w *world, name string, req map[string]any) export.Run {
	t.Helper()
	return mustCall[export.Run](t, w.H.Handler("fetch-invoice"), map[string]any{"action": "plan", "request": req, "execution": name})
}

func (w *world) items(t *testing.T, run export.Run) []export.PlanItem {
	t.Helper()
	var items []export.PlanItem
	if err := json.Unmarshal(w.S3.Get(t, w.Bucket, run.Plan), &items); err != nil {
		t.Fatalf("the plan is not a JSON array of items: %v", err)
	}
	return items
}

func (w *world) resultWriter(perFile int) sfntest.ResultWriter {
	return sfntest.ResultWriter{Bucket: w.Bucket, StateMachine: "test-export", PerFile: perFile, Put: func(key string, body []byte) error {
		_, err := w.S3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		return err
	}}
}

// outcome is a job's result as its workflow returns it: ok writes one
// object, else the job failed with errName.
func outcome(t *testing.T, j export.Job, errName string) json.RawMessage {
	t.Helper()
	o := export.Outcome{OrgID: j.OrgID, Period: j.Period, Objects: []sink.Object{}}
	if errName == "" {
		o.Objects = append(o.Objects, sink.Object{Bucket: "b", Key: "k/" + j.OrgID + "/" + j.Period.Label(), Bytes: 10, Skipped: j.Period.Label() == "2024-01"})
		o.Warnings = []export.Warning{{Name: "Normalize.Layout", Message: "no header", OrgID: j.OrgID, Period: j.Period.Label()}}
	} else {
		o.Error, o.Cause = errName, fmt.Sprintf("org %s, %s: it broke", j.OrgID, j.Period)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// orgRun writes an org's months' results and returns the org child's record.
func (w *world) orgRun(t *testing.T, rw sfntest.ResultWriter, item export.PlanItem, months []sfntest.Child) sfntest.Child {
	t.Helper()
	mr, err := rw.Write(item.Results.Prefix, "ExportMonths", months)
	if err != nil {
		t.Fatal(err)
	}
	return sfntest.Child{Input: mustJSON(t, item), Output: mustJSON(t, map[string]any{"orgId": item.OrgID, "months": mr})}
}

func summarize(t *testing.T, w *world, run export.Run, mr sfntest.MapRun) (export.Summary, error) {
	t.Helper()
	run.MapRun = mustJSON(t, mr)
	raw, err := call(t, w.H.Handler("fetch-invoice"), map[string]any{"action": "summarize", "run": run})
	if err != nil {
		return export.Summary{}, err
	}
	var sum export.Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		t.Fatal(err)
	}
	return sum, nil
}

// summarizeRun writes the execution's Map Run (the orgs' children) and
// summarizes the run.
func summarizeRun(t *testing.T, w *world, rw sfntest.ResultWriter, run export.Run, orgs []sfntest.Child) export.Summary {
	t.Helper()
	mr, err := rw.Write(run.Results.Prefix, "ExportOrgs", orgs)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := summarize(t, w, run, mr)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestPlanWrittenForTheMap(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	// 2 orgs x 61 months: more than the 120 jobs an execution once took.
	run := planFor(t, w, "abx-backfill-1", map[string]any{"orgIds": w.Orgs, "startDate": "2019-06-01", "endDate": "2024-07-01"})
	keys, _ := w.Layout.Run("abx-backfill-1")
	if run.Execution != "abx-backfill-1" || run.Bucket != w.Bucket || run.Plan != keys.Plan || run.Results != (export.Location{Bucket: w.Bucket, Prefix: keys.Results}) ||
		run.Orgs != 2 || run.Months != 61 || run.Jobs != 122 {
		t.Fatalf("run = %+v", run)
	}
	if b := mustJSON(t, run); len(b) > 1024 {
		t.Errorf("the plan's answer is %d bytes: it must not grow with the jobs", len(b))
	}
	items := w.items(t, run)
	if len(items) != 2 {
		t.Fatalf("%d items, want one per org", len(items))
	}
	for i, it := range items {
		if it.OrgID != w.Orgs[i] || len(it.Jobs) != 61 || it.Results != run.Results {
			t.Errorf("item %d: org %s, %d jobs, results %+v", i, it.OrgID, len(it.Jobs), it.Results)
		}
		for m, j := range it.Jobs {
			if j.OrgID != it.OrgID || (m > 0 && !j.Period.Start.After(it.Jobs[m-1].Period.Start)) || !j.Focus || j.MaxAttempts != 40 {
				t.Errorf("item %d job %d: %+v (months in order, the org's own)", i, m, j)
			}
		}
	}
	for _, op := range []string{atlassim.OpCreateUsage, atlassim.OpListInvoices, atlassim.OpOAuthToken} {
		if n := w.Sim.Requests(op); n != 0 {
			t.Errorf("planning made %d %s requests", n, op)
		}
	}

	for name, tc := range map[string]struct {
		event   map[string]any
		errName string
	}{
		"execution name that is no folder":   {map[string]any{"action": "plan", "request": map[string]any{}, "execution": "../other"}, export.InputInvalid},
		"more orgs than one execution takes": {map[string]any{"action": "plan", "request": map[string]any{"orgIds": manyOrgs(export.MaxOrgs + 1)}, "execution": "x"}, export.InputInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := call(t, w.H.Handler("fetch-invoice"), tc.event)
			if errorType(err) != tc.errName {
				t.Errorf("err = %v, want %s", err, tc.errName)
			}
		})
	}
	if got := w.KeysUnder(t, "_runs/"); len(got) != 1 {
		t.Errorf("runs' files: %v, want the one plan", got)
	}
}

func manyOrgs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%024x", i+1)
	}
	return out
}

func TestSummarize(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	orgs := append(append([]string{}, w.Orgs...), manyOrgs(3)...) // the simulator's 2 and 3 more
	run := planFor(t, w, "abx-sum-1", map[string]any{"orgIds": orgs, "startDate": "2024-01-01", "endDate": "2024-04-01"})
	items := w.items(t, run)
	rw := w.resultWriter(1) // a result file per record: SUCCEEDED_0, _1, ...
	var parent []sfntest.Child
	// Org 0: every month ok, one of them twice (a redriven child).
	var months []sfntest.Child
	for _, j := range items[0].Jobs {
		months = append(months, sfntest.Child{Input: mustJSON(t, j), Output: outcome(t, j, "")})
	}
	months = append(months, months[1])
	parent = append(parent, w.orgRun(t, rw, items[0], months))
	// Org 1: February caught an error; March's execution itself failed.
	jobs := items[1].Jobs
	parent = append(parent, w.orgRun(t, rw, items[1], []sfntest.Child{
		{Input: mustJSON(t, jobs[0]), Output: outcome(t, jobs[0], "")},
		{Input: mustJSON(t, jobs[1]), Output: outcome(t, jobs[1], export.AtlasNotFound)},
		{Input: mustJSON(t, jobs[2]), Error: "States.DataLimitExceeded", Cause: "the state's output is too large"},
	}))
	// Org 2: its own execution failed. Org 3: never started. Org 4: a
	// month is missing from its results.
	parent = append(parent, sfntest.Child{Input: mustJSON(t, items[2]), Error: "States.Timeout", Cause: "the org's execution timed out"})
	parent = append(parent, sfntest.Child{Input: mustJSON(t, items[3]), Pending: true})
	parent = append(parent, w.orgRun(t, rw, items[4], []sfntest.Child{
		{Input: mustJSON(t, items[4].Jobs[0]), Output: outcome(t, items[4].Jobs[0], "")},
		{Input: mustJSON(t, items[4].Jobs[2]), Output: outcome(t, items[4].Jobs[2], "")},
	}))
	sum := summarizeRun(t, w, rw, run, parent)

	// 15 jobs: org 0's 3, org 1's January and org 4's 2 succeeded.
	if sum.Orgs != 5 || sum.Months != 3 || sum.Jobs != 15 || sum.Succeeded != 6 || sum.Failed != 9 || sum.Objects != 6 || sum.Unchanged != 3 || sum.Bytes != 60 {
		t.Errorf("summary counts: %+v", sum)
	}
	want := []string{
		orgs[1] + " 2024-02 Atlas.NotFound", orgs[1] + " 2024-03 States.DataLimitExceeded",
		orgs[2] + " 2024-01 States.Timeout", orgs[2] + " 2024-02 States.Timeout", orgs[2] + " 2024-03 States.Timeout",
		orgs[3] + " 2024-01 " + export.NoResult, orgs[3] + " 2024-02 " + export.NoResult, orgs[3] + " 2024-03 " + export.NoResult,
		orgs[4] + " 2024-02 " + export.NoResult,
	}
	var got []string
	for _, f := range sum.Failures {
		got = append(got, f.OrgID+" "+f.Month+" "+f.Error)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failures, in plan order:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sum.Error != export.AtlasNotFound || !strings.HasPrefix(sum.Cause, "9 of 15 jobs failed; org "+orgs[1]+", 2024-02: Atlas.NotFound: it broke;") ||
		!strings.HasSuffix(sum.Cause, "; every job's outcome: s3://"+w.Bucket+"/"+sum.Outcomes) {
		t.Errorf("error %q, cause %q", sum.Error, sum.Cause)
	}
	if sum.Warnings["Normalize.Layout"] != 6 || len(sum.WarningList) != 6 {
		t.Errorf("warnings %v, listed %d", sum.Warnings, len(sum.WarningList))
	}

	// The outcomes have every planned job once; the summary is stored too.
	lines := bytes.Split(bytes.TrimSpace(w.S3.Get(t, w.Bucket, sum.Outcomes)), []byte("\n"))
	if len(lines) != 15 {
		t.Errorf("outcomes have %d lines, want 15", len(lines))
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var o export.Outcome
		if err := json.Unmarshal(l, &o); err != nil {
			t.Fatal(err)
		}
		k := o.OrgID + o.Period.Label()
		if seen[k] {
			t.Errorf("outcomes list %s twice", k)
		}
		seen[k] = true
	}
	var stored export.Summary
	if err := json.Unmarshal(w.S3.Get(t, w.Bucket, sum.SummaryKey), &stored); err != nil || stored.Cause != sum.Cause {
		t.Errorf("summary.json: %v, %+v", err, stored)
	}
}

// Many failures: the summary stays small, and lists the first ones.
func TestSummarizeBounded(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	run := planFor(t, w, "abx-sum-2", map[string]any{"orgIds": manyOrgs(40), "startDate": "2023-07-01", "endDate": "2024-07-01"})
	rw := w.resultWriter(0)
	var parent []sfntest.Child
	for _, it := range w.items(t, run) {
		var months []sfntest.Child
		for _, j := range it.Jobs {
			months = append(months, sfntest.Child{Input: mustJSON(t, j), Output: outcome(t, j, export.AtlasForbidden)})
		}
		parent = append(parent, w.orgRun(t, rw, it, months))
	}
	sum := summarizeRun(t, w, rw, run, parent)
	if sum.Jobs != 480 || sum.Failed != 480 || len(sum.Failures) != export.Listed || sum.Failures[0].OrgID != manyOrgs(1)[0] || sum.Failures[0].Month != "2023-07" {
		t.Errorf("summary: %d jobs, %d failed, %d listed, first %+v", sum.Jobs, sum.Failed, len(sum.Failures), sum.Failures[0])
	}
	if b := mustJSON(t, sum); len(b) > 16<<10 || len(sum.Cause) > 4096 || !strings.Contains(sum.Cause, "and 470 more") {
		t.Errorf("summary is %d bytes, cause %d: %s", len(b), len(sum.Cause), sum.Cause)
	}
}

// The event names what Summarize reads: only the run's own folder of the
// configured bucket.
func TestSummarizeReadsOnlyItsRun(t *testing.T) {
	w := newWorld(t, atlassim.Config{}, "")
	run := planFor(t, w, "abx-sum-3", map[string]any{"orgIds": w.Orgs[:1], "period": "2024-06"})
	rw := w.resultWriter(0)
	items := w.items(t, run)
	good, err := rw.Write(run.Results.Prefix, "ExportOrgs", []sfntest.Child{w.orgRun(t, rw, items[0], nil)})
	if err != nil {
		t.Fatal(err)
	}
	// A manifest elsewhere that lists a file of this run.
	outside, err := rw.Write(prefix+"/other", "ExportOrgs", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*export.Run, *sfntest.MapRun){
		"manifest outside the run": func(_ *export.Run, m *sfntest.MapRun) { *m = outside },
		"another bucket":           func(_ *export.Run, m *sfntest.MapRun) { m.ResultWriterDetails.Bucket = "other" },
		"another run's plan":       func(r *export.Run, _ *sfntest.MapRun) { r.Plan = prefix + "/_runs/x/plan.json" },
		"results outside the run":  func(r *export.Run, _ *sfntest.MapRun) { r.Results.Prefix = prefix + "/usage" },
		"traversal": func(_ *export.Run, m *sfntest.MapRun) {
			m.ResultWriterDetails.Key = run.Results.Prefix + "/../../x/manifest.json"
		},
		"execution name": func(r *export.Run, _ *sfntest.MapRun) { r.Execution = "a/b" },
	} {
		t.Run(name, func(t *testing.T) {
			r, m := run, good
			edit(&r, &m)
			if _, err := summarize(t, w, r, m); errorType(err) != export.InputInvalid {
				t.Errorf("err = %v, want %s", err, export.InputInvalid)
			}
		})
	}
	if sum, err := summarize(t, w, run, good); err != nil || sum.Jobs != 1 || sum.Failed != 1 || sum.Failures[0].Error != export.NoResult {
		t.Errorf("the run itself: %+v, %v", sum, err)
	}
}
