package cli

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPrinterThrottlesBytes(t *testing.T) {
	for _, mode := range []outputMode{modeHuman, modeJSON} {
		var stdout, stderr bytes.Buffer
		now := fixedNow
		p := newPrinter(mode, &stdout, &stderr, func() time.Time { return now })
		const key = "invoices/a.csv"
		// 30 reports 100ms apart = 3s of streaming: lines at 0s, 1s, 2s; and the other key's own line.
		for i := range 30 {
			p.Report(Event{Kind: EventBytes, Org: testOrg1, Month: "2024-06", Key: key, Bytes: int64(i+1) << 20})
			if i == 5 {
				p.Report(Event{Kind: EventBytes, Org: testOrg1, Month: "2024-06", Key: "usage.csv", Bytes: 1})
			}
			now = now.Add(100 * time.Millisecond)
		}
		p.Report(Event{Kind: EventObject, Org: testOrg1, Month: "2024-06", Object: &Object{Key: key, Bytes: 30 << 20}})
		out := stderr.String()
		if mode == modeJSON {
			out = stdout.String()
		}
		if got := strings.Count(out, key); got != 4 {
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
				p.Report(Event{Kind: EventPoll, Org: testOrg1, Attempt: i + 1, Status: "PROCESSING"})
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

func TestHumanLine(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Kind: EventStep, Org: testOrg1, Month: "2024-06", Step: "fetch-invoice", Message: "3 invoices"}, "org " + testOrg1 + " 2024-06: fetch-invoice: 3 invoices"},
		{Event{Kind: EventWait, Org: testOrg1, Wait: 1500 * time.Millisecond}, "org " + testOrg1 + ": waiting 1.5s"},
		{Event{Kind: EventExecution, Month: "2024-06", Execution: "abx-2024-06-1", Status: "SUCCEEDED"}, "2024-06: execution abx-2024-06-1: SUCCEEDED"},
	}
	for _, tt := range tests {
		if got := humanLine(tt.e); got != tt.want {
			t.Errorf("humanLine = %q, want %q", got, tt.want)
		}
	}
}
