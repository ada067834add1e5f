package mutate

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// equivalentFile lists the mutants excused from the score (see its header).
const equivalentFile = "equivalent.txt"

// mutantTypes are the names gremlins v0.6.0 gives its mutations.
var mutantTypes = []string{
	"ARITHMETIC_BASE", "CONDITIONALS_BOUNDARY", "CONDITIONALS_NEGATION",
	"INCREMENT_DECREMENT", "INVERT_ASSIGNMENTS", "INVERT_BITWISE", "INVERT_BWASSIGN",
	"INVERT_LOGICAL", "INVERT_LOOPCTRL", "INVERT_NEGATIVES", "REMOVE_SELF_ASSIGNMENTS",
}

// equivalent is one entry of equivalent.txt: every mutant of Type on each
// line of File (module-relative) whose trimmed text is Code.
type equivalent struct {
	File, Type, Code, Why string
	At                    int // line in equivalent.txt
}

func (e equivalent) String() string {
	return fmt.Sprintf("%s:%d: %s %s %q", equivalentFile, e.At, e.File, e.Type, e.Code)
}

// readEquivalents parses equivalent.txt: tab-separated path, mutant type,
// the mutated line trimmed, and why no test can tell the mutant apart.
func readEquivalents(path string) ([]equivalent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var list []equivalent
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s:%d: %d tab-separated fields, want 4 (path, type, code, why)", equivalentFile, n, len(fields))
		}
		e := equivalent{File: fields[0], Type: fields[1], Code: strings.TrimSpace(fields[2]), Why: strings.TrimSpace(fields[3]), At: n}
		if !slices.Contains(mutantTypes, e.Type) {
			return nil, fmt.Errorf("%s:%d: unknown mutant type %q", equivalentFile, n, e.Type)
		}
		if e.Code == "" || e.Why == "" {
			return nil, fmt.Errorf("%s:%d: an entry needs the code and the reason", equivalentFile, n)
		}
		list = append(list, e)
	}
	return list, sc.Err()
}

// lineIndex reads module files once and answers "the trimmed text of line n".
type lineIndex struct {
	root  string
	files map[string][]string
}

func newLineIndex(root string) *lineIndex {
	return &lineIndex{root: root, files: map[string][]string{}}
}

func (x *lineIndex) lines(file string) ([]string, error) {
	if l, ok := x.files[file]; ok {
		return l, nil
	}
	b, err := os.ReadFile(filepath.Join(x.root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	l := strings.Split(string(b), "\n")
	for i := range l {
		l[i] = strings.TrimSpace(l[i])
	}
	x.files[file] = l
	return l, nil
}

// check says what is wrong with e against the module's code: its line must
// still be in the file.
func (x *lineIndex) check(e equivalent) error {
	l, err := x.lines(e.File)
	if err != nil {
		return fmt.Errorf("%v: %w", e, err)
	}
	if !slices.Contains(l, e.Code) {
		return fmt.Errorf("%v: the line is no longer in the file; judge the mutant again and update or remove the entry", e)
	}
	return nil
}

// moduleRoot is the folder holding go.mod, above this package's.
func moduleRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above mutate/: %v", err)
	}
	return root
}

// TestEquivalentList keeps equivalent.txt honest between mutation runs: each
// entry parses, has a reason, and names a line that is still there.
func TestEquivalentList(t *testing.T) {
	list, err := readEquivalents(equivalentFile)
	if err != nil {
		t.Fatal(err)
	}
	x := newLineIndex(moduleRoot(t))
	seen := map[string]bool{}
	for _, e := range list {
		if err := x.check(e); err != nil {
			t.Error(err)
		}
		key := e.File + "\t" + e.Type + "\t" + e.Code
		if seen[key] {
			t.Errorf("%v: listed twice", e)
		}
		seen[key] = true
	}
}

// TestReadEquivalentsRefuses shows the parser refusing entries that could
// excuse mutants without saying why.
func TestReadEquivalentsRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"three fields": "pkg/atlas/retry.go\tARITHMETIC_BASE\tn := a + b\n",
		"unknown type": "pkg/atlas/retry.go\tARITHMETIC\tn := a + b\tsame value\n",
		"no reason":    "pkg/atlas/retry.go\tARITHMETIC_BASE\tn := a + b\t \n",
		"no code":      "pkg/atlas/retry.go\tARITHMETIC_BASE\t \tsame value\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), equivalentFile)
			if err := os.WriteFile(path, []byte("# header\n\n"+text), 0o644); err != nil {
				t.Fatal(err)
			}
			if list, err := readEquivalents(path); err == nil {
				t.Errorf("parsed %v; want an error", list)
			}
		})
	}
}
