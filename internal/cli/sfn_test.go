package cli

import (
	"reflect"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
)

func TestSummaryIn(t *testing.T) {
	// The state machine's output: its summary.
	const output = `{"execution":"abx-2024-06-1","orgs":2,"months":1,"jobs":2,"succeeded":2,"failed":0,"objects":16,"unchanged":3,"bytes":2048,
		"failures":[],"warnings":{"Focus.Unavailable":1},
		"warningList":[{"name":"Focus.Unavailable","message":"no FOCUS report","orgId":"5f1a2b3c4d5e6f7a8b9c0d1e","period":"2024-06","step":"focus-submit","invoiceId":"65ab0c1d2e3f4a5b6c7d8e9f"}],
		"bucket":"lake","outcomes":"p/_runs/abx-2024-06-1/outcomes.jsonl","summary":"p/_runs/abx-2024-06-1/summary.json"}`
	got := summaryIn(output)
	if got == nil || got.Jobs != 2 || got.Objects != 16 || got.Unchanged != 3 || got.Bytes != 2048 || got.Outcomes != "p/_runs/abx-2024-06-1/outcomes.jsonl" {
		t.Fatalf("summaryIn = %+v", got)
	}
	var b strings.Builder
	writeExecutionSummary(&b, &execution{Name: "abx-2024-06-1", Month: "2024-06", Summary: got})
	if want := "execution abx-2024-06-1 (2024-06): SUCCEEDED: 2 org(s) x 1 month(s), 16 objects (3 unchanged), 2.0 KiB, 1 warning(s)\n" +
		"  every object and warning: s3://lake/p/_runs/abx-2024-06-1/outcomes.jsonl\n" +
		"WARNINGS: 1\n  org 5f1a2b3c4d5e6f7a8b9c0d1e 2024-06 invoice 65ab0c1d2e3f4a5b6c7d8e9f (focus-submit): Focus.Unavailable: no FOCUS report\n"; b.String() != want {
		t.Errorf("printed %q, want %q", b.String(), want)
	}
	for _, s := range []string{"", "null", "{not json", `{"a":1}`} {
		if got := summaryIn(s); got != nil {
			t.Errorf("summaryIn(%q) = %+v, want none", s, got)
		}
	}
}

// A run's outcomes give backfill --retry-failed its months and orgs: the failed jobs only.
func TestReadFailed(t *testing.T) {
	ends := map[string]string{"2024-04": "2024-05", "2024-05": "2024-06", "2024-06": "2024-07"}
	line := func(org, month, errName string) string {
		return `{"orgId":"` + org + `","period":{"start":"` + month + `-01","end":"` + ends[month] + `-01","month":"` + month + `"},"objects":[],"error":"` + errName + `"}`
	}
	const a, b = "5f1a2b3c4d5e6f7a8b9c0d1e", "65ab12cd34ef56ab78cd90ef"
	outcomes := strings.Join([]string{
		line(a, "2024-05", ""), line(b, "2024-06", "Atlas.NotFound"), line(a, "2024-06", "Export.NoResult"),
		line(b, "2024-05", "Atlas.ServerError"), line(a, "2024-04", ""), line(b, "2024-06", "Atlas.NotFound"),
	}, "\n")
	got, err := readFailed(strings.NewReader(outcomes))
	want := []monthJobs{{Month: "2024-05", Orgs: []string{b}}, {Month: "2024-06", Orgs: []string{b, a}}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("readFailed = %+v, %v; want %+v", got, err, want)
	}
	for name, bad := range map[string]string{
		"not JSON lines": "[1,2]",
		"a bad org":      line("../x", "2024-06", "E"),
	} {
		if _, err := readFailed(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDefaultExecutionName(t *testing.T) {
	if got := defaultExecutionName("2024-06", "2024-06", fixedNow); got != "abx-2024-06-1721037600" || !executionName.MatchString(got) {
		t.Errorf("name = %q", got)
	}
	if got := defaultExecutionName("2024-07", period.MonthToDate, fixedNow); got != "abx-2024-07-mtd-1721037600" {
		t.Errorf("month-to-date name = %q", got)
	}
}
