package atlas

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// request is one API operation. Ids in path are validated by the caller.
type request struct {
	method  string
	path    string // below /api/atlas/v2
	display string // path for errors and logs (secret-free); defaults to path
	query   url.Values
	accept  string
	ctype   string // Content-Type of body; default the 2023-01-01 JSON type
	body    []byte
	usage   bool // a 102 means "still processing"
	stream  bool // hand the body to the caller instead of reading it

	// decode, when set, reads a JSON answer as a stream of tokens within the
	// attempt, so a body cut short is retried like any transport error. It
	// may read at most limit bytes.
	decode func(*json.Decoder) error
	limit  int64

	// download is a report's pre-signed URL: fetched with the plain download
	// client, no credentials; display is then its query-free form.
	download *url.URL
}

func (r *request) shown() string {
	switch {
	case r.download != nil:
		return r.display
	case r.display != "":
		return apiPrefix + r.display
	}
	return apiPrefix + r.path
}

// response is what send returns for a 2xx answer.
type response struct {
	processing  bool
	body        io.ReadCloser // stream requests
	contentType string
	data        []byte // other requests: the JSON payload
}

// maxJSONBody bounds JSON answers read whole (a token, a report: a few
// hundred bytes); lists are decoded as streams (request.decode).
const maxJSONBody = 1 << 20

// errProcessing is returned from the Got1xxResponse hook to stop waiting for
// a final status. The decision is made from per-request state, not from this
// error, because HTTP/2 reports it as an unrelated stream error.
var errProcessing = errors.New("atlas: 102 processing")

// h2StreamError has the fields of net/http's HTTP/2 stream error, whose As
// method fills any struct of this shape.
type h2StreamError struct {
	StreamID uint32
	Code     uint32
	Cause    error
}

func (e h2StreamError) Error() string {
	return fmt.Sprintf("stream %d: code %d: %v", e.StreamID, e.Code, e.Cause)
}

// endStream1xx reports whether err is net/http's HTTP/2 client refusing a 1xx
// HEADERS frame that ends the stream: a 102 sent that way. The check runs
// before any trace hook, so no hook can record it; the only trace is a
// locally raised PROTOCOL_ERROR whose cause, an unexported errors.New, says
// so in its text.
func endStream1xx(err error) bool {
	const protocolError = 0x1
	var se h2StreamError
	return errors.As(err, &se) && se.Code == protocolError && se.Cause != nil &&
		strings.HasPrefix(se.Cause.Error(), "1xx informational response with END_STREAM")
}

// send runs attempts until one succeeds, fails for good, or the retry budget
// runs out.
func (c *Client) send(ctx context.Context, r *request) (*response, error) {
	start := c.now()
	refreshed := false
	for attempt := 1; ; attempt++ {
		var res *response
		var tok string
		var err error
		if r.download != nil {
			res, err = c.fetch(ctx, r)
		} else {
			res, tok, err = c.attempt(ctx, r)
		}
		if err == nil {
			return res, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("atlas: %s %s: %w", r.method, r.shown(), ctxErr)
		}
		var apiErr *Error
		isAPI := errors.As(err, &apiErr)
		// An expired bearer token (fetch a new one) or a stale Digest nonce
		// (the next exchange gets a fresh one): try once more, outside the
		// backoff budget.
		if isAPI && apiErr.StatusCode == http.StatusUnauthorized && (tok != "" || apiErr.staleNonce) && !refreshed {
			refreshed = true
			if tok != "" {
				c.dropToken(tok)
			}
			attempt--
			c.log(ctx, "atlas: credentials rejected as expired, authenticating again", r, apiErr.StatusCode, attempt+1, 0)
			continue
		}
		if isAPI && !retryableStatus(apiErr.StatusCode) || !isAPI && !transient(err) {
			return nil, err
		}
		elapsed := c.now().Sub(start)
		if attempt >= c.retry.MaxAttempts {
			return nil, &RetryError{Attempts: attempt, Elapsed: elapsed, Err: err}
		}
		wait := c.retry.backoff(attempt, c.jitter)
		if isAPI && apiErr.RetryAfter > wait {
			wait = apiErr.RetryAfter
		}
		if elapsed+wait > c.retry.MaxElapsed {
			return nil, &RetryError{Attempts: attempt, Elapsed: elapsed, Err: err}
		}
		status := 0
		if isAPI {
			status = apiErr.StatusCode
		}
		c.log(ctx, "atlas: retrying", r, status, attempt, wait)
		if serr := c.sleep(ctx, wait); serr != nil {
			return nil, fmt.Errorf("atlas: %s %s: waiting to retry (last error: %v): %w", r.method, r.shown(), errText(err, apiErr), serr)
		}
	}
}

func errText(err error, apiErr *Error) string {
	if apiErr != nil {
		return fmt.Sprintf("%d %s", apiErr.StatusCode, apiErr.ErrorCode)
	}
	return err.Error()
}

func (c *Client) log(ctx context.Context, msg string, r *request, status, attempt int, wait time.Duration) {
	if c.logger == nil {
		return
	}
	c.logger.LogAttrs(ctx, slog.LevelInfo, msg,
		slog.String("method", r.method), slog.String("path", r.shown()),
		slog.Int("status", status), slog.Int("attempt", attempt), slog.Duration("wait", wait))
}

// attempt makes one HTTP exchange. It returns the bearer token it used (for
// the 401 refresh) and an error that send classifies.
func (c *Client) attempt(ctx context.Context, r *request) (*response, string, error) {
	var tok string
	if c.oauth != nil {
		var err error
		if tok, err = c.bearer(ctx); err != nil {
			return nil, "", err
		}
	}
	u := *c.base
	u.Path = apiPrefix + r.path
	u.RawQuery = r.query.Encode()

	// What the server sent, as the trace hooks saw it.
	var got102, gotHeaders atomic.Bool
	if r.usage {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotFirstResponseByte: func() { gotHeaders.Store(true) },
			Got1xxResponse: func(code int, _ textproto.MIMEHeader) error {
				if code == http.StatusProcessing {
					got102.Store(true)
					return errProcessing // or net/http waits for a final status
				}
				return nil
			},
		})
	}
	req, cancel, err := c.newRequest(ctx, r, &u)
	if err != nil {
		return nil, tok, err
	}
	req.Header.Set("Accept", r.accept)
	if r.body != nil {
		req.Header.Set("Content-Type", cmp.Or(r.ctype, mediaJSON))
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if got102.Load() || gotHeaders.Load() && endStream1xx(err) {
		if resp != nil {
			resp.Body.Close()
		}
		cancel()
		return &response{processing: true}, tok, nil
	}
	if err != nil {
		cancel()
		return nil, tok, transportError(err, r)
	}
	b := c.body(resp, r, cancel)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, tok, c.readError(resp, b, r)
	}
	res, err := c.success(resp, b, r)
	if err != nil {
		b.Close()
	}
	return res, tok, err
}

// newRequest builds the request of r for u as it is: never by parsing its
// string again, which could fail and quote it whole. cancel ends it; the
// body's Close calls it.
func (c *Client) newRequest(ctx context.Context, r *request, u *url.URL) (*http.Request, context.CancelFunc, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, r.method, "", body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("atlas: %s %s: %w", r.method, r.shown(), err)
	}
	req.URL = u
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	return req, cancel, nil
}

// body wraps resp's body: a read names the request, a body that ends early
// is an error, and one that sends nothing for the idle timeout fails.
func (c *Client) body(resp *http.Response, r *request, cancel context.CancelFunc) *bodyReader {
	b := &bodyReader{rc: resp.Body, method: r.method, path: r.shown(), want: resp.ContentLength, idleFor: c.idleTimeout, cancel: cancel}
	b.idle = time.AfterFunc(c.idleTimeout, func() {
		b.stalled.Store(true)
		cancel() // unblocks a Read waiting on the network
	})
	b.idle.Stop()
	return b
}

// transportError names the request in an error from Do. Do's *url.Error is
// dropped (the request is named already) and any other loses the query of
// its URL: a pre-signed URL's query is a credential.
func transportError(err error, r *request) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
	return fmt.Errorf("atlas: %s %s: %w", r.method, r.shown(), err)
}

// success handles a 2xx answer: checks the media type, then decodes the
// JSON payload, reads it whole, or hands the body over.
func (c *Client) success(resp *http.Response, b *bodyReader, r *request) (*response, error) {
	ct := resp.Header.Get("Content-Type")
	if !mediaOK(r.accept, ct) {
		return nil, &MediaTypeError{Method: r.method, Path: r.shown(), Want: r.accept, Got: clean(ct, 128)}
	}
	switch {
	case r.decode != nil:
		defer b.Close()
		lim := &limitReader{r: b, left: r.limit}
		if err := r.decode(json.NewDecoder(lim)); err != nil {
			return nil, answerError(err, r)
		}
		return &response{contentType: ct}, nil
	case r.stream:
		return &response{body: b, contentType: ct}, nil
	}
	data, err := io.ReadAll(&limitReader{r: b, left: maxJSONBody})
	if err != nil {
		return nil, answerError(err, r)
	}
	return &response{data: data, contentType: ct}, nil
}

// mediaOK reports whether a 2xx answer's media type (parameters aside) is
// one the request reads: for CSV the versioned type, text/csv (which the v1
// documentation lists) or application/csv; for JSON application/json or any
// +json type.
func mediaOK(accept, ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if strings.HasSuffix(accept, "+csv") {
		return mt == accept || mt == "text/csv" || mt == "application/csv"
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// answerError names the request in a decoding error. A body that broke stays
// a *StreamError (retried); anything else the answer said is *AnswerError.
func answerError(err error, r *request) error {
	var ae *AnswerError
	switch {
	case IsStreamBroken(err):
		return err
	case errors.As(err, &ae):
		ae.Method, ae.Path = r.method, r.shown()
		return ae
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The whole body came (else a *StreamError), but the JSON did not.
		return &AnswerError{Method: r.method, Path: r.shown(), Reason: "the JSON ends early"}
	}
	return &AnswerError{Method: r.method, Path: r.shown(), Reason: clean(err.Error(), 256)}
}

// limitReader fails a body longer than left bytes, rather than cutting it.
type limitReader struct {
	r    io.Reader
	left int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, &AnswerError{Reason: "larger than its bound"}
	}
	// One byte past the bound tells a longer body from one that ends there.
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, &AnswerError{Reason: "larger than its bound"}
	}
	return n, err
}

// readError turns a non-2xx answer into an *Error, reading a bounded part of
// the body.
func (c *Client) readError(resp *http.Response, b *bodyReader, r *request) error {
	defer b.Close()
	data, _ := io.ReadAll(io.LimitReader(b, maxErrorBody))
	e := decodeError(resp.StatusCode, data)
	e.Method, e.Path = r.method, r.shown()
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	if resp.StatusCode == http.StatusUnauthorized {
		for _, v := range resp.Header.Values("WWW-Authenticate") {
			v = strings.ToLower(v)
			if strings.HasPrefix(v, "digest ") && (strings.Contains(v, "stale=true") || strings.Contains(v, `stale="true"`)) {
				e.staleNonce = true
			}
		}
	}
	return e
}

// bodyReader makes a body that ends early an error the reader sees: a short
// read against Content-Length becomes io.ErrUnexpectedEOF, a read that waits
// longer than the idle timeout ErrIdleTimeout, and every read error is a
// *StreamError naming the request.
type bodyReader struct {
	rc      io.ReadCloser
	method  string
	path    string
	n       int64
	want    int64 // Content-Length, -1 if unknown
	idle    *time.Timer
	idleFor time.Duration
	stalled atomic.Bool
	cancel  context.CancelFunc
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.idle.Reset(b.idleFor)
	n, err := b.rc.Read(p)
	b.idle.Stop()
	b.n += int64(n)
	if err == io.EOF && b.want >= 0 && b.n != b.want {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && b.stalled.Load() {
		// Cancelled: HTTP/1.1 may then end a chunked body with a plain EOF.
		err = fmt.Errorf("%w (%s without data)", ErrIdleTimeout, b.idleFor)
	}
	if err != nil && err != io.EOF {
		var se *StreamError
		if !errors.As(err, &se) {
			err = &StreamError{Method: b.method, Path: b.path, Read: b.n, Err: err}
		}
	}
	return n, err
}

func (b *bodyReader) Close() error {
	b.idle.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}
