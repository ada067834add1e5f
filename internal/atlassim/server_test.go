package atlassim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

func TestProcessingTime(t *testing.T) {
	_, base := start(t, atlassim.Config{ProcessingTime: 200 * time.Millisecond})
	c := client(t, base, oauth, nil)
	u := newQuery(t, c, base, org1)
	if got102, _, _, _ := poll(t, c, u, csvType); !got102 {
		t.Fatal("first poll right after submit: want 102")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got102, st, _, err := poll(t, c, u, csvType)
		if !got102 && err == nil && st == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("query not ready 5s after a 200ms processing time")
		}
		time.Sleep(50 * time.Millisecond)
	}

	_, base = start(t, atlassim.Config{ProcessingTime: -1})
	c = client(t, base, oauth, nil)
	if got102, st, _, err := poll(t, c, newQuery(t, c, base, org1), csvType); got102 || st != 200 || err != nil {
		t.Fatalf("negative ProcessingTime: got102=%v %d %v", got102, st, err)
	}
}

func TestServe(t *testing.T) {
	var logs testenv.Buffer
	srv, err := atlassim.New(atlassim.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, l) }()
	t.Cleanup(cancel)

	base := "http://" + l.Addr().String()
	for _, sc := range []scheme{oauth, digestKey} {
		if st, _, b := call(t, client(t, base, sc, nil), http.MethodGet, orgURL(base, org1, "/invoices/pending"), jsonType, nil); st != 200 {
			t.Fatalf("%s: %d %s", sc, st, b)
		}
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop after its context ended")
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Fatal("server still answers after Serve returned")
	}

	// One JSON line per request with op, status and org; no secret anywhere.
	out := logs.String()
	for _, secret := range []string{atlassim.DefaultClientSecret, atlassim.DefaultPrivateKey, "Bearer ", "Digest "} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains %q", secret)
		}
	}
	var ok200 int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct {
			Msg, Op, Org string
			Status       int
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "atlas request" && rec.Op == atlassim.OpPendingInvoice && rec.Org == org1 && rec.Status == 200 {
			ok200++
		}
	}
	if ok200 != 2 {
		t.Fatalf("%d logged 200s for the pending invoice, want 2:\n%s", ok200, out)
	}
}

func TestRegisterFlags(t *testing.T) {
	var cfg atlassim.Config
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	err := fs.Parse([]string{"--processing-time=0", "--ready-after-polls=3", "--invoice-rows=7", "--invoice-bytes=1048576",
		"--variant=tags, us-dates", "--variant=tags", "--token-ttl=5m", "--first-month=2024-01", "--org=0123456789abcdef01234567=Ünïcode, Org",
		"--service-account=id2:secret2", "--api-key=pub2:priv2"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProcessingTime >= 0 || cfg.ReadyAfterPolls != 3 || cfg.InvoiceRows != 7 || cfg.InvoiceBytes != 1<<20 || !slices.Equal(cfg.Variants, []atlassim.Variant{atlassim.Tags, atlassim.USDates}) ||
		cfg.TokenTTL != 5*time.Minute || cfg.FirstMonth != "2024-01" || len(cfg.Orgs) != 1 || cfg.Orgs[0].Name != "Ünïcode, Org" ||
		cfg.ServiceAccounts["id2"] != "secret2" || cfg.ServiceAccounts[atlassim.DefaultClientID] == "" || cfg.APIKeys["pub2"] != "priv2" {
		t.Fatalf("parsed config %+v", cfg)
	}
	if _, err := atlassim.New(cfg); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"--org=xyz=Name"}, {"--first-month=2024"}, {"--api-key=nocolon"}, {"--variant=tags,nope"}} {
		var c atlassim.Config
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		c.RegisterFlags(fs)
		err := fs.Parse(bad)
		if err == nil {
			_, err = atlassim.New(c)
		}
		if err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := atlassim.New(atlassim.Config{Orgs: []atlassim.Org{{ID: "ABC"}}}); err == nil || errors.Is(err, nil) {
		t.Error("bad org id accepted by New")
	}
}
