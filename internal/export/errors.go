package export

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Error names a failure so a Step Functions Retry or Catch can match it. The
// names are stable: the state machine and the README list them.
const (
	InputInvalid          = "Input.Invalid"
	ConfigInvalid         = "Config.Invalid"
	SecretUnavailable     = "Secret.Unavailable"
	SecretInvalid         = "Secret.Invalid"
	AtlasRateLimited      = "Atlas.RateLimited"
	AtlasServerError      = "Atlas.ServerError"
	AtlasStreamBroken     = "Atlas.StreamBroken"
	AtlasNotFound         = "Atlas.NotFound"
	AtlasUnauthorized     = "Atlas.Unauthorized"
	AtlasForbidden        = "Atlas.Forbidden"
	AtlasBadRequest       = "Atlas.BadRequest"
	AtlasError            = "Atlas.Error"
	AtlasReportFailed     = "Atlas.ReportFailed"
	PollAttemptsExhausted = "Poll.AttemptsExhausted"
	StorageError          = "Storage.Error"
)

// Error is a failure with a stable name. Its message names the org (and the
// period) so that the execution's cause says where it happened.
type Error struct {
	Name string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorName is what the Lambda runtime reports as errorType.
func (e *Error) ErrorName() string { return e.Name }

// Name returns the stable name of err: its own if it has one, else the name
// its cause maps to.
func Name(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Name
	}
	return classify(err)
}

func invalid(format string, args ...any) *Error {
	return &Error{Name: InputInvalid, Msg: fmt.Sprintf(format, args...)}
}

// wrap gives err a name from what it is, keeping a name it already has, with
// msg saying what was being done.
func wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	return &Error{Name: Name(err), Msg: msg, Err: err}
}

func classify(err error) string {
	var (
		apiErr *atlas.Error
		valErr *atlas.ValidationError
	)
	switch {
	case errors.As(err, &valErr):
		return InputInvalid
	case atlas.IsStreamBroken(err):
		return AtlasStreamBroken
	case errors.As(err, &apiErr):
		switch {
		case atlas.IsRateLimited(err):
			return AtlasRateLimited
		case atlas.IsServerError(err):
			return AtlasServerError
		case atlas.IsNotFound(err):
			return AtlasNotFound
		case atlas.IsUnauthorized(err):
			return AtlasUnauthorized
		case atlas.IsForbidden(err):
			return AtlasForbidden
		case apiErr.StatusCode == 400:
			return AtlasBadRequest
		}
		return AtlasError
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return AtlasStreamBroken
	}
	return AtlasError
}

// truncate cuts s to at most n bytes, on a rune boundary, and says so: a
// message stays short whatever a caller or Atlas sent.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// shown bounds a value quoted back in an error.
const shown = 64
