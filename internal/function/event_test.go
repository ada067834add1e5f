package function

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
)

const (
	orgA = "5f1a2b3c4d5e6f7a8b9c0d1e"
	job  = `{"orgId":"` + orgA + `","period":{"month":"2024-06"},"maxAttempts":3}`
	res  = `{"orgId":"` + orgA + `","period":{"month":"2024-06"},"objects":[],"focus":true,"reports":[],"attempt":0,"maxAttempts":3}`
	run  = `{"execution":"abx-1","bucket":"b","plan":"p/_runs/abx-1/plan.json","results":{"bucket":"b","prefix":"p/_runs/abx-1/results"},"orgs":1,"months":1,"jobs":1,"mapRun":{"MapRunArn":"arn","ResultWriterDetails":{"Bucket":"b","Key":"k"}}}`
)

// TestDecode holds each rule of Decode: what every kind of input is taken
// for, by which function.
func TestDecode(t *testing.T) {
	tests := []struct {
		name, fn, event string
		action          string // the action decoded
		payload         string // "request", "job" or "result"; "" for an error
		want            string // in the request's JSON, or in the error
	}{
		{"console test event", "submit", `{"orgId":"` + orgA + `","period":"2024-06"}`, "", "request", `"period":"2024-06"`},
		{"empty is a request", "fetch-invoice", ``, "", "request", `{}`},
		{"the Step Functions console's default input", "fetch-invoice", `{"action":"plan","request":{"Comment":"Insert your JSON here"}}`, "plan", "request", `"Comment"`},
		{"null is a request", "submit", `null`, "", "request", `{}`},
		{"scheduler input", "submit", `{"period":"previous-month","scheduledTime":"2024-07-02T06:00:00Z"}`, "", "request", `"scheduledTime":"2024-07-02T06:00:00Z"`},
		{"EventBridge rule event", "submit", `{"version":"0","id":"x","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012",` +
			`"time":"2024-03-01T06:00:00Z","region":"eu-west-1","resources":[],"detail":{"orgId":"` + orgA + `"}}`, "", "request", `"scheduledTime":"2024-03-01T06:00:00Z"`},
		{"EventBridge: the request's own time wins", "submit", `{"detail-type":"x","time":"2024-03-01T06:00:00Z","detail":{"scheduledTime":"2024-05-01T00:00:00Z"}}`, "", "request", `"scheduledTime":"2024-05-01T00:00:00Z"`},
		{"EventBridge without detail-type", "submit", `{"detail":{"orgId":"` + orgA + `"},"time":"2024-03-01T06:00:00Z"}`, "", "request", `"orgId":"` + orgA + `"`},
		{"plan call", "fetch-invoice", `{"action":"plan","request":{"period":"2024-06"}}`, "plan", "request", `"period":"2024-06"`},
		{"plan call for an execution", "fetch-invoice", `{"action":"plan","request":{"period":"2024-06"},"execution":"abx-2024-06-1"}`, "plan", "request", `"period":"2024-06"`},
		{"plan call of an EventBridge event", "fetch-invoice", `{"action":"plan","request":{"detail":{"period":"2024-06"},"time":"2024-07-02T06:00:00Z"}}`, "plan", "request", `"period":"2024-06"`},
		{"submit call", "submit", `{"action":"submit","job":` + job + `}`, "submit", "job", ""},
		{"poll call", "poll", `{"action":"poll","job":` + job + `}`, "poll", "job", ""},
		{"fetch call", "fetch-invoice", `{"action":"fetch","job":` + job + `}`, "fetch", "job", ""},
		{"focus-submit call", "submit", `{"action":"focus-submit","result":` + res + `}`, "focus-submit", "result", ""},
		{"focus-poll call", "poll", `{"action":"focus-poll","result":` + res + `}`, "focus-poll", "result", ""},
		{"summarize call", "fetch-invoice", `{"action":"summarize","run":` + run + `}`, "summarize", "run", ""},
		{"plan goes to fetch-invoice", "submit", `{"action":"plan","request":{}}`, "", "", `does not take the action "plan"`},
		{"only a plan names an execution", "poll", `{"action":"poll","job":` + job + `,"execution":"x"}`, "", "", "only a plan call names an execution"},
		{"a run is read strictly", "fetch-invoice", `{"action":"summarize","run":{"execution":"x","Bucket":"b"}}`, "", "", `unknown field "Bucket"`},

		{"poll takes no request", "poll", `{"orgId":"` + orgA + `"}`, "", "", "poll function takes a call"},
		{"a job without its call is a request", "submit", job, "", "", "unknown field"},
		{"action of another function", "poll", `{"action":"submit","job":` + job + `}`, "", "", `does not take the action "submit"`},
		{"unknown action", "submit", `{"action":"delete","request":{}}`, "", "", `"delete"`},
		{"no action", "submit", `{"action":"","request":{}}`, "", "", "action"},
		{"wrong payload", "poll", `{"action":"poll","request":{}}`, "", "", "a poll call carries a job"},
		{"two payloads", "fetch-invoice", `{"action":"fetch","job":` + job + `,"request":{}}`, "", "", "nothing else"},
		{"no payload", "submit", `{"action":"submit"}`, "", "", "carries a job"},
		{"unknown field in a call", "submit", `{"action":"plan","request":{},"comment":"x"}`, "", "", `unknown field "comment"`},
		{"field in the wrong case", "submit", `{"orgid":"` + orgA + `"}`, "", "", `unknown field "orgid"`},
		{"comment in the wrong case", "submit", `{"comment":"x"}`, "", "", `unknown field "comment"`},
		{"EventBridge detail is read strictly", "submit", `{"detail":{"orgid":"` + orgA + `"}}`, "", "", `unknown field "orgid"`},
		{"EventBridge event is unwrapped once", "submit", `{"detail":{"detail":{}}}`, "", "", `unknown field "detail"`},
		{"not an object", "submit", `[1,2]`, "", "", "JSON object"},
		{"trailing data", "submit", `{}{}`, "", "", "JSON object"},
		{"too big", "submit", `{"orgId":"` + strings.Repeat("x", MaxEventBytes) + `"}`, "", "", "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Decode(tt.fn, []byte(tt.event))
			if tt.payload == "" {
				if export.Name(err) != export.InputInvalid || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %s naming %q", err, export.InputInvalid, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{"request": ev.Request != nil, "job": ev.Job != nil, "result": ev.Result != nil, "run": ev.Run != nil}
			if ev.Action != tt.action || !got[tt.payload] || count(got) != 1 {
				t.Fatalf("decoded %+v, want action %q with a %s", ev, tt.action, tt.payload)
			}
			if ev.Request != nil {
				b, _ := json.Marshal(ev.Request)
				if !strings.Contains(string(b), tt.want) {
					t.Errorf("request %s lacks %s", b, tt.want)
				}
			}
		})
	}
}

func count(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// TestCall builds each action's call, which goes to the function that takes
// it and decodes back to the same action.
func TestCall(t *testing.T) {
	for action, a := range actions {
		payload := map[string]string{"request": `{}`, "job": job, "result": res}[a.payload]
		fn, call, err := Call(action, []byte(payload))
		if err != nil || fn != a.fn {
			t.Fatalf("Call(%s) = %s, %v", action, fn, err)
		}
		ev, err := Decode(fn, call)
		if err != nil || ev.Action != action {
			t.Errorf("%s: %s decodes as %+v, %v", action, call, ev, err)
		}
	}
	if _, _, err := Call("wait", []byte(`{}`)); export.Name(err) != export.InputInvalid {
		t.Errorf("unknown action: %v", err)
	}
}

// The input below is refused before any Atlas call: fuzzExporter's Atlas
// fails the test on one.
func TestBadInputRefusedBeforeAnyCall(t *testing.T) {
	big := `{"orgId":"` + orgA + `","services":["` + strings.Repeat("x", 300<<10) + `"]}`
	tests := []struct {
		name, fn, event, want string
	}{
		{"org with path", "submit", `{"orgId":"../../5f1a2b3c4d5e6f7a8b9c"}`, "org"},
		{"org too short", "submit", `{"orgId":"5f1a2b"}`, "org"},
		{"start not first", "submit", `{"orgId":"` + orgA + `","startDate":"2024-01-02","endDate":"2024-03-01"}`, "first day"},
		{"end before start", "submit", `{"orgId":"` + orgA + `","startDate":"2024-03-01","endDate":"2024-01-01"}`, "after"},
		{"only start", "submit", `{"orgId":"` + orgA + `","startDate":"2024-03-01"}`, "go together"},
		{"bad period", "submit", `{"orgId":"` + orgA + `","period":"June"}`, "YYYY-MM"},
		{"unknown service", "submit", `{"orgId":"` + orgA + `","services":["Snacks"]}`, "Snacks"},
		{"unknown groupBy", "submit", `{"orgId":"` + orgA + `","groupBy":"colour","services":["Atlas"]}`, "groupBy"},
		{"groupBy without filter", "submit", `{"orgId":"` + orgA + `","groupBy":"projects"}`, "groupBy"},
		{"unknown field", "submit", `{"orgid":"` + orgA + `"}`, "orgid"},
		{"bad invoice", "submit", `{"orgId":"` + orgA + `","invoiceId":"../x"}`, "invoice"},
		{"bad schedule time", "submit", `{"orgId":"` + orgA + `","scheduledTime":"yesterday"}`, "scheduledTime"},
		{"not an object", "submit", `[1,2]`, "JSON object"},
		{"too big", "submit", big, "bytes"},
		{"job with bad token", "submit", `{"action":"submit","job":{"orgId":"` + orgA + `","period":{"start":"2024-06-01"},"token":"short","maxAttempts":3}}`, "token"},
		{"job with bad org", "poll", `{"action":"poll","job":{"orgId":"x/../y","period":{"start":"2024-06-01"},"maxAttempts":3}}`, "org"},
		{"unknown action", "submit", `{"action":"delete","request":{}}`, "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Handlers{Exporter: fuzzExporter(t)}
			_, err := h.run(context.Background(), tt.fn, []byte(tt.event))
			if err == nil {
				t.Fatal("accepted")
			}
			if export.Name(err) != export.InputInvalid {
				t.Errorf("name = %s, want %s (%v)", export.Name(err), export.InputInvalid, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

// An EventBridge event is unwrapped once; an event nested in another is
// refused (each level would re-parse the rest of a 256 KiB event).
func TestNestedEventBridgeEvent(t *testing.T) {
	once := `{"detail-type":"Scheduled Event","time":"2024-03-01T06:00:00Z","detail":{"orgId":"` + orgA + `"}}`
	if ev, err := Decode("submit", []byte(once)); err != nil || ev.Request.OrgID != orgA || ev.Request.ScheduledTime == "" {
		t.Fatalf("one event: %+v, %v", ev, err)
	}
	twice := `{"detail-type":"Scheduled Event","detail":` + once + `}`
	if _, err := Decode("submit", []byte(twice)); export.Name(err) != export.InputInvalid {
		t.Errorf("nested event: err = %v, want %s", err, export.InputInvalid)
	}
	deep := strings.Repeat(`{"detail-type":"","detail":`, 9000) + "{}" + strings.Repeat("}", 9000)
	if _, err := Decode("submit", []byte(deep)); export.Name(err) != export.InputInvalid {
		t.Errorf("deeply nested event: err = %v, want %s", err, export.InputInvalid)
	}
}
