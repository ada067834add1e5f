package cli

import (
	"fmt"
	"regexp"
	"time"
)

// Period keywords, as the state machine input accepts them.
const (
	PreviousMonth = "previous-month"
	MonthToDate   = "month-to-date"
)

var monthRE = regexp.MustCompile(`^\d{4}-(0[1-9]|1[0-2])$`)

// parseMonth reads "YYYY-MM" as the first instant of that month in UTC.
func parseMonth(s string) (time.Time, error) {
	if !monthRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("month %q: want YYYY-MM", s)
	}
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Year() < 2000 {
		return time.Time{}, fmt.Errorf("month %q: want YYYY-MM from 2000 on", s)
	}
	return t, nil
}

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func fmtMonth(t time.Time) string { return t.Format("2006-01") }

// resolvePeriod turns a --period value into the month it names, checked against now: a month in the
// future has no billing data yet.
func resolvePeriod(p string, now time.Time) (time.Time, error) {
	current := monthOf(now)
	switch p {
	case PreviousMonth:
		return current.AddDate(0, -1, 0), nil
	case MonthToDate:
		return current, nil
	}
	m, err := parseMonth(p)
	if err != nil {
		return time.Time{}, fmt.Errorf("--period %q: want YYYY-MM (from 2000 on), %s or %s", p, PreviousMonth, MonthToDate)
	}
	if m.After(current) {
		return time.Time{}, fmt.Errorf("--period %s is in the future", p)
	}
	return m, nil
}

// monthRange checks --from/--to (inclusive) and lists the months between.
func monthRange(from, to string, now time.Time) ([]string, error) {
	f, err := parseMonth(from)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	t, err := parseMonth(to)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if f.After(t) {
		return nil, fmt.Errorf("--from %s is after --to %s", from, to)
	}
	if t.After(monthOf(now)) {
		return nil, fmt.Errorf("--to %s is in the future", to)
	}
	var months []string
	for m := f; !m.After(t); m = m.AddDate(0, 1, 0) {
		months = append(months, fmtMonth(m))
	}
	return months, nil
}

// Months lists the calendar months ("YYYY-MM", oldest first) the options cover, with the keywords
// resolved against now (UTC). month-to-date gives the current month.
func (o RunOptions) Months(now time.Time) ([]string, error) {
	if o.Period != "" {
		m, err := resolvePeriod(o.Period, now)
		if err != nil {
			return nil, err
		}
		return []string{fmtMonth(m)}, nil
	}
	return monthRange(o.From, o.To, now)
}
