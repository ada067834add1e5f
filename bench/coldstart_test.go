//go:build bench

package bench

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// coldRow is the cold start of one bootstrap.
type coldRow struct {
	Name       string
	Starts     int
	Median     time.Duration // exec to the first /runtime/invocation/next
	P90        time.Duration
	Ratio      float64 // Median / the minimal function's median
	ARM64Bytes int64   // linux/arm64, stripped, as deployed
}

// Cold starts per binary: the median of coldStarts, after warmStarts that
// load the file into the page cache (Lambda's own code download is not ours
// to measure).
const (
	coldStarts = 31
	warmStarts = 2
)

// benchColdStart starts every bootstrap and the minimal aws-lambda-go
// function in turns, so that a busy moment of the machine hits them alike,
// and times exec to the first request for an event. The functions get
// their full configuration, so their init does all it does in Lambda.
func benchColdStart(t *testing.T, w *world) []coldRow {
	names := append(slices.Clone(functions), "minimal")
	rows := make([]coldRow, len(names))
	dir := t.TempDir()
	for i, name := range names {
		rows[i].Name = name
		pkg := "./functions/" + name
		if name == "minimal" {
			pkg = "./bench/cmd/minimal"
		}
		out := filepath.Join(dir, name, "bootstrap")
		goBuild(t, w.root, pkg, out, []string{"GOARCH=arm64"}, "-tags", "lambda.norpc", "-ldflags", "-s -w")
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		rows[i].ARM64Bytes = fi.Size()
	}

	env := func(name string) []string {
		if name == "minimal" {
			return nil
		}
		return w.functionEnv(name, "http://127.0.0.1:9") // init does not call Atlas
	}
	samples := make([][]time.Duration, len(names))
	for round := range warmStarts + coldStarts {
		for k := range names {
			i := (k + round) % len(names) // rotate who goes first
			run := runLambda(t, w.bins[names[i]], env(names[i]))
			if round >= warmStarts {
				samples[i] = append(samples[i], run.Init)
			}
		}
	}
	base := median(samples[len(names)-1])
	for i := range rows {
		rows[i].Starts = len(samples[i])
		rows[i].Median = median(samples[i])
		rows[i].P90 = percentile(samples[i], 0.9)
		rows[i].Ratio = rows[i].Median.Seconds() / base.Seconds()
	}
	return rows
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
