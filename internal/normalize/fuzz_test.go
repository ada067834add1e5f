package normalize_test

import (
	"bytes"
	"math/big"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// checkOutput is what any successful normalization guarantees: the output
// is a Parquet file of the columns in header with Rows rows, every string
// valid UTF-8, and the amounts in amountCol (if any) sum to Stats.Amount.
func checkOutput(t *testing.T, out []byte, st tally.Stats, header []string, amountCol string) {
	t.Helper()
	recs := records(t, out)
	if int64(len(recs)) != st.Rows+1 {
		t.Fatalf("%d records, Stats.Rows = %d", len(recs), st.Rows)
	}
	if !slices.Equal(recs[0], header) {
		t.Fatalf("header = %q", recs[0])
	}
	for _, r := range recs[1:] {
		for i, v := range r {
			if !utf8.ValidString(v) {
				t.Fatalf("%s %q is not valid UTF-8", header[i], v)
			}
		}
	}
	if amountCol == "" {
		return // no amount summed
	}
	col := slices.Index(header, amountCol)
	var sum big.Rat
	for _, r := range recs[1:] {
		v, ok := new(big.Rat).SetString(r[col])
		if !ok {
			t.Fatalf("%s %q is not a decimal", amountCol, r[col])
		}
		sum.Add(&sum, v)
	}
	if got, ok := new(big.Rat).SetString(st.Amount.String()); !ok || got.Cmp(&sum) != 0 {
		t.Fatalf("amounts sum to %s, Stats.Amount = %s", sum.RatString(), st.Amount)
	}
}

// FuzzInvoice: never panics; when it succeeds, the output is well formed.
// Seeds: testdata/fuzz/FuzzInvoice.
func FuzzInvoice(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		st, err := normalize.Invoice(&out, bytes.NewReader(data), normalize.InvoiceInfo{ID: invID, Status: "PAID"})
		if err != nil {
			return
		}
		checkOutput(t, out.Bytes(), st, normalize.InvoiceColumns, "amount")
	})
}

// FuzzUsage: the same for usage, whose totals per service add up too.
// Seeds: testdata/fuzz/FuzzUsage.
func FuzzUsage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		st, err := normalize.Usage(&out, bytes.NewReader(data))
		if err != nil {
			return
		}
		checkOutput(t, out.Bytes(), st, normalize.UsageColumns, "usage_amount")
		checkServices(t, out.Bytes(), st)
	})
}

// FuzzUsageJSON: the same for the JSON form of usage.
func FuzzUsageJSON(f *testing.F) {
	f.Add([]byte(`{"usageDetails":[{"service":"Clusters","usageAmount":12.50,"usageDate":"2024-06-01"},{"service":"Clusters","usageAmount":"-1e-2"}]}`))
	f.Add([]byte(`{"x":[{"y":null}],"usageDetails":null}`))
	f.Add([]byte(`{"usageDetails":[{"usageAmount":1,"service":{"a":1}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		st, err := normalize.UsageJSON(&out, bytes.NewReader(data))
		if err != nil {
			return
		}
		checkOutput(t, out.Bytes(), st, normalize.UsageColumns, "usage_amount")
		checkServices(t, out.Bytes(), st)
	})
}

// checkServices: the usage per service in the output is Stats.Services.
func checkServices(t *testing.T, out []byte, st tally.Stats) {
	t.Helper()
	recs := records(t, out)
	svc, amt := slices.Index(recs[0], "service"), slices.Index(recs[0], "usage_amount")
	want := map[string]*big.Rat{}
	for _, r := range recs[1:] {
		if want[r[svc]] == nil {
			want[r[svc]] = new(big.Rat)
		}
		v, _ := new(big.Rat).SetString(r[amt])
		want[r[svc]].Add(want[r[svc]], v)
	}
	if len(want) != len(st.Services) {
		t.Fatalf("%d services in the output, %d in Stats.Services", len(want), len(st.Services))
	}
	for name, sum := range st.Services {
		if got, ok := new(big.Rat).SetString(sum.String()); !ok || want[name] == nil || got.Cmp(want[name]) != 0 {
			t.Fatalf("service %q: Stats.Services says %s, the output sums to %v", name, sum, want[name])
		}
	}
}

// FuzzFocus: the same for FOCUS reports.
func FuzzFocus(f *testing.F) {
	f.Add([]byte("BilledCost,ServiceName,Tags\n12.50,Clusters,\"{\"\"a\"\": \"\"b\r\nc\"\"}\"\n"))
	f.Add([]byte("\xef\xbb\xbfbilledcost\r\n1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		st, err := normalize.Focus(&out, bytes.NewReader(data))
		if err != nil {
			return
		}
		checkOutput(t, out.Bytes(), st, normalize.FocusColumns, "")
	})
}
