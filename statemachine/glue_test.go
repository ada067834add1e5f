package statemachine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	billing "github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// The Glue tables must read what the code writes: the columns of the
// Parquet files, in order, each with the Glue type of its Parquet type;
// partition keys that are key=value folders of the keys internal/layout
// builds, and a location over the same folder.

const (
	sampleOrg     = "5f1a2b3c4d5e6f7a8b9c0d1e"
	sampleInvoice = "65ab0c1d2e3f4a5b6c7d8e9f"
	bucketExpr    = "If(CreateBucket,${Bucket},${BucketName})" // the template's bucket everywhere
)

type glueTable struct {
	logicalID, condition string
	file                 func(t *testing.T) []byte // a file the code writes
	key                  func(l layout.Layout, p billing.Period) (string, error)
}

var glueTables = []glueTable{
	{
		logicalID: "UsageTable",
		file: func(t *testing.T) []byte {
			raw := strings.Join([]string{"Invoice ID", "Organization ID", "Organization Name", "Project ID", "Project Name", "Cluster ID", "Cluster Name", "Service", "Usage Date", "Usage Amount"}, ",") +
				"\n" + sampleInvoice + "," + sampleOrg + ",o,p,pn,c,cn,Clusters,2024-06-01,1.00\n"
			var out bytes.Buffer
			if _, err := normalize.Usage(&out, strings.NewReader(raw)); err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		},
		key: func(l layout.Layout, p billing.Period) (string, error) { return l.NormalizedUsage(sampleOrg, p) },
	},
	{
		logicalID: "InvoiceLineItemsTable",
		file: func(t *testing.T) []byte {
			raw := "Invoice Number," + sampleInvoice + ",\n\n" + strings.Join(atlassim.InvoiceColumns, ",") + ",team\n" +
				"2024-06-02,2024-06-01,M30,,o,oid,p,pid,SKU,R,C,RS,,,h,1.00,1.00,0,1.00,data\n"
			var out bytes.Buffer
			if _, err := normalize.Invoice(&out, strings.NewReader(raw), normalize.InvoiceInfo{ID: sampleInvoice, Status: "PAID"}); err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		},
		key: func(l layout.Layout, p billing.Period) (string, error) {
			return l.NormalizedInvoice(sampleOrg, p, sampleInvoice)
		},
	},
	{
		logicalID: "FocusTable", condition: "FocusReportsEnabled",
		// The simulator's report (a subset of FOCUS 1.0's columns, in its
		// own order) through the normalizer: all 43 columns, fixed order.
		file: func(t *testing.T) []byte {
			now := time.Date(2024, time.July, 15, 0, 0, 0, 0, time.UTC)
			sim, err := atlassim.New(atlassim.Config{InvoiceRows: 3, FirstMonth: "2024-06", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			org := atlassim.DefaultOrgs[0].ID
			var raw, out bytes.Buffer
			if err := sim.WriteFocusCSV(&raw, org, sim.Invoices(org)[0].ID); err != nil {
				t.Fatal(err)
			}
			if _, err := normalize.Focus(&out, &raw); err != nil {
				t.Fatal(err)
			}
			return out.Bytes()
		},
		key: func(l layout.Layout, p billing.Period) (string, error) {
			return l.NormalizedFocus(sampleOrg, p, sampleInvoice)
		},
	},
}

// parquetColumns is the columns of a Parquet file as Glue declares them:
// each top-level field's name and the Glue type that reads its Parquet type.
func parquetColumns(t *testing.T, b []byte) (out []string) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("normalized output is not Parquet: %v", err)
	}
	for _, fl := range f.Schema().Fields() {
		out = append(out, fl.Name()+" "+glueType(t, fl))
	}
	return out
}

// glueType is the Glue (Hive) type of a Parquet node, as Athena's Parquet
// SerDe maps them; a node of no such type fails the test.
func glueType(t *testing.T, n parquet.Node) string {
	t.Helper()
	var lt format.LogicalTypeValue
	if l := n.Type().LogicalType(); l != nil {
		lt = l.Value
	}
	switch lt := lt.(type) {
	case *format.StringType:
		if n.Type().Kind() == parquet.ByteArray {
			return "string"
		}
	case *format.DateType:
		if n.Type().Kind() == parquet.Int32 {
			return "date"
		}
	case *format.TimestampType:
		if n.Type().Kind() == parquet.Int64 && lt.Unit.Value != nil && lt.Unit.Value.Duration() == time.Millisecond {
			return "timestamp"
		}
	case *format.DecimalType:
		// Physical types Athena reads a decimal from.
		if k := n.Type().Kind(); k == parquet.Int64 || k == parquet.FixedLenByteArray {
			return fmt.Sprintf("decimal(%d,%d)", lt.Precision, lt.Scale)
		}
	case *format.MapType:
		kv := n.Fields()
		if len(kv) == 1 && kv[0].Repeated() && len(kv[0].Fields()) == 2 {
			return "map<" + glueType(t, kv[0].Fields()[0]) + "," + glueType(t, kv[0].Fields()[1]) + ">"
		}
	}
	t.Errorf("Parquet node %s (%s) has no Glue type here", n.Type(), n.Type().Kind())
	return "?"
}

// glueColumns is a Glue table's columns as "name type".
func glueColumns(cols any) (out []string) {
	for _, c := range list(cols) {
		out = append(out, fmt.Sprint(dig(c, "Name"), " ", dig(c, "Type")))
	}
	return out
}

func names(cols any) (out []string) {
	for _, c := range list(cols) {
		name, _ := dig(c, "Name").(string)
		out = append(out, name)
	}
	return out
}

func TestGlueTables(t *testing.T) {
	tp := loadTemplate(t)
	prefix, _ := tp.typed.Parameters["Prefix"].Default.(string)
	l, err := layout.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	p := billing.Month(2024, time.June)

	typed := tp.typed.GetAllGlueTableResources()
	if len(typed) != len(glueTables) {
		t.Errorf("template has %d Glue tables, want %d", len(typed), len(glueTables))
	}
	for _, gt := range glueTables {
		t.Run(gt.logicalID, func(t *testing.T) {
			res := dig(tp.raw, "Resources", gt.logicalID)
			if typ := dig(res, "Type"); typ != "AWS::Glue::Table" {
				t.Fatalf("%s is %v, want AWS::Glue::Table", gt.logicalID, typ)
			}
			if c, _ := dig(res, "Condition").(string); c != gt.condition {
				t.Errorf("Condition = %q, want %q", c, gt.condition)
			}
			props := tp.props(t, gt.logicalID)
			if dig(props, "DatabaseName", "Ref") != "GlueDatabase" {
				t.Errorf("DatabaseName = %v, want Ref GlueDatabase", props["DatabaseName"])
			}
			in := dig(props, "TableInput")
			if dig(in, "TableType") != "EXTERNAL_TABLE" {
				t.Errorf("TableType = %v", dig(in, "TableType"))
			}

			// Columns: those of the files, in order, of the types Athena
			// reads them with.
			if got, want := glueColumns(dig(in, "StorageDescriptor", "Columns")), parquetColumns(t, gt.file(t)); !slices.Equal(got, want) {
				t.Errorf("Glue columns:\n%q\nParquet file:\n%q", got, want)
			}
			cols := names(dig(in, "StorageDescriptor", "Columns"))
			// goformation's typed view agrees (the property names are right).
			if tt, ok := typed[gt.logicalID]; !ok || tt.TableInput == nil || tt.TableInput.StorageDescriptor == nil || len(tt.TableInput.StorageDescriptor.Columns) != len(cols) {
				t.Errorf("goformation does not see the columns of %s", gt.logicalID)
			}

			// Partition keys: key=value segments of the S3 keys written, in
			// the same order, and never also a data column.
			key, err := gt.key(l, p)
			if err != nil {
				t.Fatal(err)
			}
			segs := strings.Split(key, "/")
			parts := names(dig(in, "PartitionKeys"))
			for _, pk := range glueColumns(dig(in, "PartitionKeys")) {
				if !strings.HasSuffix(pk, " string") {
					t.Errorf("partition key %s: want a string (a folder name)", pk)
				}
			}
			if len(parts) == 0 {
				t.Fatal("no partition keys")
			}
			last := -1
			for _, pk := range parts {
				i := slices.IndexFunc(segs, func(s string) bool { return strings.HasPrefix(s, pk+"=") })
				if i < 0 {
					t.Errorf("partition key %s is not a segment of %s", pk, key)
					continue
				}
				if i <= last {
					t.Errorf("partition key %s is out of order in %s", pk, key)
				}
				last = i
				if slices.Contains(cols, pk) {
					t.Errorf("partition key %s is also a column: Athena refuses the table", pk)
				}
			}

			// Location and its template cover exactly the folder of the keys.
			params, _ := dig(in, "Parameters").(map[string]any)
			tmpl, err := render(params["storage.location.template"])
			if err != nil {
				t.Fatalf("storage.location.template: %v", err)
			}
			loc, err := render(dig(in, "StorageDescriptor", "Location"))
			if err != nil {
				t.Fatalf("Location: %v", err)
			}
			if !strings.HasPrefix(tmpl, loc) {
				t.Errorf("location template %s is not under Location %s", tmpl, loc)
			}
			filled := tmpl
			for _, pk := range parts {
				// In Fn::Sub, ${!x} is Athena's literal ${x}.
				if !strings.Contains(filled, "${!"+pk+"}") {
					t.Errorf("location template %s has no ${!%s}", tmpl, pk)
				}
				v := ""
				if i := slices.IndexFunc(segs, func(s string) bool { return strings.HasPrefix(s, pk+"=") }); i >= 0 {
					v = strings.TrimPrefix(segs[i], pk+"=")
				}
				filled = strings.ReplaceAll(filled, "${!"+pk+"}", v)
			}
			filled = strings.ReplaceAll(filled, "${Prefix}", prefix)
			wantDir := "s3://" + bucketExpr + "/" + key[:strings.LastIndex(key, "/")+1]
			if filled != wantDir {
				t.Errorf("location template gives %s, the key's folder is %s", filled, wantDir)
			}
			if !strings.HasPrefix(wantDir, strings.ReplaceAll(loc, "${Prefix}", prefix)) {
				t.Errorf("Location %s is not a folder of %s", loc, key)
			}

			// Partition projection: no crawler, new months appear by themselves.
			checkProjection(t, params, parts, p)

			// Parquet, read by column name.
			sd := dig(in, "StorageDescriptor")
			for k, want := range map[string]string{
				"InputFormat":  "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
				"OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
			} {
				if got := dig(sd, k); got != want {
					t.Errorf("%s = %v, want %s", k, got, want)
				}
			}
			if lib := dig(sd, "SerdeInfo", "SerializationLibrary"); lib != "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe" {
				t.Errorf("SerDe = %v, want ParquetHiveSerDe", lib)
			}
			if params["classification"] != "parquet" || params["skip.header.line.count"] != nil {
				t.Errorf("classification %v, skip.header.line.count %v: want parquet and none", params["classification"], params["skip.header.line.count"])
			}
			if !strings.HasSuffix(key, ".parquet") {
				t.Errorf("the table reads %s: want a .parquet file", key)
			}
		})
	}
}

func checkProjection(t *testing.T, params map[string]any, parts []string, p billing.Period) {
	t.Helper()
	if params["projection.enabled"] != "true" {
		t.Errorf("projection.enabled = %v", params["projection.enabled"])
	}
	for _, pk := range parts {
		if params["projection."+pk+".type"] == nil {
			t.Errorf("partition key %s has no projection type", pk)
		}
	}
	// org_id: an enum of OrgIds when set, injected (a WHERE clause) when empty.
	typ, _ := dig(params, "projection.org_id.type", "Fn::If").([]any)
	if len(typ) != 3 || typ[0] != "HasOrgIds" || typ[1] != "enum" || typ[2] != "injected" {
		t.Errorf("projection.org_id.type = %v, want If(HasOrgIds, enum, injected)", params["projection.org_id.type"])
	}
	vals, _ := dig(params, "projection.org_id.values", "Fn::If").([]any)
	if len(vals) != 3 || vals[0] != "HasOrgIds" || dig(vals[1], "Ref") != "OrgIds" || dig(vals[2], "Ref") != "AWS::NoValue" {
		t.Errorf("projection.org_id.values = %v, want If(HasOrgIds, OrgIds, NoValue)", params["projection.org_id.values"])
	}
	// billing_month: Java's yyyy-MM is Go's 2006-01, the layout's label.
	if params["projection.billing_month.type"] != "date" || params["projection.billing_month.format"] != "yyyy-MM" {
		t.Errorf("billing_month projection = %v / %v, want date / yyyy-MM", params["projection.billing_month.type"], params["projection.billing_month.format"])
	}
	if !regexp.MustCompile(`^\d{4}-\d{2}$`).MatchString(p.Label()) {
		t.Errorf("layout month %q does not match yyyy-MM", p.Label())
	}
	rng, _ := params["projection.billing_month.range"].(string)
	from, to, _ := strings.Cut(rng, ",")
	if _, err := time.Parse("2006-01", from); err != nil || to != "NOW" {
		t.Errorf("projection.billing_month.range = %q, want YYYY-MM,NOW", rng)
	}
	if params["projection.billing_month.interval"] != "1" || params["projection.billing_month.interval.unit"] != "MONTHS" {
		t.Errorf("billing_month interval = %v %v, want 1 MONTHS", params["projection.billing_month.interval"], params["projection.billing_month.interval.unit"])
	}
}

func TestGlueDatabaseAndParameters(t *testing.T) {
	tp := loadTemplate(t)
	db := dig(tp.raw, "Resources", "GlueDatabase")
	if dig(db, "Type") != "AWS::Glue::Database" {
		t.Fatalf("GlueDatabase is %v", dig(db, "Type"))
	}
	// Its name (GlueDatabaseName, else from the stack name): TestSAMStacksSideBySide.
	fr := tp.typed.Parameters["FocusReports"]
	if fr.Default != "ENABLED" || !slices.Equal(fr.AllowedValues, []any{"ENABLED", "DISABLED"}) {
		t.Errorf("FocusReports default %v allowed %v, want ENABLED of ENABLED/DISABLED", fr.Default, fr.AllowedValues)
	}
	conds := map[string]string{
		"HasOrgIds":           `{"Fn::Not":[{"Fn::Equals":[{"Ref":"OrgIds"},""]}]}`,
		"FocusReportsEnabled": `{"Fn::Equals":[{"Ref":"FocusReports"},"ENABLED"]}`,
	}
	for name, want := range conds {
		var w any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if got := dig(tp.raw, "Conditions", name); !jsonEqual(got, w) {
			t.Errorf("condition %s = %v, want %s", name, got, want)
		}
	}
	// Every parameter is in a console group, so it shows in the right place.
	grouped := map[string]bool{}
	for _, g := range list(dig(tp.raw, "Metadata", "AWS::CloudFormation::Interface", "ParameterGroups")) {
		for _, p := range list(dig(g, "Parameters")) {
			grouped[p.(string)] = true
		}
	}
	for p := range tp.typed.Parameters {
		if !grouped[p] {
			t.Errorf("parameter %s is in no ParameterGroup", p)
		}
	}
}
