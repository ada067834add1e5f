package normalize_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/parquet-go/parquet-go"
)

const invID = "65ab0c1d2e3f4a5b6c7d8e9f"

var header = strings.Join(atlassim.InvoiceColumns, ",")

// item is one raw line item with the given description, unit price,
// quantity, discount and amount (raw CSV text, quoted by the caller).
func item(date, desc, price, qty, disc, amount string) string {
	return date + ",2024-06-01," + desc + `,,"Zürich Ödön Ltd, Inc.",5f1a2b3c4d5e6f7a8b9c0d1e,"Analytics, EU",6650a1b2c3d4e5f6a7b8c9d0,ATLAS_AWS_INSTANCE_M30,EU_CENTRAL_1,Cluster0,atlas-abc123-shard-0,,,server hours,` +
		price + "," + qty + "," + disc + "," + amount
}

// raw builds an invoice CSV: preamble lines, a blank line, the header, items.
func raw(preamble []string, items ...string) string {
	var b strings.Builder
	for _, p := range preamble {
		b.WriteString(p + "\n")
	}
	if len(preamble) > 0 {
		b.WriteString("\n")
	}
	b.WriteString(header + "\n")
	for _, it := range items {
		b.WriteString(it + "\n")
	}
	return b.String()
}

var shortPreamble = []string{
	"Invoice Number," + invID + ",",
	`Billing Period,"June 1, 2024 - July 1, 2024",`,
	"Invoice Status,CLOSED,",
}

var longPreamble = append(slices.Clone(shortPreamble),
	`Organization Name,"Søren ""Data"" Analytics, ApS",`,
	"Organization ID,65ab12cd34ef56ab78cd90ef,",
	"Currency,USD,",
	`Payment Terms,"Net 30, end of month",`,
	`Billing Contact,"Jörg Müller, Finance",`,
	`Purchase Order,"PO ""2024-17""",`,
	"Tax ID,CHE-123.456.789 MWST,",
	`Note,"a line that looks like a header: Date,Usage Date",`,
)

// wantErr checks err against want, a part of the message ("" for none),
// and its warning name (none: not a warning), and says whether the test
// goes on to check the output.
func wantErr(t *testing.T, err error, want, warning string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatal(err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("err = %v, want one containing %q", err, want)
	}
	w := tally.AsWarning(err)
	switch {
	case warning == "" && w != nil:
		t.Errorf("err = %v is a warning %s, want another error", err, w.Name)
	case warning != "" && (w == nil || w.Name != warning):
		t.Errorf("err = %v (%#v), want the warning %s", err, w, warning)
	}
	return want == ""
}

// records reads a normalized Parquet file back as text: the column names,
// then the rows (testenv.ParquetRows).
func records(t *testing.T, b []byte) [][]string {
	t.Helper()
	return testenv.ParquetRows(t, b)
}

// col returns the named normalized column of rec.
func col(rec []string, name string) string {
	return rec[slices.Index(normalize.InvoiceColumns, name)]
}

func TestInvoice(t *testing.T) {
	m30 := item("2024-06-02", "Atlas AWS Instance M30", "0.54", "24.00", "0", "12.96")
	for _, tc := range []struct {
		name    string
		in      string
		info    normalize.InvoiceInfo
		rows    int64
		cents   int64
		sum     string // Stats.Amount, when it is not whole cents
		err     string // substring of the error; "" = success
		warning string // the error's warning name
		check   func(t *testing.T, recs [][]string)
		exact   [][]string // every row, when given
	}{
		{
			name: "short preamble", in: raw(shortPreamble, m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: 1296,
			exact: [][]string{{invID, "PAID", "2024-06-02", "2024-06-01", "Atlas AWS Instance M30", "", "Zürich Ödön Ltd, Inc.", "5f1a2b3c4d5e6f7a8b9c0d1e", "Analytics, EU", "6650a1b2c3d4e5f6a7b8c9d0", "ATLAS_AWS_INSTANCE_M30", "EU_CENTRAL_1", "Cluster0", "atlas-abc123-shard-0", "", "", "server hours", "0.54", "24", "0", "12.96", "{}"}},
		},
		{
			name: "long preamble with quoted commas and quotes", in: raw(longPreamble, m30, m30, m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "CLOSED"}, rows: 3, cents: 3 * 1296,
		},
		{
			name: "no preamble", in: raw(nil, m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "PENDING"}, rows: 1, cents: 1296,
		},
		{
			name: "status from the preamble", in: raw(shortPreamble, m30),
			info: normalize.InvoiceInfo{ID: invID}, rows: 1, cents: 1296,
			check: func(t *testing.T, recs [][]string) {
				if got := col(recs[1], "invoice_status"); got != "CLOSED" {
					t.Errorf("invoice_status = %q, want CLOSED from the preamble", got)
				}
			},
		},
		{
			name: "CRLF line endings", in: strings.ReplaceAll(raw(longPreamble, m30, m30), "\n", "\r\n"),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 2, cents: 2592,
			check: func(t *testing.T, recs [][]string) {
				if got := col(recs[2], "amount"); got != "12.96" {
					t.Errorf("amount = %q, want 12.96 (no stray \\r)", got)
				}
			},
		},
		{
			name: "byte order mark", in: "\xef\xbb\xbf" + raw(shortPreamble, m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: 1296,
		},
		{
			name: "quoted commas, quotes and non-ASCII in line items",
			in: raw(shortPreamble,
				item("2024-06-03", `"Backup Snapshot Storage, AWS"`, "0.14", "1.00", "0", "0.14"),
				item("2024-06-03", `"Credit, promotional ""Startup"" program"`, "", "", "", "-500.00"),
				item("2024-06-03", `"AWS Storage — Provisioned IOPS, 数据 Платформа"`, "1.00", "2.00", "10", "1.80"),
			),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 3, cents: 14 - 50000 + 180,
			check: func(t *testing.T, recs [][]string) {
				want := []string{"Backup Snapshot Storage, AWS", `Credit, promotional "Startup" program`, "AWS Storage — Provisioned IOPS, 数据 Платформа"}
				for i, w := range want {
					if got := col(recs[i+1], "description"); got != w {
						t.Errorf("row %d description = %q, want %q", i+1, got, w)
					}
				}
				if got := col(recs[2], "organization_name"); got != "Zürich Ödön Ltd, Inc." {
					t.Errorf("organization_name = %q", got)
				}
				if got := col(recs[2], "unit_price") + "|" + col(recs[2], "quantity") + "|" + col(recs[2], "discount_percent"); got != "||" {
					t.Errorf("credit's price|quantity|discount = %q, want empty", got)
				}
			},
		},
		{
			name: "credits only: a negative total", in: raw(shortPreamble,
				item("2024-06-30", "Credit", "", "", "", "-0.01"),
				item("2024-06-30", "Credit", "", "", "", `"(1,000.00)"`)),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 2, cents: -100001,
			check: func(t *testing.T, recs [][]string) {
				if got := col(recs[2], "amount"); got != "-1000" {
					t.Errorf("amount = %q, want -1000", got)
				}
			},
		},
		{
			name: "US dates, currency symbols, thousands separators, percent",
			in: raw(shortPreamble, strings.Replace(
				item("06/02/2024", "M30", `"$1,234.5000"`, `"1,000"`, "15%", `"$1,049,362.50"`),
				",2024-06-01,", ",6/1/2024,", 1)),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: 104936250,
			check: func(t *testing.T, recs [][]string) {
				r := recs[1]
				got := []string{col(r, "date"), col(r, "usage_date"), col(r, "unit_price"), col(r, "quantity"), col(r, "discount_percent"), col(r, "amount")}
				want := []string{"2024-06-02", "2024-06-01", "1234.5", "1000", "15", "1049362.5"}
				if !slices.Equal(got, want) {
					t.Errorf("date, usage_date, unit_price, quantity, discount_percent, amount = %q, want %q", got, want)
				}
			},
		},
		{
			name: "line breaks and invalid UTF-8 inside a value", in: raw(shortPreamble,
				item("2024-06-02", "\"two\nlines\r\nhere \xff\xfe!\"", "1", "1", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: 100,
			check: func(t *testing.T, recs [][]string) {
				// Kept as sent (Parquet has no lines), but as UTF-8.
				if got := col(recs[1], "description"); got != "two\nlines\nhere \uFFFD!" {
					t.Errorf("description = %q", got)
				}
			},
		},
		{
			name: "trailing empty fields and blank rows", in: raw(shortPreamble, m30+",,", ",,,", "", m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 2, cents: 2592,
		},
		{
			name: "empty invoice: header only", in: raw(shortPreamble),
			info: normalize.InvoiceInfo{ID: invID, Status: "PENDING"}, rows: 0, cents: 0,
			exact: [][]string{},
		},
		{
			name: "exponents and many decimals", in: raw(shortPreamble,
				item("2024-06-02", "Data Transfer", "0.0000123400", "6.035E-7", "1.5e1", "1.296e1"),
				item("2024-06-02", "Data Transfer", "1E-10", "2.50E+3", "0", "12.96"),
				// The most DECIMAL(38,24) holds, and 17 digits of a double at 1E-7.
				item("2024-06-02", "Data Transfer", "99999999999999.999999999999999999999999", "1.2345678901234567E-7", "33.333332061767578", "-0.01")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 3, sum: "25.91",
			check: func(t *testing.T, recs [][]string) {
				for i, want := range [][]string{{"0.00001234", "0.0000006035", "15", "12.96"}, {"0.0000000001", "2500", "0", "12.96"}, {"99999999999999.999999999999999999999999", "0.00000012345678901234567", "33.333332061767578", "-0.01"}} {
					r := recs[i+1]
					if got := []string{col(r, "unit_price"), col(r, "quantity"), col(r, "discount_percent"), col(r, "amount")}; !slices.Equal(got, want) {
						t.Errorf("row %d unit_price, quantity, discount_percent, amount = %q, want %q", i+1, got, want)
					}
				}
			},
		},
		{
			// Exact whatever float64 would make of them: above 2^53 cents
			// (a double has ...456.75 and ...409.92), trailing zeros, whole
			// numbers, negative zero.
			name: "money at the edges", in: raw(shortPreamble,
				item("2024-06-02", "M30", "12.3400", "1234.5678900", "0", "1234567890123456.78"),
				item("2024-06-02", "M30", "12345678901234.567890123456789012345678", "90071992547409.93", "0", "90071992547409.93"),
				item("2024-06-02", "M30", "7", "1", "0", "12.3400"),
				item("2024-06-02", "M30", "-0.00", "-0", "-0.0", "-0.00"),
				item("2024-06-02", "M30", "1", "1", "0", "-9999999999999999.99")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 5, sum: "-8675360117329120.9400",
			check: func(t *testing.T, recs [][]string) {
				for i, want := range [][]string{
					{"12.34", "1234.56789", "0", "1234567890123456.78"},
					{"12345678901234.567890123456789012345678", "90071992547409.93", "0", "90071992547409.93"},
					{"7", "1", "0", "12.34"},
					{"0", "0", "0", "0"},
					{"1", "1", "0", "-9999999999999999.99"},
				} {
					r := recs[i+1]
					if got := []string{col(r, "unit_price"), col(r, "quantity"), col(r, "discount_percent"), col(r, "amount")}; !slices.Equal(got, want) {
						t.Errorf("row %d unit_price, quantity, discount_percent, amount = %q, want %q", i+1, got, want)
					}
				}
			},
		},
		{
			name: "tag columns, and columns by name whatever their case and spacing",
			in: "Invoice Number," + invID + ",\n\n" +
				"amount, SKU ,date,Usage_Date,Organization ID,team,Cost Center,\"env \"\"x\"\"\",Description,,\n" +
				"1.00,S1,2024-06-02,2024-06-01,oid,data,,\"prod\nblue\",\"M30, EU\",,\n" +
				"2.00,S2,06/03/2024,,oid,,,,Backup,,\n" +
				"3.00,S3,2024-06-04,,oid,\"Zürich \\ \"\"ops\"\"\",\" \",\tx,,,\n",
			info: normalize.InvoiceInfo{ID: invID}, rows: 3, cents: 600,
			exact: [][]string{
				{invID, "", "2024-06-02", "2024-06-01", "M30, EU", "", "", "oid", "", "", "S1", "", "", "", "", "", "", "", "", "", "1", `{"env \"x\"":"prod\nblue","team":"data"}`},
				{invID, "", "2024-06-03", "", "Backup", "", "", "oid", "", "", "S2", "", "", "", "", "", "", "", "", "", "2", "{}"},
				{invID, "", "2024-06-04", "", "", "", "", "oid", "", "", "S3", "", "", "", "", "", "", "", "", "", "3", `{"env \"x\"":"\tx","team":"Zürich \\ \"ops\""}`},
			},
			check: func(t *testing.T, recs [][]string) {
				var tags map[string]string
				if err := json.Unmarshal([]byte(col(recs[1], "tags")), &tags); err != nil || tags["env \"x\""] != "prod\nblue" || len(tags) != 2 {
					t.Errorf("tags %q = %v, %v", col(recs[1], "tags"), tags, err)
				}
			},
		},
		{
			// The raw file keeps its value: a tag needs a name.
			name: "a column without a name is no tag", in: "Date,SKU, ,Amount\n2024-06-02,S,x,-1.50\n",
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: -150,
			exact: [][]string{{invID, "PAID", "2024-06-02", "", "", "", "", "", "", "", "S", "", "", "", "", "", "", "", "", "", "-1.5", "{}"}},
		},
		{
			name: "only the required columns", in: "Date,SKU,Amount\n2024-06-02,S,-1.50\n",
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: -150,
			exact: [][]string{{invID, "PAID", "2024-06-02", "", "", "", "", "", "", "", "S", "", "", "", "", "", "", "", "", "", "-1.5", "{}"}},
		},
		{
			// Atlas bills whole cents: a fraction of one is not rounded.
			name: "amount with a fraction of a cent", in: raw(shortPreamble, m30, item("2024-06-02", "M30", "0.54", "24.00", "0", "12.961")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 2: amount "12.961": has 3 decimals, more than the 2 of DECIMAL(18,2)`, warning: tally.ValueWarning,
		},
		{
			name: "amount over DECIMAL(18,2)", in: raw(shortPreamble, item("2024-06-02", "M30", "0.54", "24.00", "0", "1E16")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: amount "1E16": has 17 integer digits, more than the 16 of DECIMAL(18,2)`, warning: tally.ValueWarning,
		},
		{
			name: "quantity with more decimals than DECIMAL(38,24)", in: raw(shortPreamble, item("2024-06-02", "M30", "0.54", "1.2345678901234567E-9", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: quantity "1.2345678901234567E-9": has 25 decimals, more than the 24 of DECIMAL(38,24)`, warning: tally.ValueWarning,
		},
		{
			name: "unit price over DECIMAL(38,24)", in: raw(shortPreamble, item("2024-06-02", "M30", "1E14", "1", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: unit_price "1E14": has 15 integer digits, more than the 14 of DECIMAL(38,24)`, warning: tally.ValueWarning,
		},
		{
			name: "amount not a decimal", in: raw(shortPreamble, m30, item("2024-06-02", "M30", "0.54", "24.00", "0", "12.9.6")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 2: amount "12.9.6": not a plain decimal`, warning: tally.ValueWarning,
		},
		{
			name: "exponent out of range", in: raw(shortPreamble, item("2024-06-02", "M30", "0.54", "1E999999", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: quantity "1E999999": exponent out of range`, warning: tally.ValueWarning,
		},
		{
			name: "amount missing", in: raw(shortPreamble, item("2024-06-02", "M30", "0.54", "24.00", "0", "")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: amount "": is empty`, warning: tally.ValueWarning,
		},
		{
			name: "quantity not a decimal", in: raw(shortPreamble, item("2024-06-02", "M30", "0.54", "lots", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: quantity "lots"`, warning: tally.ValueWarning,
		},
		{
			name: "date not a date", in: raw(shortPreamble, item("31/06/2024", "M30", "0.54", "1", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: `line item 1: date "31/06/2024": not a date`, warning: tally.ValueWarning,
		},
		{
			name: "short line item", in: raw(shortPreamble, "2024-06-02,2024-06-01,M30"),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "line item 1 has 3 fields, want 19", warning: tally.LayoutWarning,
		},
		{
			name: "extra non-empty field", in: raw(shortPreamble, m30+",surprise"),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "line item 1 has 20 fields, want 19", warning: tally.LayoutWarning,
		},
		{
			name: "bare quote", in: raw(shortPreamble, m30, `2024-06-02,2024-06-01,a "quoted" word,`),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "reading line item 2", warning: tally.SyntaxWarning,
		},
		{
			name: "the header after 999 preamble records", in: raw(slices.Repeat([]string{"Note,x,"}, 999), m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, rows: 1, cents: 1296,
		},
		{
			name: "the header after 1,000 preamble records", in: raw(slices.Repeat([]string{"Note,x,"}, 1000), m30),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "line-item header not found", warning: tally.LayoutWarning,
		},
		{
			name: "no header", in: "Invoice Number,x,\nDate,Amount\n1,2\n",
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "line-item header not found", warning: tally.LayoutWarning,
		},
		{
			name: "a required column missing", in: strings.Replace(raw(shortPreamble, m30), ",Amount\n", ",Total\n", 1),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "line-item header not found", warning: tally.LayoutWarning,
		},
		{
			name: "a line item over 1 MiB", in: raw(shortPreamble, m30, item("2024-06-02", `"`+strings.Repeat("x", normalize.MaxRecordBytes)+`"`, "1", "1", "0", "1.00")),
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "reading line item 2: a CSV record is over 1 MiB", warning: tally.TooLargeWarning,
		},
		{
			name: "a header of too many columns", in: header + strings.Repeat(",tag", normalize.MaxColumns) + "\n",
			info: normalize.InvoiceInfo{ID: invID, Status: "PAID"}, err: "over 1,000 fields", warning: tally.TooLargeWarning,
		},
		{
			name: "invalid invoice id", in: raw(shortPreamble, m30),
			info: normalize.InvoiceInfo{ID: "../x", Status: "PAID"}, err: "invoice",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			st, err := normalize.Invoice(&out, strings.NewReader(tc.in), tc.info)
			if !wantErr(t, err, tc.err, tc.warning) {
				return
			}
			if tc.sum != "" {
				if st.Rows != tc.rows || st.Amount.String() != tc.sum {
					t.Errorf("stats = %d rows, amount %s; want %d, %s", st.Rows, st.Amount, tc.rows, tc.sum)
				}
			} else if st.Rows != tc.rows || amountCents(st) != tc.cents {
				t.Errorf("stats = %d rows, amount %s; want %d, %d cents", st.Rows, st.Amount, tc.rows, tc.cents)
			}
			recs := records(t, out.Bytes())
			if int64(len(recs)) != tc.rows+1 || !slices.Equal(recs[0], normalize.InvoiceColumns) {
				t.Fatalf("%d records, header %v; want %d and InvoiceColumns", len(recs), recs[0], tc.rows+1)
			}
			if tc.exact != nil && !slices.EqualFunc(recs[1:], tc.exact, slices.Equal) {
				t.Errorf("rows:\n%q\nwant:\n%q", recs[1:], tc.exact)
			}
			for _, r := range recs[1:] {
				if r[0] != tc.info.ID {
					t.Errorf("record starts %q; want the invoice id", r[0])
				}
			}
			if tc.check != nil {
				tc.check(t, recs)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	const hdr = "Invoice ID,Organization ID,Organization Name,Project ID,Project Name,Cluster ID,Cluster Name,Service,Usage Date,Usage Amount\n"
	const row = invID + `,5f1a2b3c4d5e6f7a8b9c0d1e,"Zürich Ödön Ltd, Inc.",6650a1b2c3d4e5f6a7b8c9d0,"Analytics, EU",6650a1b2c3d4e5f6a7b8c9d1,Cluster0,Data Transfer,2024-06-03,`
	for _, tc := range []struct {
		name     string
		in       string
		rows     int64
		cents    int64
		err      string
		warning  string
		want     []string // the first record, when given
		amounts  []string // every record's usage_amount, when given
		services map[string]string
	}{
		{
			name: "rows", in: hdr + row + "12.50\n" + row + "-2.25\n", rows: 2, cents: 1025,
			want: []string{invID, "5f1a2b3c4d5e6f7a8b9c0d1e", "Zürich Ödön Ltd, Inc.", "6650a1b2c3d4e5f6a7b8c9d0", "Analytics, EU", "6650a1b2c3d4e5f6a7b8c9d1", "Cluster0", "Data Transfer", "2024-06-03", "12.5"},
		},
		{name: "header only", in: hdr, rows: 0, cents: 0},
		{
			name: "money at the edges", in: hdr + row + "1234567890123456.78\n" + row + "12.3400\n" + row + "-0.00\n" + row + "90071992547409.93\n",
			rows: 4, cents: 123456789012345678 + 1234 + 9007199254740993,
			want:    []string{invID, "5f1a2b3c4d5e6f7a8b9c0d1e", "Zürich Ödön Ltd, Inc.", "6650a1b2c3d4e5f6a7b8c9d0", "Analytics, EU", "6650a1b2c3d4e5f6a7b8c9d1", "Cluster0", "Data Transfer", "2024-06-03", "1234567890123456.78"},
			amounts: []string{"1234567890123456.78", "12.34", "0", "90071992547409.93"},
		},
		{name: "CRLF and BOM", in: "\xef\xbb\xbf" + strings.ReplaceAll(hdr+row+"1.00\n", "\n", "\r\n"), rows: 1, cents: 100},
		{
			name: "columns reordered, one added", rows: 1, cents: 99,
			in: "Usage Amount,Usage Date,Service,Cluster Name,Cluster ID,Project Name,Project ID,Organization Name,Organization ID,Invoice ID,Region\n" +
				"0.99,06/03/2024,Clusters,c,cid,p,pid,o,oid,iid,EU\n",
			want: []string{"iid", "oid", "o", "pid", "p", "cid", "c", "Clusters", "2024-06-03", "0.99"},
		},
		{
			name: "the service first", rows: 2, cents: 150,
			in:       "Service,Usage Amount\nClusters,1.00\nData Transfer,0.50\n",
			services: map[string]string{"Clusters": "1.00", "Data Transfer": "0.50"},
		},
		{name: "empty file", in: "", err: "empty file", warning: tally.LayoutWarning},
		{name: "no amount column", in: strings.Replace(hdr, ",Usage Amount", "", 1), err: `header has no "Usage Amount" column`, warning: tally.LayoutWarning},
		{
			// The spec's example names: other spellings, no Service, no Usage Date.
			name: "the spec's column names", rows: 1, cents: 101839,
			in: "Billed Date,Invoice Id,Organization Name,Organization ID,Project Name,Project Id,Cluster Name,Cluster Unique Id,Usage Amount\n" +
				"2024-06-01,iid,Test 2,oid,p,pid,TestCluster,cid, 1018.39\n",
			want: []string{"iid", "oid", "Test 2", "pid", "p", "cid", "TestCluster", "", "2024-06-01", "1018.39"},
		},
		{
			name: "JSON-style names", rows: 1, cents: 5,
			in:   "invoiceId,organizationId,service,usageDate,usageAmount\niid,oid,Storage,2024-06-02,0.05\n",
			want: []string{"iid", "oid", "", "", "", "", "", "Storage", "2024-06-02", "0.05"},
		},
		{
			// The buffer grows for the long record; the short ones after it
			// then start deep in it, and each is as long as it is.
			name: "a record near the bound, then many short ones", rows: 100_001, cents: 100 + 100_000,
			in: "Service,Usage Amount\n\"" + strings.Repeat("x", 700<<10) + "\",1.00\n" + strings.Repeat("Clusters,0.01\n", 100_000),
		},
		{name: "amount not a decimal", in: hdr + row + "1.00\n" + row + "\"1,5\"\n", err: `line 3: usage_amount "1,5": thousands separators`, warning: tally.ValueWarning},
		{name: "amount with a fraction of a cent", in: hdr + row + "1.005\n", err: `line 2: usage_amount "1.005": has 3 decimals`, warning: tally.ValueWarning},
		{name: "date not a date", in: "Usage Date,Usage Amount\n2024-02-30,1\n", err: `line 2: usage_date "2024-02-30": not a date`, warning: tally.ValueWarning},
		{
			// Quoted in the message cut to 40 bytes, on a rune boundary,
			// whatever bytes the value holds.
			name: "a long amount of no UTF-8", in: "Usage Amount\n" + strings.Repeat("\x80", 50) + "\n",
			err: `line 2: usage_amount ""...: not a plain decimal`, warning: tally.ValueWarning,
		},
		{name: "short record", in: hdr + "a,b,c\n", err: "wrong number of fields", warning: tally.LayoutWarning},
		{name: "a header of too many columns", in: strings.Repeat("x,", normalize.MaxColumns) + "Usage Amount\n", err: "over 1,000 fields", warning: tally.TooLargeWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			st, err := normalize.Usage(&out, strings.NewReader(tc.in))
			if !wantErr(t, err, tc.err, tc.warning) {
				return
			}
			if st.Rows != tc.rows || amountCents(st) != tc.cents {
				t.Errorf("stats = %+v, want Rows %d AmountCents %d", st, tc.rows, tc.cents)
			}
			recs := records(t, out.Bytes())
			if int64(len(recs)) != tc.rows+1 || !slices.Equal(recs[0], normalize.UsageColumns) {
				t.Fatalf("%d records, header %v; want %d and UsageColumns", len(recs), recs[0], tc.rows+1)
			}
			if tc.want != nil && !slices.Equal(recs[1], tc.want) {
				t.Errorf("first record = %q, want %q", recs[1], tc.want)
			}
			for i, want := range tc.amounts {
				if got := recs[i+1][len(recs[i+1])-1]; got != want {
					t.Errorf("record %d usage_amount = %q, want %q", i+1, got, want)
				}
			}
			if tc.services != nil {
				got := map[string]string{}
				for k, v := range st.Services {
					got[k] = v.String()
				}
				if !maps.Equal(got, tc.services) {
					t.Errorf("services = %v, want %v", got, tc.services)
				}
			}
		})
	}
}

// failWriter fails every write, like an upload that broke.
type failWriter struct{}

var errBroken = errors.New("broken pipe")

func (failWriter) Write([]byte) (int, error) { return 0, errBroken }

func TestWriteErrors(t *testing.T) {
	// Enough rows to overflow the output buffer, so the failure shows mid-stream.
	items := make([]string, 3000)
	for i := range items {
		items[i] = item("2024-06-02", "Atlas AWS Instance M30", "0.54", "24.00", "0", "12.96")
	}
	if _, err := normalize.Invoice(failWriter{}, strings.NewReader(raw(shortPreamble, items...)), normalize.InvoiceInfo{ID: invID}); !errors.Is(err, errBroken) {
		t.Errorf("Invoice to a broken writer: %v, want the write error", err)
	}
	if _, err := normalize.Usage(failWriter{}, strings.NewReader("Invoice ID,Organization ID,Organization Name,Project ID,Project Name,Cluster ID,Cluster Name,Service,Usage Date,Usage Amount\n")); !errors.Is(err, errBroken) {
		t.Errorf("Usage to a broken writer: %v, want the write error", err)
	}
	// A reader that breaks mid-file is an error, never a short file passed as whole.
	r := io.MultiReader(strings.NewReader(raw(shortPreamble, items[:10]...)), iotest.ErrReader(errBroken))
	if _, err := normalize.Invoice(io.Discard, r, normalize.InvoiceInfo{ID: invID}); !errors.Is(err, errBroken) {
		t.Errorf("Invoice from a broken reader: %v, want the read error", err)
	}
}

func TestFocus(t *testing.T) {
	col := func(rec []string, name string) string { return rec[slices.Index(normalize.FocusColumns, name)] }
	for _, tc := range []struct {
		name    string
		in      string
		rows    int64
		err     string
		warning string
		want    map[string]string // columns of the first record
	}{
		{
			name: "a subset, in another order, with a column FOCUS 1.0 lacks",
			in: "ServiceName,BilledCost,x_ProjectId,ChargePeriodStart,Tags\n" +
				`Clusters,12.50,6650a1b2c3d4e5f6a7b8c9d0,2024-06-01T00:00:00Z,"{""env"": ""prod"",` + "\n" + `""team"": ""data""}"` + "\n" +
				"Storage,0.000125,p2,2024-06-02T00:00:00Z,\n",
			rows: 2,
			want: map[string]string{
				"servicename": "Clusters", "billedcost": "12.5", "chargeperiodstart": "2024-06-01T00:00:00Z",
				"tags": `{"env":"prod","team":"data"}`, "regionname": "", "commitmentdiscountid": "",
			},
		},
		{
			name: "FOCUS 1.0's data types",
			in: "BilledCost,ListUnitPrice,PricingQuantity,BillingPeriodStart,BillingPeriodEnd,ChargePeriodStart,ChargePeriodEnd,Tags\n" +
				`-0.01,6.035E-7,"1,000",2024-06-01T00:00:00Z,2024-07-01T00:00:00.000Z,2024-06-02T01:30:00+02:00,2024-06-03,"{""n"": 1.50, ""b"": true, ""z"": null, ""o"": {""k"": [1]}}"` + "\n",
			rows: 1,
			want: map[string]string{
				"billedcost": "-0.01", "listunitprice": "0.0000006035", "pricingquantity": "1000",
				"billingperiodstart": "2024-06-01T00:00:00Z", "billingperiodend": "2024-07-01T00:00:00Z",
				"chargeperiodstart": "2024-06-01T23:30:00Z", "chargeperiodend": "2024-06-03T00:00:00Z",
				"tags": `{"b":"true","n":"1.50","o":"{\"k\":[1]}","z":""}`,
			},
		},
		{
			name: "money at the edges",
			in:   "BilledCost,EffectiveCost,ListCost,ContractedCost\n12345678901234.567890123456789012345678,12.3400,-0.00,90071992547409.93\n",
			rows: 1,
			want: map[string]string{"billedcost": "12345678901234.567890123456789012345678", "effectivecost": "12.34", "listcost": "0", "contractedcost": "90071992547409.93"},
		},
		{name: "BOM, CRLF, header names in other case and snake_case", in: "\xef\xbb\xbfbilled_cost , BILLINGCURRENCY\r\n1.00,USD\r\n", rows: 1, want: map[string]string{"billedcost": "1", "billingcurrency": "USD"}},
		{name: "cost not a decimal", in: "BilledCost\n1.00\nfree\n", err: `line 3: billedcost "free": not a plain decimal`, warning: tally.ValueWarning},
		{name: "date-time not a date-time", in: "BilledCost,ChargePeriodStart\n1,June\n", err: `line 2: chargeperiodstart "June": not a date-time`, warning: tally.ValueWarning},
		{name: "a fraction of a millisecond", in: "BilledCost,ChargePeriodStart\n1,2024-06-01T00:00:00.0001Z\n", err: "a fraction of a millisecond", warning: tally.ValueWarning},
		{name: "tags not a JSON object", in: "BilledCost,Tags\n1,\"[1, 2]\"\n", err: `line 2: tags "[1, 2]": is not a JSON object`, warning: tally.ValueWarning},
		{name: "header only", in: "BilledCost\n", rows: 0},
		{name: "not FOCUS", in: "Date,Amount\n2024-06-01,1.00\n", err: `header has no "BilledCost" column`, warning: tally.LayoutWarning},
		{name: "empty file", in: "", err: "empty file", warning: tally.LayoutWarning},
		{name: "ragged record", in: "BilledCost,ServiceName\n1.00\n", err: "wrong number of fields", warning: tally.LayoutWarning},
		{name: "unterminated quote", in: "BilledCost,ServiceName\n1.00,\"x\n", err: "extraneous or missing", warning: tally.SyntaxWarning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			st, err := normalize.Focus(&out, strings.NewReader(tc.in))
			if !wantErr(t, err, tc.err, tc.warning) {
				return
			}
			recs := records(t, out.Bytes())
			if st.Rows != tc.rows || int64(len(recs)) != tc.rows+1 || !slices.Equal(recs[0], normalize.FocusColumns) {
				t.Fatalf("stats %+v, %d records, header %v; want %d rows and FocusColumns", st, len(recs), recs[0], tc.rows)
			}
			for name, want := range tc.want {
				if got := col(recs[1], name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
	if len(normalize.FocusColumns) != 43 {
		t.Errorf("%d FOCUS columns, want FOCUS 1.0's 43", len(normalize.FocusColumns))
	}
}

// amountCents is st.Amount in cents, or math.MinInt64 when it is not whole
// cents (no test expects that).
func amountCents(st tally.Stats) int64 {
	c, ok := st.Amount.Cents()
	if !ok {
		return math.MinInt64
	}
	return c
}

// The dates and amounts carry their minimum and maximum in the file's
// footer, which Athena and DuckDB read to skip row groups when a query
// filters on them.
func TestParquetBounds(t *testing.T) {
	in := "Usage Date,Usage Amount\n2024-06-05,12.50\n2024-06-03,-2.25\n2024-06-04,0.10\n"
	var out bytes.Buffer
	if _, err := normalize.Usage(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	days := func(d string) int64 {
		tm, err := time.Parse(time.DateOnly, d)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Unix() / 86400
	}
	for _, tc := range []struct {
		column   string
		min, max int64
	}{
		{"usage_date", days("2024-06-03"), days("2024-06-05")},
		{"usage_amount", -225, 1250},
	} {
		leaf, ok := f.Schema().Lookup(tc.column)
		if !ok {
			t.Fatalf("no column %s", tc.column)
		}
		st := f.Metadata().RowGroups[0].Columns[leaf.ColumnIndex].MetaData.Statistics
		kind := leaf.Node.Type().Kind()
		if len(st.MinValue) == 0 || len(st.MaxValue) == 0 {
			t.Errorf("%s: no minimum and maximum in the footer", tc.column)
			continue
		}
		if lo, hi := kind.Value(st.MinValue).Int64(), kind.Value(st.MaxValue).Int64(); lo != tc.min || hi != tc.max {
			t.Errorf("%s: bounds [%d, %d], want [%d, %d]", tc.column, lo, hi, tc.min, tc.max)
		}
	}
}

// An invoice whose status neither the caller nor the preamble gives has a
// NULL invoice_status, not an empty one: a query can tell "unknown".
func TestInvoiceStatusUnknownIsNull(t *testing.T) {
	in := raw(shortPreamble[:2], item("2024-06-02", "Atlas AWS Instance M30", "0.54", "24.00", "0", "12.96"))
	var out bytes.Buffer
	if _, err := normalize.Invoice(&out, strings.NewReader(in), normalize.InvoiceInfo{ID: invID}); err != nil {
		t.Fatal(err)
	}
	if n := nullCount(t, out.Bytes(), "invoice_status"); n != 1 {
		t.Errorf("invoice_status: %d NULLs in 1 row, want 1", n)
	}
}

// A text field Atlas left empty is NULL too, as the line item's note.
func TestInvoiceEmptyTextIsNull(t *testing.T) {
	in := raw(shortPreamble, item("2024-06-02", "Atlas AWS Instance M30", "0.54", "24.00", "0", "12.96"))
	var out bytes.Buffer
	if _, err := normalize.Invoice(&out, strings.NewReader(in), normalize.InvoiceInfo{ID: invID}); err != nil {
		t.Fatal(err)
	}
	if n := nullCount(t, out.Bytes(), "note"); n != 1 {
		t.Errorf("note: %d NULLs in 1 row, want 1", n)
	}
}

// nullCount is the NULLs of a column in the first row group of a Parquet file.
func nullCount(t *testing.T, b []byte, column string) int64 {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := f.Schema().Lookup(column)
	if !ok {
		t.Fatalf("no column %s", column)
	}
	return f.Metadata().RowGroups[0].Columns[leaf.ColumnIndex].MetaData.Statistics.NullCount
}
