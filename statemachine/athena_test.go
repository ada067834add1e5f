package statemachine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// TestAthenaQueries runs every SQL query of the README (its "Query it with
// Athena" and the first deploy's), as written there, in a real query engine (DuckDB) over the
// files an export of six months wrote, hive-partitioned as Athena reads
// them, each table a view with the columns and types the Glue table
// declares in template.yaml (what Athena applies to the files). Next to
// them, aws_focus has the column types AWS Data Exports documents for its
// FOCUS 1.0 table. It checks the answers against the simulator's invoices:
// the line items of each invoice sum to its subtotal minus credits, the
// FOCUS BilledCost to the line items' sum, the usage of each month to the
// month's invoice (the simulator derives usage from its line items).
func TestAthenaQueries(t *testing.T) {
	now := time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC)
	sim, base := atlassimtest.Start(t, atlassim.Config{
		FirstMonth: "2024-01", Now: func() time.Time { return now }, InvoiceRows: 400, ProcessingTime: -1, ReportProcessingTime: -1,
		Variants: []atlassim.Variant{atlassim.Tags, atlassim.Exponent},
	})
	dir := t.TempDir()
	exportMonths(t, sim, base, dir)

	queries := readmeQueries(t)
	db := databaseOf(t, queries)
	setup := []string{"SET TimeZone = 'UTC'", "CREATE SCHEMA " + db}
	for _, gt := range glueTablesOf(t) {
		setup = append(setup, gt.view(t, db, filepath.Join(dir, layout.DefaultPrefix)))
	}
	setup = append(setup, awsFocus(t)...)
	// The checks' own queries, after the README's.
	own := []string{
		"SELECT org_id, invoice_id, sum(amount) FROM " + db + ".invoice_line_items GROUP BY 1, 2",
		"SELECT org_id, billing_month, sum(billedcost) FROM " + db + ".focus GROUP BY 1, 2",
		"SELECT org_id, billing_month, sum(amount) FROM " + db + ".invoice_line_items GROUP BY 1, 2",
		"SELECT count(*) FROM " + db + ".invoice_line_items WHERE cardinality(tags) > 0",
	}
	res := duckdb(t, setup, append(slices.Clone(queries), own...))

	org := atlassim.DefaultOrgs[0].ID
	want := invoiceTotals(sim, org) // month -> cents
	for i, q := range queries {
		if !strings.Contains(q, "'"+org+"'") {
			t.Errorf("README query %d names another org than the simulator's %s:\n%s", i+1, org, q)
		}
		r := res[i]
		check, ok := readmeChecks[strings.Join(r.names(), ",")]
		if !ok {
			t.Errorf("README query %d has columns %v: no check of its answers here (add one)", i+1, r.names())
			continue
		}
		t.Run(fmt.Sprintf("README query %d", i+1), func(t *testing.T) {
			if len(r.Rows) == 0 {
				t.Fatalf("no rows:\n%s", q)
			}
			check(t, r, want)
		})
	}

	own0 := res[len(queries):]
	// Per invoice, line items sum to subtotal minus credits, exactly.
	invoices := 0
	for _, o := range atlassim.DefaultOrgs {
		for _, inv := range sim.Invoices(o.ID) {
			if inv.Month > "2024-06" {
				continue
			}
			invoices++
			got := own0[0].lookup(t, o.ID, inv.ID)
			if c := cents(t, got); c != inv.SubtotalCents-inv.CreditsCents {
				t.Errorf("invoice %s: line items sum to %s, subtotal - credits = %d cents", inv.ID, got, inv.SubtotalCents-inv.CreditsCents)
			}
		}
	}
	if invoices != 12 || len(own0[0].Rows) != invoices {
		t.Errorf("%d invoices checked, %d in the table: want 2 orgs x 6 months", invoices, len(own0[0].Rows))
	}
	// FOCUS BilledCost sums to the line items, per org and month.
	for _, row := range own0[2].Rows {
		if got := own0[1].lookup(t, row[0], row[1]); cents(t, got) != cents(t, row[2]) {
			t.Errorf("%s %s: FOCUS billed cost %s, line items %s", row[0], row[1], got, row[2])
		}
	}
	if len(own0[1].Rows) != len(own0[2].Rows) || len(own0[1].Rows) != 12 {
		t.Errorf("FOCUS has %d org-months, line items %d: want 12 each", len(own0[1].Rows), len(own0[2].Rows))
	}
	if n, _ := own0[3].Rows[0][0].(string); n == "0" {
		t.Error("no line item has tags: the map column is not exercised")
	}
}

// exportMonths runs the export of both orgs, January to June 2024 with
// FOCUS reports, into dir, as the command-line tool does.
func exportMonths(t *testing.T, sim *atlassim.Server, base, dir string) {
	t.Helper()
	client, err := atlas.NewClient(atlas.WithBaseURL(base), atlas.WithServiceAccount(atlassim.DefaultClientID, atlassim.DefaultClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	lay, err := layout.New(layout.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	exp := &export.Exporter{Atlas: client, Store: sink.NewDir(dir), Layout: lay, Normalizer: normalize.Parquet{}, MaxAttempts: 20, Focus: true}
	runner := &export.Runner{Exporter: exp, Concurrency: 2, Sleep: func(context.Context, time.Duration) error { return nil }}
	var orgs []string
	for _, o := range sim.Orgs() {
		orgs = append(orgs, o.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	results, err := runner.Run(ctx, export.Request{OrgIDs: orgs, StartDate: "2024-01-01", EndDate: "2024-07-01"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if len(r.Warnings) > 0 {
			t.Fatalf("export of %s %s warned: %+v", r.OrgID, r.Period.Label(), r.Warnings)
		}
	}
}

// invoiceTotals is the line-item total of each month's invoice of org, in
// cents: subtotal minus credits, as the invoice's JSON says.
func invoiceTotals(sim *atlassim.Server, org string) map[string]int64 {
	out := map[string]int64{}
	for _, inv := range sim.Invoices(org) {
		if inv.Month <= "2024-06" {
			out[inv.Month] += inv.SubtotalCents - inv.CreditsCents
		}
	}
	return out
}

// readmeChecks check a README query's answer, found by its columns.
var readmeChecks = map[string]func(t *testing.T, r duckResult, want map[string]int64){
	// Cost per project per month: the projects of a month add up to its invoice.
	"billing_month,project,usd": monthSums("projects"),
	// Cost per month and service: the services of a month add up to its
	// usage, the month's invoice.
	"billing_month,service,usd": monthSums("services"),
	// Month-over-month change per service: the services of a month add up
	// to its usage, the month's invoice; each change is the difference.
	"billing_month,service,usd,change_usd": func(t *testing.T, r duckResult, want map[string]int64) {
		r.wantType(t, "usd", "DECIMAL(38,2)")
		got := map[string]int64{}
		prev := map[string]int64{}
		for _, row := range r.Rows {
			month, service, usd := row[0].(string), row[1].(string), cents(t, row[2])
			got[month] += usd
			p, seen := prev[service]
			switch {
			case !seen && row[3] != nil:
				t.Errorf("%s %s: change %v for the first month", month, service, row[3])
			case seen && (row[3] == nil || cents(t, row[3]) != usd-p):
				t.Errorf("%s %s: change %v, want %d cents", month, service, row[3], usd-p)
			}
			prev[service] = usd
		}
		checkMonths(t, "services", got, want)
	},
	// Atlas next to AWS: FOCUS billed cost adds up to the invoices, AWS's
	// rows are the table's, and the union is double and timestamp.
	"provider,service,period,billed_cost": func(t *testing.T, r duckResult, want map[string]int64) {
		r.wantType(t, "billed_cost", "DOUBLE")
		r.wantType(t, "period", "TIMESTAMP")
		atlasCost := map[string]float64{}
		awsCost := map[string]float64{}
		for _, row := range r.Rows {
			period, cost := row[2].(string), row[3].(float64)
			month := period[:7]
			switch row[0] {
			case "MongoDB Atlas":
				if period != month+"-01 00:00:00" {
					t.Errorf("Atlas period %q: want the month's first instant", period)
				}
				atlasCost[month] += cost
			case "AWS":
				awsCost[row[1].(string)+" "+month] += cost
			default:
				t.Errorf("provider %v", row[0])
			}
		}
		got := map[string]int64{}
		for m, c := range atlasCost {
			got[m] = int64(c*100 + 0.5*sign(c)) // double: the union's type
		}
		checkMonths(t, "FOCUS billed cost", got, want)
		wantAWS := map[string]float64{"Amazon Elastic Compute Cloud 2024-06": 120.5, "Amazon Simple Storage Service 2024-06": 3.25, "Amazon Elastic Compute Cloud 2024-05": 99.75}
		for k, v := range wantAWS {
			if d := awsCost[k] - v; d > 1e-9 || d < -1e-9 {
				t.Errorf("AWS %s: %v, want %v", k, awsCost[k], v)
			}
		}
		if len(awsCost) != len(wantAWS) {
			t.Errorf("AWS rows %v, want %v", awsCost, wantAWS)
		}
	},
}

// monthSums checks rows (month, what, usd): each month's add up to its invoice.
func monthSums(what string) func(t *testing.T, r duckResult, want map[string]int64) {
	return func(t *testing.T, r duckResult, want map[string]int64) {
		r.wantType(t, "usd", "DECIMAL(38,2)")
		got := map[string]int64{}
		for _, row := range r.Rows {
			got[row[0].(string)] += cents(t, row[2])
		}
		checkMonths(t, what, got, want)
	}
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

func checkMonths(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if len(want) != 6 {
		t.Fatalf("simulator has invoices for %d months, want 6", len(want))
	}
	for m, c := range want {
		if got[m] != c {
			t.Errorf("%s %s: %d cents, the month's invoice %d", what, m, got[m], c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s for months %v, want %d months", what, got, len(want))
	}
}

// cents is a decimal value (DuckDB's JSON gives decimals as strings) in
// cents, which it must be exactly.
func cents(t *testing.T, v any) int64 {
	t.Helper()
	s, ok := v.(string)
	r, ok2 := new(big.Rat).SetString(s)
	if !ok || !ok2 {
		t.Fatalf("%v (%T) is not a decimal", v, v)
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		t.Fatalf("%s is not whole cents", s)
	}
	return r.Num().Int64()
}

// readmeQueries are the SQL blocks of the README.
func readmeQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) < 4 {
		t.Fatalf("%d SQL queries in the README, want at least 4", len(out))
	}
	return out
}

// databaseOf is the Glue database the queries name (one for all).
func databaseOf(t *testing.T, queries []string) string {
	t.Helper()
	dbs := map[string]bool{}
	for _, q := range queries {
		for _, m := range regexp.MustCompile(`\b(\w+)\.(usage|invoice_line_items|focus)\b`).FindAllStringSubmatch(q, -1) {
			dbs[m[1]] = true
		}
	}
	if len(dbs) != 1 {
		t.Fatalf("the README's queries name databases %v, want one", dbs)
	}
	for db := range dbs {
		return db
	}
	return ""
}

// athenaTable is a Glue table of template.yaml.
type athenaTable struct {
	name, folder string
	columns      [][2]string // name, Glue type
	partitions   []string
}

func glueTablesOf(t *testing.T) []athenaTable {
	t.Helper()
	tp := loadTemplate(t)
	var out []athenaTable
	for _, gt := range glueTables {
		in := dig(tp.props(t, gt.logicalID), "TableInput")
		loc, err := render(dig(in, "StorageDescriptor", "Location"))
		if err != nil {
			t.Fatal(err)
		}
		at := athenaTable{name: dig(in, "Name").(string), folder: filepath.Base(strings.TrimSuffix(loc, "/"))}
		for _, c := range list(dig(in, "StorageDescriptor", "Columns")) {
			at.columns = append(at.columns, [2]string{dig(c, "Name").(string), dig(c, "Type").(string)})
		}
		at.partitions = names(dig(in, "PartitionKeys"))
		out = append(out, at)
	}
	return out
}

// view is the table as DuckDB reads it: the Parquet files of its folder,
// hive-partitioned, each column as the Glue type Athena applies.
func (at athenaTable) view(t *testing.T, db, root string) string {
	t.Helper()
	var cols []string
	for _, c := range at.columns {
		cols = append(cols, fmt.Sprintf("CAST(%s AS %s) AS %s", c[0], duckType(t, c[1]), c[0]))
	}
	var hive []string
	for _, p := range at.partitions {
		hive = append(hive, fmt.Sprintf("'%s': VARCHAR", p))
		cols = append(cols, p)
	}
	glob := filepath.Join(root, at.folder, "*", "*", "*.parquet")
	return fmt.Sprintf("CREATE VIEW %s.%s AS SELECT %s FROM read_parquet('%s', hive_partitioning = true, hive_types = {%s})",
		db, at.name, strings.Join(cols, ", "), glob, strings.Join(hive, ", "))
}

// duckType is DuckDB's type for a Glue (Hive) type.
func duckType(t *testing.T, glue string) string {
	t.Helper()
	switch {
	case glue == "string":
		return "VARCHAR"
	case glue == "date", glue == "timestamp", glue == "double", glue == "bigint", glue == "boolean":
		return strings.ToUpper(glue)
	case regexp.MustCompile(`^decimal\(\d+,\d+\)$`).MatchString(glue):
		return strings.ToUpper(glue)
	case glue == "map<string,string>":
		return "MAP(VARCHAR, VARCHAR)"
	case glue == "map<string,double>":
		return "MAP(VARCHAR, DOUBLE)"
	}
	t.Fatalf("no DuckDB type for the Glue type %q", glue)
	return ""
}

// awsFocusColumns are the columns of AWS Data Exports' FOCUS 1.0 table
// ("FOCUS 1.0 with AWS columns", the AWS Cost and Usage Report user guide):
// FOCUS 1.0's 43, then AWS's five x_ columns, with the types it documents.
var awsFocusColumns = [][2]string{
	{"availabilityzone", "string"}, {"billedcost", "double"}, {"billingaccountid", "string"}, {"billingaccountname", "string"},
	{"billingcurrency", "string"}, {"billingperiodend", "timestamp"}, {"billingperiodstart", "timestamp"}, {"chargecategory", "string"},
	{"chargeclass", "string"}, {"chargedescription", "string"}, {"chargefrequency", "string"}, {"chargeperiodend", "timestamp"},
	{"chargeperiodstart", "timestamp"}, {"commitmentdiscountcategory", "string"}, {"commitmentdiscountid", "string"},
	{"commitmentdiscountname", "string"}, {"commitmentdiscountstatus", "string"}, {"commitmentdiscounttype", "string"},
	{"consumedquantity", "double"}, {"consumedunit", "string"}, {"contractedcost", "double"}, {"contractedunitprice", "double"},
	{"effectivecost", "double"}, {"invoiceissuername", "string"}, {"listcost", "double"}, {"listunitprice", "double"},
	{"pricingcategory", "string"}, {"pricingquantity", "double"}, {"pricingunit", "string"}, {"providername", "string"},
	{"publishername", "string"}, {"regionid", "string"}, {"regionname", "string"}, {"resourceid", "string"},
	{"resourcename", "string"}, {"resourcetype", "string"}, {"servicecategory", "string"}, {"servicename", "string"},
	{"skuid", "string"}, {"skupriceid", "string"}, {"subaccountid", "string"}, {"subaccountname", "string"},
	{"tags", "map<string,string>"},
	{"x_costcategories", "map<string,string>"}, {"x_discounts", "map<string,double>"}, {"x_operation", "string"},
	{"x_servicecode", "string"}, {"x_usagetype", "string"},
}

// awsFocus creates aws_focus with three charges.
func awsFocus(t *testing.T) []string {
	t.Helper()
	var cols []string
	for _, c := range awsFocusColumns {
		cols = append(cols, c[0]+" "+duckType(t, c[1]))
	}
	return []string{
		"CREATE TABLE aws_focus (" + strings.Join(cols, ", ") + ")",
		`INSERT INTO aws_focus (billedcost, billingperiodstart, billingperiodend, servicename, billingcurrency, tags) VALUES
		 (100.5, TIMESTAMP '2024-06-01 00:00:00', TIMESTAMP '2024-07-01 00:00:00', 'Amazon Elastic Compute Cloud', 'USD', MAP {'team': 'data'}),
		 (20, TIMESTAMP '2024-06-01 00:00:00', TIMESTAMP '2024-07-01 00:00:00', 'Amazon Elastic Compute Cloud', 'USD', MAP {}),
		 (3.25, TIMESTAMP '2024-06-01 00:00:00', TIMESTAMP '2024-07-01 00:00:00', 'Amazon Simple Storage Service', 'USD', MAP {}),
		 (99.75, TIMESTAMP '2024-05-01 00:00:00', TIMESTAMP '2024-06-01 00:00:00', 'Amazon Elastic Compute Cloud', 'USD', MAP {})`,
	}
}

// The focus table has FOCUS 1.0's columns as AWS's table has them, in the
// same order, each of the same kind of type: a decimal where AWS has a
// double (exact here; a UNION of the two is double), else the same type.
func TestFocusTableMatchesAWS(t *testing.T) {
	for _, at := range glueTablesOf(t) {
		if at.name != "focus" {
			continue
		}
		if len(at.columns) != 43 {
			t.Fatalf("focus has %d columns, want FOCUS 1.0's 43", len(at.columns))
		}
		for i, c := range at.columns {
			aws := awsFocusColumns[i]
			same := c[1] == aws[1] || aws[1] == "double" && strings.HasPrefix(c[1], "decimal(")
			if c[0] != aws[0] || !same {
				t.Errorf("column %d: focus has %s %s, AWS's FOCUS 1.0 table %s %s", i, c[0], c[1], aws[0], aws[1])
			}
		}
		return
	}
	t.Fatal("no focus table")
}

// duckResult is one query's answer.
type duckResult struct {
	Columns []struct{ Name, Type string }
	Rows    [][]any
}

func (r duckResult) names() []string {
	var out []string
	for _, c := range r.Columns {
		out = append(out, c.Name)
	}
	return out
}

func (r duckResult) wantType(t *testing.T, col, typ string) {
	t.Helper()
	for _, c := range r.Columns {
		if c.Name == col && c.Type != typ {
			t.Errorf("column %s is %s, want %s", col, c.Type, typ)
		}
	}
}

// lookup is the last column of the row whose first columns are keys.
func (r duckResult) lookup(t *testing.T, keys ...any) any {
	t.Helper()
	for _, row := range r.Rows {
		if slices.Equal(row[:len(keys)], keys) {
			return row[len(keys)]
		}
	}
	t.Errorf("no row for %v", keys)
	return "0"
}

// duckdb runs setup, then queries, in DuckDB through the pinned Node tools
// (testdata/duckdb.mjs) and returns each query's answer.
func duckdb(t *testing.T, setup, queries []string) []duckResult {
	t.Helper()
	node, modules := sfntest.Tools(t)
	in, err := json.Marshal(map[string][]string{"setup": setup, "queries": queries})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/duckdb.mjs")
	cmd.Env = append(os.Environ(), "ABX_NODE_MODULES="+modules)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("DuckDB: %v\n%s", err, stderr.Bytes())
	}
	var res struct{ Results []duckResult }
	if err := json.Unmarshal(out, &res); err != nil || len(res.Results) != len(queries) {
		t.Fatalf("DuckDB answered %d results (%v) for %d queries", len(res.Results), err, len(queries))
	}
	return res.Results
}
