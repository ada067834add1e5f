package export

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// The call's deadline (a Lambda's) passing before Atlas's answer arrives, or
// while the client waits to retry, ends the step with a name the state
// machine retries, Atlas.StreamBroken, not Atlas.Error. (A deadline in the
// middle of a body is a *StreamError, tested elsewhere.)
func TestDeadlineIsRetryable(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"before the headers": func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // so the server sees the client go
			select {                           // never answers; bounded for the server's Close
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		},
		"waiting to retry": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":429,"errorCode":"RATE_LIMITED"}`))
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			client, err := atlas.NewClient(atlas.WithBaseURL(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err = newExporter(t, client).Submit(ctx, Job{OrgID: orgA, Period: period.Month(2024, time.June)})
			if !errors.Is(err, context.DeadlineExceeded) || Name(err) != AtlasStreamBroken {
				t.Fatalf("err = %v named %s, want a deadline named %s", err, Name(err), AtlasStreamBroken)
			}
		})
	}
}
