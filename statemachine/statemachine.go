// Package statemachine holds the Step Functions definition of the export
// workflow (Amazon States Language, JSONPath) and fills its
// DefinitionSubstitutions the way CloudFormation does, so local runs and
// tests execute the very file that is deployed.
//
// The file holds three workflows, one inside the other: the execution
// (Plan, a Distributed Map over orgs, Summarize), each org's child execution
// (a Distributed Map over its months), and each month's job (submit, poll,
// fetch the invoices and FOCUS reports). Org and Job return the two inner
// ones as definitions of their own, to run them alone.
package statemachine

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

//go:embed export.asl.json
var exportASL []byte

// File is the definition's path relative to the repository root, as
// template.yaml's DefinitionUri names it.
const File = "statemachine/export.asl.json"

// State names the handlers and the harness refer to.
const (
	StatePlan          = "Plan"
	StateExportOrgs    = "ExportOrgs"   // the Distributed Map over orgs
	StateExportMonths  = "ExportMonths" // an org's Distributed Map over its months
	StateSummarize     = "Summarize"
	StateSubmit        = "Submit"
	StateWait          = "WaitForUsage"
	StatePoll          = "Poll"
	StateFetchInvoices = "FetchInvoices"
	StateSubmitFocus   = "SubmitFocus"
	StateWaitFocus     = "WaitForFocus"
	StatePollFocus     = "PollFocus"
)

// Functions maps each Task state to the function (functions/<name>) it invokes.
var Functions = map[string]string{
	StatePlan:          "fetch-invoice",
	StateSummarize:     "fetch-invoice",
	StateSubmit:        "submit",
	StatePoll:          "poll",
	StateFetchInvoices: "fetch-invoice",
	StateSubmitFocus:   "submit",
	StatePollFocus:     "poll",
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// Raw returns the definition as stored, with its ${...} placeholders.
// It is not valid JSON until substituted (numbers are unquoted placeholders).
func Raw() []byte { return slices.Clone(exportASL) }

// Placeholders returns the sorted, distinct ${...} names in raw.
func Placeholders(raw []byte) []string {
	var names []string
	for _, m := range placeholder.FindAllSubmatch(raw, -1) {
		names = append(names, string(m[1]))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Definition returns the export definition with every placeholder replaced
// from subs, as CloudFormation's DefinitionSubstitutions would.
func Definition(subs map[string]string) ([]byte, error) {
	return Substitute(exportASL, subs)
}

// Substitute replaces the ${Name} placeholders in raw with subs[Name]. Every
// placeholder needs a value and every value a placeholder, so a typo on
// either side fails here rather than in a deployed state machine. Values are
// pasted as text (unquoted placeholders take numbers), so characters that
// would need JSON escaping are refused.
func Substitute(raw []byte, subs map[string]string) ([]byte, error) {
	names := Placeholders(raw)
	for _, n := range names {
		v, ok := subs[n]
		if !ok {
			return nil, fmt.Errorf("substitute definition: no value for ${%s}", n)
		}
		if i := strings.IndexFunc(v, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 }); i >= 0 {
			return nil, fmt.Errorf("substitute definition: value for ${%s} has a character that needs JSON escaping at %d", n, i)
		}
	}
	for n := range subs {
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("substitute definition: %q is not a placeholder in the definition", n)
		}
	}
	out := placeholder.ReplaceAllFunc(raw, func(m []byte) []byte {
		return []byte(subs[string(m[2:len(m)-1])])
	})
	if !json.Valid(out) {
		return nil, fmt.Errorf("substitute definition: result is not valid JSON (check numeric values such as MaxConcurrency)")
	}
	return out, nil
}

// DefaultMaxConcurrency is the template's default MaxConcurrency: orgs
// exported at once.
const DefaultMaxConcurrency = "40"

// Org returns the child workflow of one org (the ItemProcessor of
// ExportOrgs) as a definition of its own, from a substituted definition.
func Org(def []byte) ([]byte, error) {
	return processor(def, StateExportOrgs)
}

// Job returns the workflow of one org-month (the ItemProcessor of an org's
// ExportMonths) as a definition of its own.
func Job(def []byte) ([]byte, error) {
	org, err := Org(def)
	if err != nil {
		return nil, err
	}
	return processor(org, StateExportMonths)
}

// processor extracts the ItemProcessor of the Map state called state, with
// the enclosing definition's query language and without ProcessorConfig.
func processor(def []byte, state string) ([]byte, error) {
	var d struct {
		QueryLanguage string
		States        map[string]struct {
			ItemProcessor map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(def, &d); err != nil {
		return nil, fmt.Errorf("statemachine: %w", err)
	}
	p := d.States[state].ItemProcessor
	if p == nil {
		return nil, fmt.Errorf("statemachine: no Map state %s with an ItemProcessor", state)
	}
	delete(p, "ProcessorConfig")
	p["QueryLanguage"], _ = json.Marshal(d.QueryLanguage)
	return json.MarshalIndent(p, "", "  ")
}

// LocalSubstitutions returns values for running the definition outside AWS
// (local interpreter, validator): well-formed but fake function ARNs and the
// template's default concurrency.
func LocalSubstitutions() map[string]string {
	arn := func(name string) string {
		return "arn:aws:lambda:us-east-1:123456789012:function:atlas-billing-export-" + name
	}
	return map[string]string{
		"SubmitFunctionArn":       arn("submit"),
		"PollFunctionArn":         arn("poll"),
		"FetchInvoiceFunctionArn": arn("fetch-invoice"),
		"MaxConcurrency":          DefaultMaxConcurrency,
	}
}
