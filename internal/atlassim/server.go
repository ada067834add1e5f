package atlassim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

const (
	typeJSON     = "application/vnd.atlas.2023-01-01+json"
	typeCSV      = "application/vnd.atlas.2023-01-01+csv"
	typeAPIError = "application/json" // what the spec declares for ApiError bodies
	tokenPath    = "/api/oauth/token"
	maxReqBody   = 1 << 20
	chunkSize    = 16 << 10
)

// exchange is one request being answered.
type exchange struct {
	s       *Server
	w       *recorder
	r       *http.Request
	op, org string
	who     principal
	input   *openapi3filter.RequestValidationInput // nil before routing
	accept  string                                 // negotiated success media type
	fault   *Fault
}

// recorder remembers the status and body size for the request log.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	cut    string // "reset" | "truncate" | "102" when the connection was cut on purpose
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 || r.status < 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{s: s, w: &recorder{ResponseWriter: w}, r: r}
	defer x.logRequest(start)
	if r.URL.Path == tokenPath {
		s.serveToken(x)
		return
	}
	route, params, err := s.router.FindRoute(r)
	if err != nil {
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			x.apiError(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", fmt.Sprintf("Method %s is not allowed on this resource.", r.Method))
		default:
			x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No billing resource of the Atlas Admin API v2 matches this path.")
		}
		return
	}
	x.op = route.Operation.OperationID
	x.org = params["orgId"]
	x.input = &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	who, fail := s.auth.check(r)
	if fail != nil {
		x.unauthorized(fail.detail, fail.stale)
		return
	}
	x.who = who
	s.count(x.op)

	r.Body = http.MaxBytesReader(w, r.Body, maxReqBody)
	if err := openapi3filter.ValidateRequest(r.Context(), x.input); err != nil {
		code := "INVALID_REQUEST"
		var se *openapi3.SchemaError
		var pe *openapi3filter.ParseError
		if errors.As(err, &se) || errors.As(err, &pe) {
			code = "VALIDATION_ERROR"
		}
		x.apiError(http.StatusBadRequest, code, specComplaint(err))
		return
	}
	if !x.negotiate(route.Operation) {
		return
	}
	if _, ok := s.orgs[x.org]; !ok {
		x.apiError(http.StatusNotFound, "ORG_NOT_FOUND", fmt.Sprintf("No organization with ID %s exists.", x.org))
		return
	}
	if f, ok := s.faults.take(x.op); ok {
		x.fault = &f
		if x.applyFault() {
			return
		}
	}
	if wait, ok := s.rate.admit(x.org); !ok {
		x.rateLimited(wait)
		return
	}
	switch x.op {
	case OpCreateUsage:
		s.createUsage(x)
	case OpGetUsage:
		s.getUsage(x, params["token"])
	case OpListInvoices:
		s.listInvoices(x)
	case OpGetInvoice, OpGetInvoiceCSV:
		s.getInvoice(x, params["invoiceId"])
	case OpPendingInvoice:
		s.pendingInvoices(x)
	case OpCreateInvoiceReport:
		s.createReport(x, params["invoiceId"])
	case OpGetInvoiceReport:
		s.getReport(x, params["invoiceId"], params["reportId"])
	case OpListInvoiceReports:
		s.listReports(x, params["invoiceId"])
	default:
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", fmt.Sprintf("The simulator does not implement %s.", x.op))
	}
}

// specComplaint is kin-openapi's message without the schema dump it appends.
func specComplaint(err error) string {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return err.Error()
	}
	why := re.Reason
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		why = se.Reason
		switch v := se.Value.(type) {
		case string:
			if len(v) <= 64 {
				why += fmt.Sprintf(" (got %q)", v)
			}
		case float64, bool:
			why += fmt.Sprintf(" (got %v)", v)
		}
		if p := se.JSONPointer(); len(p) > 0 {
			why = fmt.Sprintf("field %q: %s", strings.Join(p, "."), why)
		}
	} else if why == "" && re.Err != nil {
		why = re.Err.Error()
	}
	switch {
	case re.Parameter != nil:
		return fmt.Sprintf("parameter %q in %s has an error: %s", re.Parameter.Name, re.Parameter.In, why)
	case re.RequestBody != nil:
		return "request body has an error: " + why
	}
	return why
}

// negotiate picks the success media type from Accept. Only the versioned
// types the spec declares for the operation are accepted; anything else is
// 406 INVALID_VERSION_DATE (the spec has no 406, and kin-openapi does not
// check Accept). A missing Accept or */* gets the JSON type (CSV-only
// operations: CSV).
func (x *exchange) negotiate(op *openapi3.Operation) bool {
	var offered []string
	for _, code := range []int{200, 201, 202} {
		if ref := op.Responses.Status(code); ref != nil && ref.Value != nil {
			for ct := range ref.Value.Content {
				offered = append(offered, ct)
			}
		}
	}
	pref := offered[0]
	if slices.Contains(offered, typeJSON) {
		pref = typeJSON
	}
	accept := strings.TrimSpace(x.r.Header.Get("Accept"))
	if accept == "" {
		x.accept = pref
		return true
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt == "*/*" {
			mt = pref
		}
		if slices.Contains(offered, mt) {
			x.accept = mt
			return true
		}
	}
	x.apiError(http.StatusNotAcceptable, "INVALID_VERSION_DATE",
		fmt.Sprintf("Invalid accept header or version date: %s answers %s, not %q.", x.op, strings.Join(offered, " or "), accept))
	return false
}

// applyFault answers the request if the fault replaces the answer; faults
// that change how the real answer travels (Reset, Truncate, SlowBody,
// MalformedJSON) or what it is (NeverReady) return false.
func (x *exchange) applyFault() bool {
	f := x.fault
	switch f.Kind {
	case Status:
		x.faultRetryAfter()
		cr, ok := statusFaults[f.Status]
		if !ok {
			cr = [2]string{"UNEXPECTED_ERROR", "Simulated fault."}
		}
		x.apiError(f.Status, cr[0], cr[1])
		return true
	case NotFound:
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", "Cannot find resource (simulated fault).")
		return true
	case ExpiredToken:
		if x.who.scheme == "bearer" {
			x.s.auth.invalidate(x.who.token)
			x.unauthorized("The access token has expired.", false)
		} else {
			x.unauthorized("The digest nonce is stale.", true)
		}
		return true
	case WrongMediaType:
		x.w.Header().Set("Content-Type", "text/html; charset=utf-8")
		body := []byte("<html><body><h1>502 Bad Gateway</h1><p>The proxy answered instead of Atlas.</p></body></html>\n")
		x.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		x.w.WriteHeader(http.StatusOK)
		_, _ = x.w.Write(body)
		return true
	}
	return false
}

// statusFaults are the error code and detail a Status fault answers with.
var statusFaults = map[int][2]string{
	429: {"RATE_LIMITED", "Too many requests (simulated fault)."},
	500: {"UNEXPECTED_ERROR", "Unexpected error (simulated fault)."},
	502: {"BAD_GATEWAY", "Bad gateway (simulated fault)."},
	503: {"SERVICE_UNAVAILABLE", "Service unavailable (simulated fault)."},
	504: {"GATEWAY_TIMEOUT", "Gateway timeout (simulated fault)."},
}

// faultRetryAfter sets the Retry-After of a Status fault of 429 or 503.
func (x *exchange) faultRetryAfter() {
	if f := x.fault; f.RetryAfter > 0 && (f.Status == 429 || f.Status == 503) {
		x.w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(f.RetryAfter.Seconds())), 10))
	}
}

// apiError is the spec's ApiError.
type apiError struct {
	Detail     string `json:"detail"`
	Error      int    `json:"error"`
	ErrorCode  string `json:"errorCode"`
	Parameters []any  `json:"parameters"`
	Reason     string `json:"reason"`
}

func (x *exchange) apiError(status int, code, detail string) {
	body, _ := json.Marshal(apiError{Detail: detail, Error: status, ErrorCode: code, Parameters: []any{}, Reason: http.StatusText(status)})
	x.sendJSON(status, typeAPIError, body)
}

func (x *exchange) unauthorized(detail string, stale bool) {
	x.w.Header().Set("WWW-Authenticate", x.s.auth.challenge(stale))
	x.apiError(http.StatusUnauthorized, "UNAUTHORIZED", detail)
}

// sendJSON validates a JSON answer against the spec, then sends it. A spec violation is a simulator bug: it is logged and
// answered 500 SIMULATOR_INVALID_RESPONSE.
func (x *exchange) sendJSON(status int, ct string, body []byte) {
	h := x.w.Header()
	h.Set("Content-Type", ct)
	x.rateHeaders()
	if x.input != nil && x.op != OpOAuthToken {
		if err := x.validateResponse(status, body); err != nil {
			x.invalidResponse(err)
			return
		}
	}
	if x.r.URL.Query().Get("pretty") == "true" {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			body = buf.Bytes()
		}
	}
	x.send(status, int64(len(body)), body, nil)
}

// sendStream sends a CSV of known size produced by gen. Only status and
// headers are validated: the body may be gigabytes.
func (x *exchange) sendStream(ct string, size int64, gen func(io.Writer) error) {
	x.w.Header().Set("Content-Type", ct)
	x.rateHeaders()
	if err := x.validateResponse(http.StatusOK, nil); err != nil {
		x.invalidResponse(err)
		return
	}
	if x.s.has(TextCSV) && ct == typeCSV {
		x.w.Header().Set("Content-Type", "text/csv; charset=utf-8") // after the spec's check
	}
	x.send(http.StatusOK, size, nil, gen)
}

func (x *exchange) validateResponse(status int, body []byte) error {
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: x.input,
		Status:                 status,
		Header:                 x.w.Header(),
		Options: &openapi3filter.Options{
			// Undeclared error statuses (400 on invoice paths, 406, 502-504)
			// are real Atlas answers; undeclared success statuses are bugs.
			IncludeResponseStatus: status < 400,
			ExcludeResponseBody:   body == nil,
		},
	}
	if body != nil {
		in.SetBodyBytes(body)
	}
	if err := openapi3filter.ValidateResponse(x.r.Context(), in); err != nil {
		return err
	}
	if body == nil && status < 300 {
		// ExcludeResponseBody skips the content type check too: do it here.
		ref := x.input.Route.Operation.Responses.Status(status)
		if ref == nil || ref.Value == nil || ref.Value.Content.Get(x.w.Header().Get("Content-Type")) == nil {
			return fmt.Errorf("response content type %q is not declared for %s %d", x.w.Header().Get("Content-Type"), x.op, status)
		}
	}
	return nil
}

func (x *exchange) invalidResponse(err error) {
	x.s.log.Error("atlassim: response violates the spec (simulator bug)", "op", x.op, "err", err)
	h := x.w.Header()
	h.Del("Retry-After")
	h.Set("Content-Type", typeAPIError)
	body, _ := json.Marshal(apiError{Detail: err.Error(), Error: 500, ErrorCode: "SIMULATOR_INVALID_RESPONSE", Parameters: []any{}, Reason: "Internal Server Error"})
	x.fault = nil
	x.send(http.StatusInternalServerError, int64(len(body)), body, nil)
}

func (x *exchange) rateHeaders() {
	if x.org == "" {
		return
	}
	limit, remaining := x.s.rate.take(x.org)
	x.w.Header().Set("RateLimit-Limit", strconv.Itoa(limit))
	x.w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
}

// errCut stops a body at the byte a Reset/Truncate fault asked for.
var errCut = errors.New("atlassim: body cut by fault")

type cutWriter struct {
	w    io.Writer
	left int64
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		n, err := c.w.Write(p[:c.left])
		c.left -= int64(n)
		if err != nil {
			return n, err
		}
		return n, errCut
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// slowWriter sends chunks with a pause between them.
type slowWriter struct {
	ctx   context.Context
	w     io.Writer
	rc    *http.ResponseController
	delay time.Duration
	chunk int
}

func (s *slowWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		n := min(s.chunk, len(p))
		m, err := s.w.Write(p[:n])
		total += m
		if err != nil {
			return total, err
		}
		_ = s.rc.Flush()
		p = p[n:]
		t := time.NewTimer(s.delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return total, s.ctx.Err()
		case <-t.C:
		}
	}
	return total, nil
}

// send writes status, Content-Length and the body from gen, applying the
// transport faults. buffered is the body when it is a buffered answer, sent
// when gen is nil.
func (x *exchange) send(status int, size int64, buffered []byte, gen func(io.Writer) error) {
	h := x.w.Header()
	f := x.fault
	if f != nil && f.Kind == MalformedJSON {
		cut := []byte(`{"results":[{"id":"`)
		if len(buffered) > 1 {
			cut = buffered[:len(buffered)/2]
		}
		if !strings.Contains(h.Get("Content-Type"), "json") {
			h.Set("Content-Type", typeJSON)
		}
		buffered, gen = cut, nil
		status, size = http.StatusOK, int64(len(cut))
	}
	if gen == nil {
		gen = func(w io.Writer) error {
			_, err := w.Write(buffered)
			return err
		}
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	x.w.WriteHeader(status)
	rc := http.NewResponseController(x.w)
	var dst io.Writer = x.w
	cutKind := ""
	if f != nil {
		switch f.Kind {
		case SlowBody:
			chunk := chunkSize
			if size < 4*chunkSize {
				chunk = int(max(size/4, 1))
			}
			_ = rc.Flush()
			dst = &slowWriter{ctx: x.r.Context(), w: dst, rc: rc, delay: f.Delay, chunk: chunk}
		case Reset, Truncate:
			// Always short of the announced length, so the cut is visible.
			dst = &cutWriter{w: dst, left: min(max(f.After, 0), max(size-1, 0))}
			cutKind = strings.ToLower(f.Kind.String())
		}
	}
	bw := bufio.NewWriterSize(dst, 64<<10)
	err := gen(bw)
	if err == nil {
		err = bw.Flush()
	}
	if errors.Is(err, errCut) || (err == nil && cutKind != "") {
		x.cut(cutKind)
		return
	}
	if err != nil {
		x.s.log.Debug("atlassim: body not fully sent", "op", x.op, "err", err)
	}
}

// cut ends the response early on purpose ("reset" or "truncate"). HTTP/1.1:
// hijack the connection and close it, with SO_LINGER 0 for a TCP RST when
// reset. HTTP/2 cannot hijack: abort the handler, which makes net/http reset
// the stream.
func (x *exchange) cut(kind string) {
	rc := http.NewResponseController(x.w)
	_ = rc.Flush()
	x.w.cut = kind
	if x.r.ProtoMajor >= 2 {
		panic(http.ErrAbortHandler)
	}
	conn, buf, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = buf.Flush()
	if kind == "reset" {
		lingerZero(conn)
	}
	_ = conn.Close()
}

func lingerZero(c net.Conn) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = nc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// processing answers 102 Processing as a real, bare 1xx on the wire.
func (x *exchange) processing() {
	if err := x.validateResponse(http.StatusProcessing, []byte{}); err != nil {
		x.invalidResponse(err)
		return
	}
	x.w.status, x.w.cut = http.StatusProcessing, "102"
	rc := http.NewResponseController(x.w)
	if x.r.ProtoMajor >= 2 {
		// HTTP/2: WriteHeader(102) writes an informational HEADERS frame at
		// once. Returning (or Flush) would make net/http add a final 200, so
		// abort instead: the client sees the 102, then RST_STREAM, never a
		// final status.
		x.w.ResponseWriter.WriteHeader(http.StatusProcessing)
		panic(http.ErrAbortHandler)
	}
	// HTTP/1.1: net/http treats any 1xx as informational and would follow it
	// with a final response when the handler returns; Atlas sends the 102 as
	// the whole answer. So take the connection and write exactly that.
	conn, buf, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = buf.WriteString("HTTP/1.1 102 Processing\r\n\r\n")
	_ = buf.Flush()
	_ = conn.Close()
}

// logRequest logs the request once answered. Deferred: a panic
// (http.ErrAbortHandler, which makes net/http reset the stream or
// connection) is logged, then goes on.
func (x *exchange) logRequest(start time.Time) {
	panicked := recover()
	status := x.w.status
	if status == 0 && panicked != nil {
		status = 499
	}
	attrs := []slog.Attr{
		slog.String("method", x.r.Method),
		slog.String("op", x.op),
		slog.Int("status", status),
		slog.Int64("bytes", x.w.bytes),
		slog.Duration("duration", time.Since(start)),
		slog.String("proto", x.r.Proto),
	}
	if x.org != "" {
		attrs = append(attrs, slog.String("org", x.org))
	}
	if x.who.scheme != "" {
		attrs = append(attrs, slog.String("auth", x.who.scheme), slog.String("principal", x.who.id))
	}
	if x.fault != nil {
		attrs = append(attrs, slog.String("fault", x.fault.Kind.String()))
	}
	if x.w.cut != "" {
		attrs = append(attrs, slog.String("cut", x.w.cut))
	}
	x.s.log.LogAttrs(context.Background(), slog.LevelInfo, "atlas request", attrs...)
	if panicked != nil {
		panic(panicked)
	}
}

// serveToken is the OAuth 2.0 client-credentials token endpoint (not in the
// spec). Errors use the RFC 6749 JSON shape that OAuth clients parse.
func (s *Server) serveToken(x *exchange) {
	x.op = OpOAuthToken
	s.count(x.op)
	oauthErr := func(status int, code, desc string) {
		if status == http.StatusUnauthorized {
			x.w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		}
		b, _ := json.Marshal(map[string]string{"error": code, "error_description": desc})
		x.sendJSON(status, "application/json", b)
	}
	if x.r.Method != http.MethodPost {
		oauthErr(http.StatusMethodNotAllowed, "invalid_request", "Use POST.")
		return
	}
	if f, ok := s.faults.take(x.op); ok {
		x.fault = &f
		if x.applyFault() {
			return
		}
	}
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, maxReqBody)
	if err := x.r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "The body is not a form.")
		return
	}
	if gt := x.r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "Only grant_type=client_credentials is supported.")
		return
	}
	id, secret, ok := basicAuth(x.r)
	if !ok {
		id, secret = x.r.PostForm.Get("client_id"), x.r.PostForm.Get("client_secret")
	}
	if id == "" || secret == "" {
		oauthErr(http.StatusUnauthorized, "invalid_client", "Client authentication is required.")
		return
	}
	tok, ok := s.auth.issue(id, secret)
	if !ok {
		oauthErr(http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	x.who = principal{scheme: "basic", id: id}
	x.w.Header().Set("Cache-Control", "no-store")
	b, _ := json.Marshal(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
	}{tok, "bearer", int64(math.Ceil(s.cfg.TokenTTL.Seconds()))})
	x.sendJSON(http.StatusOK, "application/json", b)
}

func jsonBody(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("atlassim: marshal answer: %v", err)) // our own types: a bug
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}
