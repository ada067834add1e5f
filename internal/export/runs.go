package export

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// A state machine execution plans into S3 and summarizes from S3, so that
// no state carries a list that grows with orgs x months: WritePlan writes
// one item per org for the Distributed Map to read, the Map's ResultWriters
// write each child's result, and Summarize reads them back into a Summary.

// PlanItem is one org's part of a plan: what the Distributed Map hands one
// child execution. Its jobs run in order; Results is where the child's own
// Distributed Map (one grandchild per month) writes their results.
type PlanItem struct {
	OrgID   string   `json:"orgId"`
	Jobs    []Job    `json:"jobs"`
	Results Location `json:"results"`
}

// Location is a folder of a bucket, as a ResultWriter's Parameters take it.
type Location struct {
	Bucket string `json:"bucket"`
	Prefix string `json:"prefix"`
}

// Run is one execution's plan as the state machine carries it: small,
// whatever the number of jobs.
type Run struct {
	Execution string   `json:"execution"`
	Bucket    string   `json:"bucket"`
	Plan      string   `json:"plan"` // key of the plan: a JSON array of PlanItem
	Results   Location `json:"results"`
	Orgs      int      `json:"orgs"`
	Months    int      `json:"months"`
	Jobs      int      `json:"jobs"`
	// MapRun is the Distributed Map's output, as Step Functions writes it:
	// {"MapRunArn": ..., "ResultWriterDetails": {"Bucket": ..., "Key": ...}}.
	MapRun json.RawMessage `json:"mapRun,omitempty"`
}

// NoResult names a planned job that has no result: its execution did not
// finish (the Map Run, or the org's child execution, failed or was stopped).
const NoResult = "Export.NoResult"

// Items groups the plan's jobs by org, in plan order (Plan lists them org by
// org), each org's months in order.
func (p Plan) Items() [][]Job {
	var out [][]Job
	for i, j := range p.Jobs {
		if i == 0 || j.OrgID != p.Jobs[i-1].OrgID {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], j)
	}
	return out
}

// WritePlan plans req for the execution called execution and writes the
// plan under the run's folder (layout.Run), one item per org.
func (e *Exporter) WritePlan(ctx context.Context, req Request, execution string) (Run, error) {
	keys, err := e.Layout.Run(execution)
	if err != nil {
		return Run{}, &Error{Name: InputInvalid, Msg: "the execution name cannot name the run's folder", Err: err}
	}
	plan, err := e.Plan(ctx, req)
	if err != nil {
		return Run{}, err
	}
	bucket := e.Store.Bucket()
	run := Run{
		Execution: execution, Bucket: bucket, Plan: keys.Plan,
		Results: Location{Bucket: bucket, Prefix: keys.Results},
		Jobs:    len(plan.Jobs),
	}
	items := plan.Items()
	run.Orgs = len(items)
	run.Months = len(plan.Jobs) / max(len(items), 1)
	err = e.put(ctx, keys.Plan, jsonType, func(w io.Writer) error {
		if _, err := io.WriteString(w, "["); err != nil {
			return err
		}
		enc := json.NewEncoder(w)
		for i, jobs := range items {
			if i > 0 {
				if _, err := io.WriteString(w, ","); err != nil {
					return err
				}
			}
			if err := enc.Encode(PlanItem{OrgID: jobs[0].OrgID, Jobs: jobs, Results: run.Results}); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, "]\n")
		return err
	})
	if err != nil {
		return Run{}, fmt.Errorf("execution %s: writing the plan: %w", execution, err)
	}
	e.runLog(execution, "plan").Info("plan written", "key", keys.Plan, "orgs", run.Orgs, "months", run.Months, "jobs", run.Jobs)
	return run, nil
}

// runLog is the logger of a run's step.
func (e *Exporter) runLog(execution, step string) *slog.Logger {
	return cmp.Or(e.Log, discard).With("execution", execution, "step", step)
}

// put stores what write writes under key, whole or not at all, as it goes:
// a large plan or list of outcomes is never held whole. An error of write
// keeps its name (reading the results, say); the store's is Storage.Error.
func (e *Exporter) put(ctx context.Context, key, contentType string, write func(io.Writer) error) error {
	u, err := e.Store.Create(ctx, key, sink.Options{ContentType: contentType})
	if err != nil {
		return storageError("writing "+key, err)
	}
	bw := bufio.NewWriterSize(storageWriter{u, key}, 64<<10)
	if err := write(bw); err != nil {
		u.Abort()
		return err
	}
	if err := bw.Flush(); err != nil {
		u.Abort()
		return err
	}
	if _, err := u.Commit(); err != nil {
		return storageError("writing "+key, err)
	}
	return nil
}

// storageWriter names the errors of an upload's writes Storage.Error.
type storageWriter struct {
	u   sink.Upload
	key string
}

func (w storageWriter) Write(p []byte) (int, error) {
	n, err := w.u.Write(p)
	if err != nil {
		err = storageError("writing "+w.key, err)
	}
	return n, err
}

// mapRun is the part of a Distributed Map's output Summarize reads.
type mapRun struct {
	ResultWriterDetails struct {
		Bucket string `json:"Bucket"`
		Key    string `json:"Key"`
	} `json:"ResultWriterDetails"`
}

// rwManifest is a ResultWriter's manifest.json.
type rwManifest struct {
	ResultFiles struct {
		Failed    []rwFile `json:"FAILED"`
		Pending   []rwFile `json:"PENDING"`
		Succeeded []rwFile `json:"SUCCEEDED"`
	} `json:"ResultFiles"`
}

type rwFile struct {
	Key string `json:"Key"`
}

// rwRecord is one child execution in a ResultWriter's result file. Input and
// Output are JSON documents as strings.
type rwRecord struct {
	Input  json.RawMessage `json:"Input"`
	Output json.RawMessage `json:"Output"`
	Error  string          `json:"Error"`
	Cause  string          `json:"Cause"`
}

// orgOutput is what an org's child execution returns: the months' Map Run.
type orgOutput struct {
	OrgID  string          `json:"orgId"`
	Months json.RawMessage `json:"months"`
}

type jobKey struct{ org, month string }

// summarizer reads one run's results.
type summarizer struct {
	e        *Exporter
	run      Run
	keys     layout.Run
	rank     map[jobKey]int
	order    []jobKey
	seen     map[jobKey]bool
	orgErr   map[string]Outcome // an org whose child execution failed: its error
	tally    Tally
	outcomes *json.Encoder
}

// Summarize reads the plan and every child's result of run, writes the
// run's outcomes (every job's, one JSON line each) and summary, and
// returns the summary. A planned job without a result counts as failed
// (NoResult, or the error of its org's child execution).
func (e *Exporter) Summarize(ctx context.Context, run Run) (Summary, error) {
	s := &summarizer{e: e, run: run, rank: map[jobKey]int{}, seen: map[jobKey]bool{}, orgErr: map[string]Outcome{}}
	manifestKey, err := s.check()
	if err != nil {
		return Summary{}, err
	}
	if err := s.readPlan(ctx); err != nil {
		return Summary{}, err
	}
	err = e.put(ctx, s.keys.Outcomes, "application/x-ndjson", func(w io.Writer) error {
		s.outcomes = json.NewEncoder(w)
		if err := s.readMapRun(ctx, manifestKey, s.readOrgs); err != nil {
			return err
		}
		return s.missing()
	})
	if err != nil {
		return Summary{}, err
	}
	bucket := e.Store.Bucket()
	sum := s.tally.Summary("s3://" + bucket + "/" + s.keys.Outcomes)
	sum.Execution, sum.Orgs, sum.Months = run.Execution, run.Orgs, run.Months
	sum.Bucket, sum.Outcomes, sum.SummaryKey = bucket, s.keys.Outcomes, s.keys.Summary
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return Summary{}, err
	}
	err = e.put(ctx, s.keys.Summary, jsonType, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return Summary{}, err
	}
	e.runLog(run.Execution, "summarize").Info("run summarized", "jobs", sum.Jobs, "failed", sum.Failed, "objects", sum.Objects)
	return sum, nil
}

// check refuses a run whose keys are not this export's: the event names
// what to read, so it may only name the run's own folder of our bucket.
func (s *summarizer) check() (string, error) {
	keys, err := s.e.Layout.Run(s.run.Execution)
	if err != nil {
		return "", &Error{Name: InputInvalid, Msg: "the execution name cannot name the run's folder", Err: err}
	}
	s.keys = keys
	bucket := s.e.Store.Bucket()
	want := Location{Bucket: bucket, Prefix: keys.Results}
	if s.run.Bucket != bucket || s.run.Plan != keys.Plan || s.run.Results != want {
		return "", invalid("run %s: its bucket, plan or results are not the run's own (%s, %s)", s.run.Execution, truncate(s.run.Bucket, shown), truncate(s.run.Plan, shown))
	}
	var mr mapRun
	if err := json.Unmarshal(s.run.MapRun, &mr); err != nil {
		return "", invalid("run %s: mapRun is not a Distributed Map's output: %v", s.run.Execution, err)
	}
	return mr.ResultWriterDetails.Key, s.resultKey(mr.ResultWriterDetails.Bucket, mr.ResultWriterDetails.Key)
}

// resultKey refuses a ResultWriter key outside the run's results folder.
func (s *summarizer) resultKey(bucket, key string) error {
	if bucket != s.e.Store.Bucket() || !strings.HasPrefix(key, s.keys.Results+"/") || sink.ValidateKey(key) != nil {
		return invalid("run %s: result %s is not in the run's results folder", s.run.Execution, truncate(key, shown))
	}
	return nil
}

// readPlan learns the planned jobs and their order.
func (s *summarizer) readPlan(ctx context.Context) error {
	return s.eachRecord(ctx, s.keys.Plan, func(raw json.RawMessage) error {
		var item PlanItem
		if err := json.Unmarshal(raw, &item); err != nil {
			return fmt.Errorf("an item: %w", err)
		}
		for _, j := range item.Jobs {
			k := jobKey{j.OrgID, j.Period.Label()}
			if _, dup := s.rank[k]; !dup {
				s.rank[k] = len(s.order)
				s.order = append(s.order, k)
			}
		}
		return nil
	})
}

// readMapRun reads the records of a Map Run's result files: succeeded ones
// go to ok, failed ones become failed outcomes; pending ones never started.
func (s *summarizer) readMapRun(ctx context.Context, manifestKey string, ok func(context.Context, rwRecord) error) error {
	var m rwManifest
	if err := s.readJSON(ctx, manifestKey, &m); err != nil {
		return err
	}
	for _, f := range m.ResultFiles.Succeeded {
		if err := s.resultFile(ctx, f.Key, ok); err != nil {
			return err
		}
	}
	for _, f := range m.ResultFiles.Failed {
		if err := s.resultFile(ctx, f.Key, s.failedChild); err != nil {
			return err
		}
	}
	return nil
}

func (s *summarizer) resultFile(ctx context.Context, key string, each func(context.Context, rwRecord) error) error {
	if err := s.resultKey(s.e.Store.Bucket(), key); err != nil {
		return err
	}
	return s.eachRecord(ctx, key, func(raw json.RawMessage) error {
		var rec rwRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return fmt.Errorf("a record: %w", err)
		}
		return each(ctx, rec)
	})
}

// readOrgs reads the records of the orgs' child executions that succeeded:
// each names its own Map Run, one grandchild per month.
func (s *summarizer) readOrgs(ctx context.Context, rec rwRecord) error {
	var out orgOutput
	var mr mapRun
	if err := embedded(rec.Output, &out); err != nil || json.Unmarshal(out.Months, &mr) != nil {
		return fmt.Errorf("an org's output is not {orgId, months: a Map Run}: %.200s", rec.Output)
	}
	key := mr.ResultWriterDetails.Key
	if err := s.resultKey(mr.ResultWriterDetails.Bucket, key); err != nil {
		return err
	}
	return s.readMapRun(ctx, key, s.month)
}

// month counts one month's outcome, as its job workflow returned it.
func (s *summarizer) month(_ context.Context, rec rwRecord) error {
	var o Outcome
	if err := embedded(rec.Output, &o); err != nil {
		return fmt.Errorf("a job's output: %w", err)
	}
	return s.add(o)
}

// failedChild is a child execution that failed (an org's, or a month's,
// beyond the workflow's own Catch): its input names the org (and month).
func (s *summarizer) failedChild(_ context.Context, rec rwRecord) error {
	var in struct {
		OrgID  string         `json:"orgId"`
		Period *period.Period `json:"period"`
	}
	if err := embedded(rec.Input, &in); err != nil || atlas.ValidateOrgID(in.OrgID) != nil {
		return fmt.Errorf("a failed child's input names no org: %.200s", rec.Input)
	}
	o := Outcome{OrgID: in.OrgID, Objects: []sink.Object{}, Error: cmp.Or(rec.Error, "States.Failed"), Cause: rec.Cause}
	if in.Period == nil {
		s.orgErr[in.OrgID] = o // the org's child: its months get its error
		return nil
	}
	o.Period = *in.Period
	return s.add(o)
}

// add counts an outcome of a planned job once, and lists it.
func (s *summarizer) add(o Outcome) error {
	k := jobKey{o.OrgID, o.Period.Label()}
	rank, planned := s.rank[k]
	if !planned || s.seen[k] {
		return nil // not this run's, or a redriven child's second record
	}
	s.seen[k] = true
	s.tally.Add(rank, o)
	return s.outcomes.Encode(o)
}

// missing fails every planned job without a result, with its org's error.
func (s *summarizer) missing() error {
	for _, k := range s.order {
		if s.seen[k] {
			continue
		}
		o, ok := s.orgErr[k.org]
		if !ok {
			o = Outcome{OrgID: k.org, Objects: []sink.Object{}, Error: NoResult, Cause: "no result: the job's execution did not finish (see the Map Run)"}
		}
		p, err := period.Parse(k.month, time.Time{})
		if err != nil {
			return err
		}
		o.Period = p
		if err := s.add(o); err != nil {
			return err
		}
	}
	return nil
}

// readJSON decodes the object at key into v.
func (s *summarizer) readJSON(ctx context.Context, key string, v any) error {
	r, err := s.e.Store.Open(ctx, key)
	if err != nil {
		return storageError("reading "+key, err)
	}
	defer r.Close()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		return &Error{Name: StorageError, Msg: "reading " + key, Err: err}
	}
	return nil
}

// eachRecord streams the JSON array (or JSON lines) at key, one element at
// a time: a result file may hold thousands of records.
func (s *summarizer) eachRecord(ctx context.Context, key string, each func(json.RawMessage) error) error {
	r, err := s.e.Store.Open(ctx, key)
	if err != nil {
		return storageError("reading "+key, err)
	}
	defer r.Close()
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	array := false
	if t, err := dec.Token(); err == nil {
		if d, ok := t.(json.Delim); ok && d == '[' {
			array = true
		} else {
			return &Error{Name: StorageError, Msg: fmt.Sprintf("reading %s: not a JSON array", key)}
		}
	} else if !errors.Is(err, io.EOF) {
		return &Error{Name: StorageError, Msg: "reading " + key, Err: err}
	}
	for array && dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &Error{Name: StorageError, Msg: "reading " + key, Err: err}
		}
		if err := each(raw); err != nil {
			return &Error{Name: StorageError, Msg: "reading " + key, Err: err}
		}
	}
	return nil
}

// embedded decodes a document a ResultWriter record holds as a JSON string
// (or, tolerantly, as the document itself).
func embedded(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	return json.Unmarshal(raw, v)
}
