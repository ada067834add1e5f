package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// The demo's data: the simulator's two orgs from 2024-01 (make demo's
// --first-month), exported for 2024-04 to 2024-06.
var reportMonths = []string{"2024-04", "2024-05", "2024-06"}

// TestReportNumbers exports the demo's months with run --report, then
// reads every figure of the report's charts and tables and checks it
// against totals computed here from what the simulator serves (its usage,
// invoices and FOCUS CSVs, summed with math/big): nothing of the export or
// the report's own code. The report command on the same export writes the
// same page.
func TestReportNumbers(t *testing.T) {
	sim, base := atlassimtest.Start(t, atlassim.Config{FirstMonth: "2024-01", ReadyAfterPolls: 1, ReportReadyAfterPolls: 1, Now: func() time.Time { return fixedNow }})
	orgs := sim.Orgs()
	env := map[string]string{config.EnvAtlasBaseURL: base, secret.EnvClientID: atlassim.DefaultClientID, secret.EnvClientSecret: atlassim.DefaultClientSecret}
	dir := t.TempDir()
	export, file := filepath.Join(dir, "export"), filepath.Join(dir, "report.html")

	a, _, stderr := testApp(t, env)
	args := []string{"run", "--org", orgs[0].ID + "," + orgs[1].ID, "--from", "2024-04", "--to", "2024-06", "--out", export, "--report", file, "--quiet"}
	if code := a.Main(context.Background(), args); code != ExitOK {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	page, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, page, expectedFigures(t, sim, folderSizes(t, export), ""))
	if t.Failed() {
		return
	}

	// The report command reads the same export into the same page.
	a, stdout, stderr := testApp(t, env)
	again := filepath.Join(dir, "again.html")
	if code := a.Main(context.Background(), []string{"report", "--in", export, "--out", again}); code != ExitOK {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(again); !bytes.Equal(b, page) {
		t.Error("report wrote another page than run --report")
	}
	if !strings.Contains(stdout.String(), "report: "+again+" (2 org(s), 2024-04 to 2024-06, 24 files read)") {
		t.Errorf("stdout = %q", stdout)
	}

	// The same export into S3, under a prefix, and its report.
	gw := testenv.Versity(t)
	bucket := gw.Bucket(t)
	const prefix = "lake/atlas/"
	t.Setenv("AWS_ACCESS_KEY_ID", gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", gw.SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	lake := []string{"--s3-endpoint", gw.Endpoint, "--region", testenv.Region}
	a, _, stderr = testApp(t, env)
	args = append([]string{"run", "--org", orgs[0].ID + "," + orgs[1].ID, "--from", "2024-04", "--to", "2024-06", "--out", "s3://" + bucket + "/" + prefix, "--quiet"}, lake...)
	if code := a.Main(context.Background(), args); code != ExitOK {
		t.Fatalf("run into S3: exit %d: %s", code, stderr)
	}
	a, _, stderr = testApp(t, env)
	fromS3 := filepath.Join(dir, "s3.html")
	if code := a.Main(context.Background(), append([]string{"report", "--in", "s3://" + bucket + "/" + prefix, "--out", fromS3}, lake...)); code != ExitOK {
		t.Fatalf("report from S3: exit %d: %s", code, stderr)
	}
	page, err = os.ReadFile(fromS3)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]int64{}
	for _, key := range gw.Keys(t, bucket, prefix) {
		sizes[key] = aws.ToInt64(gw.Head(t, bucket, key).ContentLength)
	}
	checkPage(t, page, expectedFigures(t, sim, sizes, prefix))
}

func checkPage(t *testing.T, page []byte, want figures) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range checkReport(doc, want) {
		t.Error(e)
	}
}

// TestReportCheckFails: the check above finds one figure changed by a cent,
// in its number or in its text alone.
func TestReportCheckFails(t *testing.T) {
	page := `<html><body><svg id="cost-chart"><rect height="100" data-fig="cost" data-key="2024-06|Clusters" data-value="10.00"/>
<rect height="50" data-fig="cost" data-key="2024-06|Backup" data-value="5.00"/>
<text data-fig="cost" data-key="2024-06|Clusters" data-value="10.00">10.00</text></svg>
<table id="cost-table"><tr><td data-fig="cost" data-key="2024-06|Clusters" data-value="10.00">10.00</td>
<td data-fig="cost" data-key="2024-06|Backup" data-value="5.00">5.00</td></tr></table></body></html>`
	want := figures{values: map[string]*big.Rat{"cost|2024-06|Clusters": big.NewRat(10, 1), "cost|2024-06|Backup": big.NewRat(5, 1)},
		inTable: []string{"cost"}, inChart: []string{"cost"}}
	for _, tc := range []struct {
		name, from, to string
		errs           int
	}{
		{"as it is", "", "", 0},
		{"a number", `data-value="10.00">10.00</td>`, `data-value="10.01">10.01</td>`, 1},
		{"a text", `data-value="10.00">10.00</text>`, `data-value="10.00">10.01</text>`, 1},
		{"a bar", `height="50"`, `height="45"`, 1},
		{"a script", `</body>`, `<script>alert(1)</script></body>`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := html.Parse(strings.NewReader(strings.Replace(page, tc.from, tc.to, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if errs := checkReport(doc, want); len(errs) != tc.errs {
				t.Errorf("%d errors, want %d: %q", len(errs), tc.errs, errs)
			}
		})
	}
}

// figures is what a report must show: each figure's exact value by
// "fig|key", and the kinds every key of which a table (or a chart) shows.
type figures struct {
	values           map[string]*big.Rat
	inTable, inChart []string
	order            map[string][]string // fig -> keys in the order shown, top first
	generated        string
}

func rat(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("%q is not a number", s)
	}
	return r
}

// folderSizes is the size of each file under dir, by key.
func folderSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	sizes := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		key, _ := filepath.Rel(dir, path)
		sizes[filepath.ToSlash(key)] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// expectedFigures computes every figure of the demo's report from what the
// simulator serves, with the export's keys under prefix and their sizes.
func expectedFigures(t *testing.T, sim *atlassim.Server, sizes map[string]int64, prefix string) figures {
	t.Helper()
	f := figures{values: map[string]*big.Rat{}, order: map[string][]string{}, generated: fixedNow.Format(time.RFC3339)}
	add := func(fig, key string, v *big.Rat) {
		k := fig + "|" + key
		if f.values[k] == nil {
			f.values[k] = new(big.Rat)
		}
		f.values[k].Add(f.values[k], v)
	}
	set := func(fig, key string, v *big.Rat) {
		if v != nil { // a percent of nothing is no figure
			f.values[fig+"|"+key] = new(big.Rat).Set(v)
		}
	}
	zero := new(big.Rat)
	services := map[string]bool{}
	// month -> "org|project id" (or cluster id) -> amount
	projects, clusters := map[string]map[string]*big.Rat{}, map[string]map[string]*big.Rat{}
	for _, m := range reportMonths {
		projects[m], clusters[m] = map[string]*big.Rat{}, map[string]*big.Rat{}
	}
	bump := func(m map[string]*big.Rat, k string, v *big.Rat) {
		if m[k] == nil {
			m[k] = new(big.Rat)
		}
		m[k].Add(m[k], v)
	}
	for _, org := range sim.Orgs() {
		for _, m := range reportMonths {
			start, _ := time.Parse("2006-01", m)
			var b bytes.Buffer
			q := atlassim.UsageQuery{StartDate: start.Format(time.DateOnly), EndDate: start.AddDate(0, 1, 0).Format(time.DateOnly)}
			if err := sim.WriteUsageCSV(&b, org.ID, q); err != nil {
				t.Fatal(err)
			}
			rows := readCSV(t, b.Bytes())
			set("file-rows", prefix+"usage_normalized/org_id="+org.ID+"/billing_month="+m+"/usage.parquet", big.NewRat(int64(len(rows)), 1))
			add("org-cost", org.ID+"|"+m, zero)
			add("org-total", org.ID, zero)
			for _, r := range rows {
				v := rat(t, r["Usage Amount"])
				services[r["Service"]] = true
				add("cost", m+"|"+r["Service"], v)
				add("month-total", m, v)
				add("service-total", r["Service"], v)
				add("grand-total", "", v)
				add("org-cost", org.ID+"|"+m, v)
				add("org-total", org.ID, v)
				bump(projects[m], org.ID+"|"+r["Project ID"], v)
				if r["Cluster ID"] != "" {
					bump(clusters[m], org.ID+"|"+r["Cluster ID"], v)
				}
			}
		}
		for _, inv := range sim.Invoices(org.ID) {
			if !slices.Contains(reportMonths, inv.Month) {
				continue
			}
			c := func(cents int64) *big.Rat { return big.NewRat(cents, 100) }
			set("invoice-lines", inv.ID, c(inv.SubtotalCents-inv.CreditsCents))
			set("invoice-subtotal", inv.ID, c(inv.SubtotalCents))
			set("invoice-credits", inv.ID, c(inv.CreditsCents))
			set("invoice-tax", inv.ID, c(inv.SalesTaxCents))
			set("invoice-billed", inv.ID, c(inv.AmountBilledCents))
			set("invoice-delta", inv.ID, zero)
			var b bytes.Buffer
			if err := sim.WriteFocusCSV(&b, org.ID, inv.ID); err != nil {
				t.Fatal(err)
			}
			billed := new(big.Rat)
			for _, r := range readCSV(t, b.Bytes()) {
				billed.Add(billed, rat(t, r["BilledCost"]))
			}
			set("focus-billed", inv.ID, billed)
			set("focus-delta", inv.ID, new(big.Rat).Sub(billed, c(inv.SubtotalCents-inv.CreditsCents)))
			part := "/org_id=" + org.ID + "/billing_month=" + inv.Month + "/invoice_id=" + inv.ID + ".parquet"
			set("file-rows", prefix+"invoice_line_items"+part, big.NewRat(inv.Rows, 1))
			set("file-rows", prefix+"focus_normalized"+part, big.NewRat(inv.Rows, 1))
		}
	}
	// Every service in every month, 0 where it had none.
	for svc := range services {
		for _, m := range reportMonths {
			add("cost", m+"|"+svc, zero)
		}
	}
	last, prev := reportMonths[len(reportMonths)-1], reportMonths[len(reportMonths)-2]
	total := func(m string) *big.Rat { return f.values["month-total|"+m] }
	set("month-change", last, new(big.Rat).Sub(total(last), total(prev)))
	set("month-change-pct", last, pct(total(last), total(prev)))
	// Each service's change, largest first.
	var movers []string
	for svc := range services {
		l, p := f.values["cost|"+last+"|"+svc], f.values["cost|"+prev+"|"+svc]
		set("service-last", svc, l)
		set("service-prev", svc, p)
		set("service-change", svc, new(big.Rat).Sub(l, p))
		set("service-change-pct", svc, pct(l, p))
		movers = append(movers, svc)
	}
	absChange := func(s string) *big.Rat { return new(big.Rat).Abs(f.values["service-change|"+s]) }
	slices.SortStableFunc(movers, func(a, b string) int { return cmp.Or(absChange(b).Cmp(absChange(a)), strings.Compare(a, b)) })
	f.order["service-change"] = movers
	// The top ten projects and clusters of the last month.
	for _, it := range []struct {
		kind  string
		items map[string]map[string]*big.Rat
	}{{"project", projects}, {"cluster", clusters}} {
		var keys []string
		for k := range it.items[last] {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return it.items[last][b].Cmp(it.items[last][a]) })
		keys = keys[:10]
		f.order[it.kind+"-last"] = keys
		for _, k := range keys {
			l, p := it.items[last][k], cmp.Or(it.items[prev][k], zero)
			set(it.kind+"-last", k, l)
			set(it.kind+"-prev", k, p)
			set(it.kind+"-change", k, new(big.Rat).Sub(l, p))
			set(it.kind+"-change-pct", k, pct(l, p))
		}
	}
	// The files read are the normalized ones and the manifests.
	for key, n := range sizes {
		if strings.HasSuffix(key, ".parquet") || strings.HasSuffix(key, "/manifest.json") {
			set("file-bytes", key, big.NewRat(n, 1))
		}
	}
	f.inTable = []string{"cost", "month-total", "service-total", "grand-total", "org-cost", "org-total",
		"project-last", "project-prev", "project-change", "project-change-pct", "cluster-last", "cluster-prev", "cluster-change", "cluster-change-pct",
		"service-last", "service-prev", "service-change", "service-change-pct",
		"invoice-lines", "invoice-subtotal", "invoice-credits", "invoice-tax", "invoice-billed", "invoice-delta",
		"focus-billed", "focus-delta", "file-rows", "file-bytes"}
	f.inChart = []string{"cost", "month-total", "project-last", "project-change", "cluster-last", "cluster-change", "service-change", "service-change-pct"}
	return f
}

// pct is (last - prev) / |prev| in percent, rounded half away from zero to
// a tenth; nil when prev is zero.
func pct(last, prev *big.Rat) *big.Rat {
	if prev.Sign() == 0 {
		return nil
	}
	r := new(big.Rat).Sub(last, prev)
	r.Quo(r, new(big.Rat).Abs(prev))
	r.Mul(r, big.NewRat(1000, 1)) // tenths of a percent
	// Round |r| to the nearest integer, halves up: floor(|r| + 1/2).
	half := new(big.Rat).Add(new(big.Rat).Abs(r), big.NewRat(1, 2))
	q := new(big.Int).Quo(half.Num(), half.Denom())
	if r.Sign() < 0 {
		q.Neg(q)
	}
	return new(big.Rat).SetFrac(q, big.NewInt(10))
}

// readCSV reads a CSV with a header row as one map per record.
func readCSV(t *testing.T, b []byte) []map[string]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// shown is one figure as the page shows it.
type shown struct {
	fig, key, value, text string
	tag                   string
	chart, table          string // the ids of the svg or table it is in
	size                  float64
}

// checkReport reads every figure of the page (elements with data-fig) and
// returns what does not match want: a value, a text that does not show its
// value, a bar not drawn to scale, a figure missing from a table or a
// chart, anything the page would fetch or run.
func checkReport(doc *html.Node, want figures) []string {
	var errs []string
	var all []shown
	var walk func(n *html.Node, chart, table string)
	walk = func(n *html.Node, chart, table string) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Script, atom.Iframe, atom.Link, atom.Img, atom.Object, atom.Embed:
				errs = append(errs, "the page has a <"+n.Data+">")
			case atom.Svg:
				chart = attr(n, "id")
			case atom.Table:
				table = attr(n, "id")
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") || strings.Contains(a.Val, "://") && a.Key != "xmlns" || strings.Contains(a.Val, "url(") && !strings.Contains(a.Val, "url(#") {
					errs = append(errs, fmt.Sprintf("<%s %s=%q> reaches out", n.Data, a.Key, a.Val))
				}
			}
			if fig := attr(n, "data-fig"); fig != "" {
				s := shown{fig: fig, key: attr(n, "data-key"), value: attr(n, "data-value"), text: textOf(n), tag: n.Data, chart: chart, table: table}
				if n.Data == "rect" {
					dim := "width"
					if chart == "cost-chart" {
						dim = "height"
					}
					s.size, _ = strconv.ParseFloat(attr(n, dim), 64)
				}
				all = append(all, s)
			}
			if n.DataAtom == atom.Time && attr(n, "id") == "generated" && attr(n, "datetime") != want.generated && want.generated != "" {
				errs = append(errs, fmt.Sprintf("generated at %s, want %s", attr(n, "datetime"), want.generated))
			}
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.Style && strings.Contains(textOf(n), "url(") {
			errs = append(errs, "the style sheet has a url()")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, chart, table)
		}
	}
	walk(doc, "", "")

	// Each chart's scale: size per unit, measured on its largest bar.
	scale, largest := map[string]float64{}, map[string]float64{}
	for _, s := range all {
		if v, err := strconv.ParseFloat(s.value, 64); err == nil && s.tag == "rect" && math.Abs(v) > largest[s.chart] {
			largest[s.chart], scale[s.chart] = math.Abs(v), s.size/math.Abs(v)
		}
	}
	inTable, inChart := map[string]bool{}, map[string]bool{}
	order := map[string][]string{}
	for _, s := range all {
		id := s.fig + "|" + s.key
		w, ok := want.values[id]
		got, isNum := new(big.Rat).SetString(s.value)
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s %s = %s: no such figure", s.fig, s.key, s.value))
			continue
		case !isNum:
			errs = append(errs, fmt.Sprintf("%s %s: value %q is not a number", s.fig, s.key, s.value))
			continue
		case got.Cmp(w) != 0:
			errs = append(errs, fmt.Sprintf("%s %s = %s, want %s", s.fig, s.key, s.value, w.FloatString(2)))
		}
		if s.tag != "rect" {
			if t := strings.NewReplacer(",", "", "+", "", "%", "").Replace(strings.TrimSpace(s.text)); t != s.value {
				errs = append(errs, fmt.Sprintf("%s %s shows %q for %s", s.fig, s.key, s.text, s.value))
			}
		} else if v, _ := got.Float64(); math.Abs(s.size-scale[s.chart]*math.Abs(v)) > 0.2 {
			// Coordinates are written to a tenth of a unit.
			errs = append(errs, fmt.Sprintf("%s %s: a bar of %g for %s, not to the scale of its chart %s", s.fig, s.key, s.size, s.value, s.chart))
		}
		if s.table != "" {
			inTable[id] = true
			if s.fig == "service-change" || s.fig == "project-last" || s.fig == "cluster-last" {
				order[s.fig] = append(order[s.fig], s.key)
			}
		}
		if s.chart != "" {
			inChart[id] = true
		}
	}
	for id, w := range want.values {
		fig, _, _ := strings.Cut(id, "|")
		if slices.Contains(want.inTable, fig) && !inTable[id] {
			errs = append(errs, fmt.Sprintf("no table shows %s (%s)", id, w.FloatString(2)))
		}
		if slices.Contains(want.inChart, fig) && !inChart[id] && w.Sign() != 0 {
			errs = append(errs, fmt.Sprintf("no chart shows %s (%s)", id, w.FloatString(2)))
		}
	}
	for fig, keys := range want.order {
		if !slices.Equal(order[fig], keys) {
			errs = append(errs, fmt.Sprintf("%s in the order %q, want %q", fig, order[fig], keys))
		}
	}
	return errs
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// TestRunReportInNewFolder: the demo's first run, with the report inside an
// output folder that the run itself creates.
func TestRunReportInNewFolder(t *testing.T) {
	sim, base := atlassimtest.Start(t, atlassim.Config{FirstMonth: "2024-01", ReadyAfterPolls: 1, ReportReadyAfterPolls: 1, Now: func() time.Time { return fixedNow }})
	env := map[string]string{config.EnvAtlasBaseURL: base, secret.EnvClientID: atlassim.DefaultClientID, secret.EnvClientSecret: atlassim.DefaultClientSecret}
	out := filepath.Join(t.TempDir(), "out")
	file := filepath.Join(out, "report.html")
	a, _, stderr := testApp(t, env)
	args := []string{"run", "--org", sim.Orgs()[0].ID, "--period", "2024-06", "--out", out, "--report", file, "--quiet"}
	if code := a.Main(context.Background(), args); code != ExitOK {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("no report in the new folder: %v", err)
	}
}

// TestReportUsageErrors: a location without an export, or a request it
// cannot answer, is a clear one-line error and exit 2, before anything is
// written (or, for run --report, exported).
func TestReportUsageErrors(t *testing.T) {
	empty := t.TempDir()
	one := t.TempDir() // an export of one org and month, with nothing in it
	key := filepath.Join(one, "_manifests", "org_id="+testOrg1, "billing_month=2024-06", "manifest.json")
	if err := os.MkdirAll(filepath.Dir(key), 0o777); err != nil {
		t.Fatal(err)
	}
	manifest := `{"version": 1, "orgId": "` + testOrg1 + `", "billingMonth": "2024-06", "objects": []}`
	if err := os.WriteFile(key, []byte(manifest), 0o666); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.html")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an empty folder", []string{"report", "--in", empty, "--out", out}, "no export at " + empty + ": no manifest under _manifests/"},
		{"no folder", []string{"report", "--in", filepath.Join(empty, "none"), "--out", out}, "no such folder"},
		{"a file", []string{"report", "--in", key, "--out", out}, "no such folder"},
		{"nothing in the months", []string{"report", "--in", one, "--out", out, "--from", "2025-01"}, "holds orgs " + testOrg1 + " and months 2024-06"},
		{"nothing of the org", []string{"report", "--in", one, "--out", out, "--org", testOrg2}, "nothing to report on"},
		{"from after to", []string{"report", "--in", one, "--out", out, "--from", "2024-06", "--to", "2024-04"}, "--from/--to: range end 2024-04 is before its start 2024-06"},
		{"a bad month", []string{"report", "--in", one, "--out", out, "--to", "2024-6"}, `--to: want a month YYYY-MM, got "2024-6"`},
		{"a bad org", []string{"report", "--in", one, "--out", out, "--org", "acme"}, `--org:`},
		{"no folder for the report", []string{"report", "--in", one, "--out", filepath.Join(empty, "none", "r.html")}, "does not exist"},
		{"an argument", []string{"report", one}, "report takes no arguments"},
		{"a bad location", []string{"report", "--in", "ftp://host/x", "--out", out}, "only s3:// URLs or local folders"},
		{"run --report without its folder", []string{"run", "--period", "2024-06", "--out", one, "--report", filepath.Join(empty, "none", "r.html")}, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Nothing listens at this base URL: an export would fail with 1.
			a, stdout, stderr := testApp(t, map[string]string{config.EnvAtlasBaseURL: "http://127.0.0.1:9", config.EnvOrgIDs: testOrg1,
				secret.EnvClientID: "id", secret.EnvClientSecret: "s"})
			if code := a.Main(context.Background(), tt.args); code != ExitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, ExitUsage, stderr)
			}
			assertOneErrorLine(t, stderr.String(), tt.want)
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q", stdout)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a report was written")
			}
			if _, err := os.Stat(filepath.Join(empty, "none")); err == nil {
				t.Error("the folder was created")
			}
		})
	}
}
