package tally

import (
	"bytes"
	"math"
	"math/big"
	"strconv"
)

// Sum is an exact sum of decimals: no float, no rounding, any scale. Its
// scale is the largest of the values added (12.50 + 1.5 is 14.00). It
// counts in an int64 while the sum fits and in a big.Int after that.
// The zero Sum is 0.
type Sum struct {
	n     int64    // the sum times 10^scale, while big is nil
	big   *big.Int // the sum times 10^scale, once n would overflow
	scale int
}

var pow10 = [...]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// Add adds d, a canonical decimal (AppendDecimal's output).
func (s *Sum) Add(d []byte) {
	neg := len(d) > 0 && d[0] == '-'
	if neg {
		d = d[1:]
	}
	ip, fp, _ := bytes.Cut(d, []byte{'.'})
	scale := len(fp)
	if s.big == nil && len(ip)+len(fp) <= 18 && scale < len(pow10) && scale-s.scale < len(pow10) && s.scale-scale < len(pow10) {
		var v int64
		for _, c := range ip {
			v = v*10 + int64(c-'0')
		}
		for _, c := range fp {
			v = v*10 + int64(c-'0')
		}
		if neg {
			v = -v
		}
		n, ok := s.n, true
		if scale > s.scale {
			n, ok = mul(n, pow10[scale-s.scale])
		} else {
			v, ok = mul(v, pow10[s.scale-scale])
		}
		if ok {
			if sum := n + v; (v >= 0) == (sum >= n) {
				s.n, s.scale = sum, max(s.scale, scale)
				return
			}
		}
	}
	s.addBig(neg, ip, fp)
}

// mul returns a*b and whether it did not overflow (b > 0).
func mul(a, b int64) (int64, bool) {
	if a > math.MaxInt64/b || a < math.MinInt64/b {
		return 0, false
	}
	return a * b, true
}

func (s *Sum) addBig(neg bool, ip, fp []byte) {
	if s.big == nil {
		s.big = big.NewInt(s.n)
	}
	v, _ := new(big.Int).SetString(string(ip)+string(fp), 10)
	if neg {
		v.Neg(v)
	}
	scale := len(fp)
	if scale > s.scale {
		s.big.Mul(s.big, tenTo(scale-s.scale))
		s.scale = scale
	} else if scale < s.scale {
		v.Mul(v, tenTo(s.scale-scale))
	}
	s.big.Add(s.big, v)
}

func tenTo(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// unscaled is the sum times 10^scale.
func (s Sum) unscaled() *big.Int {
	if s.big != nil {
		return s.big
	}
	return big.NewInt(s.n)
}

// String is the sum as a canonical plain decimal with its scale: "-12.50",
// "0.00", "1234567890123456789.01". Zero has no sign.
func (s Sum) String() string {
	var digits []byte
	if s.big != nil {
		digits = s.big.Append(nil, 10)
	} else {
		digits = strconv.AppendInt(nil, s.n, 10)
	}
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	return string(appendScaled(nil, neg, digits, nil, -s.scale, false))
}

// MarshalText writes String, so a Sum is a JSON string: exact whatever its size.
func (s Sum) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Cents is the sum in integer cents, and whether it is exactly that: not
// when it has a fraction of a cent or does not fit an int64.
func (s Sum) Cents() (int64, bool) {
	if s.big == nil && s.scale <= 2 {
		return mul(s.n, pow10[2-s.scale])
	}
	v := new(big.Int).Set(s.unscaled())
	if s.scale <= 2 {
		v.Mul(v, tenTo(2-s.scale))
	} else {
		var rem big.Int
		v.QuoRem(v, tenTo(s.scale-2), &rem)
		if rem.Sign() != 0 {
			return 0, false
		}
	}
	if !v.IsInt64() {
		return 0, false
	}
	return v.Int64(), true
}
