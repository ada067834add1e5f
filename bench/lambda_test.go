//go:build bench

package bench

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// lambdaTimeout bounds one process's whole run (a 1 GiB stream included).
const lambdaTimeout = 10 * time.Minute

// runLambda runs bin once under a local Lambda Runtime API with the events
// (testenv.RunTimed: the process is killed once it asks for the event after
// the last; with no events, at its first request, which is a cold start).
// env is added to a clean Lambda-like environment. Any failed invocation
// fails the benchmark: a figure of a broken run means nothing.
func runLambda(t testing.TB, bin string, env []string, events ...json.RawMessage) testenv.Timed {
	t.Helper()
	run := testenv.RunTimed(t, bin, env, lambdaTimeout, events...)
	for i, inv := range run.Invocations {
		if inv.Failed() {
			t.Fatalf("%s: event %d failed: %s: %s; output:\n%s", filepath.Base(filepath.Dir(bin)), i, inv.ErrorType, inv.ErrorMessage, run.Output)
		}
	}
	return run
}
