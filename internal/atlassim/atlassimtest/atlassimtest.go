// Package atlassimtest starts the Atlas simulator for tests, on 127.0.0.1
// free ports, stopped in t.Cleanup: the API host, and the download host that
// serves invoice report downloads on a second port (its URL is
// Server.DownloadBaseURL).
package atlassimtest

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

// Start serves a simulator built from cfg over plain HTTP/1.1 and returns it
// with its base URL (http://127.0.0.1:PORT). The download host is started
// too, on another port, unless cfg.DownloadBaseURL is set. If cfg.Logger is
// nil, requests are logged through t.Log.
func Start(t testing.TB, cfg atlassim.Config) (*atlassim.Server, string) {
	t.Helper()
	s, ts, dl := newServer(t, cfg)
	ts.Start()
	if dl != nil {
		dl.Start()
		setDownloadBase(t, s, dl.URL)
	}
	return s, ts.URL
}

// StartTLS serves the simulator over TLS with HTTP/2 enabled and returns it,
// its base URL (https://127.0.0.1:PORT) and a client that trusts its
// certificate and speaks HTTP/2. The download host, when started, also
// speaks TLS and HTTP/2, with a certificate the same client trusts.
func StartTLS(t testing.TB, cfg atlassim.Config) (*atlassim.Server, string, *http.Client) {
	t.Helper()
	s, ts, dl := newServer(t, cfg)
	ts.EnableHTTP2 = true
	ts.Config.TLSNextProto = s.HTTP2NextProto() // nil: net/http's own
	ts.StartTLS()
	if dl != nil {
		dl.EnableHTTP2 = true
		dl.StartTLS()
		setDownloadBase(t, s, dl.URL)
	}
	return s, ts.URL, ts.Client()
}

func setDownloadBase(t testing.TB, s *atlassim.Server, u string) {
	t.Helper()
	if err := s.SetDownloadBaseURL(u); err != nil {
		t.Fatalf("atlassimtest: %v", err)
	}
}

func newServer(t testing.TB, cfg atlassim.Config) (s *atlassim.Server, api, download *httptest.Server) {
	t.Helper()
	if cfg.Logger == nil {
		w := &tWriter{t: t}
		t.Cleanup(w.stop) // registered first, so it runs after the server stopped
		cfg.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := atlassim.New(cfg)
	if err != nil {
		t.Fatalf("atlassimtest: new simulator: %v", err)
	}
	api = unstarted(t, s.Handler())
	if cfg.DownloadBaseURL == "" {
		download = unstarted(t, s.DownloadHandler())
	}
	return s, api, download
}

func unstarted(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("atlassimtest: listen on 127.0.0.1: %v", err)
	}
	ts := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts
}

// tWriter sends log lines to t.Log until the test's cleanup, then drops
// them: a handler may still log after its connection was hijacked.
type tWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
