package testenv

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bounds of a bootstrap run.
const (
	buildTimeout = 5 * time.Minute
	runTimeout   = 3 * time.Minute  // the whole RunBootstrap call
	invokeTime   = 60 * time.Second // Lambda-Runtime-Deadline-Ms of each invocation
	maxResponse  = 6 << 20          // Lambda's synchronous response limit
	functionName = "abx-test"
)

// builds caches one build per package per test binary (a *build by package).
// The binary is kept in memory (a few MiB) so that no file outlives the test
// that asked for it.
var builds sync.Map

type build struct {
	once sync.Once
	bin  []byte
	err  error
	runs int // go build invocations (tests check the cache)
}

// BuildBootstrap builds the Lambda function in pkg (an import path, or a path
// relative to the repository root such as "./functions/poll") the way the
// Makefile does (CGO_ENABLED=0, -tags lambda.norpc, -trimpath, -ldflags
// "-s -w"), for linux on the host's architecture so that it can run here, and
// returns the path of a file named bootstrap in t.TempDir(). The build runs
// once per package per test binary.
func BuildBootstrap(t testing.TB, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.runs++
		b.bin, b.err = goBuild(root, pkg)
	})
	if b.err != nil {
		t.Fatalf("testenv: build %s: %v", pkg, b.err)
	}
	path := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(path, b.bin, 0o755); err != nil {
		t.Fatalf("testenv: write %s: %v", path, err)
	}
	return path
}

func goBuild(root, pkg string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "abx-bootstrap-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bootstrap")

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	// go test puts $GOROOT/bin first in PATH, so this is the go running the tests.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Dir = root
	goos := "linux"
	if runtime.GOOS != "linux" {
		// Lambda runs linux; a non-linux host can only run its own kind.
		goos = runtime.GOOS
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+runtime.GOARCH)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, log.String())
	}
	return os.ReadFile(out)
}

// Invocation is the outcome of one event.
type Invocation struct {
	RequestID    string
	Payload      json.RawMessage // the function's response, when it succeeded
	ErrorType    string          // when it failed: the errorType it reported, or Runtime.ExitError
	ErrorMessage string
	// Duration runs from the event handed over to the answer received: what
	// Lambda bills. Zero when the process died on it.
	Duration time.Duration
}

// Failed reports whether the invocation ended in an error.
func (i Invocation) Failed() bool { return i.ErrorType != "" }

// RunBootstrapOutput runs the bootstrap binary under a Lambda Runtime API served on
// 127.0.0.1 (AWS_LAMBDA_RUNTIME_API), feeds it events one at a time, and
// returns one Invocation per event, in order. env ("KEY=value") is added to a
// clean Lambda-like environment (the test's own environment is not inherited,
// so no developer AWS credentials leak in). Like Lambda, a process that exits
// or reports an init error fails the event it was working on (ErrorType
// Runtime.ExitError, or the init error's type) and is started again for the
// rest. The process is killed at the end; the whole run is bounded in time.
// It also returns what the process wrote to stdout and stderr (its logs),
// for example to assert that no secret leaks.
func RunBootstrapOutput(t testing.TB, bin string, env []string, events ...json.RawMessage) ([]Invocation, string) {
	t.Helper()
	a := newRuntimeAPI(events, invokeTime)
	if len(events) == 0 {
		return nil, ""
	}
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	defer close(a.stop) // runs first: unblocks /next so srv.Close can finish

	out := &Buffer{Max: 1 << 20}
	fullEnv := lambdaEnv(t, bin, env, srv.URL)

	timeout := time.NewTimer(runTimeout)
	defer timeout.Stop()
	// Each start answers at least one event (or the run ends), so this bounds restarts.
	for starts := 0; !a.done(); starts++ {
		if starts > len(events) {
			t.Fatalf("testenv: %s restarted %d times; output:\n%s", bin, starts, out.String())
		}
		cmd, exited := startProcess(t, bin, fullEnv, out)
		select {
		case <-a.allDone:
			_ = cmd.Process.Kill()
			<-exited
		case err := <-exited:
			a.processExited(err)
		case <-timeout.C:
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("testenv: %s did not answer %d of %d events within %s; output:\n%s", bin, a.pending(), len(events), runTimeout, out.String())
		}
	}
	if t.Failed() {
		t.Logf("bootstrap output:\n%s", out.String())
	}
	return a.results, out.String()
}

// lambdaEnv is a clean environment like Lambda's provided.al2023 runtime's
// (the test's own is not inherited, so no developer AWS settings leak in),
// then env, then the Runtime API address of api (an http:// URL).
func lambdaEnv(t testing.TB, bin string, env []string, api string) []string {
	base := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=en_US.UTF-8",
		"TZ=UTC",
		"HOME=" + t.TempDir(),
		"LAMBDA_TASK_ROOT=" + filepath.Dir(bin),
		"_HANDLER=bootstrap",
		"AWS_EXECUTION_ENV=AWS_Lambda_provided.al2023",
		"AWS_LAMBDA_FUNCTION_NAME=" + functionName,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + functionName,
		"AWS_LAMBDA_LOG_STREAM_NAME=test",
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
	// exec keeps the last value of a repeated key: env overrides the base,
	// and nothing overrides the Runtime API address.
	return append(append(base, env...), "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(api, "http://"))
}

// startProcess starts bin in its folder with env, its stdout and stderr in
// out; exited receives how it ended.
func startProcess(t testing.TB, bin string, env []string, out io.Writer) (*exec.Cmd, <-chan error) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited
}

// Timed is what one bootstrap process did under RunTimed.
type Timed struct {
	Invocations []Invocation
	Init        time.Duration // exec to its first /runtime/invocation/next
	Done        time.Duration // exec to the last answer (zero without events)
	PeakRSS     int64         // peak resident set in bytes (VmHWM; Linux only, else 0)
	CPU         time.Duration // user + system time
	Output      string        // its stdout and stderr (the first 4 MiB)
}

// RunTimed starts bin once under a Runtime API on 127.0.0.1, hands it the
// events one at a time, and kills it when it asks for the next event after
// the last; with no events, at its first request (a cold start). It is for
// measuring, so unlike RunBootstrap it does not restart a process: an exit
// or an init error fails the test. timeout bounds the whole run and is each
// invocation's deadline. env is added as for RunBootstrap.
func RunTimed(t testing.TB, bin string, env []string, timeout time.Duration, events ...json.RawMessage) Timed {
	t.Helper()
	a := newRuntimeAPI(events, timeout)
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	defer close(a.stop) // runs first: releases the parked /next

	out := &Buffer{Max: 4 << 20}
	fullEnv := lambdaEnv(t, bin, env, srv.URL)
	start := time.Now()
	cmd, exited := startProcess(t, bin, fullEnv, out)
	limit := time.NewTimer(timeout)
	defer limit.Stop()
	var peak int64
	select {
	case <-a.idle:
		// Read while the process lives: after its exit only getrusage's
		// ru_maxrss is left, which on Linux also counts the parent's memory
		// shared at fork.
		peak = peakRSS(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-exited
	case err := <-exited:
		t.Fatalf("testenv: %s exited early (%v); output:\n%s", bin, err, out.String())
	case <-limit.C:
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("testenv: %s did not finish within %s; output:\n%s", bin, timeout, out.String())
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.initErr != nil {
		t.Fatalf("testenv: %s reported an init error: %s: %s; output:\n%s", bin, a.initErr.ErrorType, a.initErr.ErrorMessage, out.String())
	}
	run := Timed{Invocations: a.results, Init: a.first.Sub(start), PeakRSS: peak, Output: out.String()}
	if len(events) > 0 {
		run.Done = a.last.Sub(start)
	}
	run.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return run
}

// peakRSS is the peak resident set of a live process ("VmHWM: 1234 kB" in
// /proc/PID/status), or 0 where there is no such file.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(rest))
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil && len(f) == 2 && f[1] == "kB" {
				return n << 10
			}
		}
	}
	return 0
}

// runtimeAPI serves the Lambda Runtime API to the processes of one run.
type runtimeAPI struct {
	mu       sync.Mutex
	events   []json.RawMessage
	deadline time.Duration // each invocation's Lambda-Runtime-Deadline-Ms, from its hand-over
	results  []Invocation
	next     int                  // index of the next event to hand out
	inflight map[string]int       // request id -> event index
	sent     map[string]time.Time // request id -> when its event went out
	initErr  *Invocation          // reported by the current process on /init/error
	left     int                  // events without an answer
	first    time.Time            // the first /next
	last     time.Time            // the last answer
	allDone  chan struct{}        // closed when left reaches 0
	idle     chan struct{}        // closed when /next finds no event left
	idleOnce sync.Once
	stop     chan struct{} // closed when the run ends
}

func newRuntimeAPI(events []json.RawMessage, deadline time.Duration) *runtimeAPI {
	a := &runtimeAPI{
		events:   events,
		deadline: deadline,
		results:  make([]Invocation, len(events)),
		inflight: map[string]int{},
		sent:     map[string]time.Time{},
		left:     len(events),
		allDone:  make(chan struct{}),
		idle:     make(chan struct{}),
		stop:     make(chan struct{}),
	}
	if len(events) == 0 {
		close(a.allDone)
	}
	return a
}

func (a *runtimeAPI) done() bool {
	select {
	case <-a.allDone:
		return true
	default:
		return false
	}
}

func (a *runtimeAPI) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.left
}

// answer records the outcome of event idx; a.mu must be held.
func (a *runtimeAPI) answer(idx int, inv Invocation) {
	if a.results[idx].RequestID != "" {
		return // answered already
	}
	now := time.Now()
	if sent, ok := a.sent[inv.RequestID]; ok {
		inv.Duration = now.Sub(sent)
		delete(a.sent, inv.RequestID)
	}
	a.results[idx] = inv
	a.last = now
	a.left--
	if a.left == 0 {
		close(a.allDone)
	}
}

// processExited fails the event the process was handling, or, if it died
// before taking one, the next event (the one a cold start was for).
func (a *runtimeAPI) processExited(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fail := func(idx int, id string) {
		inv := Invocation{RequestID: id, ErrorType: "Runtime.ExitError", ErrorMessage: fmt.Sprintf("RequestId: %s Error: Runtime exited: %v", id, err)}
		if err == nil {
			inv.ErrorMessage = fmt.Sprintf("RequestId: %s Error: Runtime exited without providing a reason", id)
		}
		if a.initErr != nil {
			inv.ErrorType, inv.ErrorMessage = a.initErr.ErrorType, a.initErr.ErrorMessage
		}
		a.answer(idx, inv)
	}
	if len(a.inflight) > 0 {
		for id, idx := range a.inflight {
			delete(a.sent, id) // no answer came: nothing to time
			fail(idx, id)
			delete(a.inflight, id)
		}
	} else if a.next < len(a.events) {
		idx := a.next
		a.next++
		fail(idx, requestID(idx))
	}
	a.initErr = nil
}

func requestID(idx int) string {
	return fmt.Sprintf("%08x-%s-4%s-a%s-%s", idx+1, randomHex(2), randomHex(2)[1:], randomHex(2)[1:], randomHex(6))
}

const apiPrefix = "/2018-06-01/runtime/"

func (a *runtimeAPI) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+apiPrefix+"invocation/next", a.serveNext)
	mux.HandleFunc("POST "+apiPrefix+"invocation/{id}/response", a.serveResponse)
	mux.HandleFunc("POST "+apiPrefix+"invocation/{id}/error", a.serveError)
	mux.HandleFunc("POST "+apiPrefix+"init/error", a.serveInitError)
	return mux
}

func (a *runtimeAPI) serveNext(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.first.IsZero() {
		a.first = time.Now()
	}
	if a.next >= len(a.events) {
		a.mu.Unlock()
		a.idleOnce.Do(func() { close(a.idle) })
		// Nothing more to do: block like Lambda does until the process is frozen (here: killed).
		select {
		case <-a.stop:
		case <-r.Context().Done():
		}
		http.Error(w, "runtime API stopped", http.StatusServiceUnavailable)
		return
	}
	idx := a.next
	a.next++
	id := requestID(idx)
	a.inflight[id] = idx
	payload := a.events[idx]
	a.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(a.deadline).UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:"+Region+":"+smAccount+":function:"+functionName)
	h.Set("Lambda-Runtime-Trace-Id", fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomHex(12), randomHex(8)))
	a.mu.Lock()
	a.sent[id] = time.Now()
	a.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	w.Write(payload)
}

// take removes a request id from the in-flight set, reporting its event index.
func (a *runtimeAPI) take(w http.ResponseWriter, id string) (int, bool) {
	idx, ok := a.inflight[id]
	if !ok {
		writeRuntimeError(w, http.StatusBadRequest, "InvalidRequestID", "unknown or already answered request id "+id)
		return 0, false
	}
	delete(a.inflight, id)
	return idx, true
}

func (a *runtimeAPI) serveResponse(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponse+1))
	a.mu.Lock()
	defer a.mu.Unlock()
	idx, ok := a.take(w, id)
	if !ok {
		return
	}
	switch {
	case err != nil:
		a.answer(idx, Invocation{RequestID: id, ErrorType: "Runtime.ResponseError", ErrorMessage: err.Error()})
	case len(body) > maxResponse:
		a.answer(idx, Invocation{RequestID: id, ErrorType: "Function.ResponseSizeTooLarge", ErrorMessage: "response payload over 6 MiB"})
		writeRuntimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload over 6 MiB")
		return
	case r.Trailer.Get("Lambda-Runtime-Function-Error-Type") != "":
		// A streamed response that failed midway reports the error in trailers.
		a.answer(idx, Invocation{RequestID: id, Payload: body, ErrorType: r.Trailer.Get("Lambda-Runtime-Function-Error-Type"), ErrorMessage: r.Trailer.Get("Lambda-Runtime-Function-Error-Body")})
	default:
		a.answer(idx, Invocation{RequestID: id, Payload: body})
	}
	writeAccepted(w)
}

func (a *runtimeAPI) serveError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	inv := readRuntimeError(r)
	inv.RequestID = id
	a.mu.Lock()
	defer a.mu.Unlock()
	idx, ok := a.take(w, id)
	if !ok {
		return
	}
	a.answer(idx, inv)
	writeAccepted(w)
}

func (a *runtimeAPI) serveInitError(w http.ResponseWriter, r *http.Request) {
	inv := readRuntimeError(r)
	a.mu.Lock()
	a.initErr = &inv
	a.mu.Unlock()
	writeAccepted(w)
}

// readRuntimeError reads {"errorMessage","errorType"}; the type may also come
// in the Lambda-Runtime-Function-Error-Type header.
func readRuntimeError(r *http.Request) Invocation {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &e); err != nil {
		e.ErrorMessage = string(body)
	}
	e.ErrorType = cmp.Or(e.ErrorType, r.Header.Get("Lambda-Runtime-Function-Error-Type"), "Unhandled")
	return Invocation{ErrorType: e.ErrorType, ErrorMessage: e.ErrorMessage}
}

func writeAccepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func writeRuntimeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"errorType": typ, "errorMessage": msg})
}
