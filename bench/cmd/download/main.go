// Command download is the download floor of the benchmark: it fetches one
// invoice CSV from the Atlas simulator into io.Discard with nothing but
// net/http and an OAuth client-credentials token, and prints the byte count
// as JSON. The client secret comes from BENCH_CLIENT_SECRET.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func main() {
	base := flag.String("base", "", "simulator base `URL`")
	org := flag.String("org", "", "org id")
	invoice := flag.String("invoice", "", "invoice id")
	clientID := flag.String("client-id", "", "service account client id")
	flag.Parse()
	if err := run(*base, *org, *invoice, *clientID, os.Getenv("BENCH_CLIENT_SECRET")); err != nil {
		fmt.Fprintln(os.Stderr, "download:", err)
		os.Exit(1)
	}
}

func run(base, org, invoice, clientID, secret string) error {
	ctx := context.Background()
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: base + "/api/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/atlas/v2/orgs/"+org+"/invoices/"+invoice+"/csv", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.atlas.2023-01-01+csv")
	resp, err := cc.Client(ctx).Do(req)
	if err != nil {
		return fmt.Errorf("get invoice CSV: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get invoice CSV: %s", resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return fmt.Errorf("read invoice CSV after %d bytes: %w", n, err)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{"bytes": n, "peakRSS": peakRSS()})
}

// peakRSS is this process's peak resident set in bytes (VmHWM), reported
// by the program itself: after it exits, getrusage would also count the
// parent's memory shared at fork.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}
