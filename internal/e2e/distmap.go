package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// aws-local-stepfunctions runs a Distributed Map as an inline Map and
// reads no ItemReader nor writes a ResultWriter; it cannot start child
// executions. RunWith therefore plays the execution's ExportOrgs Map here,
// as Step Functions does it: it reads the plan the Plan step wrote to S3,
// runs each item in the org's child workflow (statemachine.Org) in its own
// aws-local-stepfunctions execution, and writes both levels' results as
// ResultWriter files (sfntest.ResultWriter), the org's months' Map Run
// included. Every other state, the parent's Plan, Summarize and failure
// states among them, runs in aws-local-stepfunctions from the deployed
// definition. Inside an org's child, its months' Distributed Map runs
// inline, one month at a time as its MaxConcurrency says.

var runs atomic.Int64

// RunWith executes the deployed workflow once with input, routes answering
// its Task states (at every level), and returns how the execution ended,
// with the events and calls of every child execution added in.
func (w *World) RunWith(t testing.TB, input any, routes sfntest.Routes) sfntest.Result {
	t.Helper()
	def := Definition(t)
	parent, concurrency, err := playedMap(def)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	org, err := statemachine.Org(def)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	opt := sfntest.Options{ExecutionName: fmt.Sprintf("e2e-%d-%d", os.Getpid(), runs.Add(1))}
	opt.Node, opt.NodeModules = sfntest.Tools(t)
	m := &mapPlayer{w: w, org: org, routes: routes, opt: opt, concurrency: concurrency}
	all := maps.Clone(routes)
	all[statemachine.StateExportOrgs] = m.play
	res := sfntest.Run(t, parent, input, all.Handle, opt)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		t.Fatalf("e2e: playing the Distributed Map: %v", m.err)
	}
	delete(res.Calls, statemachine.StateExportOrgs)
	res.Add(m.children)
	return res
}

// playedMap is the definition with its ExportOrgs Map turned into a Task
// whose Parameters are the Map's ItemReader and ResultWriter Parameters
// (so the interpreter evaluates their paths), and the Map's MaxConcurrency.
func playedMap(def []byte) ([]byte, int, error) {
	var d map[string]any
	if err := json.Unmarshal(def, &d); err != nil {
		return nil, 0, err
	}
	states, _ := d["States"].(map[string]any)
	m, _ := states[statemachine.StateExportOrgs].(map[string]any)
	reader, _ := m["ItemReader"].(map[string]any)
	writer, _ := m["ResultWriter"].(map[string]any)
	mc, _ := m["MaxConcurrency"].(float64)
	if reader == nil || writer == nil || mc < 1 {
		return nil, 0, fmt.Errorf("%s is not a Distributed Map with an ItemReader, a ResultWriter and a MaxConcurrency", statemachine.StateExportOrgs)
	}
	task := map[string]any{
		"Type":       "Task",
		"Resource":   "arn:aws:lambda:us-east-1:123456789012:function:e2e-distributed-map",
		"Parameters": map[string]any{"reader": reader["Parameters"], "writer": writer["Parameters"]},
	}
	for _, k := range []string{"ResultPath", "Catch", "Next", "End"} {
		if v, ok := m[k]; ok {
			task[k] = v
		}
	}
	states[statemachine.StateExportOrgs] = task
	out, err := json.Marshal(d)
	return out, int(mc), err
}

type mapPlayer struct {
	w           *World
	org         []byte
	routes      sfntest.Routes
	opt         sfntest.Options
	concurrency int

	mu       sync.Mutex
	children sfntest.Result
	err      error // the harness's, not a workflow's
}

type s3Location struct {
	Bucket string `json:"Bucket"`
	Key    string `json:"Key"`
	Prefix string `json:"Prefix"`
}

// play is the ExportOrgs Map: one org child per plan item.
func (m *mapPlayer) play(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	out, err := m.run(ctx, in)
	if err != nil {
		m.mu.Lock()
		m.err = errors.Join(m.err, err)
		m.mu.Unlock()
		return nil, &sfntest.Error{Name: "Harness.Map", Cause: err.Error()}
	}
	return out, nil
}

func (m *mapPlayer) run(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
	var p struct{ Reader, Writer s3Location }
	if err := json.Unmarshal(in, &p); err != nil {
		return nil, err
	}
	plan, err := m.get(ctx, p.Reader.Bucket, p.Reader.Key)
	if err != nil {
		return nil, fmt.Errorf("ItemReader: %w", err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(plan, &items); err != nil {
		return nil, fmt.Errorf("ItemReader: the plan is not a JSON array: %w", err)
	}
	children := make([]sfntest.Child, len(items))
	errs := make([]error, len(items))
	sem := make(chan struct{}, m.concurrency)
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			children[i], errs[i] = m.orgChild(ctx, i, item)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	run, err := m.writer(p.Writer.Bucket).Write(p.Writer.Prefix, statemachine.StateExportOrgs, children)
	if err != nil {
		return nil, fmt.Errorf("ResultWriter: %w", err)
	}
	return json.Marshal(run)
}

// orgChild runs one org's child execution; its months' Map runs inline in
// it, and its results are then written as that Map's ResultWriter would.
func (m *mapPlayer) orgChild(ctx context.Context, i int, item json.RawMessage) (sfntest.Child, error) {
	dir, err := os.MkdirTemp("", "e2e-org-")
	if err != nil {
		return sfntest.Child{}, err
	}
	defer os.RemoveAll(dir)
	opt := m.opt
	opt.ExecutionName = fmt.Sprintf("%s-org-%d", m.opt.ExecutionName, i)
	res, err := sfntest.Exec(ctx, dir, m.org, item, m.routes.Handle, opt)
	if err != nil {
		return sfntest.Child{}, err
	}
	m.mu.Lock()
	m.children.Add(res)
	m.mu.Unlock()
	if !res.Succeeded() {
		return sfntest.Child{Input: item, Error: res.Error, Cause: res.Cause}, nil
	}
	var out struct {
		OrgID  string            `json:"orgId"`
		Months []json.RawMessage `json:"months"`
	}
	if err := json.Unmarshal(res.Output, &out); err != nil {
		return sfntest.Child{}, fmt.Errorf("org child output %.200s: %w", res.Output, err)
	}
	var in struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	if err := json.Unmarshal(item, &in); err != nil || len(in.Jobs) != len(out.Months) {
		return sfntest.Child{}, fmt.Errorf("org child: %d months for %d jobs (%v)", len(out.Months), len(in.Jobs), err)
	}
	months := make([]sfntest.Child, len(in.Jobs))
	for j := range in.Jobs {
		months[j] = sfntest.Child{Input: in.Jobs[j], Output: out.Months[j]}
	}
	where, err := m.monthsWriter(item)
	if err != nil {
		return sfntest.Child{}, err
	}
	run, err := m.writer(where.Bucket).Write(where.Prefix, statemachine.StateExportMonths, months)
	if err != nil {
		return sfntest.Child{}, fmt.Errorf("ResultWriter of %s: %w", statemachine.StateExportMonths, err)
	}
	output, err := json.Marshal(map[string]any{"orgId": out.OrgID, "months": run})
	return sfntest.Child{Input: item, Output: output}, err
}

// monthsWriter evaluates the ExportMonths ResultWriter's Parameters (plain
// "$.a.b" paths) against the org child's input.
func (m *mapPlayer) monthsWriter(input json.RawMessage) (s3Location, error) {
	var d struct {
		States map[string]struct {
			ResultWriter struct {
				Parameters map[string]string
			}
		}
	}
	if err := json.Unmarshal(m.org, &d); err != nil {
		return s3Location{}, err
	}
	var doc any
	if err := json.Unmarshal(input, &doc); err != nil {
		return s3Location{}, err
	}
	got := map[string]string{}
	for k, path := range d.States[statemachine.StateExportMonths].ResultWriter.Parameters {
		name, isPath := strings.CutSuffix(k, ".$")
		if !isPath {
			got[k] = path
			continue
		}
		v := doc
		for _, f := range strings.Split(strings.TrimPrefix(path, "$."), ".") {
			obj, _ := v.(map[string]any)
			v = obj[f]
		}
		s, ok := v.(string)
		if !ok {
			return s3Location{}, fmt.Errorf("ResultWriter parameter %s: %s is not a string in the org's input", k, path)
		}
		got[name] = s
	}
	return s3Location{Bucket: got["Bucket"], Prefix: got["Prefix"]}, nil
}

func (m *mapPlayer) writer(bucket string) sfntest.ResultWriter {
	return sfntest.ResultWriter{Bucket: bucket, StateMachine: "e2e-export", Put: func(key string, body []byte) error {
		_, err := m.w.S3.Client.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		})
		return err
	}}
}

func (m *mapPlayer) get(ctx context.Context, bucket, key string) ([]byte, error) {
	out, err := m.w.S3.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}
