package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The documents a stranger reads, from this package's folder.
var docs = []string{"../../README.md", "../../SECURITY.md"}

const repoRoot = "../.."

// repoFiles walks the repository's Go files (and, with ext, others),
// skipping the installed tools.
func repoFiles(t *testing.T, keep func(path string) bool) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".tools" || d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && keep(p) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDocsNameEverySetting: every ABX_* and MONGODB_ATLAS_* variable the
// code reads is in the README.
func TestDocsNameEverySetting(t *testing.T) {
	readme := readDoc(t, docs[0])
	variable := regexp.MustCompile(`"((?:ABX|MONGODB_ATLAS)_[A-Z0-9_]+)"`)
	seen := map[string]bool{}
	for _, f := range repoFiles(t, func(p string) bool { return strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") }) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range variable.FindAllStringSubmatch(string(b), -1) {
			if !seen[m[1]] && !strings.Contains(readme, "`"+m[1]+"`") {
				t.Errorf("%s reads %s, which the README does not name", f, m[1])
			}
			seen[m[1]] = true
		}
	}
	if len(seen) < 15 {
		t.Fatalf("found only %d variables: %v", len(seen), seen)
	}
}

// TestDocsNameEveryError: the README's Errors and Warnings tables list
// exactly the names the functions and the state machine give.
func TestDocsNameEveryError(t *testing.T) {
	defined := map[string]string{} // name -> where
	name := regexp.MustCompile(`(?m)^\s*(?:const\s+)?\w+\s*=\s*"([A-Z][a-z]+\.[A-Z]\w+)"`)
	for _, f := range repoFiles(t, func(p string) bool {
		dir := filepath.ToSlash(filepath.Dir(p))
		return strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") &&
			(strings.HasSuffix(dir, "internal/export") || strings.HasSuffix(dir, "internal/tally"))
	}) {
		for _, m := range name.FindAllStringSubmatch(readDoc(t, f), -1) {
			defined[m[1]] = f
		}
	}
	asl := regexp.MustCompile(`"([A-Z][a-z]+\.[A-Z]\w+)"`)
	for _, f := range repoFiles(t, func(p string) bool { return strings.HasSuffix(p, ".asl.json") }) {
		for _, m := range asl.FindAllStringSubmatch(readDoc(t, f), -1) {
			if !strings.HasPrefix(m[1], "States.") && !strings.HasPrefix(m[1], "Lambda.") {
				defined[m[1]] = f
			}
		}
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][a-z]+\\.[A-Z]\\w+)` \\|").FindAllStringSubmatch(readDoc(t, docs[0]), -1) {
		listed[m[1]] = true
		if _, ok := defined[m[1]]; !ok {
			t.Errorf("the README lists %s, which no code gives", m[1])
		}
	}
	for n, where := range defined {
		if !listed[n] {
			t.Errorf("%s gives %s, which the README's Errors and Warnings tables do not list", where, n)
		}
	}
	if len(defined) < 20 {
		t.Fatalf("found only %d names: %v", len(defined), defined)
	}
}

// TestDocsReferences: every file, folder, function and test the documents
// name exists, and where they say a function is in a file, it is there.
func TestDocsReferences(t *testing.T) {
	decls := declarations(t)
	path := regexp.MustCompile("^(internal|pkg|cmd|functions|statemachine|bench|scripts|tools)(/[\\w.-]+)*/?$")
	ident := `[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?`
	inFile := regexp.MustCompile("`(" + ident + ")` in `([\\w./-]+)`")
	fileList := regexp.MustCompile("`([\\w./-]+)`: ((?:`" + ident + "`(?:,\\s*|\\s+and\\s+)?)+)")
	testName := regexp.MustCompile(`\b(?:Test|Benchmark|Fuzz)[A-Z]\w*`)
	pkgName := regexp.MustCompile("^(" + ident + ")$")
	for _, doc := range docs {
		text := strings.Join(strings.Fields(prose(readDoc(t, doc))), " ")
		var checked int
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(text, -1) {
			tok := m[1]
			if path.MatchString(tok) {
				checked++
				if _, err := os.Stat(filepath.Join(repoRoot, tok)); err != nil {
					t.Errorf("%s names %s, which does not exist", doc, tok)
				}
			}
			for _, n := range testName.FindAllString(tok, -1) {
				checked++
				if !decls.tests[n] {
					t.Errorf("%s names %s, which no test file declares", doc, n)
				}
			}
			if pkg, name, ok := strings.Cut(tok, "."); ok && pkgName.MatchString(tok) && decls.packages[pkg] != nil {
				checked++
				if !decls.packages[pkg][name] {
					t.Errorf("%s names %s, which package %s does not declare", doc, tok, pkg)
				}
			}
		}
		check := func(where string, names ...string) {
			if !path.MatchString(where) {
				return
			}
			checked++
			in := decls.files[filepath.Join(repoRoot, where)]
			if in == nil {
				in = decls.dirs[filepath.Join(repoRoot, where)]
			}
			for _, n := range names {
				if !in[n] {
					t.Errorf("%s says %s is in %s: it is not", doc, n, where)
				}
			}
		}
		for _, m := range inFile.FindAllStringSubmatch(text, -1) {
			check(m[2], m[1])
		}
		for _, m := range fileList.FindAllStringSubmatch(text, -1) {
			var names []string
			for _, n := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(m[2], -1) {
				names = append(names, n[1])
			}
			check(m[1], names...)
		}
		if checked < 10 {
			t.Errorf("%s: only %d references checked", doc, checked)
		}
		t.Logf("%s: %d references checked", doc, checked)
	}
}

// prose is a Markdown text without its fenced blocks.
func prose(md string) string {
	var out []string
	in := false
	for _, l := range strings.Split(md, "\n") {
		if fence.MatchString(l) || (in && closing.MatchString(l)) {
			in = !in
			continue
		}
		if !in {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// decls are the names each Go file, folder and package declares: funcs,
// types, vars and consts, and methods as both Name and Type.Name.
type decls struct {
	files, dirs, packages map[string]map[string]bool
	tests                 map[string]bool // Test, Benchmark and Fuzz functions
}

func declarations(t *testing.T) decls {
	t.Helper()
	d := decls{files: map[string]map[string]bool{}, dirs: map[string]map[string]bool{}, packages: map[string]map[string]bool{}, tests: map[string]bool{}}
	fset := token.NewFileSet()
	for _, p := range repoFiles(t, func(p string) bool { return strings.HasSuffix(p, ".go") }) {
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				names[decl.Name.Name] = true
				if decl.Recv != nil && len(decl.Recv.List) == 1 {
					names[receiver(decl.Recv.List[0].Type)+"."+decl.Name.Name] = true
				}
				if strings.HasSuffix(p, "_test.go") && regexp.MustCompile(`^(Test|Benchmark|Fuzz)`).MatchString(decl.Name.Name) {
					d.tests[decl.Name.Name] = true
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						names[spec.Name.Name] = true
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							names[n.Name] = true
						}
					}
				}
			}
		}
		add := func(m map[string]map[string]bool, key string) {
			if m[key] == nil {
				m[key] = map[string]bool{}
			}
			for n := range names {
				m[key][n] = true
			}
		}
		add(d.files, p)
		add(d.dirs, filepath.Dir(p))
		if !strings.HasSuffix(p, "_test.go") && f.Name.Name != "main" {
			add(d.packages, f.Name.Name)
		}
	}
	if !slices.ContainsFunc([]string{"export", "atlas", "layout"}, func(p string) bool { return d.packages[p] != nil }) {
		t.Fatalf("packages not found: %v", d.packages)
	}
	return d
}

// receiver is the type name of a method's receiver.
func receiver(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return receiver(e.X)
	case *ast.IndexExpr:
		return receiver(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}
