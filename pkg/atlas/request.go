package atlas

import (
	"bytes"
	"context"
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

// maxJSONBody bounds JSON answers read into memory (a page of 500 invoices is
// far smaller).
const maxJSONBody = 32 << 20

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
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("atlas: %s %s: waiting to retry (last error: %v): %w", r.method, r.shown(), errText(err, apiErr), err)
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
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	u.RawQuery = q.Encode()

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
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, tok, fmt.Errorf("atlas: %s %s: %w", r.method, r.shown(), err)
	}
	req.Header.Set("Accept", r.accept)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if r.body != nil {
		ct := mediaJSON
		if r.ctype != "" {
			ct = r.ctype
		}
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if got102.Load() || gotHeaders.Load() && endStream1xx(err) {
		if resp != nil {
			resp.Body.Close()
		}
		return &response{processing: true}, tok, nil
	}
	if err != nil {
		// url.Error repeats the whole URL; the path is shown instead.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, tok, fmt.Errorf("atlas: %s %s: %w", r.method, r.shown(), err)
	}
	b := &bodyReader{rc: resp.Body, method: r.method, path: r.shown(), want: resp.ContentLength}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, tok, c.readError(resp, b, r)
	}
	res, err := c.success(resp, b, r)
	if err != nil {
		b.Close()
	}
	return res, tok, err
}

// success handles a 2xx answer: checks the media type, and either reads the
// JSON payload or hands the body over.
func (c *Client) success(resp *http.Response, b *bodyReader, r *request) (*response, error) {
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	mt = strings.ToLower(mt)
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	wantErr := func() error { return &MediaTypeError{Method: r.method, Path: r.shown(), Want: r.accept, Got: ct} }

	if !r.stream {
		if !isJSON {
			return nil, wantErr()
		}
		data, err := readAllLimit(b, maxJSONBody)
		if err != nil {
			return nil, err
		}
		return &response{data: data, contentType: ct}, nil
	}

	if mt != r.accept {
		return nil, wantErr()
	}
	return &response{body: b, contentType: ct}, nil
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

func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("atlas: response body larger than %d bytes", limit)
	}
	return data, nil
}

// bodyReader makes a body that ends early an error the reader sees: a short
// read against Content-Length becomes io.ErrUnexpectedEOF, and every read
// error is a *StreamError naming the request.
type bodyReader struct {
	rc     io.ReadCloser
	method string
	path   string
	n      int64
	want   int64 // Content-Length, -1 if unknown
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	if err == io.EOF && b.want >= 0 && b.n != b.want {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		var se *StreamError
		if !errors.As(err, &se) {
			err = &StreamError{Method: b.method, Path: b.path, Read: b.n, Err: err}
		}
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.rc.Close() }
