package normalize_test

import (
	"bytes"
	"encoding/csv"
	"math/big"
	"slices"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
)

// checkOutput is what any successful normalization guarantees: the output
// re-parses strictly (every record as wide as the header) with Rows records
// after the header, one record per line (what Athena's SerDe needs), and the
// amounts in amountCol (if any) sum to Stats.AmountCents.
func checkOutput(t *testing.T, out []byte, st normalize.Stats, header []string, amountCol string) {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output does not re-parse: %v\n%q", err, out)
	}
	if int64(len(recs)) != st.Rows+1 {
		t.Fatalf("%d records, Stats.Rows = %d", len(recs), st.Rows)
	}
	if !slices.Equal(recs[0], header) {
		t.Fatalf("header = %q", recs[0])
	}
	if n := int64(bytes.Count(out, []byte("\n"))); n != st.Rows+1 {
		t.Fatalf("%d lines for %d records: a value holds a line break", n, st.Rows+1)
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
	sum.Mul(&sum, big.NewRat(100, 1))
	if !sum.IsInt() || !sum.Num().IsInt64() || sum.Num().Int64() != st.AmountCents {
		t.Fatalf("amounts sum to %s cents, Stats.AmountCents = %d", sum.FloatString(2), st.AmountCents)
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

// FuzzUsage: the same for usage. Seeds: testdata/fuzz/FuzzUsage.
func FuzzUsage(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		st, err := normalize.Usage(&out, bytes.NewReader(data))
		if err != nil {
			return
		}
		checkOutput(t, out.Bytes(), st, normalize.UsageColumns, "usage_amount")
	})
}

// FuzzFocus: the same for FOCUS reports, whose costs are kept as given.
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
