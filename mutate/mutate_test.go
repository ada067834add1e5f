//go:build mutate

package mutate

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// target is a package mutated, the floor its score must reach (0: printed
// only) and the tests left out of its runs (a -skip pattern).
type target struct {
	Dir   string
	Floor float64
	Skip  string
}

var packages = []target{
	// The memory tests measure heap growth over megabytes (seconds each),
	// and with two mutants building at once their figures are noise.
	{"pkg/atlas", 85, "^Test(JSONAnswer|Streaming)Memory$"},
	{"internal/normalize", 85, ""},
	{"internal/export", 0, ""},
	{"internal/sink", 85, "^TestS3Memory$"},
	{"internal/period", 0, ""},
	{"internal/layout", 0, ""},
	// The decimals and sums the normalizer writes (moved out of it).
	{"internal/tally", 0, ""},
}

// skipped are the module's folders not copied for the run: gremlins copies
// the whole module once per worker.
var skipped = []string{".git", ".tools", "tools/node_modules", "bin", "out", ".aws-sam"}

// mutant is one mutation as gremlins reports it, File module-relative.
type mutant struct {
	File   string
	Line   int
	Column int
	Type   string
	Status string
}

// row is one package's result.
type row struct {
	Dir                                             string
	Floor                                           float64
	Killed, Lived, Equivalent, TimedOut, NotCovered int
	NotViable                                       int
	Survivors                                       []mutant
}

func (r row) score() (float64, bool) {
	if r.Killed+r.Lived == 0 {
		return 0, false
	}
	return 100 * float64(r.Killed) / float64(r.Killed+r.Lived), true
}

// TestMutate runs gremlins on each package (MUTATE_PACKAGES, space- or
// comma-separated, picks some), then prints each score, killed / (killed +
// lived) with the mutants of equivalent.txt left out, and the survivors. It
// fails when a package is below its floor.
func TestMutate(t *testing.T) {
	started := time.Now()
	root := moduleRoot(t)
	bin := gremlins(t, root)
	equivs, err := readEquivalents(equivalentFile)
	if err != nil {
		t.Fatal(err)
	}
	work := copyModule(t, root)
	x := newLineIndex(work)
	var bad []string
	for _, e := range equivs {
		if err := x.check(e); err != nil {
			bad = append(bad, err.Error())
		}
	}
	used := map[int]string{} // equivalent.txt line -> status of a mutant it matched

	var rows []row
	for _, p := range selected(t) {
		muts := run(t, bin, work, p.Dir, p.Skip)
		r := row{Dir: p.Dir, Floor: p.Floor}
		for _, m := range muts {
			e, isEquiv := match(equivs, x, m)
			if isEquiv {
				used[e.At] = m.Status
			}
			switch m.Status {
			case "KILLED":
				r.Killed++
			case "LIVED":
				if isEquiv {
					r.Equivalent++
					continue
				}
				r.Lived++
				r.Survivors = append(r.Survivors, m)
			case "TIMED OUT":
				r.TimedOut++
			case "NOT COVERED":
				r.NotCovered++
			case "NOT VIABLE":
				r.NotViable++
			}
		}
		rows = append(rows, r)
	}
	for _, e := range equivs {
		if used[e.At] == "KILLED" {
			bad = append(bad, fmt.Sprintf("%v: a test kills this mutant now; remove the entry", e))
		}
	}

	report(os.Stdout, rows, x, bad, time.Since(started))
	for _, r := range rows {
		if s, ok := r.score(); r.Floor > 0 && (!ok || s < r.Floor) {
			t.Errorf("%s: score %.1f%%, below its floor of %.0f%%", r.Dir, s, r.Floor)
		}
	}
}

// gremlins finds the binary: $GREMLINS, else <module>/.tools/bin/gremlins.
func gremlins(t *testing.T, root string) string {
	t.Helper()
	bin := os.Getenv("GREMLINS")
	if bin == "" {
		bin = filepath.Join(root, ".tools", "bin", "gremlins")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("gremlins not found at %s (run make mutate, which installs it): %v", bin, err)
	}
	return bin
}

// selected is the packages MUTATE_PACKAGES names, else all of them.
func selected(t *testing.T) []target {
	t.Helper()
	names := strings.FieldsFunc(os.Getenv("MUTATE_PACKAGES"), func(r rune) bool { return r == ' ' || r == ',' })
	if len(names) == 0 {
		return packages
	}
	var out []target
	for _, n := range names {
		dir := strings.TrimSuffix(strings.TrimPrefix(n, "./"), "/")
		i := slices.IndexFunc(packages, func(p target) bool { return p.Dir == dir })
		if i < 0 {
			t.Fatalf("MUTATE_PACKAGES: %q is not one of the mutated packages", n)
		}
		out = append(out, packages[i])
	}
	return out
}

// copyModule copies the module without its tools and build output, so each
// gremlins worker copies megabytes, not the hundreds in node_modules.
func copyModule(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		if slices.Contains(skipped, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(to, 0o755)
		case d.Type().IsRegular():
			return copyFile(path, to)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copying the module: %v", err)
	}
	return dst
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// run mutates dir of the module copy at work and returns its mutants. Only
// dir's own tests run (gremlins' default), without the skip pattern's.
func run(t *testing.T, bin, work, dir, skip string) []mutant {
	t.Helper()
	fmt.Printf("\n== %s\n", dir)
	out := filepath.Join(t.TempDir(), "gremlins.json")
	// LIVED and TIMED OUT mutants print as they are found; then the totals.
	cmd := exec.Command(bin, "unleash", "--output", out, "--output-statuses", "lt")
	cmd.Dir = filepath.Join(work, filepath.FromSlash(dir))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	if skip != "" {
		// go test takes test flags from GOFLAGS too: both gremlins' coverage
		// run and each mutant's run leave these tests out.
		cmd.Env = append(cmd.Env, "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -skip="+skip))
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("gremlins on %s: %v", dir, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("gremlins on %s wrote no results: %v", dir, err)
	}
	var res struct {
		Files []struct {
			Name      string `json:"file_name"`
			Mutations []struct {
				Type   string `json:"type"`
				Status string `json:"status"`
				Line   int    `json:"line"`
				Column int    `json:"column"`
			} `json:"mutations"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("gremlins on %s: reading %s: %v", dir, out, err)
	}
	var muts []mutant
	for _, f := range res.Files {
		for _, m := range f.Mutations {
			muts = append(muts, mutant{File: dir + "/" + filepath.ToSlash(f.Name), Line: m.Line, Column: m.Column, Type: m.Type, Status: m.Status})
		}
	}
	if len(muts) == 0 {
		t.Fatalf("gremlins found no mutants in %s", dir)
	}
	slices.SortFunc(muts, func(a, b mutant) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return muts
}

// line is line n (1-based) of file, trimmed; "" if there is none.
func (x *lineIndex) line(file string, n int) string {
	l, err := x.lines(file)
	if err != nil || n < 1 || n > len(l) {
		return ""
	}
	return l[n-1]
}

// match finds the entry of equivs excusing m.
func match(equivs []equivalent, x *lineIndex, m mutant) (equivalent, bool) {
	code := x.line(m.File, m.Line)
	for _, e := range equivs {
		if e.File == m.File && e.Type == m.Type && e.Code == code {
			return e, true
		}
	}
	return equivalent{}, false
}

func report(out io.Writer, rows []row, x *lineIndex, bad []string, took time.Duration) {
	fmt.Fprintf(out, "\n==== mutation score (gremlins, unit tests; took %v) ====\n", took.Round(time.Second))
	fmt.Fprintln(out, "score = killed / (killed + lived); equivalent mutants (mutate/equivalent.txt) are left out")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package\tkilled\tlived\tequivalent\ttimed out\tnot covered\tnot viable\tscore\tfloor\t")
	for _, r := range rows {
		score, floor := "-", "-"
		if s, ok := r.score(); ok {
			score = fmt.Sprintf("%.1f%%", s)
		}
		if r.Floor > 0 {
			floor = fmt.Sprintf("%.0f%%", r.Floor)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r.Dir, r.Killed, r.Lived, r.Equivalent, r.TimedOut, r.NotCovered, r.NotViable, score, floor)
	}
	tw.Flush()
	for _, r := range rows {
		if len(r.Survivors) == 0 {
			continue
		}
		fmt.Fprintf(out, "\nsurvivors in %s (no test failed):\n", r.Dir)
		for _, m := range r.Survivors {
			fmt.Fprintf(out, "  %s:%d:%d %s: %s\n", m.File, m.Line, m.Column, m.Type, x.line(m.File, m.Line))
		}
	}
	if len(bad) > 0 {
		fmt.Fprintln(out, "\nequivalent.txt entries to look at:")
		for _, b := range bad {
			fmt.Fprintln(out, "  "+b)
		}
	}
}
