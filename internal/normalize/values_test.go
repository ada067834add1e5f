package normalize

import (
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

func TestDecimal(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" = an error
	}{
		{"0", "0"},
		{"12.34", "12.34"},
		{"1.50", "1.50"}, // trailing zeros kept: "as Atlas gave them"
		{"-45.00", "-45.00"},
		{"+3", "3"},
		{"007.5", "7.5"},
		{".5", "0.5"},
		{"5.", "5"},
		{"-0.00", "0.00"},
		{"(0.00)", "0.00"},
		{" 1,234,567.89 ", "1234567.89"},
		{"$1,234.50", "1234.50"},
		{"-$1.25", "-1.25"},
		{"$-1.25", "-1.25"},
		{"$ 2.00", "2.00"},
		{"(12.00)", "-12.00"},
		{"0.0000012", "0.0000012"},
		{"123456789012345678901234567890.1", "123456789012345678901234567890.1"},
		// Exponents: the digits given, the point moved, no rounding.
		{"6.035E-7", "0.0000006035"},
		{"6.035e-07", "0.0000006035"},
		{"1e5", "100000"},
		{"1E-2", "0.01"},
		{"1.50E1", "15.0"},
		{"1.5E+0", "1.5"},
		{"-2.5E-3", "-0.0025"},
		{"0.0E2", "0"},
		{"-0E-3", "0.000"},
		{"$1,234.5E2", "123450"},
		{"(1E2)", "-100"},
		{".5e1", "5"},
		{"5.e-1", "0.5"},
		{"1e100", "1" + strings.Repeat("0", 100)},
		{"1e-100", "0." + strings.Repeat("0", 99) + "1"},
		{"1e101", ""},
		{"1e-101", ""},
		{"1e99999999999", ""},
		{"1e", ""},
		{"1e+", ""},
		{"e5", ""},
		{"1e5.0", ""},
		{"1e1e1", ""},
		{"1E 2", ""},
		{"", ""},
		{"-", ""},
		{"$", ""},
		{".", ""},
		{"1.2.3", ""},
		{"1.234,50", ""}, // a European decimal comma: refused, not misread
		{"1,23", ""},
		{",123", ""},
		{"12,3456", ""},
		{"--1", ""},
		{"+-1", ""},
		{"(-1)", ""},
		{"$$1", ""},
		{"1.5%", ""},
		{"NaN", ""},
		{"Inf", ""},
		{"0x10", ""},
		{"１２", ""}, // fullwidth digits
		{"1 000", ""},
	} {
		b, err := appendDecimal([]byte("x"), []byte(tc.in))
		got := string(b[1:])
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("decimal(%q) = %q, want an error", tc.in, got)
		case tc.want != "" && err != nil:
			t.Errorf("decimal(%q): %v, want %q", tc.in, err, tc.want)
		case got != tc.want:
			t.Errorf("decimal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCents(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // with ok
		ok   bool
	}{
		{"0", 0, true},
		{"12.34", 1234, true},
		{"-12.34", -1234, true},
		{"1.5", 150, true},
		{"7", 700, true},
		{"0.01", 1, true},
		{"-0.01", -1, true},
		{"2.5000", 250, true}, // zeros past the cent are no fraction of a cent
		{`$1,268.46`, 126846, true},
		{" $ 1,268.46 ", 126846, true},
		{"(1,268.46)", -126846, true},
		{"1.26846E3", 126846, true},
		{"92233720368547758.07", math.MaxInt64, true},
		{"-92233720368547758.08", math.MinInt64, true},
		{"0.001", 0, false},
		{"1.235", 0, false},
		{"92233720368547758.08", 0, false},
		{"100000000000000000000", 0, false},
		{"1,26846", 0, false},
		{"USD 1.00", 0, false},
		{"", 0, false},
	} {
		got, err := ParseCents(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("ParseCents(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestCentsRoundTrip checks the amount shape the simulator writes (two
// decimals, negative credits) over a range.
func TestCentsRoundTrip(t *testing.T) {
	for c := int64(-100_000); c <= 100_000; c += 7 {
		s := strconv.FormatInt(c/100, 10) + "." + strconv.FormatInt(abs(c%100)/10, 10) + strconv.FormatInt(abs(c%10), 10)
		if c < 0 && c > -100 {
			s = "-" + s
		}
		got, err := ParseCents(s)
		if err != nil || got != c {
			t.Fatalf("ParseCents(%q) = %d, %v; want %d", s, got, err, c)
		}
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestISODate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2024-06-01", "2024-06-01"},
		{"06/01/2024", "2024-06-01"}, // month first, as Atlas's US-format exports
		{"6/1/2024", "2024-06-01"},
		{"12/31/2024", "2024-12-31"},
		{"June 1, 2024", "2024-06-01"},
		{"Jun 1, 2024", "2024-06-01"},
		{"2024-06-01T00:00:00Z", "2024-06-01"},
		{"2024-06-01T23:30:00-02:00", "2024-06-02"}, // a UTC day
		{"2024-06-01T23:30:00.123456+00:00", "2024-06-01"},
		{"2024-06-01T23:30:00", "2024-06-01"}, // no zone: the day written
		{"2024-06-01 23:30:00", "2024-06-01"},
		{"2024-06-01T23:30:00.5", "2024-06-01"},
		{"2024-06-01 23:30:00Z", "2024-06-01"},
		{"02/29/2024", "2024-02-29"},
		{"2000-02-29", "2000-02-29"},
		{" 2024-06-01 ", "2024-06-01"},
		{"", ""},
		{"   ", ""},
	} {
		days, ok, err := dateOf([]byte(tc.in))
		got := ""
		if ok {
			got = time.Unix(int64(days)*86400, 0).UTC().Format(time.DateOnly)
		}
		if err != nil || got != tc.want {
			t.Errorf("dateOf(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"2024-13-01", "31/12/2024", "2024/06/01", "yesterday", "20240601", "2024-06-31", "02/29/2023", "1900-02-29", "06/01/24", "6/1/2024x", "2024-06-01T25:00:00"} {
		if days, _, err := dateOf([]byte(bad)); err == nil {
			t.Errorf("dateOf(%q) = %d, want an error", bad, days)
		}
	}
}

// civilDays agrees with time.Date over four centuries and more.
func TestCivilDays(t *testing.T) {
	for d := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2500; d = d.AddDate(0, 0, 1) {
		if got, want := civilDays(d.Date()), int32(d.Unix()/86400); got != want {
			t.Fatalf("civilDays(%s) = %d, want %d", d.Format(time.DateOnly), got, want)
		}
	}
}

func TestTimestamp(t *testing.T) {
	for in, want := range map[string]string{
		"2024-06-01T00:00:00Z":        "2024-06-01T00:00:00Z",
		" 2024-06-30T23:59:59Z ":      "2024-06-30T23:59:59Z",
		"2024-06-01T00:00:00.123Z":    "2024-06-01T00:00:00.123Z",
		"2024-06-01T01:30:00+02:00":   "2024-05-31T23:30:00Z",
		"2024-06-01T00:00:00":         "2024-06-01T00:00:00Z", // no zone: UTC, as FOCUS asks
		"2024-06-01 00:00:00.5":       "2024-06-01T00:00:00.5Z",
		"2024-06-01":                  "2024-06-01T00:00:00Z",
		"2024-02-29T12:00:00.000000Z": "2024-02-29T12:00:00Z",
		"":                            "",
	} {
		ms, ok, err := timestampOf([]byte(in))
		got := ""
		if ok {
			got = time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
		}
		if err != nil || got != want {
			t.Errorf("timestampOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"2024-06-01T24:00:00Z", "2024-06-31T00:00:00Z", "June 1, 2024", "1717200000", "2024-06-01T00:00:00.0005Z"} {
		if ms, _, err := timestampOf([]byte(bad)); err == nil {
			t.Errorf("timestampOf(%q) = %d, want an error", bad, ms)
		}
	}
}

// The unscaled values of DECIMAL(38,24) and DECIMAL(18,2), against
// math/big, and the limits of each.
func TestDecimalEncoding(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "0.0000006035", "12.96", "-0.01", "99999999999999.999999999999999999999999",
		"-99999999999999.999999999999999999999999", "1.500000000000000000000000000000", "12345678901234.5678", "0.000000000000000000000001"} {
		b, err := decimal128([]byte(s))
		if err != nil {
			t.Errorf("decimal128(%s): %v", s, err)
			continue
		}
		r, _ := new(big.Rat).SetString(s)
		want := new(big.Int).Mul(r.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(DecimalScale), nil))
		want.Quo(want, r.Denom())
		got := new(big.Int).SetBytes(b[:])
		if b[0]&0x80 != 0 {
			got.Sub(got, new(big.Int).Lsh(big.NewInt(1), 128))
		}
		if got.Cmp(want) != 0 {
			t.Errorf("decimal128(%s) = %s, want %s", s, got, want)
		}
	}
	for _, s := range []string{"100000000000000", "0.0000000000000000000000001", "-100000000000000.5"} {
		if _, err := decimal128([]byte(s)); err == nil {
			t.Errorf("decimal128(%s) fits, want an error", s)
		}
	}
	for s, want := range map[string]int64{"0": 0, "12.96": 1296, "-0.01": -1, "1.50000": 150, "9999999999999999.99": 999999999999999999, "-9999999999999999.99": -999999999999999999} {
		if got, err := cents([]byte(s)); err != nil || got != want {
			t.Errorf("cents(%s) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"0.001", "10000000000000000", "1.005"} {
		if _, err := cents([]byte(s)); err == nil {
			t.Errorf("cents(%s) fits, want an error", s)
		}
	}
}

// TestSourceColumns ties the column maps to the Atlas header the client
// recognizes and the simulator writes.
func TestSourceColumns(t *testing.T) {
	var inv, use []string
	for _, c := range invoiceColumns {
		inv = append(inv, c.atlas)
	}
	for _, c := range usageColumns {
		use = append(use, c.atlas)
	}
	if !slices.Equal(inv, atlassim.InvoiceColumns) {
		t.Errorf("invoice columns map %v, simulator writes %v", inv, atlassim.InvoiceColumns)
	}
	if !slices.Equal(use, atlassim.UsageColumns) {
		t.Errorf("usage columns map %v, simulator writes %v", use, atlassim.UsageColumns)
	}
	// Names are what Athena accepts unquoted and Glue stores as given.
	for _, name := range append(slices.Clone(InvoiceColumns), UsageColumns...) {
		for _, r := range name {
			if (r < 'a' || r > 'z') && r != '_' {
				t.Errorf("column %q is not lowercase snake_case", name)
				break
			}
		}
	}
	if n := len(InvoiceColumns); n != 2+len(invoiceColumns)+1 || InvoiceColumns[0] != "invoice_id" || InvoiceColumns[n-2] != "amount" || InvoiceColumns[n-1] != "tags" {
		t.Errorf("InvoiceColumns = %v", InvoiceColumns)
	}
}

func TestISODateFast(t *testing.T) {
	for in, ok := range map[string]bool{
		"2024-06-01": true, "2024-02-29": true, "2023-02-29": false, "2024-13-01": false, "2024-00-01": false,
		"2024-06-31": false, "2024-6-01x": false, "2024-06-0a": false, "2024/06/01": false, "1900-02-29": false, "2000-02-29": true,
	} {
		if _, _, _, got := isoDate([]byte(in)); got != ok {
			t.Errorf("isoDate(%q) = %v, want %v", in, got, ok)
		}
	}
}
