//go:build bench

package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// lambdaRun is what one process of a bootstrap did under the Runtime API.
type lambdaRun struct {
	Init        time.Duration // exec to its first /runtime/invocation/next
	Invocations []invocation
	Done        time.Duration // exec to the last invocation's answer
	PeakRSS     int64         // peak resident set in bytes (VmHWM, read before the process is killed)
	CPU         time.Duration // user + system time
	Output      string        // its stdout and stderr
}

// invocation is one event's outcome and how long the function took on it:
// from the event handed over to the answer received, what Lambda bills.
type invocation struct {
	Duration     time.Duration
	Payload      json.RawMessage
	ErrorType    string
	ErrorMessage string
}

// lambdaTimeout bounds one process's whole run (a 1 GiB stream included).
const lambdaTimeout = 10 * time.Minute

// runLambda starts bin under a Lambda Runtime API on 127.0.0.1, hands it the
// events one at a time, and kills it once it asks for the next event after
// the last one (with no events: at its first request, which is a cold start).
// env is added to a clean Lambda-like environment. Any failed invocation
// fails the benchmark: a figure of a broken run means nothing.
func runLambda(t testing.TB, bin string, env []string, events ...json.RawMessage) lambdaRun {
	t.Helper()
	api := &runtimeAPI{events: events, idle: make(chan struct{}), stop: make(chan struct{})}
	srv := httptest.NewServer(api.handler())
	defer srv.Close()
	defer close(api.stop) // runs first: releases the parked /next

	out := &testenv.Buffer{Max: 4 << 20}
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(append(lambdaEnv(t), env...), "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(srv.URL, "http://"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	var peak int64
	api.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timeout := time.NewTimer(lambdaTimeout)
	defer timeout.Stop()
	select {
	case <-api.idle:
		// Read while the process is alive: after exit only getrusage's
		// ru_maxrss is left, and on Linux that also counts the parent's
		// memory shared at fork (Go forks with CLONE_VM), so it lies.
		peak = vmHWM(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-exited
	case err := <-exited:
		t.Fatalf("%s exited early (%v); output:\n%s", bin, err, out.String())
	case <-timeout.C:
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("%s did not finish within %s; output:\n%s", bin, lambdaTimeout, out.String())
	}

	api.mu.Lock()
	defer api.mu.Unlock()
	if api.initErr != "" {
		t.Fatalf("%s reported an init error: %s; output:\n%s", bin, api.initErr, out.String())
	}
	run := lambdaRun{Init: api.first.Sub(api.start), Invocations: api.results, PeakRSS: peak, Output: out.String()}
	if len(events) > 0 {
		run.Done = api.last.Sub(api.start)
	}
	run.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	for i, inv := range run.Invocations {
		if inv.ErrorType != "" {
			t.Fatalf("%s: event %d failed: %s: %s; output:\n%s", filepath.Base(filepath.Dir(bin)), i, inv.ErrorType, inv.ErrorMessage, out.String())
		}
	}
	return run
}

// vmHWM is the peak resident set of a live process, from /proc/PID/status.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	return parseVmHWM(b)
}

// parseVmHWM reads the "VmHWM:  1234 kB" line of a /proc status file.
func parseVmHWM(status []byte) int64 {
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(rest))
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" {
				return n << 10
			}
		}
	}
	return 0
}

// lambdaEnv is a clean environment like Lambda's provided.al2023 runtime; the
// developer's own AWS settings are not inherited.
func lambdaEnv(t testing.TB) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=en_US.UTF-8",
		"TZ=UTC",
		"HOME=" + t.TempDir(),
		"_HANDLER=bootstrap",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_FUNCTION_NAME=abx-bench",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/abx-bench",
		"AWS_LAMBDA_LOG_STREAM_NAME=bench",
		"AWS_REGION=us-east-1",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
}

// runtimeAPI serves the Lambda Runtime API to one process and times it.
type runtimeAPI struct {
	events []json.RawMessage
	start  time.Time
	idle   chan struct{} // closed when the process asks for an event after the last
	stop   chan struct{}

	mu       sync.Mutex
	first    time.Time // first /next
	last     time.Time // last answer
	next     int
	sent     map[string]time.Time // request id -> when its event went out
	index    map[string]int
	results  []invocation
	initErr  string
	idleOnce sync.Once
}

const apiPrefix = "/2018-06-01/runtime/"

func (a *runtimeAPI) handler() http.Handler {
	a.sent, a.index = map[string]time.Time{}, map[string]int{}
	a.results = make([]invocation, len(a.events))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"invocation/next", a.serveNext)
	mux.HandleFunc("POST "+apiPrefix+"invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) { a.answer(w, r, false) })
	mux.HandleFunc("POST "+apiPrefix+"invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) { a.answer(w, r, true) })
	mux.HandleFunc("POST "+apiPrefix+"init/error", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		a.mu.Lock()
		a.initErr = string(body)
		a.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		a.idleOnce.Do(func() { close(a.idle) })
	})
	return mux
}

func (a *runtimeAPI) serveNext(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	a.mu.Lock()
	if a.first.IsZero() {
		a.first = now
	}
	if a.next >= len(a.events) {
		a.mu.Unlock()
		a.idleOnce.Do(func() { close(a.idle) })
		// Park like Lambda does until the process is frozen (here: killed).
		select {
		case <-a.stop:
		case <-r.Context().Done():
		}
		http.Error(w, "benchmark over", http.StatusServiceUnavailable)
		return
	}
	idx := a.next
	a.next++
	id := fmt.Sprintf("bench-%04d", idx)
	a.index[id] = idx
	payload := a.events[idx]
	a.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(lambdaTimeout).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:abx-bench")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	a.mu.Lock()
	a.sent[id] = time.Now()
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	w.Write(payload)
}

func (a *runtimeAPI) answer(w http.ResponseWriter, r *http.Request, failed bool) {
	now := time.Now()
	id := r.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(r.Body, 6<<20))
	a.mu.Lock()
	defer a.mu.Unlock()
	idx, ok := a.index[id]
	if !ok {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	delete(a.index, id)
	inv := invocation{Duration: now.Sub(a.sent[id]), Payload: body}
	switch {
	case err != nil:
		inv.ErrorType, inv.ErrorMessage = "Bench.ReadError", err.Error()
	case failed:
		var e struct{ ErrorType, ErrorMessage string }
		_ = json.Unmarshal(body, &e)
		inv.ErrorType, inv.ErrorMessage, inv.Payload = orDefault(e.ErrorType, "Unhandled"), e.ErrorMessage, nil
	}
	a.results[idx] = inv
	a.last = now
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
