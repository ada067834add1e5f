package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/report"
)

// Progress receives events while an export runs. Implementations are safe for concurrent use, so an
// exporter may report from several goroutines (one per org).
type Progress interface {
	Report(Event)
}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(Event)

// Report calls f(e).
func (f ProgressFunc) Report(e Event) { f(e) }

// Discard is a Progress that drops every event.
var Discard Progress = ProgressFunc(func(Event) {})

// EventKind says what an Event reports.
type EventKind string

const (
	EventOrg       EventKind = "org"       // work for Org (and Month) begins; Message may say what
	EventStep      EventKind = "step"      // Step begins: "plan", "submit", "poll", "fetch-invoice"
	EventPoll      EventKind = "poll"      // a usage poll answered: Attempt (1-based), Status PROCESSING|READY
	EventWait      EventKind = "wait"      // waiting Wait before the next poll (Attempt is the next one)
	EventBytes     EventKind = "bytes"     // Bytes streamed so far (cumulative) into Key; report as often as you like
	EventObject    EventKind = "object"    // Object was written (or Skipped: already stored unchanged)
	EventExecution EventKind = "execution" // a Step Functions execution changed Status (start, backfill)
)

// Event is one progress report. Fill what applies; Time defaults to when it is printed.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Org     string        // 24-hex org id
	Month   string        // "YYYY-MM"
	Step    string        // "plan", "submit", "poll", "fetch-invoice"
	Attempt int           // poll attempt, 1-based
	Status  string        // PROCESSING, READY, or an execution status
	Wait    time.Duration // for EventWait
	Bytes   int64         // for EventBytes: cumulative bytes of Key
	Key     string        // object key being streamed (EventBytes)
	Object  *Object       // for EventObject
	Message string        // free text for a person

	Execution string // execution name (EventExecution)
	Error     string // error name of a failed execution
	Cause     string // its cause
}

// MarshalJSON writes the event as one flat JSON object with "event" naming the kind and the wait in
// seconds, leaving out what does not apply.
func (e Event) MarshalJSON() ([]byte, error) {
	type obj struct {
		Kind        EventKind `json:"event"`
		Time        string    `json:"time"`
		Org         string    `json:"orgId,omitempty"`
		Month       string    `json:"month,omitempty"`
		Step        string    `json:"step,omitempty"`
		Attempt     int       `json:"attempt,omitempty"`
		Status      string    `json:"status,omitempty"`
		WaitSeconds float64   `json:"waitSeconds,omitempty"`
		Bytes       int64     `json:"bytes,omitempty"`
		Key         string    `json:"key,omitempty"`
		Object      *Object   `json:"object,omitempty"`
		Message     string    `json:"message,omitempty"`
		Execution   string    `json:"execution,omitempty"`
		Error       string    `json:"error,omitempty"`
		Cause       string    `json:"cause,omitempty"`
	}
	return json.Marshal(obj{
		Kind: e.Kind, Time: e.Time.UTC().Format(time.RFC3339Nano), Org: e.Org, Month: e.Month, Step: e.Step,
		Attempt: e.Attempt, Status: e.Status, WaitSeconds: e.Wait.Seconds(), Bytes: e.Bytes, Key: e.Key,
		Object: e.Object, Message: e.Message, Execution: e.Execution, Error: e.Error, Cause: e.Cause,
	})
}

// Object is one file the export wrote (the functions' Object JSON plus where it belongs).
type Object struct {
	Kind      string `json:"kind,omitempty"` // "usage" or "invoice"
	Org       string `json:"orgId,omitempty"`
	Month     string `json:"month,omitempty"`
	InvoiceID string `json:"invoiceId,omitempty"`
	Bucket    string `json:"bucket,omitempty"` // empty for a local folder
	Key       string `json:"key"`              // S3 key, or the path relative to the output folder
	Bytes     int64  `json:"bytes"`
	SHA256    string `json:"sha256,omitempty"` // hex
	Rows      int64  `json:"rows"`
	Skipped   bool   `json:"skipped"` // already stored with the same sha256: not rewritten
}

// Summary is what a whole export did.
type Summary struct {
	Orgs    []string       `json:"orgs"`
	Months  []string       `json:"months"`
	Objects []Object       `json:"objects"`
	Totals  []report.Total `json:"usageTotals,omitempty"` // usage per month and service, read back from the files
}

type outputMode int

const (
	modeHuman outputMode = iota
	modeJSON
	modeQuiet
)

// printer shows progress: human lines on stderr, JSON lines on stdout, or nothing. It implements
// Progress and is safe for concurrent use.
type printer struct {
	mode   outputMode
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time

	mu        sync.Mutex
	lastBytes map[string]time.Time
}

// bytesEvery throttles bytes events per key: a multi-GiB stream must not print a line per chunk.
const bytesEvery = time.Second

func newPrinter(mode outputMode, stdout, stderr io.Writer, now func() time.Time) *printer {
	return &printer{mode: mode, stdout: stdout, stderr: stderr, now: now, lastBytes: map[string]time.Time{}}
}

func (p *printer) Report(e Event) {
	if p.mode == modeQuiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = p.now()
	}
	if e.Kind == EventBytes {
		k := e.Org + "|" + e.Month + "|" + e.Key
		if last, ok := p.lastBytes[k]; ok && e.Time.Sub(last) < bytesEvery {
			return
		}
		p.lastBytes[k] = e.Time
	}
	if e.Kind == EventObject {
		delete(p.lastBytes, e.Org+"|"+e.Month+"|"+objectKey(e.Object))
	}
	if p.mode == modeJSON {
		p.writeJSON(e)
		return
	}
	fmt.Fprintln(p.stderr, humanLine(e))
}

func objectKey(o *Object) string {
	if o == nil {
		return ""
	}
	return o.Key
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

func humanLine(e Event) string {
	var b strings.Builder
	if e.Org != "" {
		b.WriteString("org " + e.Org)
	}
	if e.Month != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(e.Month)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	switch e.Kind {
	case EventOrg:
		b.WriteString(or(e.Message, "started"))
		return b.String()
	case EventStep:
		b.WriteString(e.Step)
	case EventPoll:
		fmt.Fprintf(&b, "poll attempt %d: %s", e.Attempt, or(e.Status, "answered"))
	case EventWait:
		fmt.Fprintf(&b, "waiting %s", e.Wait.Round(time.Millisecond))
		if e.Attempt > 0 {
			fmt.Fprintf(&b, " before poll attempt %d", e.Attempt)
		}
	case EventBytes:
		fmt.Fprintf(&b, "%s streamed", formatBytes(e.Bytes))
		if e.Key != "" {
			b.WriteString(" into " + e.Key)
		}
	case EventObject:
		if e.Object == nil {
			b.WriteString("object written")
			break
		}
		verb := "wrote"
		if e.Object.Skipped {
			verb = "unchanged"
		}
		fmt.Fprintf(&b, "%s %s (%s, %d rows)", verb, e.Object.Key, formatBytes(e.Object.Bytes), e.Object.Rows)
	case EventExecution:
		fmt.Fprintf(&b, "execution %s: %s", e.Execution, e.Status)
		if e.Error != "" || e.Cause != "" {
			fmt.Fprintf(&b, ": %s: %s", e.Error, e.Cause)
		}
	default:
		b.WriteString(string(e.Kind))
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
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

// location is where a person finds an object: s3://bucket/key or a path under the output folder.
func location(out Output, o Object) string {
	if o.Bucket != "" {
		return "s3://" + o.Bucket + "/" + o.Key
	}
	if out.Bucket != "" {
		return "s3://" + out.Bucket + "/" + o.Key
	}
	return filepath.Join(out.Dir, filepath.FromSlash(o.Key))
}

// writeSummary prints the files an export wrote, one per line with size and rows.
func writeSummary(w io.Writer, out Output, s Summary, elapsed time.Duration) {
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
		len(s.Objects), written, skipped, formatBytes(bytes), rows, out, len(s.Orgs), monthsText(s.Months))
	if len(s.Objects) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSIZE\tROWS\tSTATE")
	for _, o := range s.Objects {
		state := "written"
		if o.Skipped {
			state = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", location(out, o), formatBytes(o.Bytes), o.Rows, state)
	}
	tw.Flush()
	if len(s.Totals) > 0 {
		fmt.Fprintln(w)
		writeTotals(w, s.Totals)
	}
	fmt.Fprintf(w, "done in %s\n", elapsed.Round(time.Millisecond))
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
func writeTotals(w io.Writer, totals []report.Total) {
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
