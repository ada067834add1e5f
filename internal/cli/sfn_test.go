package cli

import (
	"reflect"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

func TestOutputOf(t *testing.T) {
	// The state machine's summary: a job that wrote two objects with a warning, a failed one that wrote none.
	const output = `{"jobs":2,"results":[
		{"orgId":"5f1a2b3c4d5e6f7a8b9c0d1e","period":{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"},"objects":[
			{"bucket":"lake","key":"p/usage/u.csv","bytes":2048,"sha256":"ab","rows":100,"skipped":false},
			{"bucket":"lake","key":"p/invoices/i.csv","bytes":900,"rows":200,"skipped":true}],
		 "warnings":[{"name":"Focus.Unavailable","message":"no FOCUS report","orgId":"5f1a2b3c4d5e6f7a8b9c0d1e","period":"2024-06","step":"focus-submit","invoiceId":"65ab0c1d2e3f4a5b6c7d8e9f"}]},
		{"orgId":"65ab12cd34ef56ab78cd90ef","period":{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"},"objects":[],
		 "error":"Atlas.NotFound","cause":"org 65ab12cd34ef56ab78cd90ef: no such org"}]}`
	want := []sink.Object{
		{Bucket: "lake", Key: "p/usage/u.csv", Bytes: 2048, SHA256: "ab", Rows: 100},
		{Bucket: "lake", Key: "p/invoices/i.csv", Bytes: 900, Rows: 200, Skipped: true},
	}
	wantWarnings := []export.Warning{{Name: export.FocusUnavailable, Message: "no FOCUS report", OrgID: "5f1a2b3c4d5e6f7a8b9c0d1e",
		Period: "2024-06", Step: "focus-submit", InvoiceID: "65ab0c1d2e3f4a5b6c7d8e9f"}}
	if got, warnings := outputOf(output); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(warnings, wantWarnings) {
		t.Fatalf("outputOf = %+v, %+v\nwant %+v, %+v", got, warnings, want, wantWarnings)
	}
	for _, s := range []string{"", "null", "{not json", `{"a":1}`} {
		if got, warnings := outputOf(s); len(got) != 0 || len(warnings) != 0 {
			t.Errorf("outputOf(%q) = %+v, %+v, want none", s, got, warnings)
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
