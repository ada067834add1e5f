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
	if y, m, d, ok := isoDate(t); ok {
		return civilDays(y, m, d), true, nil
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

// isoDate reads YYYY-MM-DD.
func isoDate(t []byte) (y, m, d int, ok bool) {
	if len(t) != 10 || t[4] != '-' || t[7] != '-' {
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
	return m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m)
}

// daysIn is the length of month m (1 to 12) of year y (Gregorian).
func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendUTF8 appends s with its invalid UTF-8 bytes as U+FFFD: a
// Parquet STRING is UTF-8, and a reader may refuse a file that is not.
func appendUTF8(dst, s []byte) []byte {
	if utf8.Valid(s) {
		return append(dst, s...)
	}
	return append(dst, bytes.ToValidUTF8(s, []byte("\uFFFD"))...)
}

// decimal128 is d, a canonical decimal (tally.AppendDecimal's output), as the
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
		if len(bytes.TrimRight(fp[scale:], "0")) > 0 {
			return 0, 0, false, fmt.Errorf("has %d decimals, more than the %d of DECIMAL(%d,%d)", len(bytes.TrimRight(fp, "0")), scale, precision, scale)
		}
		fp = fp[:scale]
	}
	if len(ip) > precision-scale {
		return 0, 0, false, fmt.Errorf("has %d integer digits, more than the %d of DECIMAL(%d,%d)", len(ip), precision-scale, precision, scale)
	}
	var buf [38]byte // at most precision digits
	ds := append(append(buf[:0], ip...), fp...)
	for range scale - len(fp) {
		ds = append(ds, '0')
	}
	// The digits before the last 19 times 10^19, plus the last 19.
	cut := max(len(ds)-19, 0)
	h, _, _ := short(ds[:cut])
	l, _, _ := short(ds[cut:])
	hi, lo = bits.Mul64(h, pow10u[19])
	lo, carry := bits.Add64(lo, l, 0)
	return hi + carry, lo, neg, nil
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
