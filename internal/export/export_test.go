package export

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

const (
	orgA = "5f1a2b3c4d5e6f7a8b9c0d1e"
	orgB = "6a1b2c3d4e5f6a7b8c9d0e1f"
)

// countingAtlas fails the test on any network call: the input tests below
// must be refused before one is made.
type countingAtlas struct {
	calls int
	Atlas
}

func (c *countingAtlas) CreateUsageQuery(context.Context, string, atlas.UsageQuery) (string, error) {
	c.calls++
	return strings.Repeat("a", 64), nil
}

func (c *countingAtlas) GetUsage(context.Context, string, string, atlas.Format) (*atlas.Usage, error) {
	c.calls++
	return &atlas.Usage{Processing: true}, nil
}

func newExporter(t *testing.T, a Atlas) *Exporter {
	t.Helper()
	l, err := layout.New(layout.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return &Exporter{
		Atlas: a, Layout: l, Normalizer: normalize.Parquet{}, MaxAttempts: 3,
		Orgs: func(context.Context) ([]string, error) { return []string{orgA, orgB}, nil },
		Now:  func() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) },
	}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		req  string
		want []string // org/month per job; none: refused as Input.Invalid
	}{
		{"empty is previous month for configured orgs", `{}`, []string{orgA + "/2024-06", orgB + "/2024-06"}},
		{"null is empty", `null`, []string{orgA + "/2024-06", orgB + "/2024-06"}},
		{"named month", `{"orgId":"` + orgA + `","period":"2024-02"}`, []string{orgA + "/2024-02"}},
		{"month to date", `{"orgIds":["` + orgB + `"],"period":"month-to-date"}`, []string{orgB + "/2024-07"}},
		{"schedule decides previous", `{"orgId":"` + orgA + `","scheduledTime":"2024-01-01T00:05:00Z"}`, []string{orgA + "/2023-12"}},
		{"a month in the future", `{"orgId":"` + orgA + `","period":"2024-08"}`, nil},
		{"a month before 2000", `{"orgId":"` + orgA + `","period":"1999-12"}`, nil},
		{"dates", `{"orgId":"` + orgA + `","startDate":"2024-01-01","endDate":"2024-03-01"}`, []string{orgA + "/2024-01", orgA + "/2024-02"}},
		{"duplicates folded", `{"orgId":"` + orgA + `","orgIds":["` + orgA + `"],"period":"2024-01"}`, []string{orgA + "/2024-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &countingAtlas{}
			var req Request
			if err := json.Unmarshal([]byte(tt.req), &req); err != nil {
				t.Fatal(err)
			}
			p, err := newExporter(t, a).Plan(context.Background(), req)
			if tt.want == nil {
				if Name(err) != InputInvalid {
					t.Fatalf("err = %v, want %s", err, InputInvalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, j := range p.Jobs {
				got = append(got, j.OrgID+"/"+j.Period.Label())
				if j.MaxAttempts != 3 {
					t.Errorf("MaxAttempts = %d", j.MaxAttempts)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("jobs = %v, want %v", got, tt.want)
			}
			if a.calls != 0 {
				t.Errorf("planning made %d Atlas calls", a.calls)
			}
		})
	}
}

// The schedules' zone decides the month: 07:00 on August 1st in Auckland is
// July 31st in UTC.
func TestPlanInZone(t *testing.T) {
	auckland, err := period.Zone("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	for zone, want := range map[*time.Location]string{nil: "2024-07", auckland: "2024-08"} {
		e := newExporter(t, &countingAtlas{})
		e.Zone = zone
		e.Now = func() time.Time { return time.Date(2024, time.July, 31, 19, 0, 0, 0, time.UTC) }
		var req Request
		if err := json.Unmarshal([]byte(`{"orgId":"`+orgA+`","period":"month-to-date","scheduledTime":"2024-07-31T19:00:00Z"}`), &req); err != nil {
			t.Fatal(err)
		}
		p, err := e.Plan(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Jobs) != 1 || p.Jobs[0].Period.Label() != want {
			t.Errorf("zone %v: jobs %v, want one for %s", zone, p.Jobs, want)
		}
	}
}

// No cap a user meets: a plan is bounded by its orgs (MaxOrgs) and its
// months (period.MaxMonths), not by their product.
func TestPlanBounds(t *testing.T) {
	orgs := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%024x", i+1)
		}
		return ids
	}
	for _, tc := range []struct {
		name   string
		req    Request
		jobs   int
		reason string // in the Input.Invalid refusal
	}{
		{"121 org-months", Request{OrgIDs: orgs(11), StartDate: "2023-08-01", EndDate: "2024-07-01"}, 121, ""},
		{"1,000 orgs x 120 months", Request{OrgIDs: orgs(MaxOrgs), StartDate: "2014-07-01", EndDate: "2024-07-01"}, MaxOrgs * 120, ""},
		{"1,001 orgs", Request{OrgIDs: orgs(MaxOrgs + 1), Period: "2024-06"}, 0, "1001 orgs, more than the 1000 one execution exports"},
		{"121 months", Request{OrgIDs: orgs(1), StartDate: "2014-06-01", EndDate: "2024-07-01"}, 0, "longer than 120 months"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := newExporter(t, &countingAtlas{}).Plan(context.Background(), tc.req)
			if tc.reason != "" {
				if Name(err) != InputInvalid || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("err = %v, want %s saying %q", err, InputInvalid, tc.reason)
				}
				return
			}
			if err != nil || len(p.Jobs) != tc.jobs || len(p.Items()) != len(tc.req.OrgIDs) {
				t.Fatalf("%d jobs in %d items (%v), want %d", len(p.Jobs), len(p.Items()), err, tc.jobs)
			}
		})
	}
}

func TestNextWait(t *testing.T) {
	want := []time.Duration{5, 10, 20, 40, 60, 60}
	for polls, w := range want {
		if got := NextWait(polls); got != w*time.Second {
			t.Errorf("NextWait(%d) = %v, want %v", polls, got, w*time.Second)
		}
	}
	// A 120 s query is seen ready at the fifth poll: 5+10+20+40+60 = 135 s.
	var at time.Duration
	polls := 0
	for at < 120*time.Second {
		at += NextWait(polls)
		polls++
	}
	if polls > 6 {
		t.Errorf("a 120 s query takes %d polls", polls)
	}
}

func TestPollExhausted(t *testing.T) {
	a := &countingAtlas{}
	exp := newExporter(t, a)
	j := Job{OrgID: orgA, Period: period.Month(2024, time.June), MaxAttempts: 3}
	j, err := exp.Submit(context.Background(), j)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if j, err = exp.Poll(context.Background(), j); err != nil {
			t.Fatalf("poll %d: %v", i+1, err)
		}
		if j.Status != StatusProcessing || j.Attempt != i+1 {
			t.Fatalf("poll %d: status %s attempt %d", i+1, j.Status, j.Attempt)
		}
	}
	_, err = exp.Poll(context.Background(), j)
	if Name(err) != PollAttemptsExhausted || !strings.Contains(err.Error(), orgA) {
		t.Fatalf("err = %v (%s), want %s naming the org", err, Name(err), PollAttemptsExhausted)
	}
	if a.calls != 4 { // one submit, three polls
		t.Errorf("calls = %d, want 4", a.calls)
	}
}

// A job whose usage object is not where Poll writes it is refused: the
// manifest lists only what the export wrote.
func TestFetchInvoicesRefusesForeignUsageObject(t *testing.T) {
	a := &countingAtlas{}
	exp := newExporter(t, a)
	j := Job{OrgID: orgA, Period: period.Month(2024, time.June), MaxAttempts: 3,
		Usage: &sink.Object{Key: "somewhere/else.csv"}}
	_, err := exp.FetchInvoices(context.Background(), j)
	if Name(err) != InputInvalid || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("err = %v (%s)", err, Name(err))
	}
	if a.calls != 0 {
		t.Errorf("%d Atlas calls", a.calls)
	}
}
