package costreport

import (
	"math"
	"math/big"
	"testing"
)

func TestMoneyText(t *testing.T) {
	big20, _ := new(big.Int).SetString("123456789012345678901", 10)
	for _, tc := range []struct {
		m                     Money
		text, grouped, signed string
	}{
		{Money{}, "0.00", "0.00", "0.00"},
		{cents(126846), "1268.46", "1,268.46", "+1,268.46"},
		{cents(-50), "-0.50", "-0.50", "-0.50"},
		{cents(-123456789), "-1234567.89", "-1,234,567.89", "-1,234,567.89"},
		{Money{u: big.NewInt(6035), scale: 10}, "0.0000006035", "0.0000006035", "+0.0000006035"},
		{Money{u: big.NewInt(12500), scale: 4}, "1.25", "1.25", "+1.25"},
		{Money{u: big20, scale: 2}, "1234567890123456789.01", "1,234,567,890,123,456,789.01", "+1,234,567,890,123,456,789.01"},
	} {
		if got := tc.m.String(); got != tc.text {
			t.Errorf("String = %q, want %q", got, tc.text)
		}
		if got := tc.m.Grouped(); got != tc.grouped {
			t.Errorf("Grouped = %q, want %q", got, tc.grouped)
		}
		if got := tc.m.Signed(); got != tc.signed {
			t.Errorf("Signed = %q, want %q", got, tc.signed)
		}
	}
}

func TestMoneyArithmetic(t *testing.T) {
	a := cents(1005)                                // 10.05
	b := Money{u: big.NewInt(3333), scale: 24 - 20} // 0.3333
	if got := a.Add(b).String(); got != "10.3833" {
		t.Errorf("10.05 + 0.3333 = %s", got)
	}
	if got := a.Sub(b).String(); got != "9.7167" {
		t.Errorf("10.05 - 0.3333 = %s", got)
	}
	if a.Cmp(b) != 1 || b.Cmp(a) != -1 || a.Cmp(cents(1005)) != 0 || cents(100).Cmp(Money{u: big.NewInt(1), scale: 0}) != 0 {
		t.Error("Cmp")
	}

	// A sum past int64 carries on exactly.
	s := sum{scale: 2}
	s.add(math.MaxInt64)
	s.add(math.MaxInt64)
	s.add(-1)
	want := new(big.Int).Mul(big.NewInt(math.MaxInt64), big.NewInt(2))
	want.Sub(want, big.NewInt(1))
	if got := s.money(); got.units().Cmp(want) != 0 {
		t.Errorf("sum = %s, want %s", got.units(), want)
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		change, base Money
		want         string
		ok           bool
	}{
		{cents(1234), cents(10000), "12.3", true},
		{cents(1235), cents(10000), "12.4", true}, // a half rounds away from zero
		{cents(-1235), cents(10000), "-12.4", true},
		{cents(1500), cents(-3115), "48.2", true}, // against the size of a negative base
		{cents(0), cents(10000), "0.0", true},
		{cents(-1), cents(1000000), "0.0", true}, // -0.0001%: no sign on zero
		{cents(5), cents(0), "", false},
	} {
		got, ok := Percent(tc.change, tc.base)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Percent(%s, %s) = %q, %v; want %q, %v", tc.change, tc.base, got, ok, tc.want, tc.ok)
		}
	}
}
