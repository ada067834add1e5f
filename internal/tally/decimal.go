package tally

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

var (
	errNotDecimal = errors.New("not a plain decimal")
	errGroups     = errors.New("thousands separators not in groups of three")
	errExponent   = errors.New("exponent out of range")
)

// maxExponent bounds an exponent, so "1E999999999" cannot become a billion
// digits. No amount, quantity or price needs more.
const maxExponent = 100

// AppendDecimal appends s as a canonical plain decimal: an optional "-",
// the integer digits without leading zeros, then "." and the fraction
// digits exactly as given (trailing zeros kept, so "1.50" stays "1.50"; no
// rounding whatever the scale). It accepts what Atlas and spreadsheet-minded
// exports write around a number: surrounding spaces, a "+" or "-" sign, one
// "$", thousands separators in groups of three ("1,234.50"), accounting
// parentheses for a negative ("(1.00)") and an exponent ("6.035E-7" is
// 0.0000006035, "1.50E1" is 15.0: the digits given, the point moved). It
// refuses anything else, including other separators ("1.234,50") and a
// value with no digit. Zero has no sign.
func AppendDecimal(dst, s []byte) ([]byte, error) {
	if Canonical(s) {
		return append(dst, s...), nil
	}
	t := bytes.TrimSpace(s)
	neg, paren := false, false
	if len(t) >= 2 && t[0] == '(' && t[len(t)-1] == ')' {
		neg, paren = true, true
		t = bytes.TrimSpace(t[1 : len(t)-1])
	}
	signs, dollars := 0, 0
prefix:
	for len(t) > 0 {
		switch t[0] {
		case '-':
			neg = !neg
			signs++
		case '+':
			signs++
		case '$':
			dollars++
		default:
			break prefix
		}
		t = bytes.TrimLeft(t[1:], " ")
	}
	if signs > 1 || dollars > 1 || paren && signs > 0 {
		return dst, errNotDecimal
	}
	exp := 0
	if i := bytes.IndexAny(t, "eE"); i >= 0 {
		var err error
		if exp, err = exponent(t[i+1:]); err != nil {
			return dst, err
		}
		t = t[:i]
	}
	ip, fp, _ := bytes.Cut(t, []byte{'.'})
	grouped := bytes.IndexByte(ip, ',') >= 0
	if grouped {
		if err := checkGroups(ip); err != nil {
			return dst, err
		}
	}
	if !digits(ip, grouped) || !digits(fp, false) || len(ip) == 0 && len(fp) == 0 {
		return dst, errNotDecimal
	}
	return appendScaled(dst, neg, ip, fp, exp, grouped), nil
}

// Canonical reports whether s is already what AppendDecimal writes, as
// most values are: the fast path.
func Canonical(s []byte) bool {
	i, dot, nonZero := 0, -1, false
	if len(s) > 0 && s[0] == '-' {
		i = 1
	}
	start := i
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '1' && c <= '9':
			nonZero = true
		case c == '0':
		case c == '.' && dot < 0:
			dot = i
		default:
			return false
		}
	}
	end := len(s)
	if dot >= 0 {
		end = dot
	}
	switch {
	case end == start, dot == len(s)-1: // ".5", "5."
		return false
	case s[start] == '0' && end-start > 1: // "05"
		return false
	case start == 1 && !nonZero: // "-0"
		return false
	}
	return true
}

// exponent reads the digits after "e": an optional sign, then digits.
func exponent(s []byte) (int, error) {
	e, err := strconv.Atoi(string(s))
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, errExponent
	case err != nil:
		return 0, errNotDecimal
	case e > maxExponent || e < -maxExponent:
		return 0, errExponent
	}
	return e, nil
}

// appendScaled writes the digits of ip and fp with the point moved by exp,
// without leading zeros (but one before the point): the fraction keeps
// len(fp)-exp digits (none if that is negative, the integer then padded
// with zeros). Zero has no sign.
func appendScaled(dst []byte, neg bool, ip, fp []byte, exp int, grouped bool) []byte {
	var buf [64]byte
	ds := buf[:0] // all the digits, commas dropped
	ds = appendDigits(ds, ip, grouped)
	ds = append(ds, fp...)
	scale := len(fp) - exp
	for scale < 0 {
		ds = append(ds, '0')
		scale++
	}
	if allZeros(ds) {
		neg = false
	}
	if neg {
		dst = append(dst, '-')
	}
	intPart := ds[:max(len(ds)-scale, 0)]
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	if len(intPart) == 0 {
		dst = append(dst, '0')
	}
	dst = append(dst, intPart...)
	if scale > 0 {
		dst = append(dst, '.')
		for i := len(ds); i < scale; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, ds[max(len(ds)-scale, 0):]...)
	}
	return dst
}

// checkGroups checks thousands separators: 1 to 3 digits, then groups of 3.
func checkGroups(ip []byte) error {
	first := bytes.IndexByte(ip, ',')
	if first < 1 || first > 3 {
		return errGroups
	}
	for rest := ip[first:]; len(rest) > 0; rest = rest[4:] {
		if len(rest) < 4 || rest[0] != ',' || bytes.IndexByte(rest[1:4], ',') >= 0 {
			return errGroups
		}
	}
	return nil
}

// digits reports whether s is only ASCII digits (and commas if grouped).
func digits(s []byte, grouped bool) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && !(grouped && c == ',') {
			return false
		}
	}
	return true
}

func appendDigits(dst, s []byte, grouped bool) []byte {
	if !grouped {
		return append(dst, s...)
	}
	for _, c := range s {
		if c != ',' {
			dst = append(dst, c)
		}
	}
	return dst
}

func allZeros(s []byte) bool {
	for _, c := range s {
		if c != '0' {
			return false
		}
	}
	return true
}

// ParseCents reads money as Atlas writes it in an invoice's preamble or
// anywhere else ("$1,268.46", "-12.5", "(3.00)", "1.2E3", see
// AppendDecimal) as integer cents. A fraction of a cent is an error, not
// rounded: the caller compares it with totals in cents.
func ParseCents(s string) (int64, error) {
	d, err := AppendDecimal(nil, []byte(s))
	if err != nil {
		return 0, fmt.Errorf("money %s: %w", Shown(s), err)
	}
	var sum Sum
	sum.Add(d)
	c, ok := sum.Cents()
	if !ok {
		return 0, fmt.Errorf("money %s: has a fraction of a cent or is too large for int64 cents", Shown(s))
	}
	return c, nil
}

// Shown quotes a value for an error message, cut to a readable length.
func Shown[T string | []byte](v T) string {
	const max = 40
	s := string(v[:min(len(v), max+utf8.UTFMax)])
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
