package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
)

// waitForFile polls for path to hold a line, bounded in time.
func waitForFile(t *testing.T, path string, done <-chan int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b))
		}
		select {
		case code := <-done:
			t.Fatalf("simulate exited with %d before it was ready", code)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("%s not written within 10s", path)
	return ""
}

// waitExit waits for simulate, cancelled, to exit 0, bounded in time.
func waitExit(t *testing.T, done <-chan int, stderr func() string) {
	t.Helper()
	select {
	case code := <-done:
		if code != ExitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("simulate did not stop within 10s of cancel")
	}
}

func TestSimulate(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "sim.url")
	a, stdout, stderr := testApp(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		done <- a.Main(ctx, []string{"simulate", "--addr", "127.0.0.1:0", "--ready-file", ready, "--processing-time", "0"})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("simulate did not stop within 10s")
		}
	})

	base := waitForFile(t, ready, done)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("ready file holds %q", base)
	}

	// The printed demo credentials get a token from the simulator it started.
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(atlassim.DefaultClientID, atlassim.DefaultClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token request: %s", resp.Status)
	}

	cancel()
	waitExit(t, done, stderr.String)
	out := stdout.String()
	for _, want := range []string{
		"listening on " + base,
		"export " + config.EnvAtlasBaseURL + "=" + base + "\n",
		"export " + secret.EnvClientID + "=" + atlassim.DefaultClientID + "\n",
		"export " + secret.EnvClientSecret + "=" + atlassim.DefaultClientSecret + "\n",
		"export " + config.EnvOrgIDs + "=" + atlassim.DefaultOrgs[0].ID + "," + atlassim.DefaultOrgs[1].ID + "\n",
		secret.EnvPublicKey + "=" + atlassim.DefaultPublicKey,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(ready); !os.IsNotExist(err) {
		t.Errorf("ready file still there after exit: %v", err)
	}
}

func TestSimulateUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--fault", "kind=Nope"}, "want one of"},
		{[]string{"--first-month", "June"}, "first month"},
		{[]string{"extra"}, "simulate takes no arguments"},
	}
	for _, tt := range tests {
		a, _, stderr := testApp(t, nil)
		if code := a.Main(context.Background(), append([]string{"simulate", "--addr", "127.0.0.1:0"}, tt.args...)); code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", tt.args, code, ExitUsage)
		}
		assertOneErrorLine(t, stderr.String(), tt.want)
	}
}

// TestSimulateJSON: with --json the simulator says where it listens in one JSON line, the variables
// to set included.
func TestSimulateJSON(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "sim.url")
	a, stdout, stderr := testApp(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- a.Main(ctx, []string{"simulate", "--addr", "127.0.0.1:0", "--ready-file", ready, "--json"})
	}()
	base := waitForFile(t, ready, done)
	cancel()
	waitExit(t, done, stderr.String)
	var line struct {
		Event, BaseURL string
		Env            map[string]string
	}
	if err := json.Unmarshal(stdout.Bytes(), &line); err != nil || line.Event != "listening" || line.BaseURL != base ||
		line.Env[config.EnvAtlasBaseURL] != base || line.Env[secret.EnvClientID] != atlassim.DefaultClientID || stderr.Len() != 0 {
		t.Fatalf("stdout %q (%v), stderr %q", stdout, err, stderr)
	}
}
