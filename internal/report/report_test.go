package report

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

func TestSummarize(t *testing.T) {
	files := map[string]string{
		"p/usage/org_id=a/billing_month=2024-06/usage.csv": "Invoice ID,Service,Usage Amount\n" +
			"1,Clusters,0.10\n2,Clusters,0.20\n3,\"Data Transfer\",1018.39\n4,Credits,-25.00\n",
	}
	open := func(_ context.Context, key string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(files[key])), nil
	}
	results := []export.Result{{
		Period: period.Month(2024, time.June),
		Objects: []sink.Object{
			{Key: "p/usage/org_id=a/billing_month=2024-06/usage.csv", Bytes: 2048, Rows: 4},
			{Key: "p/invoices/org_id=a/billing_month=2024-06/invoice_id=b.csv", Bytes: 3 << 20, Rows: 200, Skipped: true},
		},
	}}
	s, err := Summarize(context.Background(), results, open)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Clusters": "0.30", "Data Transfer": "1018.39", "Credits": "-25.00"}
	if len(s.Totals) != len(want) {
		t.Fatalf("totals = %v", s.Totals)
	}
	for _, tot := range s.Totals {
		// 0.10 + 0.20 is exactly 0.30 here: no float on the way.
		if got := tot.Amount.FloatString(2); got != want[tot.Service] || tot.Month != "2024-06" {
			t.Errorf("%s %s = %s, want %s", tot.Month, tot.Service, got, want[tot.Service])
		}
	}
	var out bytes.Buffer
	if err := s.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"usage.csv", "2.0 KiB", "3.0 MiB", "unchanged", "2 files", "993.69"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, out.String())
		}
	}
}

func TestSummarizeBadAmount(t *testing.T) {
	open := func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("Service,Usage Amount\nClusters,1.0e400x\n")), nil
	}
	_, err := Summarize(context.Background(), []export.Result{{Objects: []sink.Object{{Key: "p/usage/x.csv"}}}}, open)
	if err == nil || !strings.Contains(err.Error(), "not a decimal") {
		t.Fatalf("err = %v", err)
	}
}
