package costreport

import (
	"math/big"
	"strings"
)

// Money is an exact amount: an integer number of units of 10^-scale
// dollars, as a Parquet DECIMAL holds it. Sums never round; a float is
// made only for the geometry of a chart (Float). The zero Money is 0.00.
type Money struct {
	u     *big.Int // nil: zero
	scale int
}

// units is m's units (never nil).
func (m Money) units() *big.Int {
	if m.u == nil {
		return new(big.Int)
	}
	return m.u
}

// at is m with the given scale, which must not be below m's.
func (m Money) at(scale int) *big.Int {
	u := new(big.Int).Set(m.units())
	if scale > m.scale {
		u.Mul(u, pow10(scale-m.scale))
	}
	return u
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// Add is m + n, at the larger scale of the two.
func (m Money) Add(n Money) Money {
	s := max(m.scale, n.scale)
	return Money{u: new(big.Int).Add(m.at(s), n.at(s)), scale: s}
}

// Sub is m - n.
func (m Money) Sub(n Money) Money { return m.Add(n.Neg()) }

// Neg is -m.
func (m Money) Neg() Money { return Money{u: new(big.Int).Neg(m.units()), scale: m.scale} }

// Abs is |m|.
func (m Money) Abs() Money { return Money{u: new(big.Int).Abs(m.units()), scale: m.scale} }

// Sign is -1, 0 or +1.
func (m Money) Sign() int { return m.units().Sign() }

// Cmp compares m and n: -1, 0 or +1.
func (m Money) Cmp(n Money) int {
	s := max(m.scale, n.scale)
	return m.at(s).Cmp(n.at(s))
}

// Rat is m as an exact fraction.
func (m Money) Rat() *big.Rat { return new(big.Rat).SetFrac(m.units(), pow10(m.scale)) }

// Float is m as a float64, for the geometry of a chart only.
func (m Money) Float() float64 {
	f, _ := m.Rat().Float64()
	return f
}

// String is m in plain decimal text with at least two decimals and no
// other trailing zeros: "1268.46", "-0.50", "0.0000006035". Exact.
func (m Money) String() string {
	digits := new(big.Int).Abs(m.units()).String()
	for len(digits) <= m.scale {
		digits = "0" + digits
	}
	whole, frac := digits[:len(digits)-m.scale], digits[len(digits)-m.scale:]
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	if m.Sign() < 0 {
		whole = "-" + whole
	}
	return whole + "." + frac
}

// Grouped is String with the whole part in groups of three digits:
// "1,268.46".
func (m Money) Grouped() string { return group(m.String()) }

// group puts commas between groups of three digits of a decimal's whole
// part.
func group(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if dot {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}

// Signed is Grouped with a sign always: "+1,268.46", "-0.50", "0.00".
func (m Money) Signed() string {
	if m.Sign() > 0 {
		return "+" + m.Grouped()
	}
	return m.Grouped()
}

// Percent is change / |base| in percent, rounded half away from zero to one
// decimal ("12.3", "-0.5"); false when base is zero.
func Percent(change, base Money) (string, bool) {
	if base.Sign() == 0 {
		return "", false
	}
	r := new(big.Rat).Quo(change.Rat(), base.Abs().Rat())
	r.Mul(r, big.NewRat(1000, 1)) // tenths of a percent
	num := new(big.Int).Abs(r.Num())
	q, rem := new(big.Int).QuoRem(num, r.Denom(), new(big.Int))
	if rem.Lsh(rem, 1).Cmp(r.Denom()) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if r.Sign() < 0 && q.Sign() != 0 {
		q.Neg(q)
	}
	return Money{u: q, scale: 1}.percentText(), true
}

// percentText writes a scale-1 value with its one decimal kept.
func (m Money) percentText() string {
	s := Money{u: m.u, scale: 1}.String() // two decimals at least: "12.30"
	return s[:len(s)-1]
}

// sum adds amounts of one column exactly: int64 units while they fit, a
// big.Int after.
type sum struct {
	n     int64
	big   *big.Int
	scale int
}

func (s *sum) add(u int64) {
	if s.big == nil {
		if r := s.n + u; (u >= 0) == (r >= s.n) {
			s.n = r
			return
		}
		s.big = big.NewInt(s.n)
	}
	s.big.Add(s.big, big.NewInt(u))
}

func (s *sum) addBig(u *big.Int) {
	if s.big == nil {
		s.big = big.NewInt(s.n)
	}
	s.big.Add(s.big, u)
}

func (s *sum) money() Money {
	if s.big != nil {
		return Money{u: new(big.Int).Set(s.big), scale: s.scale}
	}
	return Money{u: big.NewInt(s.n), scale: s.scale}
}

// cents is an amount in integer cents.
func cents(c int64) Money { return Money{u: big.NewInt(c), scale: 2} }
