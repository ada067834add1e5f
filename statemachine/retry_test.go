package statemachine_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// lambdaErrors are the Lambda service errors every Task state retries, as
// AWS recommends for a Lambda invoked from Step Functions.
var lambdaErrors = []string{"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}

// state is what the checks read of an ASL state.
type state struct {
	Type          string
	Resource      string
	Retry         []struct{ ErrorEquals []string }
	ItemProcessor *states
	Iterator      *states
	Branches      []states
}

type states struct {
	States map[string]state
}

// eachTask calls f with the path and the state of each Task state of def,
// however deep in Map and Parallel states.
func eachTask(def states, path string, f func(path string, s state)) {
	for _, name := range slices.Sorted(maps.Keys(def.States)) {
		s := def.States[name]
		p := path + name
		if s.Type == "Task" {
			f(p, s)
		}
		for _, inner := range []*states{s.ItemProcessor, s.Iterator} {
			if inner != nil {
				eachTask(*inner, p+"/", f)
			}
		}
		for i, b := range s.Branches {
			eachTask(b, fmt.Sprintf("%s[%d]/", p, i), f)
		}
	}
}

// retryProblems checks the Retry lists of every Task state of def: each
// names only known errors (export.Names, Lambda's service errors, States.*),
// and each state retries Lambda's service errors and exactly
// export.Retryable, so no state can drop or misspell one of them.
func retryProblems(def []byte) ([]string, error) {
	var d states
	if err := json.Unmarshal(def, &d); err != nil {
		return nil, err
	}
	known := slices.Concat(export.Names, lambdaErrors)
	want := slices.Sorted(slices.Values(slices.Concat(export.Retryable, lambdaErrors)))
	var problems []string
	tasks := 0
	eachTask(d, "", func(path string, s state) {
		tasks++
		var retried []string
		for _, r := range s.Retry {
			for _, name := range r.ErrorEquals {
				if !slices.Contains(known, name) && !strings.HasPrefix(name, "States.") {
					problems = append(problems, fmt.Sprintf("%s retries %q, which no function reports", path, name))
				}
				retried = append(retried, name)
			}
		}
		slices.Sort(retried)
		if got := slices.Compact(retried); !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("%s retries %v, want %v", path, got, want))
		}
	})
	if tasks == 0 {
		problems = append(problems, "no Task state found")
	}
	return problems, nil
}

// TestRetryNames: the deployed definition's Task states all retry the same
// known names.
func TestRetryNames(t *testing.T) {
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatal(err)
	}
	problems, err := retryProblems(def)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestRetryNamesCatch shows the check failing on the mistakes it is for:
// one name misspelt, dropped or added in one Task state, however deep.
func TestRetryNamesCatch(t *testing.T) {
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, state string
		edit        func([]string) []string
		want        string
	}{
		{"misspelt", "SubmitFocus", func(names []string) []string {
			return replace(names, export.AtlasServerError, "Atlas.ServerErrors")
		}, `ExportOrgs/ExportMonths/SubmitFocus retries "Atlas.ServerErrors", which no function reports`},
		{"dropped", "Plan", func(names []string) []string {
			return slices.DeleteFunc(names, func(n string) bool { return n == export.StorageError })
		}, "Plan retries ["},
		{"a name that is not retryable", "Poll", func(names []string) []string {
			return append(names, export.AtlasNotFound)
		}, "ExportOrgs/ExportMonths/Poll retries ["},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := editRetry(t, def, tc.state, tc.edit)
			problems, err := retryProblems(bad)
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Errorf("problems = %q, want one saying %q", problems, tc.want)
			}
		})
	}
}

func replace(names []string, old, new string) []string {
	out := slices.Clone(names)
	for i, n := range out {
		if n == old {
			out[i] = new
		}
	}
	return out
}

// editRetry returns def with edit applied to each ErrorEquals of the Task
// state called name, wherever it is.
func editRetry(t *testing.T, def []byte, name string, edit func([]string) []string) []byte {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(def, &d); err != nil {
		t.Fatal(err)
	}
	found := false
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		for k, v := range m {
			inner, ok := v.(map[string]any)
			if !ok {
				if list, ok := v.([]any); ok {
					for _, e := range list {
						if em, ok := e.(map[string]any); ok {
							walk(em)
						}
					}
				}
				continue
			}
			if k == name && inner["Type"] == "Task" {
				found = true
				for _, r := range inner["Retry"].([]any) {
					rm := r.(map[string]any)
					var names []string
					for _, n := range rm["ErrorEquals"].([]any) {
						names = append(names, n.(string))
					}
					rm["ErrorEquals"] = edit(names)
				}
			}
			walk(inner)
		}
	}
	walk(d)
	if !found {
		t.Fatalf("no Task state %s", name)
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestREADMEErrorTable keeps the README's table of error names in step with
// export.Names (and the names the definition itself raises) and its
// "retryable" column with export.Retryable.
func TestREADMEErrorTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Errors\n")
	if !ok {
		t.Fatal("README has no Errors section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	table := map[string]string{} // name -> retryable column
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Za-z]+\\.[A-Za-z]+)` \\|.*\\| (yes|no) \\|$").FindAllStringSubmatch(section, -1) {
		table[m[1]] = m[2]
	}
	def, err := statemachine.Definition(statemachine.LocalSubstitutions())
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Clone(export.Names)
	for _, m := range regexp.MustCompile(`"Error":\s*"([A-Za-z]+\.[A-Za-z]+)"`).FindAllSubmatch(def, -1) {
		if n := string(m[1]); !slices.Contains(names, n) {
			names = append(names, n) // a guard of the state machine's own
		}
	}
	slices.Sort(names)
	if got := slices.Sorted(maps.Keys(table)); !slices.Equal(got, names) {
		t.Errorf("README's error table lists %v, want %v", got, names)
	}
	for name, col := range table {
		if want := slices.Contains(export.Retryable, name); (col == "yes") != want {
			t.Errorf("README: %s retryable %q, but export.Retryable says %v", name, col, want)
		}
	}
}
