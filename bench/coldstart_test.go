//go:build bench

package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	// Package initialization (GODEBUG=inittrace=1), the median of
	// initStarts: all packages, and the normalizer's.
	Inits, NormInits time.Duration
}

// initStarts is how many starts each bootstrap's package init is traced.
const initStarts = 15

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
	norm := normalizerPackages(t, w.root)
	for i, name := range names {
		rows[i].Inits, rows[i].NormInits = packageInits(t, w.bins[name], norm)
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

// normalizerPackages is what the poll function links that submit does not:
// internal/normalize, parquet-go and the packages they bring.
func normalizerPackages(t *testing.T, root string) map[string]bool {
	t.Helper()
	deps := func(pkg string) []string {
		cmd := exec.Command("go", "list", "-tags", "lambda.norpc", "-deps", pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		return strings.Fields(string(out))
	}
	norm := map[string]bool{}
	for _, p := range deps("./functions/poll") {
		norm[p] = true
	}
	for _, p := range deps("./functions/submit") {
		delete(norm, p)
	}
	delete(norm, "github.com/atlas-billing-export/atlas-billing-export/functions/poll")
	return norm
}

// packageInits runs bin initStarts times with GODEBUG=inittrace=1, until its
// main (with no Runtime API it exits at once), and gives the medians of its
// packages' init time in all and of those in norm.
func packageInits(t *testing.T, bin string, norm map[string]bool) (all, ofNorm time.Duration) {
	t.Helper()
	var alls, norms []time.Duration
	for range initStarts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "GODEBUG=inittrace=1"}
		out, _ := cmd.CombinedOutput() // it fails: no AWS_LAMBDA_RUNTIME_API
		cancel()
		var a, n time.Duration
		for line := range strings.Lines(string(out)) {
			// init PKG @0.5 ms, 0.02 ms clock, 312 bytes, 7 allocs
			f := strings.Fields(line)
			if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
				continue
			}
			v, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				t.Fatalf("inittrace line %q: %v", line, err)
			}
			d := time.Duration(v * float64(time.Millisecond))
			a += d
			if norm[f[1]] {
				n += d
			}
		}
		if a == 0 {
			t.Fatalf("%s printed no inittrace lines:\n%s", bin, out)
		}
		alls, norms = append(alls, a), append(norms, n)
	}
	return median(alls), median(norms)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(p*float64(len(s))))]
}
