//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/big"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
)

// reproduce is the command that runs one row again; the row's -run pattern
// follows it. `make bench` runs them all.
const reproduce = "go test -tags bench -count=1 -timeout 30m -v ./bench -run "

// streamSizes are the invoice sizes streamed, with the runs of each.
var streamSizes = []struct {
	Label string
	Bytes int64
	Runs  int
}{
	{"100MiB", 100 << 20, 5},
	{"1GiB", 1 << 30, 3},
}

// storage says where versitygw keeps its objects (see TestMain).
var storage string

// TestMain puts the temporary folders, versitygw's objects among them, on a
// tmpfs when there is one with room: on a shared VM disk, writeback of the
// gigabytes written makes the same upload take anywhere from 4 to 25 s, and
// the disk is not what this benchmark measures. TMPDIR set by the caller wins.
func TestMain(m *testing.M) {
	storage = os.TempDir() + " (TMPDIR)"
	var cleanup func()
	if os.Getenv("TMPDIR") == "" {
		var st syscall.Statfs_t
		const tmpfsMagic = 0x01021994
		if syscall.Statfs("/dev/shm", &st) == nil && st.Type == tmpfsMagic && int64(st.Bavail)*st.Bsize >= 6<<30 {
			if dir, err := os.MkdirTemp("/dev/shm", "abx-bench-"); err == nil {
				os.Setenv("TMPDIR", dir)
				storage = dir + " (tmpfs)"
				cleanup = func() { os.RemoveAll(dir) }
			}
		}
	}
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	os.Exit(code)
}

// results collects the figures of the rows that ran.
type results struct {
	stream   []streamRow
	cold     []coldRow
	polls    []pollRow
	costRuns []pollRow // the executions priced, FOCUS reports on
	init     map[string]time.Duration
	costs    []costRow
	norm     *normRow
	rate     *rateRow
	month    *monthRow
	memMB    map[string]int
}

// TestBench measures everything and prints the table. Each subtest is a row
// (or a group of rows) that can run alone with the command it prints.
func TestBench(t *testing.T) {
	started, loadStart := time.Now(), loadAvg()
	w := newWorld(t)
	r := &results{memMB: w.memMB}

	t.Run("stream", func(t *testing.T) {
		for _, s := range streamSizes {
			t.Run(s.Label, func(t *testing.T) {
				r.stream = append(r.stream, benchStream(t, w, s.Label, s.Bytes, s.Runs))
			})
		}
	})
	t.Run("normalize", func(t *testing.T) {
		n := benchNormalize(t, w.root)
		r.norm = &n
	})
	t.Run("coldstart", func(t *testing.T) {
		r.cold = benchColdStart(t, w)
	})
	t.Run("polls", func(t *testing.T) {
		pe := newPollEnv(t, w)
		for _, q := range queryTimes {
			t.Run(secs(q), func(t *testing.T) {
				r.polls = append(r.polls, pe.run(t, q, 0, false), pe.run(t, q, fixedPoll, false))
			})
		}
	})
	t.Run("cost", func(t *testing.T) {
		// A monthly export as configured by default: FOCUS reports on.
		r.init = coldInits(t, w, r.cold)
		pe := newPollEnv(t, w)
		for _, q := range queryTimes {
			p := pe.run(t, q, 0, true)
			r.costRuns = append(r.costRuns, p)
			r.costs = append(r.costs, cost(p, w.memMB, r.init))
		}
		for i, c := range r.costs {
			if c.Query == 120*time.Second {
				m := pe.month(t, c, r.costRuns[i], r.costRuns[i].Output)
				r.month = &m
			}
		}
	})
	t.Run("ratelimit", func(t *testing.T) {
		rr := benchRateLimit(t)
		r.rate = &rr
	})
	r.print(os.Stdout, started, loadStart)
}

func (r *results) poll(q time.Duration, policy string) (pollRow, bool) {
	for _, p := range r.polls {
		if p.Query == q && p.Policy == policy {
			return p, true
		}
	}
	return pollRow{}, false
}

func secs(d time.Duration) string { return fmt.Sprintf("%ds", int(d/time.Second)) }

func (r *results) print(out io.Writer, started time.Time, loadStart string) {
	p := func(format string, a ...any) { fmt.Fprintf(out, format, a...) }
	table := func(header string, rows [][]string) {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, row := range rows {
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		tw.Flush()
	}

	p("\n==== atlas-billing-export benchmark (%s) ====\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	p("machine: %s, %d CPUs, %s RAM, %s/%s, %s\n", cpuModel(), runtime.NumCPU(), memTotal(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	p("load average: %s at the start, %s at the end; took %v\n", loadStart, loadAvg(), time.Since(started).Round(time.Second))
	p("versitygw objects and temporary files in %s\n", storage)
	p("S3 is versitygw over HTTPS (a certificate made for the run), as Lambda reaches S3: every S3 client, the floors'\n")
	p("   included, sends what it sends to S3 (parts with a CRC32, not a SHA-256 of each signed as over plain HTTP)\n")
	p("every row: `make bench` runs them all; the last column reruns that row alone\n")

	if len(r.stream) > 0 {
		p("\n1. Streaming one invoice CSV: Atlas simulator -> functions/fetch-invoice bootstrap (a child process) -> versitygw\n")
		p("   time: the best of the runs, from exec to the function's answer (floors: exec to exit); peak RSS: VmHWM of the\n")
		p("   process, the largest of the runs (and their median). objects written: what fetch-invoice stored for the one invoice.\n")
		p("   floors, in the same run: the same bytes downloaded to io.Discard (bench/cmd/download), and uploaded from memory\n")
		p("   with transfermanager's defaults (bench/cmd/upload); ratio = fetch-invoice / max(download, upload)\n")
		var rows [][]string
		for _, s := range r.stream {
			rows = append(rows, []string{s.Label, fmt.Sprint(s.Bytes), fmt.Sprint(s.Runs), fmt.Sprintf("%d, %s", s.Objects, mib(s.Written)), fmt.Sprintf("%.2f s (CPU %.1f s)", s.Ours.Seconds(), s.OursCPU.Seconds()),
				fmt.Sprintf("%.0f", mibps(s.Bytes, s.Ours)), fmt.Sprintf("%s (median %s)", mib(s.OursRSS), mib(s.OursRSSMedian)),
				fmt.Sprintf("%.2f s (%.0f MiB/s, %s)", s.Download.Seconds(), mibps(s.Bytes, s.Download), mib(s.DownloadRSS)),
				fmt.Sprintf("%.2f s (%.0f MiB/s, %s)", s.Upload.Seconds(), mibps(s.Bytes, s.Upload), mib(s.UploadRSS)),
				fmt.Sprintf("%.2f", s.Ratio), reproduce + "'TestBench/stream/" + s.Label + "$'"})
		}
		table("size\tbytes\truns\tobjects written\tfetch-invoice\tMiB/s\tpeak RSS\tdownload floor\tupload floor\tratio\treproduce", rows)
	}

	if len(r.cold) > 0 {
		p("\n2. Cold start: exec to the first GET /runtime/invocation/next under a local Runtime API (linux/%s build;\n", runtime.GOARCH)
		p("   starts taken in turns, %d warm-up starts each not counted); size: linux/arm64, -tags lambda.norpc -ldflags \"-s -w\"\n", warmStarts)
		p("   package init: the median over %d starts of the packages' init times (GODEBUG=inittrace=1), all of them, and those of\n", initStarts)
		p("   the normalizer (internal/normalize and what it links that submit does not: parquet-go, its codecs, protobuf, ...)\n")
		var rows [][]string
		for _, c := range r.cold {
			rows = append(rows, []string{c.Name, fmt.Sprint(c.Starts), ms(c.Median), ms(c.P90), fmt.Sprintf("%.2f", c.Ratio), mib(c.ARM64Bytes),
				fmt.Sprintf("%s (normalizer %s)", ms(c.Inits), ms(c.NormInits)), reproduce + "'TestBench/coldstart$'"})
		}
		table("bootstrap\tstarts\tmedian\tp90\tratio to minimal\tarm64 size\tpackage init\treproduce", rows)
	}

	if len(r.polls) > 0 {
		p("\n3. Poll economy per org-month: the job workflow of statemachine/export.asl.json in aws-local-stepfunctions, the real\n")
		p("   handlers (function.Handlers) against the simulator and versitygw; Wait states shortened, time\n")
		p("   simulated: each Poll advances the query's clock by the wait it followed, the query is ready once the clock\n")
		p("   reaches its duration. Atlas requests: billing operations (token requests not counted). Transitions: states entered.\n")
		var rows [][]string
		for _, q := range r.polls {
			rows = append(rows, []string{secs(q.Query), q.Policy, fmt.Sprint(q.Polls), fmt.Sprint(q.AtlasRequests), fmt.Sprint(q.Transitions),
				fmt.Sprint(len(q.Calls)), secs(q.FirstCheck), secs(q.WaitedFor), fmt.Sprint(q.Waits), ms(q.LongestPoll), reproduce + "'TestBench/polls/" + secs(q.Query) + "$'"})
		}
		table("query\tpolicy\tpolls\tAtlas requests\ttransitions\tLambda calls\tfirst check\tchecked at\tWait states\tlongest poll call\treproduce", rows)
	}

	if len(r.costs) > 0 {
		p("\n4. Cost of one org-month, as configured by default (FOCUS report on, ready at its first check): the job workflow of\n")
		p("   section 3 again with the backoff policy, plus the %d transitions of its execution's start and its org's child (one job\n", transitionsPerJob+transitionsPerOrg)
		p("   per org, as in a monthly run); S3: the functions' requests, counted (PUT/COPY/POST at $%s, GET/HEAD at $%s)\n", priceS3Write, priceS3Read)
		p("   prices: Step Functions Standard $%s per state transition ($0.025 per 1,000); Lambda arm64 $%s per GB-second,\n", priceTransition, priceGBSecond)
		p("   $%s per request ($0.20 per 1M); us-east-1 list prices, free tier not deducted\n", priceRequest)
		p("   memory (template.yaml): submit %d MB, poll %d MB, fetch-invoice %d MB\n", r.memMB["submit"], r.memMB["poll"], r.memMB["fetch-invoice"])
		p("   billed: each Task call's measured handler duration rounded up to 1 ms, plus each function's median cold start once\n")
		p("   (submit %s, poll %s, fetch-invoice %s); Atlas and S3 are on loopback here, so the last column bills every call 1 s\n",
			ms(r.init["submit"]), ms(r.init["poll"]), ms(r.init["fetch-invoice"]))
		var rows [][]string
		for i, c := range r.costs {
			run := r.costRuns[i]
			rows = append(rows, []string{secs(c.Query), fmt.Sprint(run.Polls), fmt.Sprint(c.Transitions), dollars(c.TransitionCost), fmt.Sprint(c.Requests), dollars(c.RequestCost),
				fmt.Sprintf("%d/%d/%d", c.BilledMs["submit"], c.BilledMs["poll"], c.BilledMs["fetch-invoice"]),
				new(big.Rat).Quo(c.GBms, big.NewRat(1000, 1)).FloatString(3), dollars(c.ComputeCost), fmt.Sprintf("%d/%d", c.S3Writes, c.S3Reads), dollars(c.S3Cost),
				dollars(c.Total), dollars(c.TotalAt1s), reproduce + "'TestBench/cost$'"})
		}
		table("query	polls	transitions	Step Functions	Lambda calls	Lambda requests	billed ms submit/poll/fetch	GB-s	Lambda compute	S3 put/get	S3	total	total at 1 s/call	reproduce", rows)
	}
	if m := r.month; m != nil {
		p("\n   A month of %d orgs (the monthly schedule, one execution): %d x the 120 s row, plus the run's own: %d transitions (Plan,\n", m.Orgs, m.Orgs, transitionsPerRun)
		p("   ExportOrgs, Summarize, AnyJobFailed, Done), Plan and Summarize on fetch-invoice measured at %d orgs (%d ms and %d ms\n", m.Orgs, m.PlanMs, m.SummarizeMs)
		p("   here, S3 on loopback), their S3 requests, and Step Functions' own: the ItemReader's GET, a result file and a manifest\n")
		p("   per Map Run (%d: one per org, and the execution's)\n", m.Orgs+1)
		table("orgs\ttransitions\tStep Functions\tLambda requests\tLambda\tS3 put/get\tS3\ttotal\treproduce", [][]string{{
			fmt.Sprint(m.Orgs), fmt.Sprint(m.Transitions), dollars(m.TransitionCost), fmt.Sprint(m.Requests), dollars(m.LambdaCost),
			fmt.Sprintf("%d/%d", m.S3Writes, m.S3Reads), dollars(m.S3Cost), dollars(m.Total), reproduce + "'TestBench/cost$'"}})
	}

	if r.norm != nil {
		p("\n5. Normalizing invoice line items on one core: internal/normalize's BenchmarkInvoice, a 32 MiB simulator invoice\n")
		p("   through normalize.Invoice to io.Discard (-cpu 1), in MB of raw CSV (1 MB = 10^6 bytes) per CPU-second of the process:\n")
		p("   the speed per core, which the wall clock (MB/s) shows only when nothing else runs on the machine\n")
		table("runs\tper CPU-second: best\tmedian\twall clock: best\tmedian\treproduce", [][]string{{fmt.Sprint(r.norm.Runs),
			fmt.Sprintf("%.0f MB", r.norm.BestCPU), fmt.Sprintf("%.0f MB", r.norm.MedianCPU),
			fmt.Sprintf("%.0f MB/s", r.norm.Best), fmt.Sprintf("%.0f MB/s", r.norm.Median), reproduce + "'TestBench/normalize$'"}})
	}

	if rr := r.rate; rr != nil {
		p("\n6. Time at the rate-limit floor: %d orgs x %d months (FOCUS on) through the in-process runner (the command line's run),\n", rr.Orgs, rr.Months)
		p("   every org at once, each org's months %d at a time, against the simulator enforcing Atlas's per-org bucket (%d requests,\n", export.MonthsAtOnce, atlassim.RateCapacity)
		p("   %d more per %s), every bucket empty at the start (another client just spent it); time %dx faster: the runner's waits,\n", atlassim.RateRefill, atlassim.RatePer, rateScale)
		p("   the simulator's processing (a query %s, a FOCUS report %s) and the buckets' clock (Retry-After stays whole real seconds).\n", rateQuery, rateReport)
		p("   floor: the larger of the slowest org's requests at its bucket's refill (rate floor), and the processing the simulator\n")
		p("   imposes on an org's months as they run, %d at a time: %d rounds of a query and a report (CE floor). Every month of an\n", export.MonthsAtOnce, (rr.Months+export.MonthsAtOnce-1)/export.MonthsAtOnce)
		p("   org at once could go down to %.1f s, with as many requests at once on its bucket. 429s escaped: jobs that failed with\n", rr.AllAtOnce.Seconds())
		p("   Atlas.RateLimited (each 429 the client waited out is not one)\n")
		table("jobs\tfailed\trequests\t429s answered\t429s escaped\tslowest org\ttime\trate floor\tCE floor\ttime / floor\treproduce", [][]string{{
			fmt.Sprint(rr.Jobs), fmt.Sprint(rr.Failed), fmt.Sprint(rr.Admitted), fmt.Sprint(rr.Refused), fmt.Sprint(rr.Escaped),
			fmt.Sprintf("%d requests", rr.SlowestOrg), fmt.Sprintf("%.1f s", rr.Elapsed.Seconds()), fmt.Sprintf("%.1f s", rr.RateFloor.Seconds()),
			fmt.Sprintf("%.1f s", rr.CEFloor.Seconds()), fmt.Sprintf("%.2f", rr.Ratio), reproduce + "'TestBench/ratelimit$'"}})
	}

	p("\nTargets\n")
	for _, tg := range r.targets() {
		p("  %-7s %s: %s\n", tg.status, tg.name, tg.figure)
	}
}

type target struct{ status, name, figure string }

func verdict(ok bool) string {
	if ok {
		return "HOLDS"
	}
	return "MISSED"
}

func (r *results) targets() []target {
	var ts []target
	na := func(name, row string) target { return target{"n/a", name, "not measured in this run (" + row + ")"} }

	var s100, s1g *streamRow
	for i := range r.stream {
		switch r.stream[i].Label {
		case "100MiB":
			s100 = &r.stream[i]
		case "1GiB":
			s1g = &r.stream[i]
		}
	}
	const rssName, flatName, ratioName = "peak RSS streaming 1 GiB <= 64 MiB", "1 GiB run <= 8 MiB above the 100 MiB run", "streaming ratio at 1 GiB <= 2.0"
	if s1g != nil {
		ts = append(ts, target{verdict(s1g.OursRSS <= 64<<20), rssName, mib(s1g.OursRSS)})
	} else {
		ts = append(ts, na(rssName, "stream/1GiB"))
	}
	if s1g != nil && s100 != nil {
		d := s1g.OursRSS - s100.OursRSS
		dm := s1g.OursRSSMedian - s100.OursRSSMedian
		ts = append(ts, target{verdict(d <= 8<<20), flatName, fmt.Sprintf("%+.1f MiB (largest: %s vs %s; medians differ by %+.1f MiB)",
			float64(d)/(1<<20), mib(s1g.OursRSS), mib(s100.OursRSS), float64(dm)/(1<<20))})
	} else {
		ts = append(ts, na(flatName, "stream"))
	}
	if s1g != nil {
		ts = append(ts, target{verdict(s1g.Ratio <= 2.0), ratioName, fmt.Sprintf("%.2f (%.2f s vs floors %.2f s download, %.2f s upload); CPU-bound: in those %.1f s, fetch-invoice used %.1f s of CPU, versitygw %.1f s, the simulator %.1f s: %.0f%% of this machine's %d CPUs",
			s1g.Ratio, s1g.Ours.Seconds(), s1g.Download.Seconds(), s1g.Upload.Seconds(), s1g.Ours.Seconds(), s1g.OursCPU.Seconds(), s1g.GatewayCPU.Seconds(), s1g.HarnessCPU.Seconds(),
			100*(s1g.OursCPU+s1g.GatewayCPU+s1g.HarnessCPU).Seconds()/s1g.Ours.Seconds()/float64(runtime.NumCPU()), runtime.NumCPU())})
	} else {
		ts = append(ts, na(ratioName, "stream/1GiB"))
	}

	const normName = "normalizing invoice line items >= 300 MB/s per core"
	if r.norm != nil {
		ts = append(ts, target{verdict(r.norm.BestCPU >= 300), normName, fmt.Sprintf("%.0f MB per CPU-second (median of %d runs %.0f; wall clock %.0f MB/s, median %.0f)",
			r.norm.BestCPU, r.norm.Runs, r.norm.MedianCPU, r.norm.Best, r.norm.Median)})
	} else {
		ts = append(ts, na(normName, "normalize"))
	}

	const coldName, sizeName = "cold start median within 1.5x of the minimal function", "every bootstrap <= 10 MiB (arm64, stripped)"
	if len(r.cold) > 0 {
		worst, big := r.cold[0], r.cold[0]
		var figs, sizes []string
		for _, c := range r.cold {
			if c.Name == "minimal" {
				continue
			}
			if c.Ratio > worst.Ratio {
				worst = c
			}
			if c.ARM64Bytes > big.ARM64Bytes {
				big = c
			}
			figs = append(figs, fmt.Sprintf("%s %.2fx", c.Name, c.Ratio))
			sizes = append(sizes, fmt.Sprintf("%s %s", c.Name, mib(c.ARM64Bytes)))
		}
		ts = append(ts, target{verdict(worst.Ratio <= 1.5), coldName, strings.Join(figs, ", ")})
		ts = append(ts, target{verdict(big.ARM64Bytes <= 10<<20), sizeName, strings.Join(sizes, ", ")})
	} else {
		ts = append(ts, na(coldName, "coldstart"), na(sizeName, "coldstart"))
	}

	const pollName, firstName, waitName = "polls for a 120 s query <= 6 (fixed 10 s: 12)", "first check within 10 s", "no Lambda billed for waiting"
	if p, ok := r.poll(120*time.Second, "backoff"); ok {
		fixed, _ := r.poll(120*time.Second, "fixed 10s")
		ts = append(ts, target{verdict(p.Polls <= 6), pollName, fmt.Sprintf("%d polls (fixed 10 s: %d)", p.Polls, fixed.Polls)})
	} else {
		ts = append(ts, na(pollName, "polls/120s"))
	}
	var first, longest time.Duration
	waitsOK, backoff := true, 0
	for _, p := range r.polls {
		if p.Policy != "backoff" {
			continue
		}
		backoff++
		first = max(first, p.FirstCheck)
		longest = max(longest, p.LongestPoll)
		waitsOK = waitsOK && p.Waits == p.Polls
	}
	if backoff > 0 {
		ts = append(ts, target{verdict(first <= 10*time.Second), firstName, "first poll after " + secs(first)})
		// A poll that slept even through the first wait would take 5 s.
		ok := waitsOK && longest < time.Second
		ts = append(ts, target{verdict(ok), waitName, fmt.Sprintf("every poll follows a Wait state: %v; longest poll call %s", waitsOK, ms(longest))})
	} else {
		ts = append(ts, na(firstName, "polls"), na(waitName, "polls"))
	}

	const escapedName, floorName = "no 429 reaches a job's outcome (rate-limit run)", "rate-limit run within 1.2x its floor"
	if rr := r.rate; rr != nil {
		ts = append(ts, target{verdict(rr.Escaped == 0 && rr.Failed == 0), escapedName, fmt.Sprintf("%d escaped of %d answered; %d jobs failed", rr.Escaped, rr.Refused, rr.Failed)})
		ts = append(ts, target{verdict(rr.Ratio <= 1.2), floorName, fmt.Sprintf("%.2f (%.1f s, floor %.1f s)", rr.Ratio, rr.Elapsed.Seconds(), rr.Floor.Seconds())})
	} else {
		ts = append(ts, na(escapedName, "ratelimit"), na(floorName, "ratelimit"))
	}

	const costName = "monthly export of one org < $0.001 (120 s query)"
	limit := rat("0.001")
	var at120 *costRow
	var others []string
	for i, c := range r.costs {
		if c.Query == 120*time.Second {
			at120 = &r.costs[i]
			continue
		}
		others = append(others, fmt.Sprintf("%s %s", secs(c.Query), dollars(c.Total)))
	}
	if at120 != nil {
		ts = append(ts, target{verdict(at120.Total.Cmp(limit) < 0), costName,
			fmt.Sprintf("%s (%s at 1 s per call); other queries: %s", dollars(at120.Total), dollars(at120.TotalAt1s), strings.Join(others, ", "))})
	} else {
		ts = append(ts, na(costName, "cost"))
	}
	return ts
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}
