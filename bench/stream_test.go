//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// streamRow is one invoice size: the best of its runs. The minimum is the
// figure least disturbed by whatever else the machine does; floors and the
// measured path are taken alike, in turns.
type streamRow struct {
	Label          string
	Bytes          int64
	Runs           int
	Ours           time.Duration // fetch-invoice bootstrap, exec to its answer
	OursRSS        int64         // the largest peak RSS of its runs
	OursRSSMedian  int64
	OursCPU        time.Duration // CPU time (user+system) of the fastest run
	GatewayCPU     time.Duration // versitygw's CPU time during that run
	HarnessCPU     time.Duration // this process's (the simulator's, mostly) CPU time during it
	Download       time.Duration // floor: simulator to io.Discard
	DownloadRSS    int64
	Upload         time.Duration // floor: memory to versitygw
	UploadRSS      int64
	Ratio          float64 // Ours / max(Download, Upload)
	Rows           int64
	Objects        int     // objects fetch-invoice wrote for the invoice
	Written        int64   // bytes in them
	SimulatorSpeed float64 // MiB/s of the download floor: the simulator's generation bounds it
}

// benchStream streams one invoice of about size bytes through the real
// fetch-invoice bootstrap (the measured process, a child) into versitygw,
// between runs of the two floors, and keeps the best times.
func benchStream(t *testing.T, w *world, label string, size int64, runs int) streamRow {
	org := atlassim.DefaultOrgs[0]
	sim, base := atlassimtest.Start(t, atlassim.Config{
		Orgs:         []atlassim.Org{org},
		InvoiceBytes: size,
		FirstMonth:   "2024-06", // June (closed) and July (pending): the listing stays short
		Now:          fixedNow,
		Logger:       discard,
	})
	var inv atlassim.Invoice
	for _, i := range sim.Invoices(org.ID) { // computes and caches the row counts and totals
		if i.Month == "2024-06" {
			inv = i
		}
	}
	if inv.ID == "" {
		t.Fatal("the simulator has no June 2024 invoice")
	}
	warmInvoice(t, base, org.ID, inv.ID)

	june := period.Month(2024, time.June)
	_, event, err := function.Call(function.ActionFetch, mustJSON(t, export.Job{OrgID: org.ID, Period: june, MaxAttempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	lay, err := layout.New("atlas-billing")
	if err != nil {
		t.Fatal(err)
	}
	key, err := lay.Invoice(org.ID, june, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	env := w.functionEnv("fetch-invoice", base)
	var ours, dls, uls, cpus, gws, sims []time.Duration
	var rss []int64
	row := streamRow{Label: label, Runs: runs, Rows: inv.Rows}
	for i := range runs {
		dl := w.runTool(t, "download", []string{"BENCH_CLIENT_SECRET=" + atlassim.DefaultClientSecret},
			"-base", base, "-org", org.ID, "-invoice", inv.ID, "-client-id", atlassim.DefaultClientID)
		if i > 0 && dl.Bytes != row.Bytes {
			t.Fatalf("the invoice CSV changed size between runs: %d, then %d bytes", row.Bytes, dl.Bytes)
		}
		row.Bytes = dl.Bytes
		ul := w.runTool(t, "upload", []string{"AWS_ACCESS_KEY_ID=" + w.s3.AccessKey, "AWS_SECRET_ACCESS_KEY=" + w.s3.SecretKey, "SSL_CERT_FILE=" + w.s3.CAFile},
			"-endpoint", w.s3.Endpoint, "-bucket", w.bucket, "-key", "bench/upload-floor.csv", "-bytes", itoa(dl.Bytes))
		w.deleteObject(t, "bench/upload-floor.csv")
		if ul.Bytes != dl.Bytes {
			t.Fatalf("upload floor sent %d bytes, want %d", ul.Bytes, dl.Bytes)
		}

		gw0, self0 := processCPU(t, w.s3.PID), selfCPU(t)
		run := runLambda(t, w.bins["fetch-invoice"], env, event)
		gws, sims = append(gws, processCPU(t, w.s3.PID)-gw0), append(sims, selfCPU(t)-self0)
		var res export.Result
		if err := json.Unmarshal(run.Invocations[0].Payload, &res); err != nil {
			t.Fatalf("fetch-invoice answered %s (%v)", run.Invocations[0].Payload, err)
		}
		var obj *sink.Object
		row.Objects, row.Written = len(res.Objects), 0
		for i, o := range res.Objects {
			row.Written += o.Bytes
			if o.Key == key {
				obj = &res.Objects[i]
			}
		}
		if obj == nil || obj.Bytes != dl.Bytes || obj.Rows != inv.Rows || obj.Skipped {
			t.Fatalf("fetch-invoice stored %+v, want %s with %d bytes and %d rows, not skipped", res.Objects, key, dl.Bytes, inv.Rows)
		}
		w.clear(t, "atlas-billing/") // the next run must write it all again, not skip it

		t.Logf("run %d: fetch-invoice %v (RSS %s, CPU %v), download floor %v (RSS %s, CPU %v), upload floor %v (RSS %s, CPU %v)", i+1,
			run.Done, mib(run.PeakRSS), run.CPU, dl.Elapsed, mib(dl.PeakRSS), dl.CPU, ul.Elapsed, mib(ul.PeakRSS), ul.CPU)
		ours, dls, uls, cpus = append(ours, run.Done), append(dls, dl.Elapsed), append(uls, ul.Elapsed), append(cpus, run.CPU)
		row.OursRSS = max(row.OursRSS, run.PeakRSS)
		rss = append(rss, run.PeakRSS)
		row.DownloadRSS = max(row.DownloadRSS, dl.PeakRSS)
		row.UploadRSS = max(row.UploadRSS, ul.PeakRSS)
	}
	row.Ours, row.Download, row.Upload = slices.Min(ours), slices.Min(dls), slices.Min(uls)
	best := slices.Index(ours, row.Ours)
	row.OursCPU, row.GatewayCPU, row.HarnessCPU = cpus[best], gws[best], sims[best]
	slices.Sort(rss)
	row.OursRSSMedian = rss[len(rss)/2]
	row.Ratio = row.Ours.Seconds() / max(row.Download, row.Upload).Seconds()
	row.SimulatorSpeed = mibps(row.Bytes, row.Download)
	return row
}

// warmInvoice asks for the CSV once and hangs up after the headers: the
// simulator measures a CSV's size by generating it once before answering,
// and that must not be counted in any timed run.
func warmInvoice(t testing.TB, base, org, invoice string) {
	t.Helper()
	c, err := atlas.NewClient(atlas.WithBaseURL(base), atlas.WithServiceAccount(atlassim.DefaultClientID, atlassim.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	body, err := c.InvoiceCSV(ctx, org, invoice)
	if err != nil {
		t.Fatalf("warm the invoice CSV: %v", err)
	}
	body.Close()
}

// processCPU is the user and system time a running process has used so far
// (/proc/PID/stat, in clock ticks of 1/100 s, Linux's USER_HZ).
func processCPU(t testing.TB, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU time of process %d: %v", pid, err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is the first, utime the 12th, stime the 13th.
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		t.Fatalf("CPU time of process %d: short stat %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("CPU time of process %d: stat %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// selfCPU is this process's user and system time so far.
func selfCPU(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mibps(n int64, d time.Duration) float64 { return float64(n) / (1 << 20) / d.Seconds() }
