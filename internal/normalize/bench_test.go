package normalize_test

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
)

// benchInvoice is a 32 MiB invoice from the simulator, made once.
var benchInvoice = sync.OnceValues(func() ([]byte, atlassim.Invoice) {
	sim, err := atlassim.New(atlassim.Config{InvoiceBytes: 32 << 20, FirstMonth: "2024-06", Now: func() time.Time { return simNow }})
	if err != nil {
		panic(err)
	}
	org := atlassim.DefaultOrgs[0].ID
	inv := sim.Invoices(org)[0]
	var b bytes.Buffer
	if err := sim.WriteInvoiceCSV(&b, org, inv.ID); err != nil {
		panic(err)
	}
	return b.Bytes(), inv
})

// BenchmarkInvoice measures invoice line-item normalization, in bytes of
// raw CSV per second (make bench prints it).
func BenchmarkInvoice(b *testing.B) {
	raw, inv := benchInvoice()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		if _, err := normalize.Invoice(io.Discard, bytes.NewReader(raw), normalize.InvoiceInfo{ID: inv.ID, Status: inv.Status}); err != nil {
			b.Fatal(err)
		}
	}
	// On a shared machine the wall clock counts other processes' time too:
	// the process's CPU time per byte is the speed per core it had.
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(len(raw))*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}
