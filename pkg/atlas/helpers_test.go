package atlas_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

const (
	testOrg   = "5f1a2b3c4d5e6f7a8b9c0d1e"
	testToken = "d9ab638a801efe182f98ae3e18ea4bb47b9fda808a28a8c7de205bb0e94f7d71"
	testInv   = "666acb8787ba43606905dcae"
)

// server is an httptest server on 127.0.0.1 that counts requests.
type server struct {
	*httptest.Server
	n atomic.Int64
}

func (s *server) requests() int { return int(s.n.Load()) }

func newServer(t testing.TB, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func newTLSServer(t testing.TB, h2 bool, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.n.Add(1)
		h(w, r)
	}))
	s.EnableHTTP2 = h2
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func newClient(t testing.TB, baseURL string, opts ...atlas.Option) *atlas.Client {
	t.Helper()
	opts = append([]atlas.Option{atlas.WithBaseURL(baseURL)}, opts...)
	c, err := atlas.NewClient(opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// fakeTime records the waits asked for and advances a fake clock by them,
// so retry tests do not wait.
type fakeTime struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func useFakeTime(c *atlas.Client) *fakeTime {
	ft := &fakeTime{now: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)}
	atlas.SetRetryHooks(c, ft.sleep, func(n int64) int64 { return n - 1 }, ft.clock)
	return ft
}

func (f *fakeTime) sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeTime) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) recorded() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func writeAPIError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":` + strconv.Itoa(status) + `,"errorCode":"` + code + `","detail":"test detail","reason":"` + http.StatusText(status) + `"}`))
}
