package period

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// checkMonth fails unless p is one whole calendar month in UTC.
func checkMonth(t *testing.T, what string, p Period) {
	t.Helper()
	s := p.Start
	if s.Location() != time.UTC || s.Day() != 1 || s.Hour() != 0 || s.Minute() != 0 || s.Second() != 0 || s.Nanosecond() != 0 {
		t.Fatalf("%s: period starts at %v", what, s)
	}
	if !p.End.Equal(s.AddDate(0, 1, 0)) || p.End.Location() != time.UTC {
		t.Fatalf("%s: period %v..%v is not one month", what, s, p.End)
	}
}

// checkRange fails unless ps are consecutive whole months, no more than
// MaxMonths.
func checkRange(t *testing.T, what string, ps []Period) {
	t.Helper()
	if len(ps) == 0 || len(ps) > MaxMonths {
		t.Fatalf("%s: %d months", what, len(ps))
	}
	for i, p := range ps {
		checkMonth(t, what, p)
		if i > 0 && !p.Start.Equal(ps[i-1].End) {
			t.Fatalf("%s: month %d starts at %v, not where %v ends", what, i, p.Start, ps[i-1])
		}
	}
}

func checkErr(t *testing.T, what string, err error) {
	t.Helper()
	if len(err.Error()) > 300 { // 40 quoted bytes, each up to 4 when escaped
		t.Fatalf("%s: error is %d bytes long", what, len(err.Error()))
	}
}

// FuzzPeriod feeds every way a user names a period (Parse, Dates, Months and
// the JSON a job carries) with the same two strings and a reference time.
func FuzzPeriod(f *testing.F) {
	ref := time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC).Unix()
	for _, s := range [][2]string{
		{"2024-06", "2024-08"}, {"", "previous-month"}, {"month-to-date", " 2024-06"},
		{"2024-01-01", "2024-03-01"}, {"2024-01-15", "2024-03-01"}, {"2024-03-01", "2024-01-01"},
		{"0000-01-01", "9999-12-01"}, {"1900-02", "2010-01"}, {"2024-13", "2024-00"}, {"2024-6", "24-06"},
		{"2024-06-01T00:00:00Z", "+2024-06"}, {"2024-02-30", "２０２４-06"},
	} {
		f.Add(s[0], s[1], ref)
	}
	f.Add("previous-month", "", int64(-62135596800)) // 0001-01-01: its previous month is in year 0
	f.Add("month-to-date", "", int64(253402300799))  // 9999-12-31
	f.Fuzz(func(t *testing.T, a, b string, unix int64) {
		at := time.Unix(unix, 0)
		for _, s := range []string{a, b} {
			p, err := Parse(s, at)
			if err != nil {
				checkErr(t, "Parse", err)
				continue
			}
			checkMonth(t, "Parse", p)
			named := map[string]bool{"": true, PreviousMonth: true, MonthToDate: true}
			if !named[strings.TrimSpace(s)] && p.Label() != s {
				t.Fatalf("Parse(%q) = %s", s, p.Label())
			}
		}
		if ps, err := Dates(a, b); err != nil {
			checkErr(t, "Dates", err)
		} else {
			checkRange(t, "Dates", ps)
			if ps[0].StartDate() != a || ps[len(ps)-1].EndDate() != b {
				t.Fatalf("Dates(%q, %q) = %v..%v", a, b, ps[0], ps[len(ps)-1])
			}
		}
		if ps, err := Months(a, b); err != nil {
			checkErr(t, "Months", err)
		} else {
			checkRange(t, "Months", ps)
			if ps[0].Label() != a || ps[len(ps)-1].Label() != b {
				t.Fatalf("Months(%q, %q) = %v..%v", a, b, ps[0], ps[len(ps)-1])
			}
		}
		// A job's period as JSON: accepted means one month, which survives a
		// round trip.
		for _, w := range []wire{{Start: a, End: b}, {Month: a}, {Start: a, Month: b}} {
			raw, _ := json.Marshal(w)
			var p Period
			if err := json.Unmarshal(raw, &p); err != nil {
				checkErr(t, "UnmarshalJSON", err)
				continue
			}
			checkMonth(t, "UnmarshalJSON", p)
			again, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var back Period
			if err := json.Unmarshal(again, &back); err != nil || back != p {
				t.Fatalf("%s round trip: %v, %v", again, back, err)
			}
		}
	})
}
