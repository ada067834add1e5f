package normalize

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

const invHeader = "Date,Usage Date,Description,Note,Organization Name,Organization ID,Project,Project ID,SKU,Region,Cluster,Replica Set,Config Server,Application,Unit,Unit Price,Quantity,Discount Percent,Amount"

func TestInvoiceReader(t *testing.T) {
	t.Parallel()
	row := `06/01/2024,06/01/2024,"Atlas AWS Instance M10, us-east-1",,Test 2,666acb8787ba43606905dcac,Proj,666acb8787ba43606905dcad,ATLAS_AWS_INSTANCE_M10,US_EAST_1,Cluster0,,,,server hours,0.08,24,,1.92`
	tests := []struct {
		name     string
		in       string
		preamble Preamble
		header   []string   // atlassim.InvoiceColumns if nil
		rows     [][]string // rows[i][2] (Description) and last field checked
		err      error
	}{
		{
			name: "spec example",
			in: "Invoice Number,666acb8787ba43606905dcae,\nBilling Period,\"June 1, 2024 - July 1, 2024\",\nOrganization Name,Test 2,\nOrganization ID,666acb8787ba43606905dcac,\n\n" +
				invHeader + "\n" + row + "\n",
			preamble: Preamble{{"Invoice Number", "666acb8787ba43606905dcae"}, {"Billing Period", "June 1, 2024 - July 1, 2024"},
				{"Organization Name", "Test 2"}, {"Organization ID", "666acb8787ba43606905dcac"}},
			rows: [][]string{{"Atlas AWS Instance M10, us-east-1", "1.92"}},
		},
		{
			name:     "no preamble",
			in:       invHeader + "\n" + row,
			preamble: nil,
			rows:     [][]string{{"Atlas AWS Instance M10, us-east-1", "1.92"}},
		},
		{
			name: "long preamble, crlf, trailing commas on header",
			in: "Invoice Number,a,,,\r\nBilling Period,\"June 1, 2024 - July 1, 2024\",\r\nK3,v3\r\nK4 , v4 ,\r\nK5,\"multi\r\nline\",\r\nLonely\r\n,,,\r\n\r\n" +
				invHeader + ",,\r\n" + strings.ReplaceAll(row, "Cluster0", "\"Clu,ster\"\"0\"\"\"") + ",\r\n",
			preamble: Preamble{{"Invoice Number", "a"}, {"Billing Period", "June 1, 2024 - July 1, 2024"}, {"K3", "v3"}, {"K4", "v4"},
				{"K5", "multi\nline"}, {"Lonely", ""}},
			rows: [][]string{{"Atlas AWS Instance M10, us-east-1", "1.92"}},
		},
		{
			name:     "non-ascii and BOM",
			in:       "\ufeffOrganization Name,\"Zürich Bäckerei, 東京\",\n\n" + invHeader + "\n06/01/2024,,\"Crédit \"\"promo\"\"\",,Zürich,,,,,,,,,,,,,,-25.00\n",
			preamble: Preamble{{"Organization Name", "Zürich Bäckerei, 東京"}},
			rows:     [][]string{{"Crédit \"promo\"", "-25.00"}},
		},
		{
			name:     "header with spaces and rows of commas skipped",
			in:       "A,1\n" + strings.ReplaceAll(invHeader, ",", " , ") + "\n,,,,\n" + row + "\n\n",
			preamble: Preamble{{"A", "1"}},
			rows:     [][]string{{"Atlas AWS Instance M10, us-east-1", "1.92"}},
		},
		{
			name:     "header-like line in preamble is not the header",
			in:       "Date,Usage Date,Description\n" + invHeader + "\n",
			preamble: Preamble{{"Date", "Usage Date"}},
		},
		{name: "missing header", in: "Invoice Number,a,\nBilling Period,\"June 1, 2024 - July 1, 2024\",\n\n", err: errNoInvoiceHeader},
		{name: "empty", in: "", err: errNoInvoiceHeader},
		{name: "header with an extra column", in: invHeader + ",Extra\n" + row + ",tag\n", header: append(slices.Clone(atlassim.InvoiceColumns), "Extra"),
			rows: [][]string{{"Atlas AWS Instance M10, us-east-1", "tag"}}},
		{name: "header of the required columns only", in: " sku ,AMOUNT,date\nS,1.00,2024-06-01\n", header: []string{"sku", "AMOUNT", "date"},
			rows: [][]string{{"2024-06-01", "2024-06-01"}}},
		{name: "header without a required column", in: strings.Replace(invHeader, ",SKU,", ",Sku Code,", 1) + "\n", err: errNoInvoiceHeader},
		{name: "bare quote", in: "Invoice \"Number,a\n" + invHeader + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ir, err := newInvoiceReader(strings.NewReader(tc.in))
			want := tc.header
			if want == nil {
				want = atlassim.InvoiceColumns
			}
			if tc.err != nil || tc.name == "bare quote" {
				if err == nil || tc.err != nil && !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ir.header, want) {
				t.Errorf("header = %q", ir.header)
			}
			if !slices.Equal(ir.preamble, tc.preamble) {
				t.Errorf("preamble = %q, want %q", ir.preamble, tc.preamble)
			}
			for _, f := range tc.preamble {
				if v, ok := ir.preamble.Value(strings.ToUpper(f.Key)); !ok || v != f.Value {
					t.Errorf("Value(%q) = %q, %v", f.Key, v, ok)
				}
			}
			if _, ok := ir.preamble.Value("Nope"); ok {
				t.Error("Value(Nope) found")
			}
			for i, w := range tc.rows {
				rec, err := ir.next()
				if err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				if len(rec) != len(want) || string(rec[2]) != w[0] || string(rec[len(rec)-1]) != w[1] {
					t.Errorf("row %d = %q (%d fields)", i, rec, len(rec))
				}
			}
			if _, err := ir.next(); err != io.EOF {
				t.Errorf("after the rows: %v, want io.EOF", err)
			}
		})
	}
}

// A read error in the line items is returned, not taken for the end.
func TestInvoiceReaderBrokenStream(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(invHeader+"\n"), errReader{boom})
	ir, err := newInvoiceReader(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ir.next(); !errors.Is(err, boom) {
		t.Errorf("next = %v, want the read error", err)
	}
	if _, err := newInvoiceReader(io.MultiReader(strings.NewReader("A,1\n"), errReader{boom})); !errors.Is(err, boom) {
		t.Errorf("newInvoiceReader = %v, want the read error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// The preamble search is bounded.
func TestInvoiceReaderPreambleBound(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("K,V\n", 5000) + invHeader + "\n"
	if _, err := newInvoiceReader(strings.NewReader(in)); !errors.Is(err, errNoInvoiceHeader) {
		t.Errorf("err = %v, want errNoInvoiceHeader", err)
	}
}

func FuzzInvoiceReader(f *testing.F) {
	f.Add([]byte("Invoice Number,666acb8787ba43606905dcae,\nBilling Period,\"June 1, 2024 - July 1, 2024\",\n\n" + invHeader + "\n1,2,3\n"))
	f.Add([]byte(invHeader + ",,\r\n\"a\"\"b\",c\r\n"))
	f.Add([]byte("\ufeffK,\"v,w\"\n" + invHeader))
	f.Add([]byte("K,\"unterminated\n" + invHeader))
	f.Add([]byte("Date,SKU,Amount,Tag\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		ir, err := newInvoiceReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		h := make([][]byte, len(ir.header))
		for i, s := range ir.header {
			h[i] = []byte(s)
		}
		if !isInvoiceHeader(h) || len(ir.preamble) > maxPreamble {
			t.Fatalf("header = %q after %d preamble records", ir.header, len(ir.preamble))
		}
		for i := 0; i <= len(data); i++ { // at most one record per byte
			if _, err := ir.next(); err != nil {
				return
			}
		}
		t.Fatal("next did not end")
	})
}

// A header name is at most 64 bytes, spaces included: a longer field is a
// value, not a name.
func TestIsInvoiceHeaderNameBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int // bytes of the field naming Amount
		want bool
	}{{64, true}, {65, false}} {
		amount := strings.Repeat(" ", tc.n-len("Amount")) + "Amount"
		if got := isInvoiceHeader([][]byte{[]byte("Date"), []byte("SKU"), []byte(amount)}); got != tc.want {
			t.Errorf("isInvoiceHeader with a %d-byte Amount = %v, want %v", tc.n, got, tc.want)
		}
	}
}
