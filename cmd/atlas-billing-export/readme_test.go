package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// The README's examples are run as a reader would run them, with these
// stand-ins: the simulator, started as the README's simulate command says,
// for Atlas (its variables for the credentials the README exports); a
// versitygw for S3, with the README's bucket my-lake in it (ABX_S3_ENDPOINT
// and static credentials, which no README command names); one working
// folder for every command, in README order.
const (
	readmePath   = "../../README.md"
	readmeBucket = "my-lake"
	readmeAddr   = "127.0.0.1:8089" // simulate's default address, in the README's output
	commandLimit = 5 * time.Minute
)

// TestREADME runs every example in README.md's fenced blocks: each command
// of the tool in a sh or console block (in console blocks, checking the
// output lines shown, "..." standing for anything, and the exit status
// after "$ echo $?"), each JSON request through invoke plan, each secret
// through the secret's parser, and each documented answer against what the
// step really returns, field by field. A block that cannot run here
// follows <!-- not run: why -->; a JSON block follows <!-- example: KIND -->.
// It logs a table of every example and what came of it.
func TestREADME(t *testing.T) {
	blocks := readBlocks(t, readmePath)
	r := &readme{t: t, work: t.TempDir()}
	r.startS3(t)
	r.startSimulator(t, blocks)
	for _, b := range blocks {
		t.Run(fmt.Sprintf("line %d", b.line), func(t *testing.T) { r.run(t, b) })
	}
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tBLOCK\tEXAMPLE\tRESULT")
	ran := 0
	for _, row := range r.rows {
		fmt.Fprintf(tw, "%d\t%s\t%.90s\t%s\n", row.line, row.block, row.example, row.result)
		if row.ran {
			ran++
		}
	}
	tw.Flush()
	t.Logf("README examples (%s):\n%s%d examples run, %d listed", readmePath, table.String(), ran, len(r.rows))
	if ran < 20 && !strings.Contains(flag.Lookup("test.run").Value.String(), "/") {
		t.Errorf("only %d README examples ran: the parser may have lost some", ran)
	}
}

// block is a fenced block of a Markdown file.
type block struct {
	line  int    // of the opening fence, 1-based
	lang  string // the fence's info string
	lines []string
	mark  string // the HTML comment on the line before, without <!-- -->
}

var (
	fence   = regexp.MustCompile("^(\\s*)```+\\s*([\\w-]*)\\s*$")
	closing = regexp.MustCompile("^\\s*```+\\s*$")
	comment = regexp.MustCompile(`^\s*<!--\s*(.*?)\s*-->\s*$`)
)

func readBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(f), "\n")
	var blocks []block
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		b := block{line: i + 1, lang: m[2]}
		for j := i - 1; j >= 0; j-- {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if c := comment.FindStringSubmatch(lines[j]); c != nil {
				b.mark = c[1]
			}
			break
		}
		for i++; i < len(lines) && !closing.MatchString(lines[i]); i++ {
			b.lines = append(b.lines, strings.TrimPrefix(lines[i], m[1]))
		}
		if i == len(lines) {
			t.Fatalf("%s: the block at line %d is not closed", path, b.line)
		}
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		t.Fatalf("%s: no fenced blocks", path)
	}
	return blocks
}

// readme is a run of the README's examples.
type readme struct {
	t      *testing.T
	work   string   // the folder every command runs in
	env    []string // the simulator's variables and the S3 stand-in's
	s3     *testenv.S3
	simAt  string // host:port of the simulator
	simOut *started
	chain  map[string][]any // a step's kind -> what it answered, once run
	rows   []row
}

type row struct {
	line           int
	block, example string
	result         string
	ran            bool
}

func (r *readme) list(line int, blk, example, result string, ran bool) {
	r.rows = append(r.rows, row{line, blk, strings.Join(strings.Fields(example), " "), result, ran})
}

func (r *readme) startS3(t *testing.T) {
	r.s3 = testenv.Versity(t)
	if _, err := r.s3.Client.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(readmeBucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", readmeBucket, err)
	}
	r.env = append(r.env, "AWS_ACCESS_KEY_ID="+r.s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+r.s3.SecretKey,
		"AWS_REGION="+r.s3.Region, config.EnvS3Endpoint+"="+r.s3.Endpoint)
}

// startSimulator starts the simulator as the README's (first) simulate
// command does, on a free port, and takes the variables it prints.
func (r *readme) startSimulator(t *testing.T, blocks []block) {
	for _, b := range blocks {
		if strings.HasPrefix(b.mark, "not run") {
			continue
		}
		for _, c := range commands(t, b) {
			if !c.tool || len(c.args) == 0 || c.args[0] != "simulate" {
				continue
			}
			r.simOut = startIn(t, r.work, 30*time.Minute, nil, append(slices.Clone(c.args), "--addr", "127.0.0.1:0")...)
			t.Cleanup(func() { r.simOut.cmd.Process.Signal(os.Interrupt) }) // before start's own cleanup waits
			deadline := time.Now().Add(30 * time.Second)
			for !strings.Contains(r.simOut.stdout.String(), "export "+config.EnvOrgIDs+"=") {
				if time.Now().After(deadline) || r.simOut.cmd.ProcessState != nil {
					t.Fatalf("%s did not print its variables:\n%s\n%s", c.text, r.simOut.stdout.String(), r.simOut.stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, l := range strings.Split(r.simOut.stdout.String(), "\n") {
				if kv, ok := strings.CutPrefix(l, "export "); ok {
					r.env = append(r.env, kv)
					if u, ok := strings.CutPrefix(kv, config.EnvAtlasBaseURL+"=http://"); ok {
						r.simAt = u
					}
				}
			}
			return
		}
	}
	t.Fatal("the README has no simulate command to run its examples against")
}

// command is a command line of a sh or console block.
type command struct {
	line int
	text string
	env  []string // VAR=value before the program
	args []string // after the program
	tool bool     // the program is the tool
	want []string // console: the output lines shown
	code int      // console: the exit status shown by "$ echo $?"
}

var toolName = regexp.MustCompile(`^(bin/)?atlas-billing-export$`)

// commands reads the command lines of a sh or console block.
func commands(t *testing.T, b block) []command {
	t.Helper()
	var out []command
	console := b.lang == "console"
	for i := 0; i < len(b.lines); i++ {
		l := strings.TrimSpace(b.lines[i])
		if console {
			cmd, ok := strings.CutPrefix(l, "$ ")
			if !ok {
				if len(out) > 0 {
					out[len(out)-1].want = append(out[len(out)-1].want, l)
				}
				continue
			}
			l = cmd
		}
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		line := b.line + 1 + i
		for strings.HasSuffix(l, `\`) && i+1 < len(b.lines) {
			i++
			l = strings.TrimSuffix(l, `\`) + " " + strings.TrimSpace(b.lines[i])
		}
		if console && l == "echo $?" && i+1 < len(b.lines) && len(out) > 0 {
			i++
			code, err := strconv.Atoi(strings.TrimSpace(b.lines[i]))
			if err != nil {
				t.Fatalf("README line %d: echo $? shows %q", line, b.lines[i])
			}
			out[len(out)-1].code = code
			continue
		}
		words, err := split(l)
		if err != nil {
			t.Fatalf("README line %d: %v", line, err)
		}
		c := command{line: line, text: l}
		for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
			c.env, words = append(c.env, words[0]), words[1:]
		}
		if len(words) > 0 && toolName.MatchString(words[0]) {
			c.tool, c.args = true, words[1:]
		} else {
			c.args = words
		}
		out = append(out, c)
	}
	return out
}

// split cuts a command line into words as a shell would for the forms the
// README uses: blanks, '...', "..." with \" inside, and a # comment.
func split(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			if inWord {
				words, inWord = append(words, w.String()), false
				w.Reset()
			}
		case c == '#' && !inWord:
			return words, nil
		case c == '\'' || c == '"':
			inWord = true
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if c == '"' && s[j] == '\\' && j+1 < len(s) {
					j++
				}
				w.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, fmt.Errorf("unclosed %c in %q", c, s)
			}
			i = j
		default:
			inWord = true
			w.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// run runs the examples of one block.
func (r *readme) run(t *testing.T, b block) {
	switch {
	case strings.HasPrefix(b.mark, "not run"):
		r.list(b.line, b.lang, firstLine(b), b.mark, false)
	case b.lang == "json":
		kind, ok := strings.CutPrefix(b.mark, "example: ")
		if !ok {
			t.Fatalf("a JSON block without <!-- example: KIND --> or <!-- not run: why --> before it")
		}
		r.runJSON(t, b, kind)
	case b.lang == "sh" || b.lang == "console":
		for _, c := range commands(t, b) {
			r.runCommand(t, c)
		}
	case b.lang == "sql":
		r.list(b.line, b.lang, firstLine(b), "run by TestAthenaQueries (statemachine)", false)
	default:
		for i, l := range b.lines {
			if w := strings.Fields(strings.TrimPrefix(strings.TrimSpace(l), "$ ")); len(w) > 0 && toolName.MatchString(w[0]) {
				t.Errorf("README line %d: a command of the tool in a %q block: make it sh or console, or mark it not run", b.line+1+i, b.lang)
			}
		}
	}
}

// firstLine shows a block: its first command of the tool, else its first line.
func firstLine(b block) string {
	first := ""
	for _, l := range b.lines {
		l = strings.TrimSpace(l)
		if w := strings.Fields(strings.TrimPrefix(l, "$ ")); len(w) > 0 && toolName.MatchString(w[0]) {
			return l
		}
		if first == "" {
			first = l
		}
	}
	return first
}

func (r *readme) runCommand(t *testing.T, c command) {
	switch {
	case c.tool && len(c.args) == 0:
		t.Errorf("README line %d: the tool without a command", c.line)
		return
	case c.tool && c.args[0] == "simulate":
		r.check(t, c, result{stdout: r.simOut.stdout.String()})
		r.list(c.line, "command", c.text, "running: the simulator of the examples", true)
		return
	case c.tool:
	case len(c.args) > 0 && c.args[0] == "export":
		r.list(c.line, "command", c.text, "stood in for by the simulator's and the S3 stand-in's variables", false)
		return
	case strings.Join(c.args, " ") == "make cli":
		r.list(c.line, "command", c.text, "stood in for by the test's build", false)
		return
	default:
		t.Errorf("README line %d: %q is not the tool: mark the block <!-- not run: why -->", c.line, c.text)
		return
	}
	res := startIn(t, r.work, commandLimit, append(slices.Clone(r.env), c.env...), c.args...).wait(t)
	if !r.check(t, c, res) {
		r.list(c.line, "command", c.text, fmt.Sprintf("FAILED (exit %d)", res.code), true)
		return
	}
	r.list(c.line, "command", c.text, fmt.Sprintf("exit %d, %d output line(s) checked", res.code, len(c.want)), true)
}

// check compares a command's exit status and output with the README's.
func (r *readme) check(t *testing.T, c command, res result) bool {
	t.Helper()
	ok := true
	if res.code != c.code {
		t.Errorf("README line %d: %s: exit %d, the README shows %d\nstdout:\n%s\nstderr:\n%s", c.line, c.text, res.code, c.code, res.stdout, res.stderr)
		ok = false
	}
	streams := [][]string{lines(res.stdout), lines(res.stderr)}
	at := []int{0, 0}
next:
	for _, w := range c.want {
		w = strings.ReplaceAll(w, readmeAddr, r.simAt)
		if strings.TrimSpace(w) == "..." {
			continue
		}
		pattern := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(squeeze(w)), `\.\.\.`, ".*") + "$")
		for s, ls := range streams {
			for i := at[s]; i < len(ls); i++ {
				if pattern.MatchString(ls[i]) {
					at[s] = i + 1
					continue next
				}
			}
		}
		t.Errorf("README line %d: %s: no output line matches %q (in order)\nstdout:\n%s\nstderr:\n%s", c.line, c.text, w, res.stdout, res.stderr)
		ok = false
	}
	return ok
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, squeeze(l))
	}
	return out
}

// squeeze makes every run of blanks one space: tables align differently.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// runJSON checks each JSON value of an example block of kind.
func (r *readme) runJSON(t *testing.T, b block, kind string) {
	values, err := parseExample(strings.Join(b.lines, "\n"))
	if err != nil {
		t.Fatalf("%s example: %v", kind, err)
	}
	for _, v := range values {
		text := v.text
		switch kind {
		case "request":
			if v.elided {
				t.Errorf("a request example must be complete, without ...: %s", text)
				continue
			}
			res := startIn(t, r.work, commandLimit, r.env, "invoke", "plan", "--json", text).wait(t)
			var plan export.Plan
			if err := json.Unmarshal([]byte(res.stdout), &plan); res.code != 0 || err != nil || len(plan.Jobs) == 0 {
				t.Errorf("request %s: invoke plan: exit %d, %v\n%s%s", text, res.code, err, res.stdout, res.stderr)
				r.list(b.line, kind, text, "FAILED: invoke plan", true)
				continue
			}
			r.list(b.line, kind, text, fmt.Sprintf("invoke plan: %d job(s)", len(plan.Jobs)), true)
		case "secret":
			c, err := secret.Parse([]byte(text))
			if err != nil || c.Kind() == "" {
				t.Errorf("secret %s: %v", text, err)
				r.list(b.line, kind, text, "FAILED: secret.Parse", true)
				continue
			}
			r.list(b.line, kind, text, fmt.Sprintf("secret.Parse: %s, %d org(s)", c.Kind(), len(c.OrgIDs)), true)
		default:
			real, what := r.answers(t, kind)
			if real == nil {
				t.Fatalf("unknown example kind %q: want request, secret, %s", kind, strings.Join(slices.Sorted(maps.Keys(r.chain)), ", "))
			}
			var problems []string
			for _, a := range real {
				if problems = match(v.value, a, kind); len(problems) == 0 {
					break
				}
			}
			if len(problems) > 0 {
				t.Errorf("%s example %.200s\ndiffers from %s: %s", kind, text, what, strings.Join(problems, "; "))
				r.list(b.line, kind, text, "FAILED: shape of "+what, true)
				continue
			}
			r.list(b.line, kind, text, "same fields and types as "+what, true)
		}
	}
}

// answers are what the step of kind answers, and where they came from.
func (r *readme) answers(t *testing.T, kind string) ([]any, string) {
	if kind == "summary" {
		return []any{shapeOf(reflect.TypeFor[export.Summary]())}, "export.Summary"
	}
	if r.chain == nil {
		r.runChain(t)
	}
	switch kind {
	case "manifest":
		return r.chain[kind], "the manifest those steps wrote"
	case "focus":
		return r.chain[kind], "what invoke focus-submit and focus-poll answered"
	}
	return r.chain[kind], "what invoke " + kind + " answered"
}

// runChain exports one org-month step by step with invoke, as the state
// machine does, keeping each step's answers.
func (r *readme) runChain(t *testing.T) {
	out := filepath.Join(r.work, "chain")
	r.chain = map[string][]any{}
	step := func(kind, action string, event []byte) []byte {
		file := filepath.Join(t.TempDir(), "event.json")
		if err := os.WriteFile(file, event, 0o600); err != nil {
			t.Fatal(err)
		}
		res := startIn(t, r.work, commandLimit, r.env, "invoke", action, "@"+file, "--json", "--out", out).wait(t)
		var v any
		if err := decodeNumbers([]byte(res.stdout), &v); res.code != 0 || err != nil {
			t.Fatalf("invoke %s: exit %d, %v\n%s", action, res.code, err, res.stderr)
		}
		r.chain[kind] = append(r.chain[kind], v)
		return []byte(res.stdout)
	}
	status := func(b []byte) string {
		var s struct{ Status string }
		json.Unmarshal(b, &s)
		return s.Status
	}
	until := func(kind, action string, b []byte) []byte {
		for i := 0; status(b) != export.StatusReady; i++ {
			if i == 60 {
				t.Fatalf("%s: not READY after 60 polls", action)
			}
			time.Sleep(time.Duration(min(i, 1)) * time.Second)
			b = step(kind, action, b)
		}
		return b
	}
	plan := step("plan", "plan", []byte(`{"orgId": "`+org1+`", "period": "2024-06"}`))
	var p struct{ Jobs []json.RawMessage }
	if err := json.Unmarshal(plan, &p); err != nil || len(p.Jobs) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	job := until("poll", "poll", step("submit", "submit", p.Jobs[0]))
	until("focus", "focus-poll", step("focus", "focus-submit", step("fetch", "fetch", job)))
	var m any
	b, err := os.ReadFile(filepath.Join(out, "_manifests", "org_id="+org1, "billing_month=2024-06", "manifest.json"))
	if err != nil || decodeNumbers(b, &m) != nil {
		t.Fatalf("the manifest: %v", err)
	}
	r.chain["manifest"] = []any{m}
}

func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// elided is what "..." in an example becomes: a member "…" of an object,
// an element "…" of an array.
const elided = "…"

// unelide shows an example as the README writes it.
var unelide = strings.NewReplacer(`"`+elided+`": 0`, "...", `"`+elided+`"`, "...")

// exampleValue is one JSON value of an example.
type exampleValue struct {
	text   string
	value  any
	elided bool // it has a "..." somewhere
}

// parseExample reads the JSON values of an example block, each "..." (not
// in a string) standing for what is left out.
func parseExample(s string) ([]exampleValue, error) {
	var b strings.Builder
	var stack []byte
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			stack = append(stack, c)
		case c == '}' || c == ']':
			if len(stack) == 0 {
				return nil, fmt.Errorf("unbalanced %c", c)
			}
			stack = stack[:len(stack)-1]
		case strings.HasPrefix(s[i:], "..."):
			if len(stack) == 0 {
				return nil, errors.New(`"..." outside an object or array`)
			}
			if stack[len(stack)-1] == '{' {
				b.WriteString(`"` + elided + `": 0`)
			} else {
				b.WriteString(`"` + elided + `"`)
			}
			i += 2
			continue
		}
		b.WriteByte(c)
	}
	var out []exampleValue
	dec := json.NewDecoder(strings.NewReader(b.String()))
	dec.UseNumber()
	for {
		start := dec.InputOffset()
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		text := strings.TrimSpace(b.String()[start:dec.InputOffset()])
		out = append(out, exampleValue{text: unelide.Replace(text), value: v, elided: strings.Contains(text, elided)})
	}
	if len(out) == 0 {
		return nil, errors.New("no JSON value")
	}
	return out, nil
}

// match compares an example with a real answer: every field the example
// shows is there with a value of the same JSON type, and an object shown
// without "..." shows every field (but those marked optional, "name?", in
// a type's shape). A real object with a "*" member is a map: each member
// of the example is checked against it.
func match(ex, real any, path string) []string {
	switch e := ex.(type) {
	case map[string]any:
		rm, ok := real.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an object, the real one %s", path, typeName(real))}
		}
		var problems []string
		for k, v := range e {
			if k == elided {
				continue
			}
			rv, ok := rm[k]
			if !ok {
				rv, ok = rm[k+"?"]
			}
			if !ok {
				rv, ok = rm["*"]
			}
			if !ok {
				problems = append(problems, fmt.Sprintf("%s.%s is not in the real answer", path, k))
				continue
			}
			problems = append(problems, match(v, rv, path+"."+k)...)
		}
		if _, partial := e[elided]; !partial {
			for k := range rm {
				if _, shown := e[k]; !shown && k != "*" && !strings.HasSuffix(k, "?") {
					problems = append(problems, fmt.Sprintf("%s lacks the field %q (or a ...)", path, k))
				}
			}
		}
		return problems
	case []any:
		ra, ok := real.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s is an array, the real one %s", path, typeName(real))}
		}
		var problems []string
	elements:
		for i, v := range e {
			if v == elided {
				continue
			}
			var first []string
			for _, rv := range ra {
				p := match(v, rv, fmt.Sprintf("%s[%d]", path, i))
				if len(p) == 0 {
					continue elements
				}
				if first == nil {
					first = p
				}
			}
			if first == nil {
				first = []string{fmt.Sprintf("%s[%d]: the real array is empty", path, i)}
			}
			problems = append(problems, first...)
		}
		return problems
	default:
		if typeName(ex) != typeName(real) {
			return []string{fmt.Sprintf("%s is %s, the real one %s", path, typeName(ex), typeName(real))}
		}
		return nil
	}
}

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// shapeOf is a value of every field t can carry as JSON, as decodeNumbers
// would give it: omitempty fields named "name?", maps with one "*" member.
func shapeOf(t reflect.Type) any {
	switch t.Kind() {
	case reflect.Pointer:
		return shapeOf(t.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if strings.Contains(opts, "omitempty") {
				name += "?"
			}
			m[name] = shapeOf(f.Type)
		}
		return m
	case reflect.Map:
		return map[string]any{"*": shapeOf(t.Elem())}
	case reflect.Slice, reflect.Array:
		return []any{shapeOf(t.Elem())}
	case reflect.String:
		return ""
	case reflect.Bool:
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return json.Number("0")
	}
	panic("shapeOf: " + t.String())
}
