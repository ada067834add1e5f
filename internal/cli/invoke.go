package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"
)

// Steps are the steps `invoke` runs: the actions the state machine's calls name.
var Steps = []string{"plan", "submit", "poll", "fetch", "focus-submit", "focus-poll"}

// maxEvent is Lambda's synchronous payload limit: an event larger than this could never reach a function.
const maxEvent = 6 << 20

// NamedError is an error that carries the errorType the functions report (e.g. "Atlas.NotFound").
type NamedError interface {
	error
	ErrorName() string
}

var invokeCommand = &command{
	name:    "invoke",
	args:    "STEP EVENT",
	summary: "run one step of the functions (plan, submit, poll, fetch, focus-submit, focus-poll) with a JSON event",
	about: `
Run one function step here and print the handler's JSON output on stdout, exactly as the Lambda
function returns it to the state machine. STEP is the action the state machine's call names: plan
(EVENT is a request), submit, poll or fetch (EVENT is a job, as plan or the step before returned it),
focus-submit or focus-poll (EVENT is fetch's result). The call {"action": STEP, "request"|"job"|"result":
EVENT} goes to the function that takes it. EVENT is a JSON string, @FILE to read it from a file, or - to
read it from stdin.

The configuration is the functions' environment (ABX_BUCKET, ABX_PREFIX, ABX_SECRET_ARN,
ABX_ATLAS_BASE_URL, ABX_ORG_IDS, ABX_KMS_KEY_ID, ABX_MAX_POLL_ATTEMPTS, ABX_S3_ENDPOINT), each
overridden by its flag; ABX_BUCKET with ABX_PREFIX (default atlas-billing) stands for --out
s3://BUCKET/PREFIX. Atlas credentials come from the MONGODB_ATLAS_* variables as for run, or the
secret. On failure it prints one line "error: <ErrorName>: <message>" on stderr and exits 1.`,
	example: `
` + progName + ` invoke plan '{"period":"2024-06"}'
` + progName + ` invoke poll @job.json --out s3://my-lake/atlas-billing
echo '{"orgId":"5f1a2b3c4d5e6f7a8b9c0d1e","period":{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"}}' | ` + progName + ` invoke fetch -`,
	setup: setupInvoke,
}

func setupInvoke(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var cf configFlags
	cf.define(fs, "local `FOLDER` or s3://bucket/prefix to write to (env "+EnvBucket+" and "+EnvPrefix+")")
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 2 {
			return usagef("invoke needs STEP and EVENT, got %d argument(s)", len(pos))
		}
		step := pos[0]
		if !validStep(step) {
			return usagef("unknown step %q: want %s", step, strings.Join(Steps, ", "))
		}
		event, err := a.readEvent(pos[1])
		if err != nil {
			return err
		}
		// plan only reads configuration; every other step calls Atlas.
		cfg, err := cf.resolve(fs, a.Getenv, step != "plan", true)
		if err != nil {
			return err
		}
		if a.NewInvoker == nil {
			return errNotWired
		}
		inv, err := a.NewInvoker(ctx, InvokeOptions{Config: cfg})
		if err != nil {
			return &stepError{err}
		}
		out, err := inv.Invoke(ctx, step, event)
		if err != nil {
			return &stepError{err}
		}
		_, err = a.Stdout.Write(append(out, '\n'))
		return err
	}
}

func validStep(s string) bool {
	for _, v := range Steps {
		if s == v {
			return true
		}
	}
	return false
}

// readEvent reads EVENT: inline JSON, @file, or - for stdin. It must be one valid JSON value.
func (a *App) readEvent(arg string) (json.RawMessage, error) {
	var r io.Reader
	var what string
	switch {
	case arg == "-":
		r, what = a.Stdin, "stdin"
	case strings.HasPrefix(arg, "@"):
		f, err := os.Open(arg[1:])
		if err != nil {
			return nil, usagef("event file: %v", err)
		}
		defer f.Close()
		r, what = f, arg[1:]
	default:
		r, what = strings.NewReader(arg), "the event argument"
	}
	b, err := io.ReadAll(io.LimitReader(r, maxEvent+1))
	if err != nil {
		return nil, usagef("read event from %s: %v", what, err)
	}
	if len(b) > maxEvent {
		return nil, usagef("event from %s is larger than %d bytes", what, maxEvent)
	}
	if !json.Valid(b) {
		return nil, usagef("event from %s is not valid JSON", what)
	}
	return json.RawMessage(b), nil
}

// stepError prints a step's failure the way Lambda reports it: "<ErrorName>: <message>".
type stepError struct{ err error }

func (e *stepError) Unwrap() error { return e.err }

func (e *stepError) Error() string {
	name, msg := ErrorName(e.err)
	return name + ": " + msg
}

// ErrorName gives the errorType and errorMessage Lambda would report for err: a
// messages.InvokeResponse_Error's Type, a NamedError's ErrorName, else (as aws-lambda-go does) the
// Go type name of the error.
func ErrorName(err error) (name, msg string) {
	var ire messages.InvokeResponse_Error
	if errors.As(err, &ire) {
		return ire.Type, ire.Message
	}
	var pire *messages.InvokeResponse_Error
	if errors.As(err, &pire) && pire != nil {
		return pire.Type, pire.Message
	}
	msg = err.Error()
	var ne NamedError
	if errors.As(err, &ne) {
		name = ne.ErrorName()
		return name, strings.TrimPrefix(msg, name+": ")
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name(), msg
}
