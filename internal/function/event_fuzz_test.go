package function

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// The fuzz targets below take what a person, a schedule or the state machine
// can send a function. The seeds in f.Add and testdata/fuzz run in every
// `go test`; `make fuzz` explores from them.

const (
	fuzzOrg   = "5f1a2b3c4d5e6f7a8b9c0d1e"
	fuzzToken = "d9ab638a801efe182f98ae3e18ea4bb47b9fda808a28a8c7de205bb0e94f7d71"
	fuzzInv   = "666acb8787ba43606905dcae"

	// maxErrorLen bounds an input error, whatever the input.
	maxErrorLen = 400
	// maxEcho is how much of the input an error may quote verbatim: 64
	// bytes of a value, plus the quote and space around it.
	maxEcho = 64 + 2
)

func addEventSeeds(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, ` {} `, `[]`, `"x"`, `{"orgId":1}`, `{"orgId":"` + fuzzOrg + `"}`,
		`{"orgId":"` + fuzzOrg + `","period":"2024-06","includePending":true}`,
		`{"orgIds":["` + fuzzOrg + `"],"period":"month-to-date","services":["Atlas","Data Transfer"],"groupBy":"services"}`,
		`{"orgIds":[],"startDate":"2024-01-01","endDate":"2024-04-01","projects":["` + fuzzOrg + `"],"includePartialMatches":true}`,
		`{"orgId":"` + fuzzOrg + `","invoiceId":"` + fuzzInv + `","scheduledTime":"2025-01-01T00:05:00Z"}`,
		`{"orgId":"../../etc","period":"June"}`, `{"orgid":"` + fuzzOrg + `"}`, `{"baseUrl":"http://127.0.0.1:1"}`,
		`{"startDate":"0000-01-01","endDate":"9999-12-01"}`, `{"period":"0000-01","scheduledTime":"0000-01-15T00:00:00Z"}`,
		`{"detail-type":"Scheduled Event","time":"2024-03-01T06:00:00Z","detail":{"orgId":"` + fuzzOrg + `"}}`,
		`{"detail-type":"x","detail":{"detail-type":"y","detail":null}}`,
		`{"action":"plan","request":{"period":"2024-02"}}`, `{"action":"plan","request":null}`, `{"action":"delete","request":{}}`,
		`{"detail":{"orgId":"` + fuzzOrg + `"},"time":"2024-03-01T06:00:00Z"}`, `{"action":"submit"}`, `{"action":"fetch","job":{},"request":{}}`,
		`{"action":"poll","job":{"orgId":"` + fuzzOrg + `","period":{"month":"2024-06"},"maxAttempts":3,"token":"` + fuzzToken + `"}}`,
		`{"action":"focus-poll","result":{"orgId":"` + fuzzOrg + `","period":{"month":"2024-06"},"objects":[],"focus":true,"reports":[{"invoiceId":"` + fuzzInv + `","month":"2024-06"}],"attempt":0,"maxAttempts":3}}`,
		`{"orgId":"` + fuzzOrg + `","period":{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"},"filters":{},"maxAttempts":3,"attempt":0}`,
		`{"orgId":"` + fuzzOrg + `","period":{"month":"2024-06"},"filters":{"services":["Atlas"],"groupBy":"services"},"maxAttempts":3,"token":"` + fuzzToken + `","status":"PROCESSING","waitSeconds":10,"attempt":2}`,
		`{"orgId":"` + fuzzOrg + `","period":{"start":"2024-06-01"},"maxAttempts":1,"attempt":1,"status":"READY","usage":{"bucket":"b","key":"k","bytes":1,"sha256":"00","rows":1}}`,
		`{"orgId":"` + fuzzOrg + `","period":{"start":"2024-06-01"},"maxAttempts":99999999999999999999}`,
		`{"orgId":"` + fuzzOrg + `","period":{"start":"2024-06-01"},"maxAttempts":-1}`,
		`{"orgId":"` + fuzzOrg + `","period":{"start":"2024-06-02"},"maxAttempts":1}`,
		`{"orgId":"` + fuzzOrg + `","period":{"start":"2024-06-01"},"usage":{"Key":"k"}}`,
		`{"orgId":"` + fuzzOrg + `","period":"2024-06"}{}`,
	} {
		f.Add([]byte(s))
	}
}

// checkInputError holds every error an input can cause to one standard: a
// named *Error a Catch can route, short, and quoting little of the input.
func checkInputError(t *testing.T, err error, input []byte) {
	t.Helper()
	e, ok := err.(*export.Error)
	if !ok {
		t.Fatalf("error %T %v is not an *Error", err, err)
	}
	if e.Name != export.InputInvalid {
		t.Fatalf("error name %s, want %s: %v", e.Name, export.InputInvalid, err)
	}
	checkMessage(t, err.Error(), input)
}

func checkMessage(t *testing.T, msg string, input []byte) {
	t.Helper()
	if len(msg) > maxErrorLen {
		t.Fatalf("error is %d bytes long: %.200q...", len(msg), msg)
	}
	if s := longestEcho(msg, input); len(s) > maxEcho {
		t.Fatalf("error quotes %d bytes of the input: %q", len(s), s)
	}
}

// longestEcho returns the longest run of msg that appears in input, if it is
// longer than maxEcho; short runs (words, ids) are expected and not reported.
func longestEcho(msg string, input []byte) string {
	best := ""
	for i := 0; i+maxEcho < len(msg); i++ {
		if !bytes.Contains(input, []byte(msg[i:i+maxEcho+1])) {
			continue
		}
		j := i + maxEcho + 1
		for j < len(msg) && bytes.Contains(input, []byte(msg[i:j+1])) {
			j++
		}
		if j-i > len(best) {
			best = msg[i:j]
		}
	}
	return best
}

// sameJSON compares two decoded values by their JSON, which treats a nil
// and an empty list alike (omitempty drops both).
func sameJSON(t *testing.T, a, b any) {
	t.Helper()
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatalf("marshal: %v %v", err1, err2)
	}
	if !bytes.Equal(x, y) {
		t.Fatalf("round trip changed the value:\n was %s\n now %s", x, y)
	}
}

// noAtlas fails the fuzz run on any call: planning never talks to Atlas.
type noAtlas struct{ t *testing.T }

func (n noAtlas) fail() { n.t.Helper(); n.t.Fatal("an Atlas call during planning") }
func (n noAtlas) CreateUsageQuery(context.Context, string, atlas.UsageQuery) (string, error) {
	n.fail()
	return "", nil
}
func (n noAtlas) GetUsage(context.Context, string, string, atlas.Format) (*atlas.Usage, error) {
	n.fail()
	return nil, nil
}
func (n noAtlas) ListInvoices(context.Context, string, *atlas.InvoiceListOptions) ([]atlas.Invoice, error) {
	n.fail()
	return nil, nil
}
func (n noAtlas) PendingInvoices(context.Context, string) ([]atlas.Invoice, error) {
	n.fail()
	return nil, nil
}
func (n noAtlas) InvoiceCSV(context.Context, string, string) (io.ReadCloser, error) {
	n.fail()
	return nil, nil
}
func (n noAtlas) CreateInvoiceReport(context.Context, string, string) (atlas.Report, error) {
	n.fail()
	return atlas.Report{}, nil
}
func (n noAtlas) GetInvoiceReport(context.Context, string, string, string) (atlas.Report, error) {
	n.fail()
	return atlas.Report{}, nil
}
func (n noAtlas) DownloadReport(context.Context, atlas.Report) (io.ReadCloser, error) {
	n.fail()
	return nil, nil
}

// stopAtlas answers the first call of a step with errStop: the step's own
// checks passed.
type stopAtlas struct{ noAtlas }

var errStop = errors.New("stop: the step reached Atlas")

func (stopAtlas) CreateUsageQuery(context.Context, string, atlas.UsageQuery) (string, error) {
	return "", errStop
}

func fuzzExporter(t *testing.T) *export.Exporter {
	t.Helper()
	l, err := layout.New(layout.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return &export.Exporter{
		Atlas: noAtlas{t}, Layout: l, Normalizer: normalize.Parquet{}, MaxAttempts: 3,
		Orgs: func(context.Context) ([]string, error) { return []string{fuzzOrg}, nil },
		Now:  func() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) },
	}
}

// checkPlan plans an accepted request: either a named input error, or jobs
// that each carry a valid org and a whole month, and that the next step
// accepts as they travel (through JSON).
func checkPlan(t *testing.T, req export.Request, input []byte) {
	t.Helper()
	p, err := fuzzExporter(t).Plan(context.Background(), req)
	if err != nil {
		checkInputError(t, err, input)
		return
	}
	if len(p.Jobs) == 0 {
		t.Fatal("a plan without jobs")
	}
	for _, j := range p.Jobs {
		if err := atlas.ValidateOrgID(j.OrgID); err != nil {
			t.Fatalf("planned org %q: %v", j.OrgID, err)
		}
		s := j.Period.Start
		if s.Day() != 1 || s.Hour() != 0 || s.Minute() != 0 || s.Second() != 0 || s.Nanosecond() != 0 || s.Location() != time.UTC {
			t.Fatalf("planned period starts at %v", s)
		}
		if !j.Period.End.Equal(s.AddDate(0, 1, 0)) {
			t.Fatalf("planned period %v..%v is not one month", s, j.Period.End)
		}
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		_, call, err := Call(ActionSubmit, b)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode("submit", call)
		if err != nil {
			t.Fatalf("the next step refuses a planned job %s: %v", b, err)
		}
		sameJSON(t, j, back.Job)
		exp := fuzzExporter(t)
		exp.Atlas = stopAtlas{noAtlas{t}}
		if _, err := exp.Submit(context.Background(), *back.Job); !errors.Is(err, errStop) {
			t.Fatalf("submit refuses a planned job %s: %v", b, err)
		}
	}
}

// FuzzDecodeRequest takes data as a request (the console's, a schedule's,
// an EventBridge rule's event): accepted, it survives a round trip through
// JSON and plans to valid jobs or a named input error.
func FuzzDecodeRequest(f *testing.F) {
	addEventSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode("submit", data)
		if err != nil {
			checkInputError(t, err, data)
			return
		}
		if ev.Action != "" && ev.Action != ActionPlan || ev.Request == nil {
			return // a call, which FuzzDecode checks
		}
		b, err := json.Marshal(ev.Request)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Decode("submit", b)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		sameJSON(t, ev.Request, back.Request)
		checkPlan(t, *ev.Request, data)
	})
}

// FuzzDecodeJob takes data as the job of a call: accepted by the decoder
// and by the step's own checks, it names a valid org, token and invoice and
// one whole month, and survives a round trip through JSON.
func FuzzDecodeJob(f *testing.F) {
	addEventSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, call, err := Call(ActionSubmit, data)
		if err != nil {
			return // not JSON: a call cannot carry it
		}
		ev, err := Decode("submit", call)
		if err != nil {
			checkInputError(t, err, data)
			return
		}
		exp := fuzzExporter(t)
		exp.Atlas = stopAtlas{noAtlas{t}}
		if _, err := exp.Submit(context.Background(), *ev.Job); !errors.Is(err, errStop) {
			checkInputError(t, err, data)
			return
		}
		j := *ev.Job
		if err := atlas.ValidateOrgID(j.OrgID); err != nil {
			t.Fatalf("accepted org %q", j.OrgID)
		}
		if j.Token != "" && atlas.ValidateToken(j.Token) != nil || j.InvoiceID != "" && atlas.ValidateInvoiceID(j.InvoiceID) != nil {
			t.Fatalf("accepted token %q or invoice %q", j.Token, j.InvoiceID)
		}
		if j.Period.Start.Day() != 1 || !j.Period.End.Equal(j.Period.Start.AddDate(0, 1, 0)) {
			t.Fatalf("accepted period %v..%v", j.Period.Start, j.Period.End)
		}
		b, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		_, call, _ = Call(ActionSubmit, b)
		back, err := Decode("submit", call)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		if !reflect.DeepEqual(j, *back.Job) {
			t.Fatalf("round trip changed the job:\n was %+v\n now %+v", j, *back.Job)
		}
	})
}

// FuzzDecode gives data to each function as it came: a call, or a request.
// Accepted, it is one action with its one payload, and re-encoded by Call it
// decodes the same.
func FuzzDecode(f *testing.F) {
	addEventSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fn := range []string{"submit", "poll", "fetch-invoice"} {
			ev, err := Decode(fn, data)
			if err != nil {
				checkInputError(t, err, data)
				continue
			}
			var payload any = ev.Request
			n := 0
			for _, p := range []bool{ev.Request != nil, ev.Job != nil, ev.Result != nil} {
				if p {
					n++
				}
			}
			switch {
			case n != 1:
				t.Fatalf("%s: not exactly one payload: %+v", fn, ev)
			case ev.Job != nil:
				payload = ev.Job
			case ev.Result != nil:
				payload = ev.Result
			}
			if ev.Action == "" {
				if ev.Request == nil {
					t.Fatalf("%s: a request without an action decoded as %+v", fn, ev)
				}
				continue
			}
			if ev.Job != nil && ev.Job.Period.Start.IsZero() || ev.Result != nil && ev.Result.Period.Start.IsZero() {
				continue // without a period, which every step refuses first
			}
			b, err := json.Marshal(payload)
			if err != nil {
				t.Fatal(err)
			}
			to, call, err := Call(ev.Action, b)
			if err != nil || to != fn {
				t.Fatalf("%s: Call(%s) goes to %s: %v", fn, ev.Action, to, err)
			}
			back, err := Decode(fn, call)
			if err != nil {
				t.Fatalf("re-decoding %s: %v", call, err)
			}
			if back.Action != ev.Action {
				t.Fatalf("%s re-decodes as action %q", call, back.Action)
			}
			sameJSON(t, ev, back)
		}
	})
}

// The longest-echo check itself, on inputs where the answer is known.
func TestLongestEcho(t *testing.T) {
	long := strings.Repeat("abcdefgh", 20)
	for _, tc := range []struct {
		msg, input string
		want       int
	}{
		{"short " + long[:10], long, 0},
		{"x " + long[:maxEcho] + " y", long, 0},
		{"x " + long[:maxEcho+1] + " y", long, maxEcho + 1},
		{"x " + long + " y", "{" + long + "}", len(long)},
		{fmt.Sprintf("%q", long), long, len(long)},
	} {
		if got := len(longestEcho(tc.msg, []byte(tc.input))); got != tc.want {
			t.Errorf("longestEcho(%.20q...) = %d bytes, want %d", tc.msg, got, tc.want)
		}
	}
}
