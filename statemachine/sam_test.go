package statemachine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The template as AWS deploys it: translated by the SAM translator (the
// Python package CloudFormation's transform runs), then resolved here for a
// stack name and parameter values (conditions, Refs to parameters, Sub, If,
// Join, Split). What stays unresolved is a resource's own value: Ref X reads
// "${X}", GetAtt X.Y "${X.Y}".

const (
	samAdvice   = "pip install cfn-lint==1.51.0 aws-sam-translator==1.110.0"
	testSecret  = "arn:aws:secretsmanager:us-east-1:123456789012:secret:atlas/billing-AbCdEf"
	testRegion  = "us-east-1"
	testAccount = "123456789012"
)

var translations sync.Map // parameters as JSON -> *translation

type translation struct {
	once sync.Once
	tmpl map[string]any
	err  error
}

// translate runs statemachine/testdata/sam_translate.py on template.yaml.
// ABX_PYTHON names the interpreter (default python3).
func translate(t *testing.T, params map[string]string) map[string]any {
	t.Helper()
	arg, _ := json.Marshal(params)
	v, _ := translations.LoadOrStore(string(arg), &translation{})
	tr := v.(*translation)
	tr.once.Do(func() {
		python := os.Getenv("ABX_PYTHON")
		if python == "" {
			python = "python3"
		}
		cmd := exec.Command(python, "testdata/sam_translate.py", templatePath, string(arg))
		cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION="+testRegion)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			tr.err = fmt.Errorf("SAM translator (%s; %s): %v\n%s", python, samAdvice, err, stderr.String())
			return
		}
		tr.err = json.Unmarshal(stdout.Bytes(), &tr.tmpl)
	})
	if tr.err != nil {
		t.Fatal(tr.err)
	}
	return tr.tmpl
}

// stack is the translated template resolved for one deployment.
type stack struct {
	name      string
	params    map[string]any // parameter values: strings, lists for list types
	resources map[string]resource
	broken    []string // the AssertDescription of each failed rule
}

type resource struct {
	Type  string
	Props map[string]any
}

// noValue stands for AWS::NoValue until the value holding it drops it.
type noValue struct{}

// deploy resolves the template for stack name with SecretArn and params
// given; parameters not given take their defaults.
func deploy(t *testing.T, name string, params map[string]string) *stack {
	t.Helper()
	given := map[string]string{"SecretArn": testSecret}
	maps.Copy(given, params)
	tmpl := translate(t, given)
	s := &stack{name: name, params: map[string]any{}, resources: map[string]resource{}}
	declared, _ := tmpl["Parameters"].(map[string]any)
	for p := range given {
		if _, ok := declared[p]; !ok {
			t.Fatalf("parameter %s is not declared", p)
		}
	}
	for p, decl := range declared {
		v, ok := given[p]
		if !ok {
			switch d := dig(decl, "Default").(type) {
			case nil:
				t.Fatalf("parameter %s has no default and no value", p)
			case float64:
				v = strconv.FormatFloat(d, 'f', -1, 64)
			default:
				v = fmt.Sprint(d)
			}
		}
		if typ, _ := dig(decl, "Type").(string); typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
			s.params[p] = splitList(v)
		} else {
			s.params[p] = v
		}
	}
	r := &resolver{t: t, s: s, conds: map[string]bool{}, decl: tmpl["Conditions"]}
	for rname, rule := range asMap(tmpl["Rules"]) {
		if c := dig(rule, "RuleCondition"); c != nil && !r.truth(c) {
			continue
		}
		for _, a := range list(dig(rule, "Assertions")) {
			if !r.truth(dig(a, "Assert")) {
				s.broken = append(s.broken, fmt.Sprintf("%s: %v", rname, dig(a, "AssertDescription")))
			}
		}
	}
	for id, res := range asMap(tmpl["Resources"]) {
		if c, ok := dig(res, "Condition").(string); ok && !r.cond(c) {
			continue
		}
		props, _ := r.value(dig(res, "Properties")).(map[string]any)
		s.resources[id] = resource{Type: dig(res, "Type").(string), Props: props}
	}
	return s
}

func splitList(v string) []any { return split(v, ",") }

func split(v, sep string) []any {
	var out []any
	for _, e := range strings.Split(v, sep) {
		out = append(out, e)
	}
	return out
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

type resolver struct {
	t     *testing.T
	s     *stack
	conds map[string]bool
	decl  any // the Conditions section
}

func (r *resolver) cond(name string) bool {
	if v, ok := r.conds[name]; ok {
		return v
	}
	c := dig(r.decl, name)
	if c == nil {
		r.t.Fatalf("condition %s is not declared", name)
	}
	v := r.truth(c)
	r.conds[name] = v
	return v
}

// truth evaluates a condition expression.
func (r *resolver) truth(expr any) bool {
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		r.t.Fatalf("condition %v is not one function", expr)
	}
	for fn, arg := range m {
		args := list(arg)
		switch fn {
		case "Condition":
			return r.cond(arg.(string))
		case "Fn::Equals":
			return jsonEqual(r.value(args[0]), r.value(args[1]))
		case "Fn::Not":
			return !r.truth(args[0])
		case "Fn::And", "Fn::Or":
			for _, a := range args {
				if r.truth(a) != (fn == "Fn::And") {
					return fn == "Fn::Or"
				}
			}
			return fn == "Fn::And"
		}
	}
	r.t.Fatalf("condition function %v is not supported", expr)
	return false
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (r *resolver) ref(name string) any {
	switch name {
	case "AWS::StackName":
		return r.s.name
	case "AWS::Region":
		return testRegion
	case "AWS::AccountId":
		return testAccount
	case "AWS::Partition":
		return "aws"
	case "AWS::URLSuffix":
		return "amazonaws.com"
	case "AWS::NoValue":
		return noValue{}
	}
	if v, ok := r.s.params[name]; ok {
		return v
	}
	return "${" + name + "}"
}

// value resolves every intrinsic function in v.
func (r *resolver) value(v any) any {
	switch v := v.(type) {
	case []any:
		out := []any{}
		for _, e := range v {
			if e := r.value(e); e != (noValue{}) {
				out = append(out, e)
			}
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for fn, arg := range v {
				if out, ok := r.function(fn, arg); ok {
					return out
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			if e := r.value(e); e != (noValue{}) {
				out[k] = e
			}
		}
		return out
	}
	return v
}

func (r *resolver) function(fn string, arg any) (any, bool) {
	args, _ := arg.([]any)
	str := func(v any) string {
		s, ok := r.value(v).(string)
		if !ok {
			r.t.Fatalf("%s: %v is not a string", fn, v)
		}
		return s
	}
	switch fn {
	case "Ref":
		return r.ref(arg.(string)), true
	case "Fn::GetAtt":
		if s, ok := arg.(string); ok {
			return "${" + s + "}", true
		}
		return fmt.Sprintf("${%v.%v}", args[0], args[1]), true
	case "Fn::If":
		if r.cond(args[0].(string)) {
			return r.value(args[1]), true
		}
		return r.value(args[2]), true
	case "Fn::Join":
		var parts []string
		for _, e := range list(r.value(args[1])) {
			parts = append(parts, e.(string))
		}
		return strings.Join(parts, str(args[0])), true
	case "Fn::Split":
		return split(str(args[1]), str(args[0])), true
	case "Fn::Select":
		i, _ := strconv.Atoi(fmt.Sprint(r.value(args[0])))
		return list(r.value(args[1]))[i], true
	case "Fn::Sub":
		tmpl, vars := arg, map[string]any{}
		if len(args) == 2 {
			tmpl, vars = args[0], asMap(args[1])
		}
		return subVar.ReplaceAllStringFunc(tmpl.(string), func(m string) string {
			name := m[2 : len(m)-1]
			if strings.HasPrefix(name, "!") {
				return "${" + name[1:] + "}"
			}
			if v, ok := vars[name]; ok {
				return str(v)
			}
			s, ok := r.ref(name).(string)
			if !ok {
				r.t.Fatalf("Fn::Sub: ${%s} is not a string", name)
			}
			return s
		}), true
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition":
		return r.truth(map[string]any{fn: arg}), true
	}
	if strings.HasPrefix(fn, "Fn::") {
		r.t.Fatalf("intrinsic %s is not supported here", fn)
	}
	return nil, false
}

// of returns the resources of a type, by logical id.
func (s *stack) of(typ string) map[string]resource {
	out := map[string]resource{}
	for id, r := range s.resources {
		if r.Type == typ {
			out[id] = r
		}
	}
	return out
}

// statement is one Allow of a role policy, resolved.
type statement struct {
	Role, Sid string
	Actions   []string
	Resources []string
	Condition map[string]any
}

// statements returns every statement of every role's inline policies.
func (s *stack) statements(t *testing.T) []statement {
	t.Helper()
	var out []statement
	for id, role := range s.of("AWS::IAM::Role") {
		if mp := role.Props["ManagedPolicyArns"]; mp != nil {
			t.Errorf("%s: managed policies %v hide their statements", id, mp)
		}
		for _, pol := range list(role.Props["Policies"]) {
			for _, st := range list(dig(pol, "PolicyDocument", "Statement")) {
				for _, k := range []string{"NotAction", "NotResource", "NotPrincipal"} {
					if dig(st, k) != nil {
						t.Errorf("%s: a statement uses %s", id, k)
					}
				}
				if dig(st, "Effect") != "Allow" {
					t.Errorf("%s: Effect %v in a role policy", id, dig(st, "Effect"))
					continue
				}
				sid, _ := dig(st, "Sid").(string)
				stmt := statement{Role: id, Sid: sid, Condition: asMap(dig(st, "Condition"))}
				for _, a := range list(dig(st, "Action")) {
					stmt.Actions = append(stmt.Actions, a.(string))
				}
				for _, r := range list(dig(st, "Resource")) {
					stmt.Resources = append(stmt.Resources, r.(string))
				}
				out = append(out, stmt)
			}
		}
	}
	return out
}

// grants lists "action resource" pairs of a role, sorted.
func (s *stack) grants(t *testing.T, role string) []string {
	t.Helper()
	var out []string
	for _, st := range s.statements(t) {
		if st.Role != role {
			continue
		}
		for _, a := range st.Actions {
			for _, r := range st.Resources {
				out = append(out, a+" "+r)
			}
		}
	}
	slices.Sort(out)
	return out
}

// roleOf returns the logical id of the role a function or state machine runs as.
func roleOf(t *testing.T, r resource, prop string) string {
	t.Helper()
	arn, _ := r.Props[prop].(string)
	id, ok := strings.CutSuffix(strings.TrimPrefix(arn, "${"), ".Arn}")
	if !ok {
		t.Fatalf("%s = %v, want a role of the stack", prop, r.Props[prop])
	}
	return id
}

func TestSAMTranslation(t *testing.T) {
	s := deploy(t, "abx-dev", nil)
	counts := map[string]int{}
	for _, r := range s.resources {
		counts[r.Type]++
	}
	want := map[string]int{
		"AWS::Lambda::Function": 3, "AWS::StepFunctions::StateMachine": 1, "AWS::Scheduler::Schedule": 2,
		"AWS::IAM::Role": 5, "AWS::S3::Bucket": 1, "AWS::Glue::Database": 1,
	}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%d %s, want %d (all: %v)", counts[typ], typ, n, counts)
		}
	}
	if len(s.broken) != 0 {
		t.Errorf("default parameters break rules: %v", s.broken)
	}
}

// Two stacks of the template in one account and region: every name that
// must be unique there differs, so dev and prod deploy side by side.
func TestSAMStacksSideBySide(t *testing.T) {
	// Where each type's account- or region-wide name is (absent: CloudFormation
	// makes one up); nil: its name is scoped by another resource of the stack.
	names := map[string][]string{
		"AWS::Lambda::Function":            {"FunctionName"},
		"AWS::Logs::LogGroup":              {"LogGroupName"},
		"AWS::IAM::Role":                   {"RoleName"},
		"AWS::StepFunctions::StateMachine": {"StateMachineName"},
		"AWS::Scheduler::Schedule":         {"Name"},
		"AWS::Glue::Database":              {"DatabaseInput", "Name"},
		"AWS::CloudWatch::Alarm":           {"AlarmName"},
		"AWS::Logs::MetricFilter":          {"FilterName"},
		"AWS::SNS::Topic":                  {"TopicName"},
		"AWS::S3::Bucket":                  {"BucketName"},
		"AWS::Glue::Table":                 nil, // in the stack's database
		"AWS::S3::BucketPolicy":            nil,
		"AWS::SNS::Subscription":           nil,
	}
	params := map[string]string{"AlarmEmail": "finops@example.com"}
	dev, prod := deploy(t, "abx-dev", params), deploy(t, "abx-prod", params)
	taken := map[string]string{} // type + name -> resource of dev
	for id, r := range dev.resources {
		path, ok := names[r.Type]
		if !ok {
			t.Errorf("%s: resource type %s: say where its name is in this test", id, r.Type)
			continue
		}
		if path == nil {
			continue
		}
		if n, ok := dig(r.Props, path...).(string); ok {
			taken[r.Type+" "+n] = id
		}
	}
	for id, r := range prod.resources {
		path := names[r.Type]
		if path == nil {
			continue
		}
		n, ok := dig(r.Props, path...).(string)
		if !ok {
			continue
		}
		if other, clash := taken[r.Type+" "+n]; clash {
			t.Errorf("%s %q of stack abx-prod clashes with %s of abx-dev", r.Type, n, other)
		}
		if r.Type != "AWS::Glue::Database" && !strings.Contains(n, "abx-prod") {
			t.Errorf("%s name %q does not name its stack", id, n)
		}
	}
	db := dig(prod.resources["GlueDatabase"].Props, "DatabaseInput", "Name")
	if db != "abx_prod" {
		t.Errorf("Glue database of stack abx-prod = %v, want abx_prod (a name Athena takes unquoted)", db)
	}
	if named := deploy(t, "abx-prod", map[string]string{"GlueDatabaseName": "atlas_billing"}); dig(named.resources["GlueDatabase"].Props, "DatabaseInput", "Name") != "atlas_billing" {
		t.Errorf("GlueDatabaseName is not the database's name")
	}
	if got := prod.resources["ExportStateMachine"].Props["StateMachineName"]; got != "abx-prod-export" {
		t.Errorf("StateMachineName = %v, want abx-prod-export", got)
	}
}

func TestSAMSchedules(t *testing.T) {
	s := deploy(t, "abx-dev", map[string]string{"ScheduleTimezone": "Pacific/Auckland"})
	schedules := s.of("AWS::Scheduler::Schedule")
	if len(schedules) != 2 {
		t.Fatalf("%d schedules, want 2", len(schedules))
	}
	want := map[string]bool{"abx-dev-monthly": true, "abx-dev-daily": true}
	for id, sc := range schedules {
		if name, _ := sc.Props["Name"].(string); !want[name] {
			t.Errorf("%s: Name %v, want one of %v", id, sc.Props["Name"], slices.Collect(maps.Keys(want)))
		}
		delete(want, fmt.Sprint(sc.Props["Name"]))
		if got := dig(sc.Props, "Target", "Arn"); got != "${ExportStateMachine}" {
			t.Errorf("%s targets %v, want the state machine", id, got)
		}
		if got := sc.Props["ScheduleExpressionTimezone"]; got != "Pacific/Auckland" {
			t.Errorf("%s: time zone %v, want the ScheduleTimezone parameter", id, got)
		}
		role := roleOf(t, resource{Props: asMap(sc.Props["Target"])}, "RoleArn")
		trust := map[string]any{
			"Effect": "Allow", "Principal": map[string]any{"Service": "scheduler.amazonaws.com"}, "Action": "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": testAccount}},
		}
		if got := dig(s.resources[role].Props, "AssumeRolePolicyDocument", "Statement"); !jsonEqual(got, []any{trust}) {
			t.Errorf("%s: role %s trusts %v, want only EventBridge Scheduler of this account", id, role, got)
		}
		if got := s.grants(t, role); !slices.Equal(got, []string{"states:StartExecution ${ExportStateMachine}"}) {
			t.Errorf("%s: scheduler role %s grants %v, want only states:StartExecution on the state machine", id, role, got)
		}
	}
	// The functions compute "previous month" in the schedules' zone.
	for id, fn := range s.of("AWS::Lambda::Function") {
		if got := dig(fn.Props, "Environment", "Variables", "ABX_SCHEDULE_TIMEZONE"); got != "Pacific/Auckland" {
			t.Errorf("%s: ABX_SCHEDULE_TIMEZONE = %v, want the ScheduleTimezone parameter", id, got)
		}
	}
	sm := s.resources["ExportStateMachine"]
	role := roleOf(t, sm, "RoleArn")
	// The functions, and what the Distributed Maps do: start and watch this
	// state machine's children, read the plan and write the results under
	// the runs' folder.
	runs := "arn:aws:s3:::${Bucket}/" + s.params["Prefix"].(string) + "/_runs/*"
	wantSM := []string{
		"lambda:InvokeFunction ${FetchInvoiceFunction.Arn}",
		"lambda:InvokeFunction ${PollFunction.Arn}",
		"lambda:InvokeFunction ${SubmitFunction.Arn}",
		"s3:AbortMultipartUpload " + runs,
		"s3:GetObject " + runs,
		"s3:ListMultipartUploadParts " + runs,
		"s3:PutObject " + runs,
		"states:DescribeExecution " + childExecutions("abx-dev"),
		"states:StartExecution " + stateMachine("abx-dev"),
		"states:StopExecution " + childExecutions("abx-dev"),
	}
	if got := s.grants(t, role); role != "StateMachineRole" || !slices.Equal(got, wantSM) {
		t.Errorf("state machine role %s grants %v, want exactly %v", role, got, wantSM)
	}
}

var vpcActions = []string{
	"ec2:AssignPrivateIpAddresses", "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
	"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:UnassignPrivateIpAddresses",
}

func TestSAMVpc(t *testing.T) {
	subnets, groups := "subnet-0123456789abcdef0,subnet-89abcdef", "sg-0123456789abcdef0"
	for _, tc := range []struct {
		name       string
		params     map[string]string
		vpc        bool
		brokenRule bool
	}{
		{name: "no VPC", params: nil},
		{name: "VPC", params: map[string]string{"SubnetIds": subnets, "SecurityGroupIds": groups}, vpc: true},
		{name: "subnets alone", params: map[string]string{"SubnetIds": subnets}, brokenRule: true},
		{name: "groups alone", params: map[string]string{"SecurityGroupIds": groups}, brokenRule: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := deploy(t, "abx-dev", tc.params)
			if (len(s.broken) != 0) != tc.brokenRule {
				t.Fatalf("broken rules %v, want broken: %v", s.broken, tc.brokenRule)
			}
			if tc.brokenRule {
				return
			}
			fns := s.of("AWS::Lambda::Function")
			for id, fn := range fns {
				vc := fn.Props["VpcConfig"]
				wantVC := map[string]any{"SubnetIds": splitList(subnets), "SecurityGroupIds": splitList(groups)}
				if tc.vpc && !jsonEqual(vc, wantVC) {
					t.Errorf("%s: VpcConfig = %v, want %v", id, vc, wantVC)
				}
				if !tc.vpc && vc != nil {
					t.Errorf("%s: VpcConfig %v without SubnetIds", id, vc)
				}
				var ec2 []string
				for _, st := range s.statements(t) {
					if st.Role != roleOf(t, fn, "Role") {
						continue
					}
					for _, a := range st.Actions {
						if strings.HasPrefix(a, "ec2:") {
							ec2 = append(ec2, a)
						}
					}
				}
				slices.Sort(ec2)
				if tc.vpc && !slices.Equal(ec2, vpcActions) {
					t.Errorf("%s: role grants %v, want %v to attach to the VPC", id, ec2, vpcActions)
				}
				if !tc.vpc && ec2 != nil {
					t.Errorf("%s: role grants %v without a VPC", id, ec2)
				}
			}
		})
	}
}

// TestTemplateIAM checks every role of the deployed stack, SAM's scheduler
// roles included, against what the code calls, with and without the
// optional keys, bucket and VPC.
func TestTemplateIAM(t *testing.T) {
	const (
		dataKey   = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
		secretKey = "arn:aws:kms:us-east-1:123456789012:key/9876abcd-12ab-34cd-56ef-1234567890ab"
	)
	for _, tc := range []struct {
		name   string
		params map[string]string
		bucket string
	}{
		{name: "defaults", bucket: "${Bucket}"},
		{name: "every option", bucket: "shared-lake", params: map[string]string{
			"BucketName": "shared-lake", "Prefix": "finops/atlas", "KmsKeyArn": dataKey, "SecretKmsKeyArn": secretKey,
			"SubnetIds": "subnet-01234567", "SecurityGroupIds": "sg-01234567",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := deploy(t, "abx-dev", tc.params)
			prefix := s.params["Prefix"].(string)
			bucketARN := "arn:aws:s3:::" + tc.bucket
			objects := bucketARN + "/" + prefix + "/*"
			runs := bucketARN + "/" + prefix + "/_runs/*"
			// What may be granted on each resource; nothing else may appear.
			// Deletes: only normalized files (a stale one goes).
			allowed := map[string][]string{
				objects: {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"},
				bucketARN + "/" + prefix + "/usage_normalized/*":   {"s3:DeleteObject"},
				bucketARN + "/" + prefix + "/invoice_line_items/*": {"s3:DeleteObject"},
				bucketARN + "/" + prefix + "/focus_normalized/*":   {"s3:DeleteObject"},
				runs:                          {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"},
				stateMachine("abx-dev"):       {"states:StartExecution"},
				childExecutions("abx-dev"):    {"states:DescribeExecution", "states:StopExecution"},
				testSecret:                    {"secretsmanager:GetSecretValue"},
				dataKey:                       {"kms:Decrypt", "kms:GenerateDataKey"},
				secretKey:                     {"kms:Decrypt"},
				"*":                           vpcActions,
				"${ExportStateMachine}":       {"states:StartExecution"},
				"${SubmitFunction.Arn}":       {"lambda:InvokeFunction"},
				"${PollFunction.Arn}":         {"lambda:InvokeFunction"},
				"${FetchInvoiceFunction.Arn}": {"lambda:InvokeFunction"},
				"${SubmitLogGroup.Arn}":       {"logs:CreateLogStream", "logs:PutLogEvents"},
				"${PollLogGroup.Arn}":         {"logs:CreateLogStream", "logs:PutLogEvents"},
				"${FetchInvoiceLogGroup.Arn}": {"logs:CreateLogStream", "logs:PutLogEvents"},
			}
			var sawDataKey, sawSecretKey bool
			for _, st := range s.statements(t) {
				where := st.Role + "/" + st.Sid
				for _, a := range st.Actions {
					if strings.Contains(a, "*") {
						t.Errorf("%s: action %s has a wildcard", where, a)
					}
					for _, r := range st.Resources {
						if !slices.Contains(allowed[r], a) {
							t.Errorf("%s: %s on %q is not allowed", where, a, r)
						}
					}
				}
				for _, r := range st.Resources {
					switch r {
					case dataKey:
						sawDataKey = true
						// S3 names the object, or the bucket with S3 Bucket Keys.
						wantCond := map[string]any{
							"StringEquals": map[string]any{"kms:ViaService": "s3.us-east-1.amazonaws.com"},
							"StringLike":   map[string]any{"kms:EncryptionContext:aws:s3:arn": []any{objects, bucketARN}},
						}
						if !jsonEqual(st.Condition, wantCond) {
							t.Errorf("%s: condition %v, want %v", where, st.Condition, wantCond)
						}
					case secretKey:
						sawSecretKey = true
						wantCond := map[string]any{"StringEquals": map[string]any{
							"kms:ViaService":                  "secretsmanager.us-east-1.amazonaws.com",
							"kms:EncryptionContext:SecretARN": testSecret,
						}}
						if !jsonEqual(st.Condition, wantCond) {
							t.Errorf("%s: condition %v, want %v", where, st.Condition, wantCond)
						}
					}
				}
			}
			if _, ok := tc.params["KmsKeyArn"]; ok != sawDataKey {
				t.Errorf("KmsKeyArn given: %v, but a statement on it: %v", ok, sawDataKey)
			}
			if _, ok := tc.params["SecretKmsKeyArn"]; ok != sawSecretKey {
				t.Errorf("SecretKmsKeyArn given: %v, but a statement on it: %v", ok, sawSecretKey)
			}

			for id, fn := range s.of("AWS::Lambda::Function") {
				role := roleOf(t, fn, "Role")
				if want := strings.TrimSuffix(id, "Function") + "Role"; role != want {
					t.Errorf("%s runs as %s, want its own %s", id, role, want)
				}
				got := s.grants(t, role)
				need := []string{"secretsmanager:GetSecretValue " + testSecret}
				if sawSecretKey {
					need = append(need, "kms:Decrypt "+secretKey)
				}
				deletes := map[string][]string{ // the normalized files each writes
					"PollFunction":         {"usage_normalized", "focus_normalized"},
					"FetchInvoiceFunction": {"invoice_line_items"},
				}
				for _, folder := range deletes[id] {
					need = append(need, "s3:DeleteObject "+bucketARN+"/"+prefix+"/"+folder+"/*")
				}
				if id != "SubmitFunction" {
					need = append(need, "s3:PutObject "+objects, "s3:GetObject "+objects, "s3:AbortMultipartUpload "+objects)
					if sawDataKey {
						need = append(need, "kms:Decrypt "+dataKey, "kms:GenerateDataKey "+dataKey)
					}
				}
				for _, n := range need {
					if !slices.Contains(got, n) {
						t.Errorf("%s lacks %s", role, n)
					}
				}
				if id == "SubmitFunction" {
					for _, g := range got {
						if strings.HasPrefix(g, "s3:") || strings.HasPrefix(g, "kms:") && !strings.HasSuffix(g, secretKey) {
							t.Errorf("SubmitRole has %s: submit never touches S3", g)
						}
					}
				}
			}
		})
	}
}

// stateMachine is the export state machine's ARN in stack; childExecutions
// matches its Distributed Maps' child executions.
func stateMachine(stack string) string {
	return "arn:aws:states:us-east-1:" + testAccount + ":stateMachine:" + stack + "-export"
}

func childExecutions(stack string) string {
	return "arn:aws:states:us-east-1:" + testAccount + ":execution:" + stack + "-export/*"
}
