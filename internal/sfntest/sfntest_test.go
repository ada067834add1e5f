package sfntest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
)

// A small machine that exercises what the harness must get right: named
// errors matched by Retry and Catch, an hour-long Wait shortened, and a Fail
// state's ErrorPath/CausePath surfacing as the result.
const def = `{
  "StartAt": "Work",
  "States": {
    "Work": {
      "Type": "Task",
      "Resource": "arn:aws:lambda:us-east-1:123456789012:function:work",
      "Retry": [{"ErrorEquals": ["Test.Transient"], "IntervalSeconds": 60, "MaxAttempts": 3, "JitterStrategy": "FULL"}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
      "Next": "Nap"
    },
    "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
    "Done": {"Type": "Succeed"},
    "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"}
  }
}`

type plainError struct{}

func (plainError) Error() string { return "plain failure" }

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		failures    []error // returned by successive calls, then success
		wantErr     string
		wantCause   string
		wantCalls   int
		wantRetried int
	}{
		{name: "succeeds", wantCalls: 1},
		{
			name:      "retries a named error then succeeds",
			failures:  []error{&sfntest.Error{Name: "Test.Transient", Cause: "try again"}, &sfntest.Error{Name: "Test.Transient", Cause: "try again"}},
			wantCalls: 3, wantRetried: 2,
		},
		{
			name:     "retries are bounded",
			failures: repeat(&sfntest.Error{Name: "Test.Transient", Cause: "org x: still down"}, 4),
			wantErr:  "Test.Transient", wantCause: "org x: still down",
			wantCalls: 4, wantRetried: 3,
		},
		{
			name:     "a wrapped named error keeps its name",
			failures: []error{fmt.Errorf("work: %w", &sfntest.Error{Name: "Test.Fatal", Cause: "org y: gone"})},
			wantErr:  "Test.Fatal", wantCause: "work: org y: gone",
			wantCalls: 1,
		},
		{
			name:     "an unnamed error is named after its Go type",
			failures: []error{plainError{}},
			wantErr:  "plainError", wantCause: "plain failure",
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int32
			h := func(ctx context.Context, state string, input json.RawMessage) (json.RawMessage, error) {
				if state != "Work" {
					return nil, errors.New("unexpected state " + state)
				}
				i := int(n.Add(1)) - 1
				if i < len(tt.failures) {
					return nil, tt.failures[i]
				}
				return json.RawMessage(`{"done":true}`), nil
			}
			res := sfntest.Run(t, []byte(def), map[string]any{"x": 1}, h, sfntest.Options{})
			if res.Error != tt.wantErr || res.Cause != tt.wantCause {
				t.Errorf("error, cause = %q, %q; want %q, %q", res.Error, res.Cause, tt.wantErr, tt.wantCause)
			}
			if got := res.Calls["Work"]; got != tt.wantCalls {
				t.Errorf("Work called %d times, want %d", got, tt.wantCalls)
			}
			if res.Retried != tt.wantRetried {
				t.Errorf("retried %d times, want %d", res.Retried, tt.wantRetried)
			}
			if tt.wantErr == "" {
				if string(res.Output) != `{"done":true}` {
					t.Errorf("output = %s", res.Output)
				}
				if res.Entered["Nap"] != 1 || res.Transitions != 3 {
					t.Errorf("entered %v (transitions %d), want Work, Nap, Done once each", res.Entered, res.Transitions)
				}
			}
		})
	}
}

func TestRunPassesTaskInput(t *testing.T) {
	t.Parallel()
	var got json.RawMessage
	h := func(ctx context.Context, state string, input json.RawMessage) (json.RawMessage, error) {
		got = input
		return json.RawMessage(`{}`), nil
	}
	res := sfntest.Run(t, []byte(def), map[string]any{"orgId": "5f1a2b3c4d5e6f7a8b9c0d1e"}, h, sfntest.Options{})
	if !res.Succeeded() {
		t.Fatalf("failed: %s: %s", res.Error, res.Cause)
	}
	if string(got) != `{"orgId":"5f1a2b3c4d5e6f7a8b9c0d1e"}` {
		t.Errorf("task input = %s", got)
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	ok := func(ctx context.Context, input json.RawMessage) (json.RawMessage, error) { return input, nil }
	tests := []struct {
		name    string
		routes  sfntest.Routes
		wantErr string
	}{
		{"routed", sfntest.Routes{"Work": ok}, ""},
		{"missing route", sfntest.Routes{"Other": ok}, "Harness.NoRoute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := sfntest.Run(t, []byte(def), map[string]any{}, tt.routes.Handle, sfntest.Options{})
			if res.Error != tt.wantErr {
				t.Errorf("error = %q (%s), want %q", res.Error, res.Cause, tt.wantErr)
			}
		})
	}
}
