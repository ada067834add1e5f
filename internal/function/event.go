package function

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
)

// MaxEventBytes matches the Step Functions payload cap: a bigger event is a
// mistake, refused before any work.
const MaxEventBytes = 256 << 10

// The actions a call names: the state machine names one in every Task's
// Parameters (statemachine/export.asl.json).
const (
	ActionPlan        = "plan"         // request: the jobs it expands to (with execution: written to S3)
	ActionSubmit      = "submit"       // job: create its Cost Explorer query
	ActionPoll        = "poll"         // job: poll the query once, store the usage when ready
	ActionFetch       = "fetch"        // job: store the month's invoices
	ActionFocusSubmit = "focus-submit" // result: request the invoices' FOCUS reports
	ActionFocusPoll   = "focus-poll"   // result: poll the reports once, store the ready ones
	ActionSummarize   = "summarize"    // run: read every job's result back, summarize
)

// actions gives each action's payload field and the function that takes it.
// plan and summarize read and write the run's files in S3: fetch-invoice
// has that access, and the time and memory for a large run.
var actions = map[string]struct{ payload, fn string }{
	ActionPlan:        {"request", "fetch-invoice"},
	ActionSubmit:      {"job", "submit"},
	ActionPoll:        {"job", "poll"},
	ActionFetch:       {"job", "fetch-invoice"},
	ActionFocusSubmit: {"result", "submit"},
	ActionFocusPoll:   {"result", "poll"},
	ActionSummarize:   {"run", "fetch-invoice"},
}

// takesRequests are the functions that take a request without an action.
var takesRequests = []string{"submit", "fetch-invoice"}

// Event is a decoded input: its action and the one payload that goes with it.
type Event struct {
	Action  string          // "" for a request sent without an action
	Request *export.Request // plan, and an event without an action
	Job     *export.Job     // submit, poll, fetch
	Result  *export.Result  // focus-submit, focus-poll
	Run     *export.Run     // summarize
	// Execution is the state machine execution's name a plan is written
	// for ($$.Execution.Name); without one, plan answers the jobs.
	Execution string
}

// call is a state machine call: {"action": ..., and its payload}.
type call struct {
	Action    string          `json:"action"`
	Request   json.RawMessage `json:"request,omitempty"`
	Job       json.RawMessage `json:"job,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Run       json.RawMessage `json:"run,omitempty"`
	Execution string          `json:"execution,omitempty"`
}

// eventBridge is an EventBridge rule's event. Only detail (the request) and
// time (when it was scheduled) are read: the other fields (version, id,
// detail-type, source, account, region, resources) describe the event.
type eventBridge struct {
	Time   string          `json:"time"`
	Detail json.RawMessage `json:"detail"`
}

// Decode reads what the function fn ("submit", "poll" or "fetch-invoice")
// was given, by these rules:
//
//  1. More than MaxEventBytes is refused; empty or null is {}.
//  2. An object with "action" is a call: {"action": "plan", "request": {...}}
//     (with "execution": NAME from the state machine),
//     {"action": "submit"|"poll"|"fetch", "job": {...}},
//     {"action": "focus-submit"|"focus-poll", "result": {...}} or
//     {"action": "summarize", "run": {...}}, and fn must be the function
//     that takes that action (actions).
//  3. Any other object is a request (rule 4), which only submit and
//     fetch-invoice take: a test event typed in the console, the
//     Scheduler's input.
//  4. A request is read as an EventBridge rule's event when it has
//     "detail": the detail is the request, and the event's time its
//     scheduledTime unless it has one. A plan call's request is read by this
//     rule too (it is the state machine's input).
//
// Unknown fields are refused, and so are names that match a field only
// without regard to case: a typo such as "orgid" must not silently export
// the default. Every error is an Input.Invalid that quotes little of the
// input.
func Decode(fn string, raw []byte) (Event, error) {
	if len(raw) > MaxEventBytes {
		return Event{}, invalid("event is %d bytes, more than the %d a state machine payload may carry", len(raw), MaxEventBytes)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(orEmpty(raw), &keys); err != nil {
		return Event{}, invalid("event is not a JSON object: %v", jsonProblem(err))
	}
	if _, ok := keys["action"]; !ok {
		if !slices.Contains(takesRequests, fn) {
			return Event{}, invalid("the %s function takes a call such as {\"action\": \"poll\", \"job\": {...}}, not a request", fn)
		}
		req, err := decodeRequest(raw)
		return Event{Request: req}, err
	}
	var c call
	if err := strict(raw, &c); err != nil {
		return Event{}, err
	}
	a, ok := actions[c.Action]
	if !ok || a.fn != fn {
		return Event{}, invalid("the %s function does not take the action %.40q", fn, c.Action)
	}
	payload := map[string]json.RawMessage{"request": c.Request, "job": c.Job, "result": c.Result, "run": c.Run}[a.payload]
	if len(payload) == 0 || len(c.Request)+len(c.Job)+len(c.Result)+len(c.Run) != len(payload) {
		return Event{}, invalid("a %s call carries a %s, and nothing else", c.Action, a.payload)
	}
	if c.Execution != "" && c.Action != ActionPlan {
		return Event{}, invalid("only a plan call names an execution")
	}
	ev := Event{Action: c.Action, Execution: c.Execution}
	var err error
	switch a.payload {
	case "request":
		ev.Request, err = decodeRequest(payload)
	case "job":
		ev.Job = new(export.Job)
		err = strict(payload, ev.Job)
	case "run":
		ev.Run = new(export.Run)
		err = strict(payload, ev.Run)
	default:
		ev.Result = new(export.Result)
		err = strict(payload, ev.Result)
	}
	if err != nil {
		return Event{}, err
	}
	return ev, nil
}

// Call is the event the state machine sends to run action on payload (a
// request, job or result as JSON), and the function it goes to.
func Call(action string, payload json.RawMessage) (fn string, event []byte, err error) {
	a, ok := actions[action]
	if !ok {
		return "", nil, invalid("unknown action %.40q: want plan, submit, poll, fetch, focus-submit, focus-poll or summarize", action)
	}
	c := call{Action: action}
	switch payload = orEmpty(payload); a.payload {
	case "request":
		c.Request = payload
	case "job":
		c.Job = payload
	case "run":
		c.Run = payload
	default:
		c.Result = payload
	}
	event, err = json.Marshal(c)
	return a.fn, event, err
}

// decodeRequest reads a request, unwrapping an EventBridge event once:
// nested events would each re-parse the rest, quadratic work for a 256 KiB
// event, so a detail is read as a plain request.
func decodeRequest(raw []byte) (*export.Request, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(orEmpty(raw), &keys); err != nil {
		return nil, invalid("request is not a JSON object: %v", jsonProblem(err))
	}
	var req export.Request
	if _, ok := keys["detail"]; !ok {
		return &req, strict(raw, &req)
	}
	var ev eventBridge
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, invalid("EventBridge event: %v", jsonProblem(err))
	}
	if err := strict(ev.Detail, &req); err != nil {
		return nil, err
	}
	req.ScheduledTime = cmp.Or(req.ScheduledTime, ev.Time)
	return &req, nil
}

// strict decodes one JSON object into v, refusing unknown fields, keys that
// match a field only case-insensitively (encoding/json would take "orgid"
// for "orgId"), and trailing data.
func strict(raw []byte, v any) error {
	raw = orEmpty(raw)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return invalid("event: %v", jsonProblem(err))
	}
	t := reflect.TypeOf(v).Elem()
	known := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	for k := range keys {
		if !known[k] {
			return invalid("event: unknown field %.40q", k)
		}
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
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		// Value quotes a number as sent, however long: cut it too.
		return fmt.Sprintf("field %.40q must be %s, not %.40s", typ.Field, typ.Type, typ.Value)
	}
	return fmt.Sprintf("%.120s", err.Error())
}

func orEmpty(raw []byte) []byte {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return []byte("{}")
	}
	return raw
}

func invalid(format string, args ...any) error {
	return &export.Error{Name: export.InputInvalid, Msg: fmt.Sprintf(format, args...)}
}
