package statemachine_test

import (
	"regexp"
	"testing"
)

// Who may assume each role: the service that runs it, nothing else (no
// account, user or wildcard principal), and the state machine's role only
// for this account's executions.
func TestTemplateTrustPolicies(t *testing.T) {
	tp := loadTemplate(t)
	want := map[string]string{
		"SubmitRole":       "lambda.amazonaws.com",
		"PollRole":         "lambda.amazonaws.com",
		"FetchInvoiceRole": "lambda.amazonaws.com",
		"StateMachineRole": "states.amazonaws.com",
		"SchedulerRole":    "scheduler.amazonaws.com",
	}
	resources, _ := tp.raw["Resources"].(map[string]any)
	seen := map[string]bool{}
	for id, r := range resources {
		if dig(r, "Type") != "AWS::IAM::Role" {
			continue
		}
		seen[id] = true
		sts := list(dig(r, "Properties", "AssumeRolePolicyDocument", "Statement"))
		if len(sts) == 0 {
			t.Errorf("%s: no trust statement", id)
		}
		for _, st := range sts {
			principal, _ := dig(st, "Principal").(map[string]any)
			service, _ := principal["Service"].(string)
			if dig(st, "Effect") != "Allow" || dig(st, "Action") != "sts:AssumeRole" || len(principal) != 1 || service == "" {
				t.Errorf("%s: trust statement %v, want Allow sts:AssumeRole to one service principal", id, st)
				continue
			}
			if w, ok := want[id]; ok && service != w {
				t.Errorf("%s: trusted by %s, want %s", id, service, w)
			}
			if id == "StateMachineRole" || id == "SchedulerRole" {
				if acct, _ := render(dig(st, "Condition", "StringEquals", "aws:SourceAccount")); acct != "${AWS::AccountId}" {
					t.Errorf("%s: trust not limited to this account (aws:SourceAccount %q)", id, acct)
				}
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("no role %s", id)
		}
	}
}

// The Atlas base URL comes from one parameter, https only, scheme and host:
// no event, and no per-function setting, can point the functions elsewhere.
func TestTemplateAtlasBaseURL(t *testing.T) {
	tp := loadTemplate(t)
	p, ok := tp.typed.Parameters["AtlasBaseUrl"]
	if !ok {
		t.Fatal("no AtlasBaseUrl parameter")
	}
	if p.AllowedPattern == nil || *p.AllowedPattern == "" {
		t.Fatal("AtlasBaseUrl has no AllowedPattern")
	}
	re, err := regexp.Compile(*p.AllowedPattern)
	if err != nil {
		t.Fatalf("AtlasBaseUrl AllowedPattern: %v", err)
	}
	for u, ok := range map[string]bool{
		"https://cloud.mongodb.com":         true,
		"https://cloud-qa.mongodb.com:443":  true,
		"http://cloud.mongodb.com":          false,
		"https://user:pw@cloud.mongodb.com": false,
		"https://cloud.mongodb.com/api":     false,
		"https://cloud.mongodb.com?x=1":     false,
		"https://cloud.mongodb.com#x":       false,
		"cloud.mongodb.com":                 false,
		"https://":                          false,
	} {
		if re.MatchString(u) != ok {
			t.Errorf("AtlasBaseUrl pattern accepts %q = %v, want %v", u, !ok, ok)
		}
	}
	if got, _ := render(dig(tp.raw, "Globals", "Function", "Environment", "Variables", "ABX_ATLAS_BASE_URL")); got != "${AtlasBaseUrl}" {
		t.Errorf("ABX_ATLAS_BASE_URL = %q, want the AtlasBaseUrl parameter", got)
	}
	for id := range functions {
		if env := dig(tp.props(t, id), "Environment"); env != nil {
			t.Errorf("%s sets its own Environment %v: settings come from Globals", id, env)
		}
	}
}
