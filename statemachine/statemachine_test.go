package statemachine_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

func TestDefinitionSubstitutes(t *testing.T) {
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(def, []byte("${")) {
		t.Errorf("placeholders left after substitution")
	}
	var m struct {
		QueryLanguage string
		States        map[string]struct {
			MaxConcurrency any
			ItemsPath      string
		}
	}
	if err := json.Unmarshal(def, &m); err != nil {
		t.Fatal(err)
	}
	if m.QueryLanguage != "JSONPath" {
		t.Errorf("QueryLanguage = %q, want JSONPath (what the local interpreter runs)", m.QueryLanguage)
	}
	// The placeholder is unquoted so the substituted value is a number.
	if got := m.States[statemachine.StateExportOrgs].MaxConcurrency; got != float64(40) {
		t.Errorf("ExportOrgs MaxConcurrency = %#v, want the number 40", got)
	}
	if got := statemachine.Placeholders(statemachine.Raw()); !slices.Equal(got, []string{"FetchInvoiceFunctionArn", "MaxConcurrency", "PollFunctionArn", "SubmitFunctionArn"}) {
		t.Errorf("placeholders = %v", got)
	}
}

func TestDefinitionRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(map[string]string)
		want string
	}{
		{"missing value", func(m map[string]string) { delete(m, "PollFunctionArn") }, "no value for ${PollFunctionArn}"},
		{"unknown key", func(m map[string]string) { m["PollArn"] = "x" }, `"PollArn" is not a placeholder`},
		{"quote in value", func(m map[string]string) { m["SubmitFunctionArn"] = `a"b` }, "JSON escaping"},
		{"non-numeric concurrency", func(m map[string]string) { m["MaxConcurrency"] = "two" }, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs := statemachine.LocalSubstitutions()
			tt.edit(subs)
			_, err := statemachine.Definition(subs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestValidator runs asl-validator (the npm CLI) on every ASL file after
// substitution, and on broken copies to prove the check can fail.
func TestValidator(t *testing.T) {
	node, modules := nodeTools(t)
	cli := filepath.Join(modules, "asl-validator", "dist", "bin", "asl-validator.js")
	validate := func(t *testing.T, def []byte) (string, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "def.asl.json")
		if err := os.WriteFile(path, def, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(t.Context(), node, cli, "--json-path", path).CombinedOutput()
		return string(out), err
	}

	files, err := filepath.Glob("*.asl.json")
	if err != nil || len(files) != 1 {
		t.Fatalf("ASL files %v (%v), want the one the template deploys", files, err)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	good, err := statemachine.Substitute(raw, statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatal(err)
	}
	org, err := statemachine.Org(good)
	if err != nil {
		t.Fatal(err)
	}
	job, err := statemachine.Job(good)
	if err != nil {
		t.Fatal(err)
	}
	// The parent (which holds both), and the org's and the job's workflows
	// on their own, as the tests run them.
	for name, def := range map[string][]byte{"parent": good, "org": org, "job": job} {
		t.Run(name, func(t *testing.T) {
			if out, err := validate(t, def); err != nil || !strings.Contains(out, "is valid") {
				t.Errorf("asl-validator rejected the %s workflow: %v\n%s", name, err, out)
			}
		})
	}

	broken := []struct{ name, old, new string }{
		{"missing transition target", `"Next": "WaitForUsage"`, `"Next": "WaitForUsag"`},
		{"invalid JSONPath", `"SecondsPath": "$.waitSeconds"`, `"SecondsPath": "$.wait[Seconds"`},
		{"unknown state type", `"Type": "Wait"`, `"Type": "Sleep"`},
		{"unknown processor mode", `"Mode": "DISTRIBUTED"`, `"Mode": "DISTRIBUTE"`},
		{"tolerated failures over 100%", `"ToleratedFailurePercentage": 100`, `"ToleratedFailurePercentage": 101`},
	}
	for _, b := range broken {
		t.Run("rejects "+b.name, func(t *testing.T) {
			if !bytes.Contains(good, []byte(b.old)) {
				t.Fatalf("definition no longer contains %s", b.old)
			}
			def := bytes.Replace(good, []byte(b.old), []byte(b.new), 1)
			if out, err := validate(t, def); err == nil {
				t.Errorf("asl-validator accepted a definition with a %s:\n%s", b.name, out)
			}
		})
	}
}

func nodeTools(t *testing.T) (node, modules string) {
	t.Helper()
	node, modules = sfntest.Tools(t)
	if _, err := os.Stat(filepath.Join(modules, "asl-validator", "package.json")); err != nil {
		t.Fatalf("%v: run make tools (or set ABX_NODE_MODULES)", err)
	}
	return node, modules
}
