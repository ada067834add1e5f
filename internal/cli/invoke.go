package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
)

// maxEvent is Lambda's synchronous payload limit: an event larger than this could never reach a function.
const maxEvent = 6 << 20

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

The configuration is the functions' (ABX_BUCKET, ABX_PREFIX, ABX_SECRET_ARN, ABX_ATLAS_BASE_URL,
ABX_ORG_IDS, ABX_KMS_KEY_ID, ABX_MAX_POLL_ATTEMPTS, ABX_FOCUS_REPORTS, ABX_STRICT_WARNINGS, ABX_S3_ENDPOINT), read by the
same rules, each overridden by its flag; ABX_BUCKET with ABX_PREFIX (default atlas-billing) stands for
--out s3://BUCKET/PREFIX. Atlas credentials come from the MONGODB_ATLAS_* variables as for run, or the
secret. The output is indented; with --json on one line, with --quiet not printed. On failure it prints
one line "error: <ErrorName>: <message>" on stderr and exits 2 for Input.Invalid and Config.Invalid, 1
for any other error.`,
	example: `
` + progName + ` invoke plan '{"period":"2024-06"}'
` + progName + ` invoke poll @job.json --out s3://my-lake/atlas-billing
echo '{"orgId":"5f1a2b3c4d5e6f7a8b9c0d1e","period":{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"}}' | ` + progName + ` invoke fetch -`,
	setup: setupInvoke,
}

func setupInvoke(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var s settings
	s.define(fs)
	return func(ctx context.Context, pos []string) error {
		if len(pos) != 2 {
			return usagef("invoke needs STEP and EVENT, got %d argument(s)", len(pos))
		}
		if _, _, err := function.Call(pos[0], nil); err != nil {
			return usagef("unknown step %.40q: want plan, submit, poll, fetch, focus-submit or focus-poll", pos[0])
		}
		event, err := a.readEvent(pos[1])
		if err != nil {
			return err
		}
		fn, call, err := function.Call(pos[0], event)
		if err != nil {
			return err
		}
		cfg, err := s.config(a.Getenv)
		if err != nil {
			return err
		}
		// plan asks Atlas nothing (it reads a named secret); every other step calls Atlas.
		exp, err := s.exporter(ctx, cfg, pos[0] != function.ActionPlan, a.Getenv)
		if err != nil {
			return err
		}
		out, err := (&function.Handlers{Exporter: exp}).Handler(fn)(ctx, call)
		var lambdaErr messages.InvokeResponse_Error
		if errors.As(err, &lambdaErr) {
			return &export.Error{Name: lambdaErr.Type, Msg: lambdaErr.Message}
		}
		p := a.printer()
		p.JSON(out)
		p.Human(func(w io.Writer) {
			b, _ := json.MarshalIndent(out, "", "  ") // the handler's answer: JSON by construction
			w.Write(append(b, '\n'))
		})
		return nil
	}
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
