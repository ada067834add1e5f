package atlas_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
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
