package statemachine_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/global"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

// The SAM template is checked twice over: typed through goformation (which
// resolves intrinsics against parameter defaults and drops what it cannot
// resolve, such as GetAtt) and raw, with intrinsics kept, for the IAM and
// schedule checks that must see which resource an ARN points at.

const templatePath = "../template.yaml"

// functions maps each function's logical id to its folder under functions/.
var functions = map[string]string{
	"SubmitFunction":       "submit",
	"PollFunction":         "poll",
	"FetchInvoiceFunction": "fetch-invoice",
}

type tmpl struct {
	typed *cloudformation.Template
	raw   map[string]any
}

func loadTemplate(t *testing.T) tmpl {
	t.Helper()
	data, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	typed, err := goformation.ParseYAML(data)
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	rawJSON, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(rawJSON, &raw); err != nil {
		t.Fatal(err)
	}
	return tmpl{typed: typed, raw: raw}
}

// props returns a resource's raw Properties.
func (tp tmpl) props(t *testing.T, logicalID string) map[string]any {
	t.Helper()
	res, ok := dig(tp.raw, "Resources", logicalID).(map[string]any)
	if !ok {
		t.Fatalf("template has no resource %s", logicalID)
	}
	p, _ := res["Properties"].(map[string]any)
	return p
}

func dig(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// render writes an intrinsic-bearing value as a string: Ref X -> ${X},
// GetAtt X.Y -> ${X.Y}, Sub with its variables filled in, If -> If(c,a,b).
func render(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case map[string]any:
		if len(v) != 1 {
			break
		}
		for fn, arg := range v {
			switch fn {
			case "Ref":
				return fmt.Sprintf("${%v}", arg), nil
			case "Fn::GetAtt":
				if parts, ok := arg.([]any); ok {
					return fmt.Sprintf("${%v.%v}", parts[0], parts[1]), nil
				}
				return fmt.Sprintf("${%v}", arg), nil
			case "Fn::Sub":
				if s, ok := arg.(string); ok {
					return s, nil
				}
				parts, _ := arg.([]any)
				if len(parts) != 2 {
					break
				}
				s, _ := parts[0].(string)
				vars, _ := parts[1].(map[string]any)
				for name, val := range vars {
					r, err := render(val)
					if err != nil {
						return "", err
					}
					s = strings.ReplaceAll(s, "${"+name+"}", r)
				}
				return s, nil
			case "Fn::If":
				parts, _ := arg.([]any)
				if len(parts) != 3 {
					break
				}
				a, err := render(parts[1])
				if err != nil {
					return "", err
				}
				b, err := render(parts[2])
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("If(%v,%s,%s)", parts[0], a, b), nil
			}
		}
	}
	return "", fmt.Errorf("cannot render %v", v)
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func TestTemplateFunctions(t *testing.T) {
	tp := loadTemplate(t)
	g, ok := tp.typed.Globals["Function"].(*global.Function)
	if !ok {
		t.Fatal("template has no Globals.Function")
	}
	fns := tp.typed.GetAllServerlessFunctionResources()
	if got := slices.Sorted(maps.Keys(fns)); !slices.Equal(got, slices.Sorted(maps.Keys(functions))) {
		t.Fatalf("functions = %v, want %v", got, slices.Sorted(maps.Keys(functions)))
	}
	for id, fn := range fns {
		t.Run(id, func(t *testing.T) {
			// goformation does not apply Globals: a function's own value wins, else the global one.
			runtime, handler, arch := fn.Runtime, fn.Handler, fn.Architectures
			if runtime == nil {
				runtime = g.Runtime
			}
			if handler == nil {
				handler = g.Handler
			}
			if len(arch) == 0 && g.Architectures != nil {
				arch = *g.Architectures
			}
			if runtime == nil || *runtime != "provided.al2023" {
				t.Errorf("Runtime = %v, want provided.al2023", deref(runtime))
			}
			if handler == nil || *handler != "bootstrap" {
				t.Errorf("Handler = %v, want bootstrap", deref(handler))
			}
			if !slices.Equal(arch, []string{"arm64"}) {
				t.Errorf("Architectures = %v, want [arm64]", arch)
			}
			if fn.AWSCloudFormationMetadata["BuildMethod"] != "makefile" {
				t.Errorf("Metadata.BuildMethod = %v, want makefile (Makefile target build-%s)", fn.AWSCloudFormationMetadata["BuildMethod"], id)
			}
			if fn.CodeUri == nil || fn.CodeUri.String == nil {
				t.Errorf("CodeUri missing")
			}
			if fn.MemorySize == nil || fn.Timeout == nil {
				t.Fatalf("MemorySize and Timeout must be set explicitly")
			}
			if fn.Policies != nil {
				t.Errorf("Policies set: permissions belong in the function's explicit role")
			}
			role, _ := render(tp.props(t, id)["Role"])
			if role != "${"+strings.TrimSuffix(id, "Function")+"Role.Arn}" {
				t.Errorf("Role = %q, want its own role", role)
			}
			if _, err := os.Stat(filepath.Join("..", "functions", functions[id])); err != nil {
				t.Errorf("functions/%s: %v", functions[id], err)
			}
		})
	}
	if got := *fns["FetchInvoiceFunction"].Timeout; got != 900 {
		t.Errorf("fetch-invoice Timeout = %d, want 900 (large invoice CSVs)", got)
	}
	if got := *fns["FetchInvoiceFunction"].MemorySize; got < 1024 {
		t.Errorf("fetch-invoice MemorySize = %d, want >= 1024", got)
	}

	// Environment: the contract's variables, all from parameters, none test-only.
	if g.Environment == nil {
		t.Fatal("Globals.Function.Environment missing")
	}
	wantEnv := []string{"ABX_ATLAS_BASE_URL", "ABX_BUCKET", "ABX_FOCUS_REPORTS", "ABX_KMS_KEY_ID", "ABX_MAX_POLL_ATTEMPTS", "ABX_ORG_IDS", "ABX_PREFIX", "ABX_SCHEDULE_TIMEZONE", "ABX_SECRET_ARN", "ABX_STRICT_WARNINGS"}
	if got := slices.Sorted(maps.Keys(g.Environment.Variables)); !slices.Equal(got, wantEnv) {
		t.Errorf("environment = %v, want %v", got, wantEnv)
	}
	if got := dig(tp.raw, "Globals", "Function", "LoggingConfig", "LogFormat"); got != "JSON" {
		t.Errorf("LoggingConfig.LogFormat = %v, want JSON", got)
	}
	for id := range fns {
		if lc := dig(tp.props(t, id), "LoggingConfig"); lc != nil {
			t.Errorf("%s overrides LoggingConfig", id)
		}
	}
}

func TestTemplateStateMachine(t *testing.T) {
	tp := loadTemplate(t)
	sms := tp.typed.GetAllServerlessStateMachineResources()
	sm, ok := sms["ExportStateMachine"]
	if !ok || len(sms) != 1 {
		t.Fatalf("state machines = %v, want ExportStateMachine", slices.Collect(maps.Keys(sms)))
	}
	if sm.Type == nil || *sm.Type != "STANDARD" {
		t.Errorf("Type = %v, want STANDARD", deref(sm.Type))
	}
	if sm.DefinitionUri == nil || sm.DefinitionUri.String == nil || *sm.DefinitionUri.String != statemachine.File {
		t.Errorf("DefinitionUri is not %s", statemachine.File)
	}

	// Every placeholder has a substitution and every substitution a placeholder.
	placeholders := statemachine.Placeholders(statemachine.Raw())
	if got := slices.Sorted(maps.Keys(sm.DefinitionSubstitutions)); !slices.Equal(got, placeholders) {
		t.Errorf("DefinitionSubstitutions = %v, ASL placeholders = %v", got, placeholders)
	}
	subs := map[string]string{}
	for k, v := range dig(tp.props(t, "ExportStateMachine"), "DefinitionSubstitutions").(map[string]any) {
		r, err := render(v)
		if err != nil {
			t.Fatal(err)
		}
		subs[k] = r
	}
	wantSubs := map[string]string{
		"SubmitFunctionArn":       "${SubmitFunction.Arn}",
		"PollFunctionArn":         "${PollFunction.Arn}",
		"FetchInvoiceFunctionArn": "${FetchInvoiceFunction.Arn}",
		"MaxConcurrency":          "${MaxConcurrency}",
	}
	if !maps.Equal(subs, wantSubs) {
		t.Errorf("DefinitionSubstitutions = %v, want %v", subs, wantSubs)
	}

	// Each Task state outlives its function: Step Functions' timeout must not
	// cut off a Lambda that is still within its own Timeout.
	fns := tp.typed.GetAllServerlessFunctionResources()
	named := map[string]string{"MaxConcurrency": statemachine.DefaultMaxConcurrency}
	for k := range wantSubs {
		if k != "MaxConcurrency" {
			named[k] = k
		}
	}
	def, err := statemachine.Definition(named)
	if err != nil {
		t.Fatal(err)
	}
	tasks := taskStates(t, def)
	if len(tasks) != 7 {
		t.Errorf("found %d Task states, want 7 (Plan, Submit, Poll, FetchInvoices, SubmitFocus, PollFocus, Summarize)", len(tasks))
	}
	for name, task := range tasks {
		fnID := strings.TrimSuffix(strings.Trim(wantSubs[task.Resource], "${}"), ".Arn")
		fn, ok := fns[fnID]
		if !ok {
			t.Errorf("%s: Resource %q is not one of the template's functions", name, task.Resource)
			continue
		}
		if got := statemachine.Functions[name]; got != functions[fnID] {
			t.Errorf("%s invokes functions/%s, but statemachine.Functions says %q", name, functions[fnID], got)
		}
		if task.TimeoutSeconds <= *fn.Timeout {
			t.Errorf("%s: TimeoutSeconds %d <= %s Timeout %d", name, task.TimeoutSeconds, fnID, *fn.Timeout)
		}
	}

	// Schedules: two ScheduleV2 events on the state machine (so they target it).
	wantEvents := map[string]struct{ expr, state, input string }{
		"Monthly": {"MonthlySchedule", "MonthlyScheduleState", `{"period":"previous-month","scheduledTime":"<aws.scheduler.scheduled-time>"}`},
		"Daily":   {"DailySchedule", "DailyScheduleState", `{"period":"month-to-date","includePending":true,"scheduledTime":"<aws.scheduler.scheduled-time>"}`},
	}
	if got := slices.Sorted(maps.Keys(sm.Events)); !slices.Equal(got, []string{"Daily", "Monthly"}) {
		t.Errorf("events = %v, want Daily and Monthly", got)
	}
	defaults := map[string]string{"MonthlySchedule": "cron(0 6 2 * ? *)", "DailySchedule": "cron(0 7 * * ? *)"}
	for name, want := range wantEvents {
		if ev, ok := sm.Events[name]; !ok || ev.Type != "ScheduleV2" {
			t.Errorf("event %s is not a ScheduleV2 event", name)
			continue
		}
		p := dig(tp.props(t, "ExportStateMachine"), "Events", name, "Properties").(map[string]any)
		for key, ref := range map[string]string{"ScheduleExpression": want.expr, "ScheduleExpressionTimezone": "ScheduleTimezone", "State": want.state} {
			if got, _ := render(p[key]); got != "${"+ref+"}" {
				t.Errorf("%s.%s = %q, want the %s parameter", name, key, got, ref)
			}
		}
		var gotInput, wantInput any
		if err := json.Unmarshal([]byte(p["Input"].(string)), &gotInput); err != nil {
			t.Errorf("%s.Input is not JSON: %v", name, err)
		}
		_ = json.Unmarshal([]byte(want.input), &wantInput)
		if !jsonEqual(gotInput, wantInput) {
			t.Errorf("%s.Input = %s, want %s", name, p["Input"], want.input)
		}
		if d := tp.typed.Parameters[want.expr].Default; defaults[want.expr] != d {
			t.Errorf("parameter %s default = %v, want %s", want.expr, d, defaults[want.expr])
		}
		if av := tp.typed.Parameters[want.state].AllowedValues; !slices.Equal(av, []any{"ENABLED", "DISABLED"}) {
			t.Errorf("parameter %s allows %v, want ENABLED/DISABLED", want.state, av)
		}
	}
}

type task struct {
	Resource       string
	TimeoutSeconds int
}

// taskStates finds the Task states at any depth of a definition.
func taskStates(t *testing.T, def []byte) map[string]task {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(def, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]task{}
	var walk func(machine any)
	walk = func(machine any) {
		states, _ := dig(machine, "States").(map[string]any)
		for name, s := range states {
			st := s.(map[string]any)
			if st["Type"] == "Task" {
				res, _ := st["Resource"].(string)
				to, _ := st["TimeoutSeconds"].(float64)
				out[name] = task{Resource: res, TimeoutSeconds: int(to)}
			}
			walk(st["ItemProcessor"])
			walk(st["Iterator"])
			for _, b := range list(st["Branches"]) {
				walk(b)
			}
		}
	}
	walk(m)
	return out
}

func TestTemplateBucket(t *testing.T) {
	tp := loadTemplate(t)
	b, err := tp.typed.GetS3BucketWithName("Bucket")
	if err != nil {
		t.Fatal(err)
	}
	if b.AWSCloudFormationCondition != "CreateBucket" {
		t.Errorf("bucket Condition = %q, want CreateBucket (only when BucketName is empty)", b.AWSCloudFormationCondition)
	}
	if cond := dig(tp.raw, "Conditions", "CreateBucket", "Fn::Equals"); fmt.Sprint(cond) != "[map[Ref:BucketName] ]" {
		t.Errorf("CreateBucket = %v, want BucketName == \"\"", cond)
	}
	if b.VersioningConfiguration == nil || b.VersioningConfiguration.Status != "Enabled" {
		t.Errorf("versioning not enabled")
	}
	pab := b.PublicAccessBlockConfiguration
	if pab == nil || !isTrue(pab.BlockPublicAcls) || !isTrue(pab.BlockPublicPolicy) || !isTrue(pab.IgnorePublicAcls) || !isTrue(pab.RestrictPublicBuckets) {
		t.Errorf("public access block is not all true: %+v", pab)
	}
	sse := list(dig(tp.props(t, "Bucket"), "BucketEncryption", "ServerSideEncryptionConfiguration"))
	if len(sse) != 1 {
		t.Fatalf("encryption rules = %v", sse)
	}
	byDefault, _ := dig(sse[0], "ServerSideEncryptionByDefault", "Fn::If").([]any)
	if len(byDefault) != 3 || byDefault[0] != "HasKmsKey" ||
		dig(byDefault[1], "SSEAlgorithm") != "aws:kms" || dig(byDefault[1], "KMSMasterKeyID", "Ref") != "KmsKeyArn" ||
		dig(byDefault[2], "SSEAlgorithm") != "AES256" {
		t.Errorf("default encryption = %v, want aws:kms with KmsKeyArn when given, else AES256", byDefault)
	}

	if b.LifecycleConfiguration == nil {
		t.Fatal("no lifecycle rules")
	}
	var abortsAll bool
	for _, r := range b.LifecycleConfiguration.Rules {
		if r.Status != "Enabled" {
			continue
		}
		if r.AbortIncompleteMultipartUpload != nil && r.AbortIncompleteMultipartUpload.DaysAfterInitiation >= 1 && r.Prefix == nil && r.TagFilters == nil {
			abortsAll = true
		}
		// Uploads go straight to their final keys: no staging area to sweep.
		if r.Prefix != nil && strings.Contains(*r.Prefix, "_staging") {
			t.Errorf("a lifecycle rule still sweeps a staging prefix %s", *r.Prefix)
		}
	}
	if !abortsAll {
		t.Errorf("no rule aborts incomplete multipart uploads bucket-wide")
	}

	// The bucket policy refuses any request not made over TLS.
	bp, err := tp.typed.GetS3BucketPolicyWithName("BucketPolicy")
	if err != nil {
		t.Fatal(err)
	}
	if bp.AWSCloudFormationCondition != "CreateBucket" {
		t.Errorf("bucket policy Condition = %q, want CreateBucket", bp.AWSCloudFormationCondition)
	}
	if got, _ := render(tp.props(t, "BucketPolicy")["Bucket"]); got != "${Bucket}" {
		t.Errorf("bucket policy is on %q", got)
	}
	var deniesPlainHTTP bool
	for _, st := range list(dig(tp.props(t, "BucketPolicy"), "PolicyDocument", "Statement")) {
		if dig(st, "Effect") != "Deny" || dig(st, "Principal") != "*" || dig(st, "Condition", "Bool", "aws:SecureTransport") != "false" {
			continue
		}
		var res []string
		for _, r := range list(dig(st, "Resource")) {
			s, _ := render(r)
			res = append(res, s)
		}
		slices.Sort(res)
		if slices.Contains(list(dig(st, "Action")), "s3:*") && slices.Equal(res, []string{"${Bucket.Arn}", "${Bucket.Arn}/*"}) {
			deniesPlainHTTP = true
		}
	}
	if !deniesPlainHTTP {
		t.Errorf("no statement denies s3:* on the bucket and its objects when aws:SecureTransport is false")
	}
}

func TestTemplateAlarmAndOutputs(t *testing.T) {
	tp := loadTemplate(t)
	alarms := tp.typed.GetAllCloudWatchAlarmResources()
	var failedAlarm string
	for id, a := range alarms {
		if deref(a.Namespace) == "AWS/States" && deref(a.MetricName) == "ExecutionsFailed" {
			failedAlarm = id
		}
	}
	if failedAlarm == "" {
		t.Fatal("no alarm on AWS/States ExecutionsFailed")
	}
	p := tp.props(t, failedAlarm)
	dims := list(p["Dimensions"])
	if len(dims) != 1 || dig(dims[0], "Name") != "StateMachineArn" || dig(dims[0], "Value", "Ref") != "ExportStateMachine" {
		t.Errorf("alarm dimensions = %v, want StateMachineArn of ExportStateMachine", dims)
	}
	actions := list(p["AlarmActions"])
	if len(actions) != 1 || dig(actions[0], "Ref") != "AlarmTopic" {
		t.Errorf("alarm actions = %v, want the AlarmTopic", actions)
	}
	if typ := dig(tp.raw, "Resources", "AlarmTopic", "Type"); typ != "AWS::SNS::Topic" {
		t.Errorf("AlarmTopic is %v", typ)
	}
	subs := tp.typed.GetAllSNSSubscriptionResources()
	if len(subs) != 1 {
		t.Fatalf("%d subscriptions, want one (optional email)", len(subs))
	}
	for id, s := range subs {
		if s.AWSCloudFormationCondition != "HasAlarmEmail" || s.Protocol != "email" {
			t.Errorf("%s: condition %q protocol %q, want HasAlarmEmail/email", id, s.AWSCloudFormationCondition, s.Protocol)
		}
	}

	for _, name := range []string{"StateMachineArn", "BucketName", "Prefix"} {
		if _, ok := tp.typed.Outputs[name]; !ok {
			t.Errorf("no output %s", name)
		}
	}
	for name, wantDefault := range map[string]any{"BucketName": "", "KmsKeyArn": "", "AlarmEmail": "", "OrgIds": "", "Prefix": "atlas-billing", "AtlasBaseUrl": "https://cloud.mongodb.com"} {
		p, ok := tp.typed.Parameters[name]
		if !ok || p.Default != wantDefault {
			t.Errorf("parameter %s default = %v, want %q", name, p.Default, wantDefault)
		}
	}
	if p := tp.typed.Parameters["SecretArn"]; p.Default != nil {
		t.Errorf("SecretArn has a default %v; it must name an existing secret", p.Default)
	}
}

// Warnings have their own metric and alarm, apart from failed executions:
// each function's log group counts the log line every warning gets, and
// StrictWarnings turns warnings into failures through the functions'
// environment.
func TestTemplateWarnings(t *testing.T) {
	tp := loadTemplate(t)
	pattern := regexp.MustCompile(`^\{ \$\.msg = "([^"]+)" \}$`)
	var namespace, metric any
	groups := map[string]bool{}
	for id, r := range dig(tp.raw, "Resources").(map[string]any) {
		if dig(r, "Type") != "AWS::Logs::MetricFilter" {
			continue
		}
		p := tp.props(t, id)
		m := pattern.FindStringSubmatch(fmt.Sprint(p["FilterPattern"]))
		if m == nil || m[1] != export.WarningLog {
			t.Errorf("%s: FilterPattern %v, want the warning log line's msg %q", id, p["FilterPattern"], export.WarningLog)
		}
		tr := list(p["MetricTransformations"])
		if len(tr) != 1 || dig(tr[0], "MetricValue") != "1" || dig(tr[0], "Dimensions") != nil {
			t.Errorf("%s: MetricTransformations %v, want one count of 1 without dimensions", id, tr)
			continue
		}
		if namespace != nil && (!jsonEqual(dig(tr[0], "MetricNamespace"), namespace) || dig(tr[0], "MetricName") != metric) {
			t.Errorf("%s counts into another metric than the other filters", id)
		}
		namespace, metric = dig(tr[0], "MetricNamespace"), dig(tr[0], "MetricName")
		group, _ := dig(p, "LogGroupName", "Ref").(string)
		groups[group] = true
	}
	if want := map[string]bool{"SubmitLogGroup": true, "PollLogGroup": true, "FetchInvoiceLogGroup": true}; !maps.Equal(groups, want) {
		t.Errorf("metric filters on %v, want one per function's log group", slices.Sorted(maps.Keys(groups)))
	}
	var alarms []string
	for id, r := range dig(tp.raw, "Resources").(map[string]any) {
		if dig(r, "Type") == "AWS::CloudWatch::Alarm" && jsonEqual(dig(r, "Properties", "Namespace"), namespace) && dig(r, "Properties", "MetricName") == metric {
			alarms = append(alarms, id)
		}
	}
	if len(alarms) != 1 {
		t.Fatalf("alarms on the warnings metric: %v, want one", alarms)
	}
	p := tp.props(t, alarms[0])
	if actions := list(p["AlarmActions"]); len(actions) != 1 || dig(actions[0], "Ref") != "AlarmTopic" || p["Threshold"] != float64(1) || p["Statistic"] != "Sum" {
		t.Errorf("warnings alarm %v: want Sum >= 1 notifying the AlarmTopic", p)
	}
	if got := tp.typed.Parameters["StrictWarnings"].Default; got != "DISABLED" {
		t.Errorf("StrictWarnings default %v, want DISABLED", got)
	}
	if got, _ := render(dig(tp.raw, "Globals", "Function", "Environment", "Variables", config.EnvStrict)); got != "If(StrictWarningsEnabled,true,false)" {
		t.Errorf("%s = %s, want the StrictWarnings parameter", config.EnvStrict, got)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func isTrue(b *bool) bool { return b != nil && *b }

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestSamconfigExample keeps the example's parameter overrides in step with
// the template: every key a parameter, every required parameter given.
func TestSamconfigExample(t *testing.T) {
	tp := loadTemplate(t)
	data, err := os.ReadFile("../samconfig.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	given := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, `"`) || !strings.Contains(line, "=") {
			continue
		}
		key, _, _ := strings.Cut(strings.TrimPrefix(line, `"`), "=")
		given[key] = true
		if _, ok := tp.typed.Parameters[key]; !ok {
			t.Errorf("samconfig.toml.example overrides %q, which the template does not declare", key)
		}
	}
	for name, p := range tp.typed.Parameters {
		if p.Default == nil && !given[name] {
			t.Errorf("samconfig.toml.example does not set required parameter %s", name)
		}
	}
	if len(given) == 0 {
		t.Error("found no parameter overrides in samconfig.toml.example")
	}
}

// TestMakeHelpMatchesREADME keeps the README's Develop table and `make help`
// (the Makefile's "## " comments) listing the same targets.
func TestMakeHelpMatchesREADME(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var help []string
	for _, m := range regexp.MustCompile(`(?m)^([a-zA-Z_-]+):.*## `).FindAllSubmatch(mk, -1) {
		help = append(help, string(m[1]))
	}
	_, develop, ok := strings.Cut(string(readme), "\n## Develop\n")
	if !ok {
		t.Fatal("README has no Develop section")
	}
	develop, _, _ = strings.Cut(develop, "\n## ")
	var table []string
	for _, m := range regexp.MustCompile("(?m)^\\| `make ([a-zA-Z_-]+)` \\|").FindAllStringSubmatch(develop, -1) {
		table = append(table, m[1])
	}
	slices.Sort(help)
	slices.Sort(table)
	if len(help) < 5 || !slices.Equal(help, table) {
		t.Errorf("make help lists %v, the README's Develop table %v", help, table)
	}
	if regexp.MustCompile(`(?m)^[a-zA-Z_-]+:.*## .*\$\(`).Match(mk) {
		t.Errorf("a help text holds a make variable, which make help prints literally")
	}
}

// TestParametersMatchREADME keeps the README's Parameters table (names and
// defaults) and its list of outputs the template's.
func TestParametersMatchREADME(t *testing.T) {
	tp := loadTemplate(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, params, ok := strings.Cut(string(readme), "\n### Parameters\n")
	if !ok {
		t.Fatal("README has no Parameters section")
	}
	params, _, _ = strings.Cut(params, "\n## ")
	table := map[string]string{} // name -> default as the README shows it
	for _, m := range regexp.MustCompile("(?m)^\\| ((?:`\\w+`(?:, )?)+) \\| ([^|]*) \\|").FindAllStringSubmatch(params, -1) {
		def := strings.TrimSpace(m[2])
		switch def {
		case "(required)":
			def = "<nil>"
		case "empty":
			def = ""
		default:
			def = strings.Trim(def, "`")
		}
		for _, name := range regexp.MustCompile("`(\\w+)`").FindAllStringSubmatch(m[1], -1) {
			table[name[1]] = def
		}
	}
	for name, p := range tp.typed.Parameters {
		def, ok := table[name]
		switch {
		case !ok:
			t.Errorf("the README's Parameters table lacks %s", name)
		case def != fmt.Sprint(p.Default):
			t.Errorf("the README gives %s the default %q, the template %q", name, def, fmt.Sprint(p.Default))
		}
	}
	for name := range table {
		if _, ok := tp.typed.Parameters[name]; !ok {
			t.Errorf("the README's Parameters table lists %s, which the template does not have", name)
		}
	}
	outputs := regexp.MustCompile(`(?s)\nThe outputs are (.*?)\.\n`).FindStringSubmatch(params)
	if outputs == nil {
		t.Fatal(`the README's Parameters section has no "The outputs are ..." sentence`)
	}
	var listed []string
	for _, m := range regexp.MustCompile("`(\\w+)`").FindAllStringSubmatch(outputs[1], -1) {
		listed = append(listed, m[1])
	}
	if want := slices.Sorted(maps.Keys(tp.typed.Outputs)); !slices.Equal(slices.Sorted(slices.Values(listed)), want) {
		t.Errorf("the README names the outputs %v, the template has %v", listed, want)
	}
}

// TestFunctionsEmbedTimeZones: each function loads ScheduleTimezone
// (ABX_SCHEDULE_TIMEZONE) from the zone database in its binary, since
// provided.al2023 does not promise /usr/share/zoneinfo.
func TestFunctionsEmbedTimeZones(t *testing.T) {
	for id, dir := range functions {
		out, err := exec.Command("go", "list", "-deps", "../functions/"+dir).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps functions/%s: %v\n%s", dir, err, out)
		}
		if !slices.Contains(strings.Fields(string(out)), "time/tzdata") {
			t.Errorf("%s (functions/%s) does not link time/tzdata", id, dir)
		}
	}
}
