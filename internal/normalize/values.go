package normalize

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// decimal returns s as a canonical plain decimal: an optional "-", the
// integer digits without leading zeros, then "." and the fraction digits
// exactly as given (trailing zeros kept, so "1.50" stays "1.50"). It accepts
// what a spreadsheet-minded export may add around a number: surrounding
// spaces, a "+" or "-" sign, one "$", thousands separators in groups of three
// ("1,234.50") and accounting parentheses for a negative ("(1.00)"). It
// refuses anything else, including exponents ("1e5"), other separators
// ("1.234,50") and a value with no digit.
func decimal(s string) (string, error) {
	t := strings.TrimSpace(s)
	neg, paren := false, false
	if len(t) >= 2 && t[0] == '(' && t[len(t)-1] == ')' {
		neg, paren = true, true
		t = strings.TrimSpace(t[1 : len(t)-1])
	}
	signs, dollars := 0, 0
prefix:
	for t != "" {
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
		t = strings.TrimLeft(t[1:], " ")
	}
	if signs > 1 || dollars > 1 || paren && signs > 0 {
		return "", errors.New("not a plain decimal")
	}
	ip, fp, dot := strings.Cut(t, ".")
	if strings.Contains(ip, ",") {
		groups := strings.Split(ip, ",")
		if len(groups[0]) < 1 || len(groups[0]) > 3 {
			return "", errors.New("thousands separators not in groups of three")
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return "", errors.New("thousands separators not in groups of three")
			}
		}
		ip = strings.Join(groups, "")
	}
	if !digits(ip) || !digits(fp) || ip == "" && fp == "" {
		return "", errors.New("not a plain decimal")
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	if ip == "0" && strings.Trim(fp, "0") == "" {
		neg = false // no "-0.00"
	}
	var b strings.Builder
	b.Grow(len(ip) + len(fp) + 2)
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(ip)
	if dot && fp != "" {
		b.WriteByte('.')
		b.WriteString(fp)
	}
	return b.String(), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

var (
	errSubCent   = errors.New("has a fraction of a cent")
	errTooLarge  = errors.New("is too large for int64 cents")
	errSumTooBig = errors.New("total amount overflows int64 cents")
)

// cents converts a canonical decimal (from decimal) to integer cents. Atlas
// bills in whole cents (every money field of its API is int64 cents), so a
// non-zero digit past the second decimal is refused rather than rounded:
// rounding would make the total disagree with the invoice.
func cents(d string) (int64, error) {
	neg := strings.HasPrefix(d, "-")
	d = strings.TrimPrefix(d, "-")
	ip, fp, _ := strings.Cut(d, ".")
	if len(fp) > 2 {
		if strings.Trim(fp[2:], "0") != "" {
			return 0, errSubCent
		}
		fp = fp[:2]
	}
	fp += "00"[len(fp):]
	var c int64
	for _, r := range ip + fp {
		d := int64(r - '0')
		if c > (math.MaxInt64-d)/10 {
			return 0, errTooLarge
		}
		c = c*10 + d
	}
	if neg {
		c = -c
	}
	return c, nil
}

// add returns a+b, or an error instead of wrapping around.
func add(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, errSumTooBig
	}
	return s, nil
}

// dateLayouts are the date forms accepted, tried in order. The simulator
// and the Atlas API write ISO dates; the Atlas UI and some CSV downloads show
// US dates ("06/01/2024", month first: Atlas bills in US conventions) and
// long dates ("June 1, 2024", as in the invoice's Billing Period).
var dateLayouts = []string{"2006-01-02", "1/2/2006", "January 2, 2006", "Jan 2, 2006"}

// isoDate returns s as YYYY-MM-DD; an empty s stays empty. A timestamp
// (RFC 3339) gives its UTC date: Atlas's billing days are UTC days.
func isoDate(s string) (string, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", nil
	}
	if d, ok := plainISODate(t); ok {
		return d, nil
	}
	for _, l := range dateLayouts {
		if d, err := time.Parse(l, t); err == nil {
			return d.Format("2006-01-02"), nil
		}
	}
	if d, err := time.Parse(time.RFC3339Nano, t); err == nil {
		return d.UTC().Format("2006-01-02"), nil
	}
	return "", errors.New("not a date (want YYYY-MM-DD, MM/DD/YYYY or \"January 2, 2006\")")
}

// plainISODate is the common case, YYYY-MM-DD, checked without time.Parse,
// which dominated the cost of a row.
func plainISODate(t string) (string, bool) {
	if len(t) != 10 || t[4] != '-' || t[7] != '-' {
		return "", false
	}
	n := func(s string) (int, bool) {
		v := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v, true
	}
	y, ok1 := n(t[:4])
	m, ok2 := n(t[5:7])
	d, ok3 := n(t[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > 31 {
		return "", false
	}
	// A day past the month's end rolls over: not a date.
	if time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Day() != d {
		return "", false
	}
	return t, true
}

// flat puts a text value on one line: Athena's CSV SerDe splits records on
// line breaks even inside quotes, so an embedded newline would cut a line
// item in two.
func flat(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", " ")
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// shown quotes a value for an error message, cut to a readable length.
func shown(s string) string {
	const max = 40
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return fmt.Sprintf("%q...", s[:cut])
	}
	return fmt.Sprintf("%q", s)
}
