// Package period turns the ways a user names a billing period ("2024-06",
// "previous-month", "month-to-date", explicit dates) into whole calendar months
// in UTC, the unit Atlas bills and the Cost Explorer queries by.
package period

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	// The zone database in the binary: Lambda's provided.al2023 does not
	// promise /usr/share/zoneinfo, and a schedule's zone must load anyway.
	_ "time/tzdata"
)

const (
	dateLayout  = "2006-01-02"
	monthLayout = "2006-01"

	// PreviousMonth is the last closed month before the reference time.
	PreviousMonth = "previous-month"
	// MonthToDate is the month of the reference time, still accruing.
	MonthToDate = "month-to-date"

	// MaxMonths bounds a range so a typo such as 1024-01 cannot fan out into
	// thousands of queries.
	MaxMonths = 120
)

// Period is one calendar month: Start is its first day, End the first day of
// the next month (exclusive), both at midnight UTC.
type Period struct {
	Start time.Time
	End   time.Time
}

// Month returns the period of the given year and month.
func Month(year int, month time.Month) Period {
	start := time.Date(year, month, 1, 0, 0, 0, 0, time.UTC)
	return Period{Start: start, End: start.AddDate(0, 1, 0)}
}

// Of returns the month that contains t (in UTC).
func Of(t time.Time) Period {
	t = t.UTC()
	return Month(t.Year(), t.Month())
}

// Label is the month as YYYY-MM, the value of the billing_month partition.
func (p Period) Label() string { return p.Start.Format(monthLayout) }

// StartDate and EndDate are the dates the Cost Explorer API takes.
func (p Period) StartDate() string { return p.Start.Format(dateLayout) }
func (p Period) EndDate() string   { return p.End.Format(dateLayout) }

func (p Period) String() string { return p.Label() }

type wire struct {
	Start string `json:"start"`
	End   string `json:"end"`
	Month string `json:"month"`
}

// MarshalJSON writes {"start":"2024-06-01","end":"2024-07-01","month":"2024-06"}.
func (p Period) MarshalJSON() ([]byte, error) {
	return json.Marshal(wire{Start: p.StartDate(), End: p.EndDate(), Month: p.Label()})
}

// UnmarshalJSON reads what MarshalJSON writes and checks it is one whole month.
func (p *Period) UnmarshalJSON(b []byte) error {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field == "" {
			// A request's "2024-06" given where a job's period goes.
			return fmt.Errorf(`period: want {"start", "end", "month"} as plan gives it, not a %.20s`, typ.Value)
		}
		return fmt.Errorf("period: %.80s", err.Error())
	}
	var (
		got Period
		err error
	)
	switch {
	case w.Start != "":
		got, err = monthFromDate("period.start", w.Start)
	case w.Month != "":
		got, err = parseMonth(w.Month)
	default:
		return fmt.Errorf("period: start or month is required")
	}
	if err != nil {
		return err
	}
	if w.End != "" && w.End != got.EndDate() {
		return fmt.Errorf("period: end %.40q is not the month after start %q", w.End, got.StartDate())
	}
	if w.Month != "" && w.Month != got.Label() {
		return fmt.Errorf("period: month %.40q does not match start %q", w.Month, got.StartDate())
	}
	*p = got
	return nil
}

// Parse reads a named period relative to ref: "YYYY-MM", "previous-month"
// (the default when spec is empty) or "month-to-date". Those two count from
// the month ref's date falls in on the calendar of ref's own location, so
// give ref in the schedule's time zone (ref.In(zone)): 07:00 on August 1st
// in Auckland is still July 31st in UTC, but its month to date is August.
func Parse(spec string, ref time.Time) (Period, error) {
	current := Month(ref.Year(), ref.Month())
	switch strings.TrimSpace(spec) {
	case "", PreviousMonth:
		return current.Prev(), nil
	case MonthToDate:
		return current, nil
	default:
		return parseMonth(spec)
	}
}

// Zone loads the IANA time zone name ("" is UTC) that months are counted in.
func Zone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	// "Local" is whatever the machine says, not a setting.
	if err != nil || name == "Local" {
		return nil, fmt.Errorf("time zone %.40q: want an IANA name such as UTC or Europe/Paris", name)
	}
	return loc, nil
}

// Prev is the month before p.
func (p Period) Prev() Period { return Of(p.Start.AddDate(0, -1, 0)) }

// Next is the month after p.
func (p Period) Next() Period { return Of(p.End) }

// Dates returns every month from start (inclusive) to end (exclusive), both
// dates "YYYY-MM-DD" on the first of a month, as the Cost Explorer takes them.
func Dates(start, end string) ([]Period, error) {
	first, err := monthFromDate("startDate", start)
	if err != nil {
		return nil, err
	}
	last, err := monthFromDate("endDate", end)
	if err != nil {
		return nil, err
	}
	if !last.Start.After(first.Start) {
		return nil, fmt.Errorf("endDate %s must be after startDate %s", end, start)
	}
	return between(first, last.Prev())
}

// Months returns every month from "YYYY-MM" from to "YYYY-MM" to, inclusive.
func Months(from, to string) ([]Period, error) {
	first, err := parseMonth(from)
	if err != nil {
		return nil, err
	}
	last, err := parseMonth(to)
	if err != nil {
		return nil, err
	}
	if last.Start.Before(first.Start) {
		return nil, fmt.Errorf("range end %s is before its start %s", to, from)
	}
	return between(first, last)
}

func between(first, last Period) ([]Period, error) {
	var out []Period
	for p := first; !p.Start.After(last.Start); p = p.Next() {
		if len(out) == MaxMonths {
			return nil, fmt.Errorf("range %s..%s is longer than %d months", first, last, MaxMonths)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseMonth(s string) (Period, error) {
	t, err := time.Parse(monthLayout, s)
	if err != nil || len(s) != len(monthLayout) {
		return Period{}, fmt.Errorf("period %.40q: want YYYY-MM, %s or %s", s, PreviousMonth, MonthToDate)
	}
	return Of(t), nil
}

func monthFromDate(field, s string) (Period, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil || len(s) != len(dateLayout) {
		return Period{}, fmt.Errorf("%s %.40q: want a date YYYY-MM-DD", field, s)
	}
	if t.Day() != 1 {
		return Period{}, fmt.Errorf("%s %s: must be the first day of a month", field, s)
	}
	return Of(t), nil
}
