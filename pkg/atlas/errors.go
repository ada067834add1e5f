package atlas

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is an error answer from the Atlas Admin API (an ApiError body), or a
// non-2xx answer whose body was not an ApiError.
type Error struct {
	StatusCode int
	ErrorCode  string // e.g. RESOURCE_NOT_FOUND, RATE_LIMITED
	Detail     string
	Reason     string
	Parameters []any
	// BadRequest lists the field violations of a 400, when Atlas sends them.
	BadRequest []FieldViolation
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
	Method     string
	Path       string // request path, with the Cost Explorer token shortened

	staleNonce bool // a 401 whose Digest challenge says stale=true
	expired    bool // a report download refused because its URL expired
}

// FieldViolation is one entry of an ApiError's badRequestDetail.
type FieldViolation struct {
	Field       string `json:"field"`
	Description string `json:"description"`
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("atlas: ")
	if e.Method != "" {
		b.WriteString(e.Method + " " + e.Path + ": ")
	}
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.ErrorCode != "" {
		b.WriteString(" " + e.ErrorCode)
	} else if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// IsNotFound reports whether err is (or wraps) a 404 *Error.
func IsNotFound(err error) bool {
	return hasStatus(err, func(c int) bool { return c == http.StatusNotFound })
}

// IsUnauthorized reports whether err is (or wraps) a 401 *Error.
func IsUnauthorized(err error) bool {
	return hasStatus(err, func(c int) bool { return c == http.StatusUnauthorized })
}

// IsForbidden reports whether err is (or wraps) a 403 *Error.
func IsForbidden(err error) bool {
	return hasStatus(err, func(c int) bool { return c == http.StatusForbidden })
}

// IsExpired reports whether err is (or wraps) a report download refused
// because its pre-signed URL expired: create the report again.
func IsExpired(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.expired
}

// IsRateLimited reports whether err is (or wraps) a 429 *Error.
func IsRateLimited(err error) bool {
	return hasStatus(err, func(c int) bool { return c == http.StatusTooManyRequests })
}

// IsServerError reports whether err is (or wraps) a 5xx *Error.
func IsServerError(err error) bool {
	return hasStatus(err, func(c int) bool { return c >= 500 && c <= 599 })
}

func hasStatus(err error, f func(int) bool) bool {
	var e *Error
	return errors.As(err, &e) && f(e.StatusCode)
}

// ErrTooManyAttempts is matched (errors.Is) by a *RetryError: the retry budget
// ran out.
var ErrTooManyAttempts = errors.New("atlas: retries exhausted")

// RetryError is returned when the retry budget (attempts or elapsed time) ran
// out. It wraps the last error, so errors.As still finds the *Error, and it
// matches ErrTooManyAttempts.
type RetryError struct {
	Attempts int
	Elapsed  time.Duration
	Err      error // the last attempt's error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("atlas: gave up after %d attempts in %s: %v", e.Attempts, e.Elapsed.Round(time.Millisecond), e.Err)
}

func (e *RetryError) Unwrap() []error { return []error{ErrTooManyAttempts, e.Err} }

// StreamError is a response body that broke after the response was handed to
// the caller (connection reset, fewer bytes than Content-Length, timeout):
// the data read so far is incomplete and must not be kept.
type StreamError struct {
	Method, Path string
	Read         int64 // bytes read before the failure
	Err          error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("atlas: reading body of %s %s: broken after %d bytes: %v", e.Method, e.Path, e.Read, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// ErrIdleTimeout is matched (errors.Is) by a *StreamError of a body that sent
// nothing for the client's idle timeout (WithIdleTimeout). Like any broken
// body it is worth another attempt.
var ErrIdleTimeout error = idleTimeout{}

type idleTimeout struct{}

func (idleTimeout) Error() string   { return "atlas: response body idle timeout" }
func (idleTimeout) Timeout() bool   { return true } // a net.Error timeout: retried
func (idleTimeout) Temporary() bool { return true }

// IsStreamBroken reports whether err is (or wraps) a *StreamError.
func IsStreamBroken(err error) bool {
	var e *StreamError
	return errors.As(err, &e)
}

// MediaTypeError is a 2xx answer whose Content-Type is not the one asked for
// (for example an HTML page from a proxy instead of the CSV).
type MediaTypeError struct {
	Method, Path string
	Want, Got    string
}

func (e *MediaTypeError) Error() string {
	return fmt.Sprintf("atlas: %s %s: got Content-Type %q, want %q", e.Method, e.Path, e.Got, e.Want)
}

// AnswerError is a 2xx answer that is not what the operation returns: not
// JSON of the expected shape, more entries than asked for, an entry without
// a valid id, or larger than its bound. Nothing of it is used.
type AnswerError struct {
	Method, Path string
	Reason       string
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("atlas: %s %s: unusable answer: %s", e.Method, e.Path, e.Reason)
}

// ValidationError is an argument rejected before any request was sent.
// Reason never contains credentials.
type ValidationError struct {
	Field, Reason string
}

func (e *ValidationError) Error() string { return "atlas: invalid " + e.Field + ": " + e.Reason }

// apiError is the wire form of ApiError. "error" is the status code, but the
// OAuth token endpoint sends a string there, so it is decoded loosely.
type apiError struct {
	Error            json.RawMessage `json:"error"`
	ErrorCode        string          `json:"errorCode"`
	Detail           *string         `json:"detail"`
	Reason           *string         `json:"reason"`
	Parameters       []any           `json:"parameters"`
	BadRequestDetail *struct {
		Fields []FieldViolation `json:"fields"`
	} `json:"badRequestDetail"`
	// OAuth 2.0 error answers (RFC 6749 section 5.2).
	ErrorDescription string `json:"error_description"`
}

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// decodeError builds an *Error from an HTTP status and a body that may or may
// not be an ApiError.
func decodeError(status int, body []byte) *Error {
	e := &Error{StatusCode: status}
	var a apiError
	if err := json.Unmarshal(body, &a); err != nil {
		return e
	}
	var oauthCode string
	if len(a.Error) > 0 && a.Error[0] == '"' {
		_ = json.Unmarshal(a.Error, &oauthCode)
	}
	e.ErrorCode = clean(cmp.Or(a.ErrorCode, oauthCode), 128)
	if a.Detail != nil {
		e.Detail = clean(*a.Detail, 1024)
	} else {
		e.Detail = clean(a.ErrorDescription, 1024)
	}
	if a.Reason != nil {
		e.Reason = clean(*a.Reason, 256)
	}
	e.Parameters = a.Parameters
	if a.BadRequestDetail != nil {
		e.BadRequest = a.BadRequestDetail.Fields
	}
	return e
}

// clean keeps error text to one bounded line, so a hostile body cannot forge
// log lines or grow messages without bound.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(min(max(n, 0), 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
