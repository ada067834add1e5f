package normalize

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"testing"

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
		{"", ""},
		{"-", ""},
		{"$", ""},
		{".", ""},
		{"1e5", ""},
		{"1E-2", ""},
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
		got, err := decimal(tc.in)
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

func TestCents(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{
		{"0", 0, nil},
		{"12.34", 1234, nil},
		{"-12.34", -1234, nil},
		{"1.5", 150, nil},
		{"7", 700, nil},
		{"0.01", 1, nil},
		{"-0.01", -1, nil},
		{"2.5000", 250, nil}, // zeros past the cent are no fraction of a cent
		{"0.001", 0, errSubCent},
		{"1.235", 0, errSubCent},
		{"92233720368547758.07", math.MaxInt64, nil},
		{"-92233720368547758.07", -math.MaxInt64, nil},
		{"92233720368547758.08", 0, errTooLarge},
		{"100000000000000000000", 0, errTooLarge},
	} {
		got, err := cents(tc.in)
		if !errors.Is(err, tc.err) || err == nil && got != tc.want {
			t.Errorf("cents(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := add(math.MaxInt64, 1); !errors.Is(err, errSumTooBig) {
		t.Errorf("add(MaxInt64, 1): %v, want an overflow error", err)
	}
	if _, err := add(math.MinInt64, -1); !errors.Is(err, errSumTooBig) {
		t.Errorf("add(MinInt64, -1): %v, want an overflow error", err)
	}
	if s, err := add(-5, 7); err != nil || s != 2 {
		t.Errorf("add(-5, 7) = %d, %v", s, err)
	}
}

// TestCentsRoundTrip checks cents against the amount shape the
// simulator writes (two decimals, negative credits) over a range.
func TestCentsRoundTrip(t *testing.T) {
	for c := int64(-100_000); c <= 100_000; c += 7 {
		s := strconv.FormatInt(c/100, 10) + "." + strconv.FormatInt(abs(c%100)/10, 10) + strconv.FormatInt(abs(c%10), 10)
		if c < 0 && c > -100 {
			s = "-" + s
		}
		d, err := decimal(s)
		if err != nil {
			t.Fatalf("decimal(%q): %v", s, err)
		}
		got, err := cents(d)
		if err != nil || got != c {
			t.Fatalf("cents(%q) = %d, %v; want %d", d, got, err, c)
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
		{" 2024-06-01 ", "2024-06-01"},
		{"", ""},
		{"   ", ""},
	} {
		got, err := isoDate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("isoDate(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"2024-13-01", "31/12/2024", "2024/06/01", "yesterday", "20240601", "2024-06-31"} {
		if got, err := isoDate(bad); err == nil {
			t.Errorf("isoDate(%q) = %q, want an error", bad, got)
		}
	}
}

func TestFlat(t *testing.T) {
	for in, want := range map[string]string{
		"a\nb":        "a b",
		"a\r\nb":      "a b",
		"a\rb":        "a b",
		"no breaks":   "no breaks",
		"Café, \"x\"": "Café, \"x\"",
	} {
		if got := flat(in); got != want {
			t.Errorf("flat(%q) = %q, want %q", in, got, want)
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
	if n := len(InvoiceColumns); n != len(invoicePrefix)+len(invoiceColumns) || InvoiceColumns[0] != "invoice_id" || InvoiceColumns[n-1] != "amount" {
		t.Errorf("InvoiceColumns = %v", InvoiceColumns)
	}
}

func TestPlainISODate(t *testing.T) {
	for in, ok := range map[string]bool{
		"2024-06-01": true, "2024-02-29": true, "2023-02-29": false, "2024-13-01": false,
		"2024-06-31": false, "2024-6-01": false, "2024-06-0a": false, "2024/06/01": false,
	} {
		got, gotOK := plainISODate(in)
		if gotOK != ok || ok && got != in {
			t.Errorf("plainISODate(%q) = %q, %v; want ok %v", in, got, gotOK, ok)
		}
	}
}
