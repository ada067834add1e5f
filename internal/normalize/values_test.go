package normalize

import (
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

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

// civilDays agrees with time.Date from year 0 (a four-digit date's first)
// on, past four centuries from now.
func TestCivilDays(t *testing.T) {
	for d := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2500; d = d.AddDate(0, 0, 1) {
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
	for _, bad := range []string{"2024-06-01T24:00:00Z", "2024-06-01T00:60:00Z", "2024-06-01T00:00:60Z", "2024-06-31T00:00:00Z", "June 1, 2024", "1717200000", "2024-06-01T00:00:00.0005Z",
		"2024-06-01x00:00:00Z", "2024-06-01T00x00:00Z", "2024-06-01T00:00x00Z", "2024-06-01T00:00:00X"} {
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

// short reads a canonical decimal of at most 19 digits, the fast path of
// unscaled, and refuses a longer one, whose digits a uint64 may not hold.
func TestShort(t *testing.T) {
	for _, tc := range []struct {
		in       string
		v        uint64
		decimals int
		ok       bool
	}{
		{"0", 0, 0, true},
		{"12", 12, 0, true},
		{"0.5", 5, 1, true},
		{"1234567890123456789", 1234567890123456789, 0, true},
		{"123456789012345678.9", 1234567890123456789, 1, true},
		{"12345678901234567890", 0, 0, false},
		{"1234567890123456789.0", 0, 0, false},
		{"1234567890123456789.01", 0, 0, false},
	} {
		v, decimals, ok := short([]byte(tc.in))
		if ok != tc.ok || ok && (v != tc.v || decimals != tc.decimals) {
			t.Errorf("short(%s) = %d, %d, %v; want %d, %d, %v", tc.in, v, decimals, ok, tc.v, tc.decimals, tc.ok)
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
		"2024-06-01": true, "2024-01-31": true, "2024-12-31": true, "2024-02-29": true, "2023-02-29": false, "2024-13-01": false, "2024-00-01": false,
		"2024-06-31": false, "2024-6-01x": false, "2024-06-0a": false, "2024/06/01": false, "1900-02-29": false, "2000-02-29": true,
	} {
		if _, _, _, got := isoDate([]byte(in)); got != ok {
			t.Errorf("isoDate(%q) = %v, want %v", in, got, ok)
		}
	}
}

// usDate reads the US dates it exists for itself, not through time.Parse,
// and leaves any other text to dateOf's layouts.
func TestUSDateFast(t *testing.T) {
	for _, tc := range []struct {
		in      string
		y, m, d int
		ok      bool
	}{
		{"06/01/2024", 2024, 6, 1, true},
		{"6/1/2024", 2024, 6, 1, true},
		{"6/01/2024", 2024, 6, 1, true},
		{"06/1/2024", 2024, 6, 1, true},
		{"12/31/2024", 2024, 12, 31, true},
		{"1/1/2024", 2024, 1, 1, true},
		{"02/29/2024", 2024, 2, 29, true},
		{"/1/2024", 0, 0, 0, false},
		{"123/1/2024", 0, 0, 0, false},
		{"6//2024", 0, 0, 0, false},
		{"6/123/2024", 0, 0, 0, false},
		{"6/1/24", 0, 0, 0, false},
		{"6/1/20245", 0, 0, 0, false},
		{"6/1/2024x", 0, 0, 0, false},
		{"13/01/2024", 0, 0, 0, false},
		{"02/30/2024", 0, 0, 0, false},
		{"0a/01/2024", 0, 0, 0, false},
		{"2024-06-01", 0, 0, 0, false},
	} {
		y, m, d, ok := usDate([]byte(tc.in))
		if ok != tc.ok || ok && (y != tc.y || m != tc.m || d != tc.d) {
			t.Errorf("usDate(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tc.in, y, m, d, ok, tc.y, tc.m, tc.d, tc.ok)
		}
	}
}

// mapping.date, which keeps each column's last ISO month, reads every
// value as dateOf does, whatever came before it in the column.
func TestMappingDate(t *testing.T) {
	m := newMapping(invoiceColumns, []string{"Date", "Usage Date"}, false)
	for _, in := range []string{
		"2024-06-01", "2024-06-30", "2024-06-31", "2024-06-00", "2024-06-1x", "2024-07-01", "2024-06-15",
		"2024-02-29", "2024-02-30", "2023-02-28", "2023-02-29", "06/01/2024", "2024-06-0", " 2024-06-02", "",
		"2024-06-\x00\x00", "\x00\x00\x00\x00\x00\x00\x00\x0001",
	} {
		for col := range 2 {
			days, ok, err := m.date(col, []byte(in))
			wdays, wok, werr := dateOf([]byte(in))
			if days != wdays || ok != wok || (err == nil) != (werr == nil) {
				t.Errorf("column %d: date(%q) = %d, %v, %v; dateOf says %d, %v, %v", col, in, days, ok, err, wdays, wok, werr)
			}
		}
	}
}

// FuzzUnscaled holds the DECIMAL(38,24) and DECIMAL(18,2) encodings to
// math/big: each value tally.AppendDecimal accepts encodes exactly, or not
// at all when it does not fit.
func FuzzUnscaled(f *testing.F) {
	for _, s := range []string{"12.34", "-0.01", "6.035E-7", "$1,268.46", "92233720368547758.07", "99999999999999.999999999999999999999999", "1e14", "0.0000000000000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := tally.AppendDecimal(nil, []byte(s))
		if err != nil {
			return
		}
		r, ok := new(big.Rat).SetString(string(d))
		if !ok {
			t.Fatalf("tally.AppendDecimal(%q) = %q, which math/big does not read", s, d)
		}
		checkUnscaled(t, d, r)
	})
}

// checkUnscaled checks d (canonical, of value r) as DECIMAL(38,24) and
// DECIMAL(18,2): its exact unscaled value, or an error exactly when that
// is not a whole number below 10^precision.
func checkUnscaled(t *testing.T, d []byte, r *big.Rat) {
	t.Helper()
	for _, dt := range []struct{ precision, scale int }{{DecimalPrecision, DecimalScale}, {CentsPrecision, CentsScale}} {
		ten := func(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }
		scaled := new(big.Rat).Mul(r, new(big.Rat).SetInt(ten(dt.scale)))
		fits := scaled.IsInt() && new(big.Int).Abs(scaled.Num()).Cmp(ten(dt.precision)) < 0
		var got *big.Int
		var err error
		if dt.scale == DecimalScale {
			var b [16]byte
			b, err = decimal128(d)
			got = new(big.Int).SetBytes(b[:])
			if b[0]&0x80 != 0 {
				got.Sub(got, new(big.Int).Lsh(big.NewInt(1), 128))
			}
		} else {
			var c int64
			c, err = cents(d)
			got = big.NewInt(c)
		}
		switch {
		case fits != (err == nil):
			t.Fatalf("DECIMAL(%d,%d) of %s: error %v, want one: %v", dt.precision, dt.scale, d, err, !fits)
		case fits && got.Cmp(scaled.Num()) != 0:
			t.Fatalf("DECIMAL(%d,%d) of %s = %s, want %s", dt.precision, dt.scale, d, got, scaled.Num())
		}
	}
}
