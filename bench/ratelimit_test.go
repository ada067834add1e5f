//go:build bench

package bench

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
	"github.com/atlas-billing-export/atlas-billing-export/internal/config"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/function"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
)

// The rate-limit run: an export of rateOrgs orgs x rateMonths months (FOCUS
// reports on) through the in-process runner (the command line's run), every
// org at once, against a simulator that enforces Atlas's per-org bucket
// (500 requests, 100 more per 60 s), each bucket empty at the start (another
// client of the org just spent it: every request must wait for its refill).
// Time is scaled: the runner's waits, the simulator's query and report
// processing times and the buckets' clock all go rateScale times faster.
// (Retry-After stays whole real seconds, so each 429 waits at least 1 s.)
const (
	rateOrgs   = 200
	rateMonths = 12
	rateScale  = 2
	// The simulator's processing times, on its clock: a usage query, then
	// a FOCUS report, each ready at the export's first check (5 s).
	rateQuery, rateReport = 5 * time.Second, 5 * time.Second
)

type rateRow struct {
	Orgs, Months, Jobs int
	Failed, Escaped    int // failed jobs; of them, failed by a 429
	Admitted, Refused  int // requests the buckets let through, and 429s they answered
	SlowestOrg         int // requests of the org that made the most
	Elapsed            time.Duration
	RateFloor, CEFloor time.Duration // real time
	Floor              time.Duration
	Ratio              float64
	AllAtOnce          time.Duration // the floor were every month of an org run at once
}

func benchRateLimit(t *testing.T) rateRow {
	orgs := make([]atlassim.Org, rateOrgs)
	ids := make([]string, rateOrgs)
	for i := range orgs {
		ids[i] = fmt.Sprintf("%024x", 0x5f0000+i)
		orgs[i] = atlassim.Org{ID: ids[i], Name: fmt.Sprintf("Org %d", i)}
	}
	sim, base := atlassimtest.Start(t, atlassim.Config{
		Orgs: orgs, Now: fixedNow, Logger: discard, InvoiceRows: 20, FirstMonth: "2023-01",
		ProcessingTime: rateQuery / rateScale, ReportProcessingTime: rateReport / rateScale,
		RateLimit: &atlassim.RateLimit{Scale: rateScale, Drained: true},
	})
	exp, err := function.Build(config.Config{
		Dir: t.TempDir(), Credentials: secret.Credentials{ClientID: atlassim.DefaultClientID, ClientSecret: atlassim.DefaultClientSecret},
		BaseURL: base, OrgIDs: ids, MaxPollAttempts: 40, FocusReports: true,
	}, aws.Config{}, func(string) string { return "" }, "bench", slog.New(slog.DiscardHandler), normalize.Parquet{})
	if err != nil {
		t.Fatal(err)
	}
	exp.Now = fixedNow
	r := &export.Runner{Exporter: exp, Concurrency: rateOrgs, Sleep: func(ctx context.Context, d time.Duration) error {
		return export.Sleep(ctx, d/rateScale)
	}}
	start := time.Now()
	outcomes, err := r.Run(t.Context(), export.Request{OrgIDs: ids, StartDate: "2023-07-01", EndDate: "2024-07-01"})
	row := rateRow{Orgs: rateOrgs, Months: rateMonths, Jobs: len(outcomes), Elapsed: time.Since(start)}
	if err != nil && row.Jobs == 0 {
		t.Fatalf("run: %v", err)
	}
	for _, o := range outcomes {
		if o.Failed() {
			row.Failed++
			if o.Error == export.AtlasRateLimited {
				row.Escaped++
			}
		}
	}
	for _, id := range ids {
		a, n := sim.RateCounts(id)
		row.Admitted += a
		row.Refused += n
		row.SlowestOrg = max(row.SlowestOrg, a)
	}
	// The floor: an org's requests each need a token of its (empty) bucket,
	// refilled at RateRefill per RatePer; and the simulator makes each month
	// wait for its usage query and its FOCUS report, MonthsAtOnce months at
	// a time (ceil(12/2) = 6 rounds). Every month at once would be bound by
	// the requests and one month's processing alone.
	refillPerSec := float64(atlassim.RateRefill) / atlassim.RatePer.Seconds() * rateScale
	row.RateFloor = time.Duration(float64(row.SlowestOrg) / refillPerSec * float64(time.Second))
	month := (rateQuery + rateReport) / rateScale
	rounds := (rateMonths + export.MonthsAtOnce - 1) / export.MonthsAtOnce
	row.CEFloor = time.Duration(rounds) * month
	row.Floor = max(row.RateFloor, row.CEFloor)
	row.AllAtOnce = max(row.RateFloor, month)
	row.Ratio = row.Elapsed.Seconds() / row.Floor.Seconds()
	if row.Jobs != rateOrgs*rateMonths {
		t.Errorf("%d jobs, want %d", row.Jobs, rateOrgs*rateMonths)
	}
	return row
}
