package normalize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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

// dateOf reads a date: ISO, US (MM/DD/YYYY), long ("June 1, 2024") or an
// ISO date-time (its UTC day), as days since 1970-01-01 (Parquet's DATE).
// ok is false for an empty value (NULL).
func dateOf(s []byte) (days int32, ok bool, err error) {
	t := bytes.TrimSpace(s)
	if len(t) == 0 {
		return 0, false, nil
	}
	if len(t) == 10 && t[4] == '-' && t[7] == '-' {
		if y, m, d, ok := isoDate(t); ok {
			return civilDays(y, m, d), true, nil
		}
	}
	if y, m, d, ok := usDate(t); ok {
		return civilDays(y, m, d), true, nil
	}
	str := string(t)
	for _, l := range dateLayouts {
		if d, err := time.Parse(l, str); err == nil {
			return civilDays(d.Date()), true, nil
		}
	}
	for _, l := range zonedLayouts {
		if d, err := time.Parse(l, str); err == nil {
			return civilDays(d.UTC().Date()), true, nil
		}
	}
	return 0, false, errors.New("not a date (want YYYY-MM-DD, MM/DD/YYYY, an ISO date-time or \"January 2, 2006\")")
}

// civilDays is the number of days from 1970-01-01 to y-m-d (proleptic
// Gregorian), without time.Date, which dominated the cost of a row.
func civilDays[M ~int](y int, m M, d int) int32 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (int(m) + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int32(era*146097 + doe - 719468)
}

// timestampOf reads a date-time as FOCUS writes it (ISO 8601 in UTC,
// "2024-06-01T00:00:00Z"), or with another offset, or a bare date
// (midnight UTC), as milliseconds since 1970 UTC (Parquet's
// TIMESTAMP(MILLIS)). A fraction of a millisecond is refused, not
// rounded. ok is false for an empty value (NULL).
func timestampOf(s []byte) (ms int64, ok bool, err error) {
	t := bytes.TrimSpace(s)
	if len(t) == 0 {
		return 0, false, nil
	}
	// The common case, without time.Parse.
	if len(t) == 20 && t[10] == 'T' && t[13] == ':' && t[16] == ':' && t[19] == 'Z' {
		y, mo, d, ok1 := isoDate(t[:10])
		h, ok2 := num(t[11:13])
		mi, ok3 := num(t[14:16])
		sec, ok4 := num(t[17:19])
		if ok1 && ok2 && ok3 && ok4 && h < 24 && mi < 60 && sec < 60 {
			return (int64(civilDays(y, mo, d))*86400 + int64(h*3600+mi*60+sec)) * 1000, true, nil
		}
	}
	str := string(t)
	for _, l := range timestampLayouts {
		if v, err := time.Parse(l, str); err == nil {
			if v.Nanosecond()%int(time.Millisecond) != 0 {
				return 0, false, errors.New("has a fraction of a millisecond")
			}
			return v.UnixMilli(), true, nil
		}
	}
	return 0, false, errors.New("not a date-time (want ISO 8601, such as 2024-06-01T00:00:00Z)")
}

// timestampLayouts are the date-time forms taken besides the fast one; one
// without a zone is UTC.
var timestampLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", time.DateOnly}

// isoDate reads YYYY-MM-DD (t is 10 bytes long).
func isoDate(t []byte) (y, m, d int, ok bool) {
	if t[4] != '-' || t[7] != '-' {
		return 0, 0, 0, false
	}
	y, ok1 := num(t[:4])
	m, ok2 := num(t[5:7])
	d, ok3 := num(t[8:])
	return y, m, d, ok1 && ok2 && ok3 && validDay(y, m, d)
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

// appendUTF8 appends s with its invalid UTF-8 bytes as U+FFFD: a
// Parquet STRING is UTF-8, and a reader may refuse a file that is not.
func appendUTF8(dst, s []byte) []byte {
	if utf8.Valid(s) {
		return append(dst, s...)
	}
	return append(dst, bytes.ToValidUTF8(s, []byte("\uFFFD"))...)
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

// decimal128 is d, a canonical decimal (appendDecimal's output), as the
// unscaled value of a DECIMAL(38,24): 16 bytes, big-endian two's
// complement, as Parquet stores it. A value with more decimals or integer
// digits than that holds is an error, never rounded.
func decimal128(d []byte) ([16]byte, error) {
	var b [16]byte
	hi, lo, neg, err := unscaled(d, DecimalPrecision, DecimalScale)
	if err != nil {
		return b, err
	}
	if neg {
		var borrow uint64
		lo, borrow = bits.Sub64(0, lo, 0)
		hi, _ = bits.Sub64(0, hi, borrow)
	}
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return b, nil
}

// cents is d, a canonical decimal, as the unscaled value of a
// DECIMAL(18,2); see decimal128.
func cents(d []byte) (int64, error) {
	_, lo, neg, err := unscaled(d, CentsPrecision, CentsScale)
	if neg {
		return -int64(lo), err
	}
	return int64(lo), err
}

var pow10u = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// unscaled is d times 10^scale as a 128-bit magnitude and a sign, if d has
// at most scale decimals (trailing zeros aside) and precision-scale integer
// digits, so that it is below 10^38 < 2^127.
func unscaled(d []byte, precision, scale int) (hi, lo uint64, neg bool, err error) {
	if len(d) > 0 && d[0] == '-' {
		neg, d = true, d[1:]
	}
	if v, fp, ok := short(d); ok && fp <= scale && len(d)-fp-min(fp, 1) <= precision-scale {
		// The common case: at most 19 digits, no decimal to drop.
		hi, lo = bits.Mul64(v, pow10u[min(scale-fp, 19)])
		if e := scale - fp - 19; e > 0 {
			h, l := bits.Mul64(lo, pow10u[e])
			hi, lo = hi*pow10u[e]+h, l
		}
		return hi, lo, neg, nil
	}
	ip, fp, _ := bytes.Cut(d, []byte{'.'})
	if len(ip) == 1 && ip[0] == '0' {
		ip = nil
	}
	if len(fp) > scale {
		if !allZeros(fp[scale:]) {
			return 0, 0, false, fmt.Errorf("has %d decimals, more than the %d of DECIMAL(%d,%d)", len(bytes.TrimRight(fp, "0")), scale, precision, scale)
		}
		fp = fp[:scale]
	}
	if len(ip) > precision-scale {
		return 0, 0, false, fmt.Errorf("has %d integer digits, more than the %d of DECIMAL(%d,%d)", len(ip), precision-scale, precision, scale)
	}
	var a accumulator
	a.digits(ip)
	a.digits(fp)
	a.zeros(scale - len(fp))
	a.fold()
	return a.hi, a.lo, neg, nil
}

// short reads the digits of a canonical decimal without its sign, if it has
// at most 19 of them, and how many decimals it has. "0.5" is 5 and 1
// decimal, "12" is 12 and none.
func short(d []byte) (v uint64, decimals int, ok bool) {
	if len(d) > 20 {
		return 0, 0, false
	}
	dot := -1
	for i, c := range d {
		if c == '.' {
			dot = i
			continue
		}
		v = v*10 + uint64(c-'0')
	}
	if dot < 0 {
		return v, 0, len(d) <= 19
	}
	return v, len(d) - dot - 1, len(d) <= 20
}

// accumulator builds a 128-bit value from decimal digits, 19 at a time.
type accumulator struct {
	hi, lo uint64
	cur    uint64 // the digits not yet folded in
	n      int    // how many
}

func (a *accumulator) digits(s []byte) {
	for _, c := range s {
		a.cur = a.cur*10 + uint64(c-'0')
		if a.n++; a.n == 19 {
			a.fold()
		}
	}
}

func (a *accumulator) zeros(k int) {
	a.fold()
	for k > 0 {
		m := min(k, 19)
		a.mul(pow10u[m])
		k -= m
	}
}

// fold adds the pending digits: (hi, lo) = (hi, lo) x 10^n + cur.
func (a *accumulator) fold() {
	if a.n == 0 {
		return
	}
	a.mul(pow10u[a.n])
	var carry uint64
	a.lo, carry = bits.Add64(a.lo, a.cur, 0)
	a.hi += carry
	a.cur, a.n = 0, 0
}

// mul multiplies by m; the caller's digit counts keep it under 2^127.
func (a *accumulator) mul(m uint64) {
	h, l := bits.Mul64(a.lo, m)
	a.hi = a.hi*m + h
	a.lo = l
}
