package atlas_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// heapPeak samples the heap every 10ms until stop is called, and returns the
// highest HeapInuse seen.
func heapPeak(t *testing.T) (stop func() uint64) {
	t.Helper()
	runtime.GC()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse, m.HeapAlloc)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak }
}

// generate writes size bytes of CSV-like lines, made on the fly.
func generate(w io.Writer, size int64) {
	line := []byte("06/01/2024,06/01/2024,\"Atlas AWS Instance M10, us-east-1\",,Org,666acb8787ba43606905dcac,P,666acb8787ba43606905dcad,SKU,US_EAST_1,C0,,,,h,0.08,24,,1.92\n")
	chunk := bytes.Repeat(line, 64<<10/len(line))
	for size > 0 {
		n := min(size, int64(len(chunk)))
		if _, err := w.Write(chunk[:n]); err != nil {
			return
		}
		size -= n
	}
}

// Not parallel: the heap is measured for the whole process.
func TestStreamingMemory(t *testing.T) {
	const size = 256 << 20
	const limit = 32 << 20
	// Collect early, so the peak shows what stays live rather than how much
	// garbage a busy machine lets pile up before the collector runs.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", r.Header.Get("Accept"))
		if r.URL.Path != "/api/atlas/v2/orgs/"+testOrg+"/billing/costExplorer/usage/"+testToken {
			w.Header().Set("Content-Length", strconv.Itoa(size)) // invoices: Content-Length; usage: chunked
		}
		generate(w, size)
	})
	plain := newClient(t, srv.URL)
	tests := []struct {
		name string
		open func(context.Context) (io.ReadCloser, error)
		want int64
	}{
		{"InvoiceCSV", func(ctx context.Context) (io.ReadCloser, error) { return plain.InvoiceCSV(ctx, testOrg, testInv) }, size},
		{"GetUsage", func(ctx context.Context) (io.ReadCloser, error) {
			u, err := plain.GetUsage(ctx, testOrg, testToken, atlas.CSV)
			if err != nil {
				return nil, err
			}
			return u.Body, nil
		}, size},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stop := heapPeak(t)
			body, err := tc.open(ctxTimeout(t, 60*time.Second))
			if err != nil {
				stop()
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, body)
			body.Close()
			peak := stop()
			if err != nil || n != tc.want {
				t.Fatalf("streamed %d bytes, err %v; want %d", n, err, tc.want)
			}
			t.Logf("%d MiB streamed, heap peak %.1f MiB", n>>20, float64(peak)/(1<<20))
			if peak > limit {
				t.Errorf("heap peak %d bytes, want under %d", peak, limit)
			}
		})
	}
}

// writeRepeated writes prefix, then item n times separated by commas, then
// suffix, in chunks, and returns the bytes written.
func writeRepeated(w io.Writer, prefix, item, suffix string, n int) int64 {
	total := int64(len(prefix)) + int64(n)*int64(len(item)+1) - 1 + int64(len(suffix))
	if n == 0 {
		total++
	}
	if w == nil {
		return total
	}
	_, _ = io.WriteString(w, prefix)
	per := max(1, 64<<10/(len(item)+1))
	chunk := []byte(strings.Repeat(item+",", per))
	for left := n; left > 0; {
		k := min(per, left)
		b := chunk[:k*(len(item)+1)]
		if left == k {
			b = b[:len(b)-1] // no comma after the last
		}
		if _, err := w.Write(b); err != nil {
			return total
		}
		left -= k
	}
	_, _ = io.WriteString(w, suffix)
	return total
}

// JSON answers are read as streams: a pending invoice of 64 MiB (its line
// items) and pages of a million entries take the heap nowhere near their
// decoded size. Not parallel: the heap is measured for the whole process.
func TestJSONAnswerMemory(t *testing.T) {
	const limit = 64 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	inv := `{"id":"` + testInv + `","orgId":"` + testOrg + `","statusName":"PENDING","startDate":"2024-07-01T00:00:00Z","lineItems":[`
	item := `{"clusterName":"Cluster0","created":"2024-07-02T00:00:00Z","description":"Atlas AWS Instance M10","endDate":"2024-07-03T00:00:00Z",` +
		`"groupId":"666acb8787ba43606905dcad","groupName":"Project 0","quantity":24,"sku":"ATLAS_AWS_INSTANCE_M10","startDate":"2024-07-02T00:00:00Z",` +
		`"tags":{"environment":["prod"]},"totalPriceCents":192,"unit":"server hours","unitPriceDollars":0.08}`
	items := int(64<<20) / (len(item) + 1)
	tests := []struct {
		name, prefix, item, suffix string
		n                          int
		pending                    bool
		wantLineItems              int
		reason                     string // of the *AnswerError; "" for success
	}{
		{"pending object of 64 MiB", inv, item, `]}`, items, true, items, ""},
		{"pending page of 64 MiB", `{"results":[` + inv, item, `]}],"totalCount":1}`, items, true, items, ""},
		{"page of a million {}", `{"results":[`, `{}`, `]}`, 1 << 20, false, 0, "without a valid id"},
		{"pending page of a million {}", `{"results":[`, `{}`, `]}`, 1 << 20, true, 0, "without a valid id"},
		{"page of a million invoices", `{"results":[`, `{"id":"` + testInv + `"}`, `]}`, 1 << 20, false, 0, "more than the 500 invoices"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := writeRepeated(nil, tc.prefix, tc.item, tc.suffix, tc.n)
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/vnd.atlas.2023-01-01+json")
				w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
				writeRepeated(w, tc.prefix, tc.item, tc.suffix, tc.n)
			})
			c := newClient(t, srv.URL)
			stop := heapPeak(t)
			var got []atlas.Invoice
			var err error
			if tc.pending {
				got, err = c.PendingInvoices(ctxTimeout(t, 60*time.Second), testOrg)
			} else {
				got, err = c.ListInvoices(ctxTimeout(t, 60*time.Second), testOrg, nil)
			}
			peak := stop()
			t.Logf("%.1f MiB answer, heap peak %.1f MiB", float64(size)/(1<<20), float64(peak)/(1<<20))
			if tc.reason != "" {
				var ae *atlas.AnswerError
				if !errors.As(err, &ae) || !strings.Contains(ae.Reason, tc.reason) {
					t.Errorf("error = %v, want an *AnswerError saying %q", err, tc.reason)
				}
			} else if err != nil || len(got) != 1 || got[0].LineItems != tc.wantLineItems {
				t.Errorf("got %d invoices, %v; want 1 with %d line items", len(got), err, tc.wantLineItems)
			}
			if peak > limit {
				t.Errorf("heap peak %d bytes, want under %d", peak, limit)
			}
		})
	}
}
