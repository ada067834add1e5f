package tally

import (
	"math"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// canonicalText is what AppendDecimal and Sum.String write.
var canonicalText = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?$`)

// Money at the edges: values past 2^53 cents (where a float64 loses cents),
// whole numbers, trailing zeros, negative zero, exponents, past int64.
func TestSum(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string // raw, through AppendDecimal
		want   string   // Sum.String
		cents  int64    // with ok
		ok     bool
	}{
		{"nothing", nil, "0", 0, true},
		{"2^53+1 cents", []string{"90071992547409.93"}, "90071992547409.93", 9007199254740993, true},
		{"past 2^53 cents, one cent apart", []string{"90071992547409.92", "0.01"}, "90071992547409.93", 9007199254740993, true},
		{"a float64 would round these", []string{"1234567890123456.78", "0.01"}, "1234567890123456.79", 123456789012345679, true},
		{"whole numbers", []string{"5", "7", "-2"}, "10", 1000, true},
		{"trailing zeros set the scale", []string{"12.3400", "1.5"}, "13.8400", 1384, true},
		{"negative zero", []string{"-0.00", "(0.00)", "-0"}, "0.00", 0, true},
		{"credits to zero", []string{"12.50", "-12.50"}, "0.00", 0, true},
		{"a negative total", []string{"-0.01", "(1,000.00)"}, "-1000.01", -100001, true},
		{"exponents", []string{"6.035E-7", "1.5e2"}, "150.0000006035", 0, false},
		{"a fraction of a cent", []string{"12.961"}, "12.961", 0, false},
		{"fractions of a cent that add up", []string{"0.005", "0.005"}, "0.010", 1, true},
		{"int64 cents at the edge", []string{"92233720368547758.07"}, "92233720368547758.07", math.MaxInt64, true},
		{"past int64 cents", []string{"92233720368547758.07", "0.01"}, "92233720368547758.08", 0, false},
		{"past int64 and back", []string{"92233720368547758.07", "92233720368547758.07", "-92233720368547758.07"}, "92233720368547758.07", math.MaxInt64, true},
		{"past int64 units", []string{"9223372036854775807", "1"}, "9223372036854775808", 0, false},
		{"a scale past int64", []string{"1.0000000000000000000001", "1"}, "2.0000000000000000000001", 0, false},
		{"many digits", []string{strings.Repeat("9", 40) + ".99", "0.01"}, "1" + strings.Repeat("0", 40) + ".00", 0, false},
		// Past int64, then a value of more decimals, or of fewer.
		{"past int64, more decimals", []string{"12345678901234567890.5", "0.25"}, "12345678901234567890.75", 0, false},
		{"past int64, fewer decimals", []string{"12345678901234567890.25", "0.5"}, "12345678901234567890.75", 0, false},
		// Each value fits the int64 path, their sum does not.
		{"many of the longest int64 values", slices.Repeat([]string{"999999999999999999"}, 10), "9999999999999999990", 0, false},
		{"many of them, negative", slices.Repeat([]string{"-999999999999999999"}, 10), "-9999999999999999990", 0, false},
		{"a negative whole total", []string{"-12", "3"}, "-9", -900, true},
		{"whole, int64 cents at the edge", []string{"92233720368547758"}, "92233720368547758", 9223372036854775800, true},
		{"whole, negative, int64 cents at the edge", []string{"-92233720368547758"}, "-92233720368547758", -9223372036854775800, true},
		{"under one", []string{"0.25", "0.5"}, "0.75", 75, true},
		{"under one, negative", []string{"-0.25"}, "-0.25", -25, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Sum
			for _, v := range tc.values {
				d, err := AppendDecimal(nil, []byte(v))
				if err != nil {
					t.Fatalf("AppendDecimal(%q): %v", v, err)
				}
				s.Add(d)
			}
			if got := s.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			c, ok := s.Cents()
			if ok != tc.ok || ok && c != tc.cents {
				t.Errorf("Cents() = %d, %v; want %d, %v", c, ok, tc.cents, tc.ok)
			}
			if b, _ := s.MarshalText(); string(b) != tc.want {
				t.Errorf("MarshalText() = %q", b)
			}
		})
	}
}

// reference reads a decimal as AppendDecimal accepts it, by other means:
// the sign, "$", separators and spaces taken off, the rest to big.Rat.
// It does not check the separators' places: only values AppendDecimal
// accepted are given to it.
func reference(s string) (*big.Rat, int, bool) {
	t := strings.TrimSpace(s)
	neg := false
	if strings.HasPrefix(t, "(") {
		neg, t = true, strings.TrimSpace(t[1:len(t)-1])
	}
	t = strings.NewReplacer("$", "", ",", "", " ", "", "+", "").Replace(t)
	if strings.HasPrefix(t, "-") {
		neg, t = !neg, t[1:]
	}
	if strings.HasPrefix(t, "-") {
		return nil, 0, false
	}
	mant, exp, _ := strings.Cut(strings.ToLower(t), "e")
	_, frac, _ := strings.Cut(mant, ".")
	scale := len(frac)
	if exp != "" {
		e, ok := new(big.Int).SetString(exp, 10)
		if !ok {
			return nil, 0, false
		}
		scale -= int(e.Int64())
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return nil, 0, false
	}
	if neg {
		r.Neg(r)
	}
	return r, max(scale, 0), true
}

// FuzzDecimal compares the decimal arithmetic with math/big: each value
// AppendDecimal accepts is written canonically, with the value and scale
// it had, and again the same when read back; Sum adds them exactly, at the
// largest scale, and Cents is the exact sum in cents or says it is not.
func FuzzDecimal(f *testing.F) {
	f.Add("12.34", "-0.01", "6.035E-7")
	f.Add("$1,268.46", "(3.00)", "1e2")
	f.Add("92233720368547758.07", "0.01", "-0.00")
	f.Add("90071992547409.93", "1.50E1", "+.5")
	f.Add("(\r0)", "$ 1", "-(1)")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		var s Sum
		want, scale := new(big.Rat), 0
		for _, v := range []string{a, b, c} {
			d, err := AppendDecimal(nil, []byte(v))
			if err != nil {
				continue
			}
			if !canonicalText.Match(d) || string(d) == "-0" || strings.HasPrefix(string(d), "-0.") && strings.Trim(string(d), "-0.") == "" {
				t.Fatalf("AppendDecimal(%q) = %q: not canonical", v, d)
			}
			again, err := AppendDecimal(nil, d)
			if err != nil || string(again) != string(d) {
				t.Fatalf("AppendDecimal(%q) = %q, %v; want it unchanged", d, again, err)
			}
			r, sc, ok := reference(v)
			if !ok {
				t.Fatalf("AppendDecimal accepted %q, math/big does not", v)
			}
			got, _ := new(big.Rat).SetString(string(d))
			if got.Cmp(r) != 0 {
				t.Fatalf("AppendDecimal(%q) = %q, math/big reads %s", v, d, r.RatString())
			}
			_, frac, _ := strings.Cut(string(d), ".")
			if len(frac) != sc {
				t.Fatalf("AppendDecimal(%q) = %q: scale %d, want %d", v, d, len(frac), sc)
			}
			s.Add(d)
			want.Add(want, r)
			scale = max(scale, sc)
		}
		str := s.String()
		if !canonicalText.MatchString(str) {
			t.Fatalf("Sum = %q: not canonical", str)
		}
		got, _ := new(big.Rat).SetString(str)
		_, frac, _ := strings.Cut(str, ".")
		if got.Cmp(want) != 0 || len(frac) != scale {
			t.Fatalf("Sum = %q, math/big sums to %s at scale %d", str, want.FloatString(scale), scale)
		}
		hundred := new(big.Rat).Mul(want, big.NewRat(100, 1))
		exact := hundred.IsInt() && hundred.Num().IsInt64()
		cents, ok := s.Cents()
		if ok != exact || ok && cents != hundred.Num().Int64() {
			t.Fatalf("Cents() = %d, %v; math/big: %s cents", cents, ok, hundred.FloatString(4))
		}
	})
}
