package period

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	ref := time.Date(2024, time.March, 1, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		spec    string
		want    string
		wantErr string
	}{
		{spec: "", want: "2024-02"},
		{spec: "previous-month", want: "2024-02"},
		{spec: "month-to-date", want: "2024-03"},
		{spec: "2023-12", want: "2023-12"},
		{spec: "2023-13", wantErr: "want YYYY-MM"},
		{spec: "2023-1", wantErr: "want YYYY-MM"},
		{spec: "last-month", wantErr: "want YYYY-MM"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := Parse(tt.spec, ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.spec, err)
			}
			if got.Label() != tt.want {
				t.Errorf("Parse(%q) = %s, want %s", tt.spec, got, tt.want)
			}
		})
	}
}

func TestPreviousMonthAcrossYear(t *testing.T) {
	// A schedule that fires just after midnight on January 1st exports December.
	ref := time.Date(2025, time.January, 1, 0, 5, 0, 0, time.UTC)
	got, err := Parse(PreviousMonth, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.StartDate() != "2024-12-01" || got.EndDate() != "2025-01-01" {
		t.Errorf("got %s..%s", got.StartDate(), got.EndDate())
	}
}

func TestDates(t *testing.T) {
	tests := []struct {
		start, end string
		want       []string
		wantErr    string
	}{
		{start: "2024-01-01", end: "2024-04-01", want: []string{"2024-01", "2024-02", "2024-03"}},
		{start: "2024-11-01", end: "2025-01-01", want: []string{"2024-11", "2024-12"}},
		{start: "2024-01-02", end: "2024-04-01", wantErr: "first day of a month"},
		{start: "2024-01-01", end: "2024-04-15", wantErr: "first day of a month"},
		{start: "2024-04-01", end: "2024-04-01", wantErr: "must be after"},
		{start: "2024-05-01", end: "2024-04-01", wantErr: "must be after"},
		{start: "2024/01/01", end: "2024-04-01", wantErr: "want a date"},
		{start: "1900-01-01", end: "2100-01-01", wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.start+"_"+tt.end, func(t *testing.T) {
			got, err := Dates(tt.start, tt.end)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].Label() != tt.want[i] {
					t.Errorf("month %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestMonths(t *testing.T) {
	got, err := Months("2024-04", "2024-06")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Label() != "2024-04" || got[2].Label() != "2024-06" {
		t.Errorf("got %v", got)
	}
	if _, err := Months("2024-06", "2024-04"); err == nil {
		t.Error("reversed range accepted")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	p := Month(2024, time.June)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"}` {
		t.Fatalf("marshal = %s", b)
	}
	var back Period
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != p {
		t.Errorf("round trip = %v, want %v", back, p)
	}
	for _, bad := range []string{
		`{"start":"2024-06-02"}`,
		`{"start":"2024-06-01","end":"2024-08-01"}`,
		`{"start":"2024-06-01","month":"2024-07"}`,
		`{}`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
	// A request's month where a job's period goes: say what a period is.
	err = json.Unmarshal([]byte(`"2024-06"`), &back)
	if want := `period: want {"start", "end", "month"} as plan gives it, not a string`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Unmarshal(\"2024-06\") = %v, want %q", err, want)
	}
}

// A schedule's time, converted to its zone, decides the month: on the 1st
// east of UTC and on the last day west of it, UTC's month is another.
func TestParseInZone(t *testing.T) {
	tests := []struct {
		zone, scheduled string // the scheduled time as the scheduler sends it (UTC)
		spec, want      string
	}{
		// 07:00 on Aug 1st in Auckland (NZST, +12) is 19:00 on Jul 31st UTC.
		{zone: "Pacific/Auckland", scheduled: "2024-07-31T19:00:00Z", spec: MonthToDate, want: "2024-08"},
		{zone: "Pacific/Auckland", scheduled: "2024-07-31T19:00:00Z", spec: PreviousMonth, want: "2024-07"},
		// 06:00 on Jan 1st in Auckland (NZDT, +13) is 17:00 on Dec 31st UTC.
		{zone: "Pacific/Auckland", scheduled: "2024-12-31T17:00:00Z", spec: PreviousMonth, want: "2024-12"},
		// 07:00 on Jul 31st in Auckland (last day) is 19:00 on Jul 30th UTC.
		{zone: "Pacific/Auckland", scheduled: "2024-07-30T19:00:00Z", spec: MonthToDate, want: "2024-07"},
		// 20:00 on Jul 31st in Los Angeles (PDT, -7) is 03:00 on Aug 1st UTC.
		{zone: "America/Los_Angeles", scheduled: "2024-08-01T03:00:00Z", spec: MonthToDate, want: "2024-07"},
		{zone: "America/Los_Angeles", scheduled: "2024-08-01T03:00:00Z", spec: PreviousMonth, want: "2024-06"},
		// 22:00 on Feb 29th (PST, -8) is 06:00 on Mar 1st UTC.
		{zone: "America/Los_Angeles", scheduled: "2024-03-01T06:00:00Z", spec: MonthToDate, want: "2024-02"},
		// 00:30 on Mar 1st in Los Angeles (the 1st) is 08:30 UTC, the same day.
		{zone: "America/Los_Angeles", scheduled: "2024-03-01T08:30:00Z", spec: PreviousMonth, want: "2024-02"},
		{zone: "", scheduled: "2024-08-01T03:00:00Z", spec: MonthToDate, want: "2024-08"},
		{zone: "UTC", scheduled: "2024-07-31T19:00:00Z", spec: MonthToDate, want: "2024-07"},
	}
	for _, tt := range tests {
		t.Run(tt.zone+"/"+tt.scheduled+"/"+tt.spec, func(t *testing.T) {
			zone, err := Zone(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339, tt.scheduled)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(tt.spec, at.In(zone))
			if err != nil {
				t.Fatal(err)
			}
			if got.Label() != tt.want {
				t.Errorf("Parse(%s, %s in %s) = %s, want %s", tt.spec, tt.scheduled, tt.zone, got, tt.want)
			}
			if got.Start.Location() != time.UTC {
				t.Errorf("period starts in %v, want UTC (Atlas's months)", got.Start.Location())
			}
		})
	}
}

func TestZone(t *testing.T) {
	for name, want := range map[string]string{"": "UTC", "UTC": "UTC", "Europe/Paris": "Europe/Paris"} {
		if loc, err := Zone(name); err != nil || loc.String() != want {
			t.Errorf("Zone(%q) = %v, %v; want %s", name, loc, err, want)
		}
	}
	for _, bad := range []string{"Local", "Mars/Olympus", "../../etc/passwd", "utc+2"} {
		if _, err := Zone(bad); err == nil || !strings.Contains(err.Error(), "IANA") {
			t.Errorf("Zone(%q) error = %v, want a refusal naming IANA", bad, err)
		}
	}
}
