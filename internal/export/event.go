package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// MaxEventBytes matches the Step Functions payload cap: a bigger event is a
// mistake, refused before any work.
const MaxEventBytes = 256 << 10

// Request is what a person or a schedule asks for. Every field is optional:
// {} exports the previous month for the configured orgs.
type Request struct {
	OrgIDs                []string `json:"orgIds,omitempty"`
	OrgID                 string   `json:"orgId,omitempty"`
	Period                string   `json:"period,omitempty"`    // YYYY-MM | previous-month | month-to-date
	StartDate             string   `json:"startDate,omitempty"` // YYYY-MM-DD, first of a month
	EndDate               string   `json:"endDate,omitempty"`   // YYYY-MM-DD, first of a month, exclusive
	ScheduledTime         string   `json:"scheduledTime,omitempty"`
	Services              []string `json:"services,omitempty"`
	Projects              []string `json:"projects,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	GroupBy               string   `json:"groupBy,omitempty"`
	IncludePartialMatches bool     `json:"includePartialMatches,omitempty"`
	IncludePending        bool     `json:"includePending,omitempty"`
	InvoiceID             string   `json:"invoiceId,omitempty"`
	// Focus asks for Atlas's FOCUS report of each invoice; unset takes the
	// configured default (on unless ABX_FOCUS_REPORTS=false).
	Focus *bool `json:"focus,omitempty"`
}

// Filters narrow a Cost Explorer query.
type Filters struct {
	Services              []string `json:"services,omitempty"`
	Projects              []string `json:"projects,omitempty"`
	Clusters              []string `json:"clusters,omitempty"`
	GroupBy               string   `json:"groupBy,omitempty"`
	IncludePartialMatches bool     `json:"includePartialMatches,omitempty"`
}

// Job is the export of one org for one month. It travels through the state
// machine from Submit to FetchInvoices, each step adding what the next needs.
type Job struct {
	OrgID          string        `json:"orgId"`
	Period         period.Period `json:"period"`
	Filters        Filters       `json:"filters"`
	IncludePending bool          `json:"includePending,omitempty"`
	InvoiceID      string        `json:"invoiceId,omitempty"`
	Focus          bool          `json:"focus,omitempty"`
	MaxAttempts    int           `json:"maxAttempts"`

	Token       string       `json:"token,omitempty"`
	Status      string       `json:"status,omitempty"`
	WaitSeconds int          `json:"waitSeconds,omitempty"`
	Attempt     int          `json:"attempt"`
	Usage       *sink.Object `json:"usage,omitempty"`
	// UsageNormalized is the usage rewritten for Athena (internal/normalize).
	UsageNormalized *sink.Object `json:"usageNormalized,omitempty"`
	// UsageServices is the usage's exact total per service, decimal text,
	// counted while it streamed (none when it could not be normalized).
	UsageServices map[string]string `json:"usageServices,omitempty"`
	// Warnings are the problems that did not fail a step.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Statuses of a Job.
const (
	StatusSubmitted  = "SUBMITTED"
	StatusProcessing = "PROCESSING"
	StatusReady      = "READY"
)

// Plan is the list of jobs a Request expands to.
type Plan struct {
	Jobs []Job `json:"jobs"`
}

// Result is what FetchInvoices returns for one job: every object written.
// With FOCUS reports asked for, SubmitFocus and PollFocus carry it on, the
// way Submit and Poll carry a Job, adding the reports' objects.
type Result struct {
	OrgID   string        `json:"orgId"`
	Period  period.Period `json:"period"`
	Objects []sink.Object `json:"objects"`

	Focus       bool     `json:"focus"`
	Reports     []Report `json:"reports"`
	Status      string   `json:"status,omitempty"`
	WaitSeconds int      `json:"waitSeconds,omitempty"`
	Attempt     int      `json:"attempt"`
	MaxAttempts int      `json:"maxAttempts"`
	// UsageServices is the job's (Job.UsageServices).
	UsageServices map[string]string `json:"usageServices,omitempty"`
	// Warnings are the problems that did not fail a step, the job's first.
	Warnings []Warning `json:"warnings,omitempty"`
}

// envelope is an EventBridge event: a rule target gets the whole event, with
// the request in detail and the schedule's time in time.
type envelope struct {
	DetailType string          `json:"detail-type"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

// planCall is how the state machine asks the submit function for a plan.
type planCall struct {
	Action  string          `json:"action"`
	Request json.RawMessage `json:"request"`
}

// focusCall is how the state machine hands a Result to the FOCUS steps.
type focusCall struct {
	Action string          `json:"action"`
	Result json.RawMessage `json:"result"`
}

// SubmitEvent is what the submit and poll functions can be given: a plan
// call or a FOCUS call from the state machine, a Job, or a Request (console
// test event, schedule, EventBridge).
type SubmitEvent struct {
	Plan    bool
	Focus   *Result
	Job     *Job
	Request *Request
}

// DecodeSubmit sorts out which kind of event the submit function got.
func DecodeSubmit(raw []byte) (SubmitEvent, error) {
	if err := checkSize(raw); err != nil {
		return SubmitEvent{}, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(bytesOrEmpty(raw), &probe); err != nil {
		return SubmitEvent{}, invalid("event is not a JSON object: %v", jsonProblem(err))
	}
	switch {
	case probe["action"] != nil:
		var action struct{ Action string }
		if err := json.Unmarshal(probe["action"], &action.Action); err != nil {
			return SubmitEvent{}, invalid("action must be a string")
		}
		if action.Action == "focus" {
			var c focusCall
			if err := strictDecode(raw, &c); err != nil {
				return SubmitEvent{}, err
			}
			var r Result
			if err := strictDecode(c.Result, &r); err != nil {
				return SubmitEvent{}, err
			}
			if err := r.validate(); err != nil {
				return SubmitEvent{}, err
			}
			return SubmitEvent{Focus: &r}, nil
		}
		var c planCall
		if err := strictDecode(raw, &c); err != nil {
			return SubmitEvent{}, err
		}
		if c.Action != "plan" {
			return SubmitEvent{}, invalid("unknown action %q: want \"plan\" or \"focus\"", truncate(c.Action))
		}
		req, err := DecodeRequest(c.Request)
		if err != nil {
			return SubmitEvent{}, err
		}
		return SubmitEvent{Plan: true, Request: &req}, nil
	case probe["period"] != nil && isObject(probe["period"]):
		job, err := DecodeJob(raw)
		if err != nil {
			return SubmitEvent{}, err
		}
		return SubmitEvent{Job: &job}, nil
	default:
		req, err := DecodeRequest(raw)
		if err != nil {
			return SubmitEvent{}, err
		}
		return SubmitEvent{Request: &req}, nil
	}
}

// DecodeRequest reads a Request, unwrapping an EventBridge event. Unknown
// fields are refused: a typo such as "orgid" must not silently export the
// default org.
func DecodeRequest(raw []byte) (Request, error) {
	return decodeRequest(raw, true)
}

// decodeRequest unwraps at most one EventBridge event: nested ones would
// each re-parse the rest, quadratic work for a 256 KiB event.
func decodeRequest(raw []byte, unwrap bool) (Request, error) {
	if err := checkSize(raw); err != nil {
		return Request{}, err
	}
	raw = bytesOrEmpty(raw)
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Request{}, invalid("event is not a JSON object: %v", jsonProblem(err))
	}
	if unwrap && probe["detail-type"] != nil {
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			return Request{}, invalid("EventBridge event: %v", jsonProblem(err))
		}
		req, err := decodeRequest(env.Detail, false)
		if err != nil {
			return Request{}, err
		}
		if req.ScheduledTime == "" {
			req.ScheduledTime = env.Time
		}
		return req, nil
	}
	var req Request
	if err := strictDecode(raw, &req); err != nil {
		return Request{}, err
	}
	return req, nil
}

// DecodeJob reads the Job the state machine passes between steps.
func DecodeJob(raw []byte) (Job, error) {
	if err := checkSize(raw); err != nil {
		return Job{}, err
	}
	var j Job
	if err := strictDecode(raw, &j); err != nil {
		return Job{}, err
	}
	if err := j.validate(); err != nil {
		return Job{}, err
	}
	return j, nil
}

func checkSize(raw []byte) error {
	if len(raw) > MaxEventBytes {
		return invalid("event is %d bytes, more than the %d a state machine payload may carry", len(raw), MaxEventBytes)
	}
	return nil
}

func strictDecode(raw []byte, v any) error {
	raw = bytesOrEmpty(raw)
	if err := exactKeys(raw, reflect.TypeOf(v).Elem()); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("event: %v", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("event: trailing data after the JSON object")
	}
	return nil
}

// jsonProblem keeps decoder errors short and free of echoed input.
// exactKeys refuses a key that matches a field only case-insensitively:
// encoding/json would take "orgid" for "orgId", and so would hide a typo.
func exactKeys(raw []byte, t reflect.Type) error {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return invalid("event: %v", jsonProblem(err))
	}
	known := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	for k := range keys {
		if !known[k] {
			return invalid("event: unknown field %q", truncate(k))
		}
	}
	return nil
}

func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		// Value quotes a number as sent, however long: cut it too.
		return fmt.Sprintf("field %q must be %s, not %s", truncate(typ.Field), typ.Type, truncate(typ.Value))
	}
	return truncate(err.Error())
}

func bytesOrEmpty(raw []byte) []byte {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return []byte("{}")
	}
	return raw
}

func isObject(raw json.RawMessage) bool {
	return strings.HasPrefix(strings.TrimSpace(string(raw)), "{")
}

// truncate keeps messages short whatever a caller sends.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
