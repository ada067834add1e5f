package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"time"
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

// appendDecimal appends s as a canonical plain decimal: an optional "-",
// the integer digits without leading zeros, then "." and the fraction
// digits exactly as given (trailing zeros kept, so "1.50" stays "1.50"; no
// rounding whatever the scale). It accepts what Atlas and spreadsheet-minded
// exports write around a number: surrounding spaces, a "+" or "-" sign, one
// "$", thousands separators in groups of three ("1,234.50"), accounting
// parentheses for a negative ("(1.00)") and an exponent ("6.035E-7" is
// 0.0000006035, "1.50E1" is 15.0: the digits given, the point moved). It
// refuses anything else, including other separators ("1.234,50") and a
// value with no digit. Zero has no sign.
func appendDecimal(dst, s []byte) ([]byte, error) {
	if canonical(s) {
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
	exp, hasExp := 0, false
	if i := bytes.IndexAny(t, "eE"); i >= 0 {
		var err error
		if exp, err = exponent(t[i+1:]); err != nil {
			return dst, err
		}
		t, hasExp = t[:i], true
	}
	ip, fp, dot := bytes.Cut(t, []byte{'.'})
	grouped := bytes.IndexByte(ip, ',') >= 0
	if grouped {
		if err := checkGroups(ip); err != nil {
			return dst, err
		}
	}
	if !digits(ip, grouped) || !digits(fp, false) || len(ip) == 0 && len(fp) == 0 {
		return dst, errNotDecimal
	}
	if hasExp {
		return appendScaled(dst, neg, ip, fp, exp, grouped), nil
	}
	for len(ip) > 0 && (ip[0] == '0' || ip[0] == ',') {
		ip = ip[1:]
	}
	if len(ip) == 0 && allZeros(fp) {
		neg = false // no "-0.00"
	}
	if neg {
		dst = append(dst, '-')
	}
	if len(ip) == 0 {
		dst = append(dst, '0')
	}
	dst = appendDigits(dst, ip, grouped)
	if dot && len(fp) > 0 {
		dst = append(dst, '.')
		dst = append(dst, fp...)
	}
	return dst, nil
}

// canonical reports whether s is already what appendDecimal writes, as
// most values are: the fast path.
func canonical(s []byte) bool {
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
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 || !digits(s, false) {
		return 0, errNotDecimal
	}
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	if len(s) > 3 {
		return 0, errExponent
	}
	e := 0
	for _, c := range s {
		e = e*10 + int(c-'0')
	}
	if e > maxExponent {
		return 0, errExponent
	}
	if neg {
		e = -e
	}
	return e, nil
}

// appendScaled writes the digits of ip and fp with the point moved by exp:
// the fraction keeps len(fp)-exp digits (none if that is negative, the
// integer then padded with zeros).
func appendScaled(dst []byte, neg bool, ip, fp []byte, exp int, grouped bool) []byte {
	var ds []byte // all the digits, commas dropped
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
// appendDecimal) as integer cents. A fraction of a cent is an error, not
// rounded: the caller compares it with totals in cents.
func ParseCents(s string) (int64, error) {
	d, err := appendDecimal(nil, []byte(s))
	if err != nil {
		return 0, fmt.Errorf("money %s: %w", shown(s), err)
	}
	var sum Sum
	sum.add(d)
	c, ok := sum.Cents()
	if !ok {
		return 0, fmt.Errorf("money %s: has a fraction of a cent or is too large for int64 cents", shown(s))
	}
	return c, nil
}

// dateLayouts are the date forms accepted after the fast ones, tried in
// order. Atlas writes ISO dates and US dates ("06/01/2024", month first:
// Atlas bills in US conventions); long dates ("June 1, 2024") are the
// invoice's Billing Period; ISO date-times, with a zone or without.
var dateLayouts = []string{"2006-01-02", "1/2/2006", "January 2, 2006", "Jan 2, 2006", "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// zonedLayouts are date-times with a zone: their date is the UTC day, as
// Atlas's billing days are UTC days.
var zonedLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05Z07:00"}

// appendISODate appends s as YYYY-MM-DD; an empty s stays empty.
func appendISODate(dst, s []byte) ([]byte, error) {
	t := bytes.TrimSpace(s)
	if len(t) == 0 {
		return dst, nil
	}
	if isISODate(t) {
		return append(dst, t...), nil
	}
	if y, m, d, ok := usDate(t); ok {
		return appendYMD(dst, y, m, d), nil
	}
	str := string(t)
	for _, l := range dateLayouts {
		if d, err := time.Parse(l, str); err == nil {
			return d.AppendFormat(dst, time.DateOnly), nil
		}
	}
	for _, l := range zonedLayouts {
		if d, err := time.Parse(l, str); err == nil {
			return d.UTC().AppendFormat(dst, time.DateOnly), nil
		}
	}
	return dst, errors.New("not a date (want YYYY-MM-DD, MM/DD/YYYY, an ISO date-time or \"January 2, 2006\")")
}

// isISODate is the common case, YYYY-MM-DD, checked without time.Parse,
// which dominated the cost of a row.
func isISODate(t []byte) bool {
	if len(t) != 10 || t[4] != '-' || t[7] != '-' {
		return false
	}
	y, ok1 := num(t[:4])
	m, ok2 := num(t[5:7])
	d, ok3 := num(t[8:])
	return ok1 && ok2 && ok3 && validDay(y, m, d)
}

// usDate reads MM/DD/YYYY (or M/D/YYYY) without time.Parse.
func usDate(t []byte) (y, m, d int, ok bool) {
	i := bytes.IndexByte(t, '/')
	if i < 1 || i > 2 {
		return 0, 0, 0, false
	}
	j := bytes.IndexByte(t[i+1:], '/')
	if j < 1 || j > 2 || len(t)-(i+1+j+1) != 4 {
		return 0, 0, 0, false
	}
	m, ok1 := num(t[:i])
	d, ok2 := num(t[i+1 : i+1+j])
	y, ok3 := num(t[i+1+j+1:])
	return y, m, d, ok1 && ok2 && ok3 && validDay(y, m, d)
}

func num(s []byte) (int, bool) {
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// validDay reports whether day d of month m of year y exists (Gregorian).
func validDay(y, m, d int) bool {
	days := 31
	switch m {
	case 2:
		days = 28
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			days = 29
		}
	case 4, 6, 9, 11:
		days = 30
	}
	return m >= 1 && m <= 12 && d >= 1 && d <= days
}

func appendYMD(dst []byte, y, m, d int) []byte {
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+m/10), byte('0'+m%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// appendText appends a text value on one line as a CSV field.
func appendText(dst, s []byte) []byte {
	for _, c := range s {
		if needsQuote[c] { // a line break among them
			return appendField(dst, flat(s))
		}
	}
	if len(s) > 0 && (asciiSpace[s[0]] || s[0] >= utf8.RuneSelf || s[0] == '\\') {
		return appendField(dst, s)
	}
	return append(dst, s...)
}

// flat puts a text value on one line: Athena's CSV SerDe splits records on
// line breaks even inside quotes, so an embedded "\r\n", "\r" or "\n"
// becomes one space. Without line breaks, s itself comes back.
func flat(s []byte) []byte {
	if bytes.IndexByte(s, '\n') < 0 && bytes.IndexByte(s, '\r') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			out = append(out, ' ')
		case '\n':
			out = append(out, ' ')
		default:
			out = append(out, c)
		}
	}
	return out
}

// shown quotes a value for an error message, cut to a readable length.
func shown[T string | []byte](v T) string {
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
