package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// runAtlas answers usage queries at once, with no invoices, and records
// which org-months were asked about while another call of the same org was
// under way.
type runAtlas struct {
	Atlas
	fail func(org, start string) error

	// The first query waits (10 s at most) for another org's call: the
	// runner must be exporting two orgs at once.
	first    atomic.Bool
	firstOrg string
	other    sync.Once
	second   chan struct{}
	alone    bool

	mu        sync.Mutex
	inFlight  map[string]int
	orgs      int // orgs with a call under way
	maxOrgs   int
	maxPerOrg int
	created   []string // org/start of each query, in call order
}

func (a *runAtlas) enter(org string) func() {
	a.mu.Lock()
	if a.inFlight[org] == 0 {
		a.orgs++
	}
	a.inFlight[org]++
	a.maxOrgs, a.maxPerOrg = max(a.maxOrgs, a.orgs), max(a.maxPerOrg, a.inFlight[org])
	a.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // so calls that could overlap do
	return func() {
		a.mu.Lock()
		a.inFlight[org]--
		if a.inFlight[org] == 0 {
			a.orgs--
		}
		a.mu.Unlock()
	}
}

func (a *runAtlas) CreateUsageQuery(_ context.Context, org string, q atlas.UsageQuery) (string, error) {
	defer a.enter(org)()
	if a.first.CompareAndSwap(false, true) {
		a.mu.Lock()
		a.firstOrg = org
		a.mu.Unlock()
		select {
		case <-a.second:
		case <-time.After(10 * time.Second):
			a.alone = true
		}
	} else {
		a.mu.Lock()
		other := a.firstOrg != "" && org != a.firstOrg
		a.mu.Unlock()
		if other {
			a.other.Do(func() { close(a.second) })
		}
	}
	a.mu.Lock()
	a.created = append(a.created, org+"/"+q.StartDate)
	a.mu.Unlock()
	if a.fail != nil {
		if err := a.fail(org, q.StartDate); err != nil {
			return "", err
		}
	}
	return strings.Repeat("a", 64), nil
}

func (a *runAtlas) GetUsage(_ context.Context, org, _ string, f atlas.Format) (*atlas.Usage, error) {
	defer a.enter(org)()
	body := "Usage Amount\n1.00\n"
	if f == atlas.JSON {
		body = `{"usageDetails":[{"organizationId":"` + org + `","service":"Clusters","usageAmount":1.0,"usageDate":"2024-01-01"}]}`
	}
	return &atlas.Usage{Body: io.NopCloser(strings.NewReader(body))}, nil
}

func (a *runAtlas) ListInvoices(_ context.Context, org string, _ *atlas.InvoiceListOptions) ([]atlas.Invoice, error) {
	defer a.enter(org)()
	return nil, nil
}

// The in-process runner works as the state machine does: orgs at once up to
// its concurrency, each org's months MonthsAtOnce at a time, and a failed
// job stops nothing else.
func TestRunnerOrgsInParallel(t *testing.T) {
	orgs := []string{orgA, orgB, "7a1b2c3d4e5f6a7b8c9d0e1f"}
	a := &runAtlas{inFlight: map[string]int{}, second: make(chan struct{}), fail: func(org, start string) error {
		if org == orgB && start == "2024-02-01" {
			return &atlas.Error{StatusCode: 404, ErrorCode: "RESOURCE_NOT_FOUND"}
		}
		return nil
	}}
	exp := newExporter(t, a)
	exp.Store = sink.NewDir(t.TempDir())
	r := &Runner{Exporter: exp, Concurrency: 2, Sleep: func(context.Context, time.Duration) error { return nil }}
	outcomes, err := r.Run(context.Background(), Request{OrgIDs: orgs, StartDate: "2024-01-01", EndDate: "2024-04-01"})

	var failed *Failed
	if !errors.As(err, &failed) || failed.Summary.Failed != 1 || failed.Summary.Error != AtlasNotFound || !strings.Contains(err.Error(), "org "+orgB+", 2024-02") {
		t.Fatalf("err = %v, want the one failed job", err)
	}
	if len(outcomes) != 9 {
		t.Fatalf("%d outcomes, want 9", len(outcomes))
	}
	for i, o := range outcomes {
		wantOrg, wantMonth := orgs[i/3], fmt.Sprintf("2024-%02d", i%3+1)
		if o.OrgID != wantOrg || o.Period.Label() != wantMonth {
			t.Errorf("outcome %d is %s %s, want %s %s (plan order)", i, o.OrgID, o.Period, wantOrg, wantMonth)
		}
		if o.Failed() != (wantOrg == orgB && wantMonth == "2024-02") || (!o.Failed() && len(o.Objects) != 2) {
			t.Errorf("outcome %d: error %q, %d objects", i, o.Error, len(o.Objects))
		}
	}
	if a.maxPerOrg > MonthsAtOnce || a.maxOrgs > 2 || a.alone {
		t.Errorf("at most %d calls of one org and %d orgs at once (one alone: %v), want at most %d and 2", a.maxPerOrg, a.maxOrgs, a.alone, MonthsAtOnce)
	}
	for _, org := range orgs {
		var months []string
		for _, c := range a.created {
			if o, start, _ := strings.Cut(c, "/"); o == org {
				months = append(months, start)
			}
		}
		slices.Sort(months)
		if !slices.Equal(months, []string{"2024-01-01", "2024-02-01", "2024-03-01"}) {
			t.Errorf("org %s's queries: %v, want each of its months once", org, months)
		}
	}
}

func periodOf(t *testing.T, month string) period.Period {
	t.Helper()
	p, err := period.Parse(month, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTally(t *testing.T) {
	var tl Tally
	month := func(m int) Outcome {
		return Outcome{OrgID: orgA, Period: periodOf(t, fmt.Sprintf("2024-%02d", m))}
	}
	// Added out of order; failures come out in plan order, the first few.
	for rank := 20; rank >= 1; rank-- {
		o := month(rank%12 + 1)
		if rank%2 == 0 {
			o.Error, o.Cause = fmt.Sprintf("Err.%02d", rank), strings.Repeat("é", 400)
		} else {
			o.Objects = []sink.Object{{Bytes: 5, Skipped: rank == 1}, {Bytes: 1}}
			o.Warnings = []Warning{{Name: "Normalize.Value", Message: strings.Repeat("x", 1000)}}
		}
		tl.Add(rank, o)
	}
	s := tl.Summary("s3://b/m")
	if s.Jobs != 20 || s.Succeeded != 10 || s.Failed != 10 || s.Objects != 20 || s.Unchanged != 1 || s.Bytes != 60 {
		t.Errorf("counts %+v", s)
	}
	if len(s.Failures) != Listed || s.Failures[0].Error != "Err.02" || s.Failures[9].Error != "Err.20" || s.Error != "Err.02" {
		t.Errorf("failures %+v", s.Failures)
	}
	if c := s.Failures[0].Cause; len(c) > maxCauseText+3 || !strings.HasSuffix(c, "é...") {
		t.Errorf("listed cause is %d bytes, ends %q: cut on a rune", len(c), c[len(c)-8:])
	}
	if s.Warnings["Normalize.Value"] != 10 || len(s.WarningList) != Listed || len(s.WarningList[0].Message) > maxCauseText+3 {
		t.Errorf("warnings %v, %d listed", s.Warnings, len(s.WarningList))
	}
	if len(s.Cause) > maxRunCause || !strings.HasPrefix(s.Cause, "10 of 20 jobs failed; org "+orgA+", 2024-03: Err.02: ") || !strings.HasSuffix(s.Cause, "; every job's outcome: s3://b/m") || !strings.Contains(s.Cause, "more") {
		t.Errorf("cause (%d bytes): %s", len(s.Cause), s.Cause)
	}
}

// TestFailureReason: a listed failure names its org and month once.
func TestFailureReason(t *testing.T) {
	for _, tt := range []struct{ cause, want string }{
		{"org " + orgA + ", 2024-06: read secret x: refused", "read secret x: refused"},
		{"org " + orgA + ", 2024-06, invoice 65ab: not found", "invoice 65ab: not found"},
		{"org " + orgA + ", 2024-05: another month's", "org " + orgA + ", 2024-05: another month's"},
		{"org " + orgA + ", 2024-066: not this month", "org " + orgA + ", 2024-066: not this month"},
		{"no org\n  on two lines", "no org on two lines"},
	} {
		if got := (Failure{OrgID: orgA, Month: "2024-06", Cause: tt.cause}).Reason(); got != tt.want {
			t.Errorf("Reason of %q = %q, want %q", tt.cause, got, tt.want)
		}
	}
}
