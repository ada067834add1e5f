package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

var june = period.Month(2024, time.June)

func TestPrinterThrottlesBytes(t *testing.T) {
	for _, mode := range []outputMode{modeHuman, modeJSON} {
		var stdout, stderr bytes.Buffer
		now := fixedNow
		p := newPrinter(mode, &stdout, &stderr, func() time.Time { return now })
		const key = "invoices/a.csv"
		// 30 reports 100ms apart = 3s of streaming: lines at 0s, 1s, 2s; and the other key's own line.
		for i := range 30 {
			p.event(export.Event{Step: "stream", OrgID: testOrg1, Period: june, Key: key, Bytes: int64(i+1) << 20})
			if i == 5 {
				p.event(export.Event{Step: "stream", OrgID: testOrg1, Period: june, Key: "usage.csv", Bytes: 1})
			}
			now = now.Add(100 * time.Millisecond)
		}
		p.event(export.Event{Step: "object", OrgID: testOrg1, Period: june, Object: &sink.Object{Key: key, Bytes: 30 << 20}})
		out := stderr.String()
		if mode == modeJSON {
			out = stdout.String()
		}
		if got := len(strings.FieldsFunc(out, func(r rune) bool { return r == '\n' })) - strings.Count(out, "usage.csv"); got != 4 {
			t.Fatalf("mode %d: %d lines name %s, want 3 bytes lines and the object:\n%s", mode, got, key, out)
		}
		if !strings.Contains(out, "usage.csv") {
			t.Fatalf("mode %d: the second key was throttled with the first:\n%s", mode, out)
		}
	}
}

func TestPrinterConcurrentLinesStayWhole(t *testing.T) {
	var stdout, stderr bytes.Buffer
	p := newPrinter(modeJSON, &stdout, &stderr, time.Now)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				p.event(export.Event{Step: "poll", OrgID: testOrg1, Attempt: i + 1, Status: "PROCESSING"})
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines, want 400", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"event":"poll"`) || !strings.HasSuffix(l, "}") {
			t.Fatalf("broken line %q", l)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 256 << 20: "256.0 MiB", 3 << 30: "3.0 GiB"}
	for n, want := range tests {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLineText(t *testing.T) {
	tests := []struct {
		l    line
		want string
	}{
		{lineOf(export.Event{Step: "fetch-invoice", OrgID: testOrg1, Period: june}), "org " + testOrg1 + " 2024-06: fetch-invoice"},
		{lineOf(export.Event{Step: "plan", Jobs: 6}), "plan: 6 org-month(s) to export"},
		{lineOf(export.Event{Step: "wait", OrgID: testOrg1, Wait: 1500 * time.Millisecond}), "org " + testOrg1 + ": waiting 1.5s before poll attempt 1"},
		{lineOf(export.Event{Step: "focus-poll", OrgID: testOrg1, Period: june, Attempt: 2, Status: "READY"}), "org " + testOrg1 + " 2024-06: poll attempt 2: READY: FOCUS reports"},
		{lineOf(export.Event{Step: "object", OrgID: testOrg1, Period: june, Object: &sink.Object{Key: "k", Bytes: 2048, Rows: 3, Skipped: true}}), "org " + testOrg1 + " 2024-06: unchanged k (2.0 KiB, 3 rows)"},
		{lineOf(export.Event{Step: "done", OrgID: testOrg1, Period: june}), "org " + testOrg1 + " 2024-06: done"},
		{line{Kind: "execution", Month: "2024-06", Execution: "abx-2024-06-1", Status: "SUCCEEDED"}, "2024-06: execution abx-2024-06-1: SUCCEEDED"},
		{lineOf(export.Event{Step: "warning", OrgID: testOrg1, Period: june, Warning: &export.Warning{Name: export.FocusUnavailable, Message: "no report", Step: "focus-submit", InvoiceID: "65ab0c1d2e3f4a5b6c7d8e9f"}}),
			"org " + testOrg1 + " 2024-06: warning: invoice 65ab0c1d2e3f4a5b6c7d8e9f: Focus.Unavailable: no report"},
	}
	for _, tt := range tests {
		if got := tt.l.text(); got != tt.want {
			t.Errorf("text = %q, want %q", got, tt.want)
		}
	}
}

// The summary lists each invoice's reconciliation and each warning, and says
// the run ended with warnings.
func TestWriteSummaryWarnings(t *testing.T) {
	const inv = "65ab0c1d2e3f4a5b6c7d8e9f"
	s := summary{
		Orgs: []string{testOrg1}, Months: []string{"2024-06"}, Objects: []sink.Object{{Key: "k", Bytes: 10, Rows: 1}},
		Reconciliations: []reconciliation{
			{OrgID: testOrg1, Reconciliation: export.Reconciliation{InvoiceID: inv, Month: "2024-06", LineItems: "12.50",
				Totals: export.Totals{SubtotalCents: 1300, CreditsCents: 50, AmountBilledCents: 1250}, Reconciled: true, Usage: "12.75", UsageDelta: "0.25"}},
			{OrgID: testOrg1, Reconciliation: export.Reconciliation{InvoiceID: inv, Month: "2024-07", LineItems: "1.00",
				Totals: export.Totals{SubtotalCents: 101, AmountBilledCents: 101}, DeltaCents: -1, Reason: "the line items add up to 1.00"}},
		},
		Warnings: []export.Warning{{Name: export.InvoiceUnreconciled, Message: "the line items add up to 1.00", OrgID: testOrg1, Period: "2024-07", Step: "fetch-invoice", InvoiceID: inv}},
	}
	var b bytes.Buffer
	writeSummary(&b, config.Config{Dir: "out"}, s, time.Second)
	for _, want := range []string{
		"RECONCILIATION: 1 of 2 invoice(s) reconciled\n",
		"  org " + testOrg1 + " 2024-06 invoice " + inv + ": line items 12.50, subtotal 13.00 - credits 0.50, billed 12.50: reconciled; usage 12.75 (delta 0.25, information)\n",
		"  org " + testOrg1 + " 2024-07 invoice " + inv + ": line items 1.00, subtotal 1.01 - credits 0.00, billed 1.01: NOT reconciled: the line items add up to 1.00\n",
		"WARNINGS: 1\n  org " + testOrg1 + " 2024-07 invoice " + inv + " (fetch-invoice): Invoice.Unreconciled: the line items add up to 1.00\n",
		"done in 1s, with 1 warning(s)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
