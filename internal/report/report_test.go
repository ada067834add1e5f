package report

import (
	"context"
	"io"
	"strings"
	"testing"
)

func opener(files map[string]string) Opener {
	return func(_ context.Context, key string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(files[key])), nil
	}
}

func TestTotals(t *testing.T) {
	open := opener(map[string]string{
		"june.csv": "Invoice ID,Service,Usage Amount\n" +
			"1,Clusters,0.10\n2,Clusters,0.20\n3,\"Data Transfer\",1018.39\n4,Credits,-25.00\n",
		"july.csv": "Service,Usage Amount\nClusters, 1.5\n",
		// A normalized file, as the export reads back.
		"august.csv": "invoice_id,service,usage_date,usage_amount\n1,Storage,2024-08-01,2.00\n2,,2024-08-02,0.25\n",
	})
	got, err := Totals(context.Background(), []Usage{{"june.csv", "2024-06"}, {"july.csv", "2024-07"}, {"august.csv", "2024-08"}}, open)
	if err != nil {
		t.Fatal(err)
	}
	// 0.10 + 0.20 is exactly 0.30 here: no float on the way.
	want := []Total{
		{"2024-06", "Clusters", "0.30"},
		{"2024-06", "Credits", "-25.00"},
		{"2024-06", "Data Transfer", "1018.39"},
		{"2024-07", "Clusters", "1.50"},
		{"2024-08", "", "0.25"},
		{"2024-08", "Storage", "2.00"},
	}
	if len(got) != len(want) {
		t.Fatalf("totals = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("total %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestTotalsRefusesBadData(t *testing.T) {
	tests := map[string]string{
		"not a decimal":                       "Service,Usage Amount\nClusters,1.0e400\n",
		"no Service and Usage Amount columns": "A,B\n1,2\n",
		"too few fields":                      "Service,Usage Amount\nClusters\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Totals(context.Background(), []Usage{{"x.csv", "2024-06"}}, opener(map[string]string{"x.csv": body}))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want it to say %q", err, name)
			}
		})
	}
}
