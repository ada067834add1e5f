package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
)

var simulateCommand = &command{
	name:    "simulate",
	summary: "start the local Atlas simulator (billing API, both auth schemes, faults)",
	about: `
Start the project's Atlas Admin API simulator on --addr and serve until SIGINT or SIGTERM. It speaks the
billing operations of the official OpenAPI spec (Cost Explorer with real 102 Processing answers,
invoices, invoice CSVs, invoice FOCUS reports), OAuth service accounts and Digest API keys, and can
inject faults. Report downloads are served by a second host, on another free port of --addr's address.

It prints its base URL and the demo credentials built into it (they are not secrets; they only open
this simulator) as shell lines to export, so run and invoke can talk to it. With --ready-file it writes
the base URL to that file once it listens (and removes it on exit), so a script can wait for it.

--fault takes comma-separated key=value pairs: kind= one of Status, Reset, Truncate, SlowBody,
ExpiredToken, NotFound, NeverReady, WrongMediaType, MalformedJSON, ReportFailed, ExpiredURL; op= an
operationId (createOrgBillingCostExplorerUsageProcess, getOrgBillingCostExplorerUsage, listOrgInvoices,
getOrgInvoice, getOrgInvoiceCsv, listOrgInvoicePending, createOrgInvoiceReport, getOrgInvoiceReport,
listOrgInvoiceReports), oauthToken or downloadReport (the download host), empty for any; times=N
(default 1); status=N (for Status); retry-after=DURATION; after=BYTES (Reset, Truncate);
delay=DURATION (SlowBody). Faults apply to matching requests in the order given.`,
	example: `
` + progName + ` simulate --addr 127.0.0.1:8089 --processing-time 3s \
    --fault kind=Status,status=429,retry-after=1s,op=getOrgInvoiceCsv`,
	setup: setupSimulate,
}

func setupSimulate(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
	var cfg atlassim.Config
	cfg.RegisterFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8089", "`HOST:PORT` to listen on (port 0: any free port)")
	readyFile := fs.String("ready-file", "", "write the base URL to this `FILE` once listening")
	verbose := fs.Bool("verbose", false, "log every request as JSON on stderr")
	var faults []atlassim.Fault
	fs.Func("fault", "inject a `FAULT`, e.g. kind=Status,status=503,times=2,op=listOrgInvoices (repeatable; see above)", func(s string) error {
		f, err := parseFault(s)
		if err == nil {
			faults = append(faults, f)
		}
		return err
	})

	return func(ctx context.Context, _ []string) error {
		if *verbose {
			cfg.Logger = slog.New(slog.NewJSONHandler(a.Stderr, nil))
		}
		srv, err := atlassim.New(cfg)
		if err != nil {
			return usagef("%v", err)
		}
		for _, f := range faults {
			srv.Inject(f)
		}
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return fmt.Errorf("simulate: listen on %s: %w", *addr, err)
		}
		defer ln.Close() // Serve closes it; this is for the early returns
		base := "http://" + ln.Addr().String()
		// The download host: same address, another port, so report
		// downloads come from a host other than the API's.
		dlHost, _, _ := net.SplitHostPort(ln.Addr().String())
		dl, err := net.Listen("tcp", net.JoinHostPort(dlHost, "0"))
		if err != nil {
			return fmt.Errorf("simulate: listen for the download host: %w", err)
		}
		defer dl.Close()
		if err := srv.SetDownloadBaseURL("http://" + dl.Addr().String()); err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		dlDone := make(chan error, 1)
		go func() { dlDone <- srv.ServeDownloads(ctx, dl) }()
		a.printSimulator(base, srv.DownloadBaseURL(), cfg)
		if *readyFile != "" {
			if err := writeFileAtomic(*readyFile, func(w io.Writer) error {
				_, err := io.WriteString(w, base+"\n")
				return err
			}); err != nil {
				return fmt.Errorf("simulate: write ready file: %w", err)
			}
			defer os.Remove(*readyFile)
		}
		err = srv.Serve(ctx, ln)
		dl.Close() // ends ServeDownloads too when Serve failed before ctx ended
		if dlErr := <-dlDone; err == nil && dlErr != nil && !errors.Is(dlErr, net.ErrClosed) {
			err = dlErr
		}
		if err != nil {
			return fmt.Errorf("simulate: serve: %w", err)
		}
		if a.mode == modeHuman {
			fmt.Fprintln(a.Stderr, "simulator stopped")
		}
		return nil
	}
}

// printSimulator shows the base URL and credentials a person exports to use the simulator; with
// --json, one line {"event": "listening", "baseUrl", "downloadBaseUrl", "env": {variable: value}}.
func (a *App) printSimulator(base, downloads string, cfg atlassim.Config) {
	var orgs []string
	for _, o := range cfg.Orgs { // RegisterFlags filled in the default orgs
		orgs = append(orgs, o.ID)
	}
	p := a.printer()
	p.JSON(map[string]any{"event": "listening", "baseUrl": base, "downloadBaseUrl": downloads, "env": map[string]string{
		config.EnvAtlasBaseURL: base, secret.EnvClientID: atlassim.DefaultClientID, secret.EnvClientSecret: atlassim.DefaultClientSecret,
		config.EnvOrgIDs: strings.Join(orgs, ","), secret.EnvPublicKey: atlassim.DefaultPublicKey, secret.EnvPrivateKey: atlassim.DefaultPrivateKey,
	}})
	p.Human(func(w io.Writer) { writeSimulator(w, base, downloads, orgs) })
}

func writeSimulator(w io.Writer, base, downloads string, orgs []string) {
	fmt.Fprintf(w, "Atlas simulator listening on %s (stop with Ctrl-C)\n", base)
	fmt.Fprintf(w, "# demo credentials built into the simulator (not secrets); export them to use it:\n")
	fmt.Fprintf(w, "export %s=%s\n", config.EnvAtlasBaseURL, base)
	fmt.Fprintf(w, "export %s=%s\n", secret.EnvClientID, atlassim.DefaultClientID)
	fmt.Fprintf(w, "export %s=%s\n", secret.EnvClientSecret, atlassim.DefaultClientSecret)
	fmt.Fprintf(w, "export %s=%s\n", config.EnvOrgIDs, strings.Join(orgs, ","))
	fmt.Fprintf(w, "# or, to use the Digest API key instead of the service account:\n")
	fmt.Fprintf(w, "#   unset %s %s\n", secret.EnvClientID, secret.EnvClientSecret)
	fmt.Fprintf(w, "#   export %s=%s %s=%s\n", secret.EnvPublicKey, atlassim.DefaultPublicKey, secret.EnvPrivateKey, atlassim.DefaultPrivateKey)
	fmt.Fprintf(w, "# report downloads are served by %s\n", downloads)
}

// writeFileAtomic writes file through a temporary file in its folder,
// renamed into place once whole, so a reader never sees half of it. The mode
// is 0666 as for any file a command writes: the umask decides (CreateTemp's
// 0600 would not).
func writeFileAtomic(file string, write func(io.Writer) error) error {
	name := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+"-"+rand.Text())
	tmp, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	defer os.Remove(name) // a no-op once renamed
	err = write(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, file)
	}
	return err
}

var faultKinds = func() map[string]atlassim.FaultKind {
	m := map[string]atlassim.FaultKind{}
	for _, k := range atlassim.FaultKinds {
		m[strings.ToLower(k.String())] = k
	}
	return m
}()

// parseFault reads "kind=Status,status=503,times=2,op=listOrgInvoices,retry-after=1s".
func parseFault(s string) (atlassim.Fault, error) {
	var f atlassim.Fault
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return f, fmt.Errorf("%q: want key=value", kv)
		}
		var err error
		switch k {
		case "kind":
			kind, ok := faultKinds[strings.ToLower(v)]
			if !ok {
				return f, fmt.Errorf("kind %q: want one of %s", v, strings.Join(slices.Sorted(maps.Keys(faultKinds)), ", "))
			}
			f.Kind = kind
		case "op":
			f.Op = v
		case "times":
			f.Times, err = strconv.Atoi(v)
		case "status":
			f.Status, err = strconv.Atoi(v)
		case "after":
			f.After, err = strconv.ParseInt(v, 10, 64)
		case "retry-after":
			f.RetryAfter, err = time.ParseDuration(v)
		case "delay":
			f.Delay, err = time.ParseDuration(v)
		default:
			return f, fmt.Errorf("unknown key %q", k)
		}
		if err != nil {
			return f, fmt.Errorf("%s=%q: %v", k, v, err)
		}
	}
	if f.Kind == 0 {
		return f, fmt.Errorf("%q: kind= is required", s)
	}
	if f.Kind == atlassim.Status && f.Status == 0 {
		return f, fmt.Errorf("%q: kind=Status needs status=", s)
	}
	return f, nil
}
