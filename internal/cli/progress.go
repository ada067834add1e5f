package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/big"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// line is one progress report, for a person (text) or a program (its JSON). Kind is one of org,
// step, poll, wait, bytes, object, warning (an export's steps) or execution (a state machine's).
type line struct {
	Kind        string          `json:"event"`
	Time        string          `json:"time"`
	Org         string          `json:"orgId,omitempty"`
	Month       string          `json:"month,omitempty"`
	Step        string          `json:"step,omitempty"`
	Attempt     int             `json:"attempt,omitempty"` // a poll's, 1-based
	Status      string          `json:"status,omitempty"`  // PROCESSING, READY, or an execution's status
	WaitSeconds float64         `json:"waitSeconds,omitempty"`
	Bytes       int64           `json:"bytes,omitempty"` // streamed so far into Key
	Key         string          `json:"key,omitempty"`
	Object      *sink.Object    `json:"object,omitempty"` // written, or skipped: already stored unchanged
	Warning     *export.Warning `json:"warning,omitempty"`
	Message     string          `json:"message,omitempty"`
	Execution   string          `json:"execution,omitempty"`
	Error       string          `json:"error,omitempty"` // a failed execution's error name and cause
	Cause       string          `json:"cause,omitempty"`
}

// lineOf turns an export's progress event into a line.
func lineOf(e export.Event) line {
	l := line{Org: e.OrgID, Step: e.Step, Attempt: e.Attempt, Status: e.Status, WaitSeconds: e.Wait.Seconds(), Key: e.Key, Bytes: e.Bytes, Kind: "step"}
	if !e.Period.Start.IsZero() {
		l.Month = e.Period.Label()
	}
	switch e.Step {
	case "plan":
		l.Message = fmt.Sprintf("%d org-month(s) to export", e.Jobs)
	case "focus-poll":
		l.Kind, l.Message = "poll", "FOCUS reports"
	case "wait":
		l.Kind, l.Attempt = "wait", e.Attempt+1
	case "poll":
		l.Kind = "poll"
	case "stream":
		l.Kind = "bytes"
	case "object":
		l.Kind, l.Object, l.Key, l.Bytes = "object", e.Object, e.Object.Key, e.Object.Bytes
	case "warning":
		l.Kind, l.Step, l.Warning = "warning", e.Warning.Step, e.Warning
		l.Message = e.Warning.Name + ": " + e.Warning.Message
		if e.Warning.InvoiceID != "" {
			l.Message = "invoice " + e.Warning.InvoiceID + ": " + l.Message
		}
	case "done":
		l.Kind, l.Message = "org", "done"
	}
	return l
}

type outputMode int

const (
	modeHuman outputMode = iota
	modeJSON
	modeQuiet
)

// printer shows progress: human lines on stderr, JSON lines on stdout, or nothing. It is safe for
// concurrent use.
type printer struct {
	mode   outputMode
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time

	mu        sync.Mutex
	lastBytes map[string]time.Time
}

// bytesEvery throttles bytes lines per key: a multi-GiB stream must not print a line per chunk.
const bytesEvery = time.Second

func newPrinter(mode outputMode, stdout, stderr io.Writer, now func() time.Time) *printer {
	return &printer{mode: mode, stdout: stdout, stderr: stderr, now: now, lastBytes: map[string]time.Time{}}
}

// printer shows the output of a's command in its mode.
func (a *App) printer() *printer { return newPrinter(a.mode, a.Stdout, a.Stderr, a.Now) }

// event reports an export's progress (export.Exporter's Progress).
func (p *printer) event(e export.Event) { p.report(lineOf(e)) }

func (p *printer) report(l line) {
	if p.mode == modeQuiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	l.Time = now.UTC().Format(time.RFC3339Nano)
	switch k := l.Org + "|" + l.Month + "|" + l.Key; l.Kind {
	case "bytes":
		if last, ok := p.lastBytes[k]; ok && now.Sub(last) < bytesEvery {
			return
		}
		p.lastBytes[k] = now
	case "object":
		delete(p.lastBytes, k)
	}
	if p.mode == modeJSON {
		p.writeJSON(l)
		return
	}
	fmt.Fprintln(p.stderr, l.text())
}

// writeJSON writes one JSON line on stdout. Callers hold p.mu or are single-threaded.
func (p *printer) writeJSON(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"event": "error", "message": err.Error()})
	}
	p.stdout.Write(append(b, '\n'))
}

// JSON writes v as one line in JSON mode; other modes ignore it.
func (p *printer) JSON(v any) {
	if p.mode != modeJSON {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.writeJSON(v)
}

// Human runs f with stdout in human mode only (results tables).
func (p *printer) Human(f func(w io.Writer)) {
	if p.mode != modeHuman {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.stdout)
}

// text is the line for a person: "org ORG MONTH: what happened".
func (l line) text() string {
	var b strings.Builder
	if l.Org != "" {
		b.WriteString("org " + l.Org)
	}
	if l.Month != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(l.Month)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	switch l.Kind {
	case "org":
		b.WriteString(cmp.Or(l.Message, "started"))
		return b.String()
	case "poll":
		fmt.Fprintf(&b, "poll attempt %d: %s", l.Attempt, cmp.Or(l.Status, "answered"))
	case "wait":
		fmt.Fprintf(&b, "waiting %s", (time.Duration(l.WaitSeconds * float64(time.Second))).Round(time.Millisecond))
		if l.Attempt > 0 {
			fmt.Fprintf(&b, " before poll attempt %d", l.Attempt)
		}
	case "bytes":
		fmt.Fprintf(&b, "%s streamed", formatBytes(l.Bytes))
		if l.Key != "" {
			b.WriteString(" into " + l.Key)
		}
	case "object":
		verb := "wrote"
		if l.Object.Skipped {
			verb = "unchanged"
		}
		fmt.Fprintf(&b, "%s %s (%s, %d rows)", verb, l.Object.Key, formatBytes(l.Object.Bytes), l.Object.Rows)
	case "warning":
		b.WriteString("warning")
	case "execution":
		fmt.Fprintf(&b, "execution %s: %s", l.Execution, l.Status)
		if l.Error != "" || l.Cause != "" {
			fmt.Fprintf(&b, ": %s: %s", l.Error, l.Cause)
		}
	default:
		b.WriteString(l.Step)
	}
	if l.Message != "" {
		b.WriteString(": " + l.Message)
	}
	return b.String()
}

// formatBytes prints a size for a person: 512 B, 12.3 KiB, 1.0 GiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// where is the output a person reads: the folder, or s3://bucket/prefix.
func where(cfg config.Config) string {
	if cfg.Dir != "" {
		return cfg.Dir
	}
	return strings.TrimSuffix("s3://"+cfg.Bucket+"/"+cfg.Prefix, "/")
}

// location is where a person finds an object: a path under the output folder, or s3://bucket/key.
func location(cfg config.Config, o sink.Object) string {
	if cfg.Dir != "" {
		return filepath.Join(cfg.Dir, filepath.FromSlash(o.Key))
	}
	return "s3://" + o.Bucket + "/" + o.Key
}

// writeSummary prints the files an export wrote, one per line with size and rows.
func writeSummary(w io.Writer, cfg config.Config, s summary, elapsed time.Duration) {
	var written, skipped int
	var bytes, rows int64
	for _, o := range s.Objects {
		if o.Skipped {
			skipped++
		} else {
			written++
		}
		bytes += o.Bytes
		rows += o.Rows
	}
	fmt.Fprintf(w, "%d files (%d written, %d unchanged), %s, %d rows in %s for %d org(s), %s\n",
		len(s.Objects), written, skipped, formatBytes(bytes), rows, where(cfg), len(s.Orgs), monthsText(s.Months))
	if len(s.Objects) == 0 {
		writeFailures(w, s.Failures)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSIZE\tROWS\tSTATE")
	for _, o := range s.Objects {
		state := "written"
		if o.Skipped {
			state = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", location(cfg, o), formatBytes(o.Bytes), o.Rows, state)
	}
	tw.Flush()
	if len(s.Totals) > 0 {
		fmt.Fprintln(w)
		writeTotals(w, s.Totals)
	}
	if len(s.Reconciliations) > 0 {
		fmt.Fprintln(w)
		writeReconciliations(w, s.Reconciliations)
	}
	if len(s.NoInvoice) > 0 {
		fmt.Fprintln(w)
		writeNoInvoice(w, s.NoInvoice)
	}
	if len(s.Warnings) > 0 {
		fmt.Fprintln(w)
		writeWarnings(w, s.Warnings)
	}
	writeFailures(w, s.Failures)
	fmt.Fprintf(w, "done in %s", elapsed.Round(time.Millisecond))
	if n := len(s.Warnings); n > 0 {
		fmt.Fprintf(w, ", with %d warning(s): every file Atlas sent is stored (--strict makes warnings fail the run)", n)
	}
	fmt.Fprintln(w)
}

// writeReconciliations prints a line per invoice: its line items against its
// totals, and the month's usage beside them.
func writeReconciliations(w io.Writer, recs []reconciliation) {
	ok := 0
	for _, r := range recs {
		if r.Reconciled {
			ok++
		}
	}
	fmt.Fprintf(w, "RECONCILIATION: %d of %d invoice(s) reconciled\n", ok, len(recs))
	for _, r := range recs {
		state := "reconciled"
		if !r.Reconciled {
			state = "NOT reconciled: " + r.Reason
		}
		fmt.Fprintf(w, "  org %s %s invoice %s: line items %s, subtotal %s - credits %s, billed %s: %s",
			r.OrgID, r.Month, r.InvoiceID, r.LineItems, export.FormatCents(r.SubtotalCents), export.FormatCents(r.CreditsCents), export.FormatCents(r.AmountBilledCents), state)
		if r.Usage != "" {
			fmt.Fprintf(w, "; usage %s (delta %s, information)", r.Usage, r.UsageDelta)
		}
		fmt.Fprintln(w)
	}
}

// writeNoInvoice names the months without an invoice, which would otherwise
// show only as missing files.
func writeNoInvoice(w io.Writer, months map[string][]string) {
	fmt.Fprintln(w, "NO INVOICE: Atlas listed no invoice for these months: only their usage is stored")
	for _, org := range slices.Sorted(maps.Keys(months)) {
		ms := slices.Sorted(slices.Values(months[org]))
		fmt.Fprintf(w, "  org %s: %s\n", org, strings.Join(ms, ", "))
	}
}

// writeWarnings prints a line per warning.
func writeWarnings(w io.Writer, ws []export.Warning) {
	fmt.Fprintf(w, "WARNINGS: %d\n", len(ws))
	for _, x := range ws {
		where := "org " + x.OrgID + " " + x.Period
		if x.InvoiceID != "" {
			where += " invoice " + x.InvoiceID
		}
		fmt.Fprintf(w, "  %s (%s): %s: %s\n", where, x.Step, x.Name, oneLine(x.Message))
	}
}

// writeFailures lists the jobs that failed, one line each.
func writeFailures(w io.Writer, failures []export.Failure) {
	if len(failures) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%d job(s) failed:\n", len(failures))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORG\tMONTH\tERROR\tCAUSE")
	for _, f := range failures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.OrgID, f.Month, f.Error, f.Reason())
	}
	tw.Flush()
}

func monthsText(months []string) string {
	switch len(months) {
	case 0:
		return "no months"
	case 1:
		return months[0]
	}
	return months[0] + " to " + months[len(months)-1]
}

// writeTotals prints the usage as a table: a row per service, a column per
// month, and a total row; sums are exact decimals.
func writeTotals(w io.Writer, totals []total) {
	var months, services []string
	cell := map[[2]string]string{}
	sums := map[string]*big.Rat{}
	for _, t := range totals {
		if sums[t.Month] == nil {
			sums[t.Month] = new(big.Rat)
			months = append(months, t.Month)
		}
		if !slices.Contains(services, t.Service) {
			services = append(services, t.Service)
		}
		cell[[2]string{t.Service, t.Month}] = t.Amount
		if v, ok := new(big.Rat).SetString(t.Amount); ok {
			sums[t.Month].Add(sums[t.Month], v)
		}
	}
	sort.Strings(months)
	sort.Strings(services)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "USAGE (USD)\t%s\t\n", strings.Join(months, "\t"))
	row := func(name string, value func(month string) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, m := range months {
			fmt.Fprintf(tw, "%s\t", value(m))
		}
		fmt.Fprintln(tw)
	}
	for _, svc := range services {
		row(svc, func(m string) string {
			if v, ok := cell[[2]string{svc, m}]; ok {
				return v
			}
			return "-"
		})
	}
	row("total", func(m string) string { return sums[m].FloatString(2) })
	tw.Flush()
}
