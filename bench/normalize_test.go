//go:build bench

package bench

import (
	"context"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// normRow is the speed of normalizing invoice line items on one core.
type normRow struct {
	Runs         int
	Best, Median float64 // MB/s of raw CSV, by the wall clock
	// MB of raw CSV per CPU-second of the process: the speed per core,
	// which the wall clock shows only when nothing else runs.
	BestCPU, MedianCPU float64
}

// benchNormalize runs internal/normalize's BenchmarkInvoice (a 32 MiB
// simulator invoice through normalize.Invoice to io.Discard, b.SetBytes of
// the raw CSV) on one core, a few times, and reads its MB/s and MB/cpu-s.
func benchNormalize(t *testing.T, root string) normRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkInvoice$", "-benchtime", "10x", "-count", "5", "-cpu", "1", "./internal/normalize")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	var mbps, cpu []float64
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if !strings.HasPrefix(line, "BenchmarkInvoice") {
			continue
		}
		for unit, to := range map[string]*[]float64{"MB/s": &mbps, "MB/cpu-s": &cpu} {
			if i := slices.Index(f, unit); i > 0 {
				v, err := strconv.ParseFloat(f[i-1], 64)
				if err != nil {
					t.Fatalf("benchmark line %q: %v", line, err)
				}
				*to = append(*to, v)
			}
		}
	}
	if len(mbps) == 0 || len(cpu) == 0 {
		t.Fatalf("no MB/s or MB/cpu-s in the benchmark's output:\n%s", out)
	}
	slices.Sort(mbps)
	slices.Sort(cpu)
	return normRow{Runs: len(mbps), Best: mbps[len(mbps)-1], Median: mbps[len(mbps)/2], BestCPU: cpu[len(cpu)-1], MedianCPU: cpu[len(cpu)/2]}
}
