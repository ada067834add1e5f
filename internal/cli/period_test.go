package cli

import (
	"strings"
	"testing"
	"time"
)

func TestRunOptionsMonths(t *testing.T) {
	tests := []struct {
		name    string
		opt     RunOptions
		now     time.Time
		want    string
		wantErr string
	}{
		{name: "previous month", opt: RunOptions{Period: PreviousMonth}, now: fixedNow, want: "2024-06"},
		{name: "previous month in January", opt: RunOptions{Period: PreviousMonth}, now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), want: "2024-12"},
		{name: "previous month uses UTC", opt: RunOptions{Period: PreviousMonth},
			now: time.Date(2024, 8, 1, 1, 0, 0, 0, time.FixedZone("UTC+2", 2*3600)), want: "2024-06"},
		{name: "month to date", opt: RunOptions{Period: MonthToDate}, now: fixedNow, want: "2024-07"},
		{name: "a month", opt: RunOptions{Period: "2024-02"}, now: fixedNow, want: "2024-02"},
		{name: "the current month", opt: RunOptions{Period: "2024-07"}, now: fixedNow, want: "2024-07"},
		{name: "range over a year end", opt: RunOptions{From: "2023-11", To: "2024-02"}, now: fixedNow, want: "2023-11,2023-12,2024-01,2024-02"},
		{name: "range of one", opt: RunOptions{From: "2024-05", To: "2024-05"}, now: fixedNow, want: "2024-05"},
		{name: "future month", opt: RunOptions{Period: "2024-08"}, now: fixedNow, wantErr: "in the future"},
		{name: "bad month", opt: RunOptions{Period: "2024-13"}, now: fixedNow, wantErr: "want YYYY-MM"},
		{name: "not a month", opt: RunOptions{Period: "June"}, now: fixedNow, wantErr: "want YYYY-MM"},
		{name: "day given", opt: RunOptions{Period: "2024-06-01"}, now: fixedNow, wantErr: "want YYYY-MM"},
		{name: "from after to", opt: RunOptions{From: "2024-06", To: "2024-04"}, now: fixedNow, wantErr: "--from 2024-06 is after --to 2024-04"},
		{name: "to in the future", opt: RunOptions{From: "2024-06", To: "2024-09"}, now: fixedNow, wantErr: "--to 2024-09 is in the future"},
		{name: "bad from", opt: RunOptions{From: "24-06", To: "2024-09"}, now: fixedNow, wantErr: "--from"},
		{name: "before 2000", opt: RunOptions{Period: "1999-12"}, now: fixedNow, wantErr: "2000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opt.Months(tt.now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Months() error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("Months() = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
