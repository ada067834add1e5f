package tally

import (
	"math"
	"strconv"
	"strings"
	"testing"
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
		b, err := AppendDecimal([]byte("x"), []byte(tc.in))
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

// Values in messages are quoted whole up to 40 bytes, else cut there (at
// the start of a rune) and marked.
func TestShown(t *testing.T) {
	for in, want := range map[string]string{
		"":                             `""`,
		strings.Repeat("a", 40):        `"` + strings.Repeat("a", 40) + `"`,
		strings.Repeat("a", 41):        `"` + strings.Repeat("a", 40) + `"...`,
		strings.Repeat("a", 39) + "é":  `"` + strings.Repeat("a", 39) + `"...`,
		strings.Repeat("a", 38) + "€x": `"` + strings.Repeat("a", 38) + `"...`,
		"line\nbreak":                  `"line\nbreak"`,
		strings.Repeat("\x80", 50):     `""...`, // no rune start to cut at
	} {
		if got := Shown(in); got != want {
			t.Errorf("Shown(%q) = %s, want %s", in, got, want)
		}
	}
}
