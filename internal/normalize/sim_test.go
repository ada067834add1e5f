package normalize_test

import (
	"bytes"
	"encoding/csv"
	"io"
	"math/big"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// simNow pins the simulator's calendar: invoices for 2024-01..2024-06 are
// closed or paid, 2024-07 is pending.
var simNow = time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC)

// centsOf sums a column of decimal strings exactly (big.Rat, not the
// package's own parser), positives and negatives apart, in cents.
func centsOf(t *testing.T, recs [][]string, col int) (pos, neg int64) {
	t.Helper()
	var p, n big.Rat
	for i, r := range recs {
		v, ok := new(big.Rat).SetString(r[col])
		if !ok {
			t.Fatalf("record %d: %q is not a decimal", i, r[col])
		}
		if v.Sign() > 0 {
			p.Add(&p, v)
		} else {
			n.Add(&n, v)
		}
	}
	hundred := big.NewRat(100, 1)
	p.Mul(&p, hundred)
	n.Mul(&n, hundred)
	if !p.IsInt() || !n.IsInt() {
		t.Fatalf("sums %s, %s are not whole cents", p.FloatString(4), n.FloatString(4))
	}
	return p.Num().Int64(), n.Num().Int64()
}

// Acceptance: the normalized line items of a generated invoice with credits
// and thousands of rows add up, in integer cents, to the invoice's JSON, with
// no row lost. The simulator's money rule (atlassim.Invoice): subtotalCents
// is the sum of the positive line items and creditsCents the sum of the
// negative ones, so all line items sum to subtotalCents - creditsCents. Both
// halves are checked against the JSON, and the total against Stats.
func TestInvoiceAddsUpToTheInvoiceJSON(t *testing.T) {
	sim, base := atlassimtest.Start(t, atlassim.Config{InvoiceRows: 5000, FirstMonth: "2024-01", Now: func() time.Time { return simNow }})
	c, err := atlas.NewClient(atlas.WithBaseURL(base), atlas.WithServiceAccount(atlassim.DefaultClientID, atlassim.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	org := atlassim.DefaultOrgs[1].ID
	invs, err := c.ListInvoices(t.Context(), org, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, inv := range sim.Invoices(org) {
		rows[inv.ID] = inv.Rows
	}
	if len(invs) < 3 {
		t.Fatalf("%d invoices listed, want the simulator's 7", len(invs))
	}
	var credited int
	for _, inv := range invs {
		t.Run(inv.ID, func(t *testing.T) {
			body, err := c.InvoiceCSV(t.Context(), org, inv.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer body.Close()
			var out bytes.Buffer
			st, err := normalize.Invoice(&out, body, normalize.InvoiceInfo{ID: inv.ID, Status: inv.StatusName})
			if err != nil {
				t.Fatal(err)
			}
			if rows[inv.ID] < 1000 {
				t.Fatalf("simulator says %d rows, want thousands", rows[inv.ID])
			}
			if st.Rows != rows[inv.ID] {
				t.Errorf("Stats.Rows = %d, the invoice has %d line items", st.Rows, rows[inv.ID])
			}
			recs := records(t, out.Bytes())
			if int64(len(recs)) != rows[inv.ID]+1 || !slices.Equal(recs[0], normalize.InvoiceColumns) {
				t.Fatalf("normalized file has %d records, want header + %d", len(recs), rows[inv.ID])
			}
			pos, neg := centsOf(t, recs[1:], slices.Index(normalize.InvoiceColumns, "amount"))
			if pos != inv.SubtotalCents {
				t.Errorf("positive line items = %d cents, subtotalCents = %d", pos, inv.SubtotalCents)
			}
			if -neg != inv.CreditsCents {
				t.Errorf("credit line items = %d cents, creditsCents = %d", neg, inv.CreditsCents)
			}
			if want := inv.SubtotalCents - inv.CreditsCents; amountCents(st) != want || pos+neg != want {
				t.Errorf("Stats.AmountCents = %d, file sum = %d, subtotalCents - creditsCents = %d", amountCents(st), pos+neg, want)
			}
			if inv.CreditsCents > 0 {
				credited++
			}
			for _, r := range recs[1:] {
				if r[0] != inv.ID || r[1] != inv.StatusName {
					t.Fatalf("record starts %q, %q; want %s, %s", r[0], r[1], inv.ID, inv.StatusName)
				}
			}
		})
	}
	if credited == 0 {
		t.Error("no invoice had credits: the test would not see a sign error")
	}
}

func TestUsageFromSimulator(t *testing.T) {
	sim, err := atlassim.New(atlassim.Config{InvoiceRows: 3000, Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	org := atlassim.DefaultOrgs[0].ID
	var raw bytes.Buffer
	if err := sim.WriteUsageCSV(&raw, org, atlassim.UsageQuery{StartDate: "2024-06-01", EndDate: "2024-07-01"}); err != nil {
		t.Fatal(err)
	}
	rawRecs, err := csv.NewReader(bytes.NewReader(raw.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st, err := normalize.Usage(&out, bytes.NewReader(raw.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, out.Bytes())
	if st.Rows != int64(len(rawRecs)-1) || st.Rows < 1000 || len(recs) != len(rawRecs) || !slices.Equal(recs[0], normalize.UsageColumns) {
		t.Fatalf("Stats.Rows %d, %d records; want the %d rows served and a header", st.Rows, len(recs), len(rawRecs)-1)
	}
	// The simulator writes ISO dates and plain decimals: every value comes
	// back as sent, the amount as the same number.
	amt := len(atlassim.UsageColumns) - 1
	for i := range recs[1:] {
		got, raw := recs[i+1], rawRecs[i+1]
		a, _ := new(big.Rat).SetString(got[amt])
		b, _ := new(big.Rat).SetString(raw[amt])
		if !slices.Equal(got[:amt], raw[:amt]) || a == nil || b == nil || a.Cmp(b) != 0 {
			t.Fatalf("record %d = %q, raw %q", i+1, got, raw)
		}
	}
	pos, neg := centsOf(t, rawRecs[1:], len(atlassim.UsageColumns)-1)
	if neg == 0 {
		t.Error("no credits in the usage: the sum would not see a sign error")
	}
	if amountCents(st) != pos+neg {
		t.Errorf("Stats.AmountCents = %d, raw usage sums to %d", amountCents(st), pos+neg)
	}
}

// heapPeak samples the heap until stop is called and returns the highest
// HeapInuse seen.
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak }
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// Memory stays flat whatever the invoice's size: a 64 MiB invoice streams
// through with a few MiB of heap. Not parallel: the heap is the process's.
func TestInvoiceStreams(t *testing.T) {
	const size = 64 << 20
	// Half the file: reading it whole could not fit. HeapInuse counts garbage
	// the collector has not reclaimed yet, so a live set of a few MiB can
	// show up to twice that and more on a loaded machine.
	const limit = 32 << 20
	// Collect early, so the peak shows what stays live rather than how much
	// garbage a busy machine lets pile up before the collector runs.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	sim, err := atlassim.New(atlassim.Config{InvoiceBytes: size, FirstMonth: "2024-06", Now: func() time.Time { return simNow }})
	if err != nil {
		t.Fatal(err)
	}
	org := atlassim.DefaultOrgs[0].ID
	inv := sim.Invoices(org)[0]
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(sim.WriteInvoiceCSV(pw, org, inv.ID)) }()
	t.Cleanup(func() { pr.Close() })

	stop := heapPeak(t)
	var out countWriter
	st, err := normalize.Invoice(&out, pr, normalize.InvoiceInfo{ID: inv.ID, Status: inv.Status})
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != inv.Rows || amountCents(st) != inv.SubtotalCents-inv.CreditsCents {
		t.Errorf("stats %+v, want %d rows and %d cents", st, inv.Rows, inv.SubtotalCents-inv.CreditsCents)
	}
	if out.n < size/20 {
		t.Errorf("wrote %d bytes from a %d-byte invoice", out.n, size)
	}
	t.Logf("%d rows, %d bytes out, heap peak %d KiB", st.Rows, out.n, peak>>10)
	if peak > limit {
		t.Errorf("heap peaked at %d MiB normalizing %d MiB, want < %d MiB", peak>>20, size>>20, limit>>20)
	}
}
