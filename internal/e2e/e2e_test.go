package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/atlas-billing-export/atlas-billing-export/internal/e2e"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sfntest"
	"github.com/atlas-billing-export/atlas-billing-export/statemachine"
)

func TestRoutes(t *testing.T) {
	w := e2e.New(t, e2e.Options{})
	r := w.Routes()
	for state := range statemachine.Functions {
		if r[state] == nil {
			t.Errorf("no route for Task state %s", state)
		}
	}
	tests := []struct {
		name, state, input string
		wantErr            string // error name, "" for success
		wantOut            string // substring of the output
	}{
		{"plan defaults to every simulator org", statemachine.StatePlan, `{"action":"plan","request":{"period":"2024-06"}}`, "", `"orgId":"` + w.Orgs[1] + `"`},
		{"a Lambda error keeps its name", statemachine.StateSubmit, `{"orgId":"../` + w.Orgs[0] + `"}`, "Input.Invalid", ""},
		{"poll without a token", statemachine.StatePoll, `{"action":"poll","job":{"orgId":"` + w.Orgs[0] + `","period":{"start":"2024-06-01","end":"2024-07-01","month":"2024-06"},"filters":{},"maxAttempts":3,"attempt":0}}`, "Input.Invalid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := r[tt.state](context.Background(), json.RawMessage(tt.input))
			var named *sfntest.Error
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantErr != "" && (!errors.As(err, &named) || named.Name != tt.wantErr || named.Cause == ""):
				t.Fatalf("error = %#v, want a *sfntest.Error named %s with a cause", err, tt.wantErr)
			case tt.wantErr == "" && (!json.Valid(out) || !strings.Contains(string(out), tt.wantOut)):
				t.Fatalf("output %s, want it to contain %s", out, tt.wantOut)
			}
		})
	}
}

func TestEnvOverride(t *testing.T) {
	w := e2e.New(t, e2e.Options{Env: map[string]string{"ABX_ORG_IDS": "", "ABX_MAX_POLL_ATTEMPTS": "7"}})
	if w.Getenv("ABX_ORG_IDS") != "" || w.Getenv("ABX_MAX_POLL_ATTEMPTS") != "7" || w.Getenv("ABX_BUCKET") != w.Bucket {
		t.Fatalf("env = %v", w.Env)
	}
	// No org configured, none in the secret: the plan says so.
	_, err := w.Routes()[statemachine.StatePlan](context.Background(), json.RawMessage(`{"action":"plan","request":{}}`))
	var named *sfntest.Error
	if !errors.As(err, &named) || named.Name != "Config.Invalid" {
		t.Fatalf("err = %v, want Config.Invalid", err)
	}
}

func TestKeys(t *testing.T) {
	w := e2e.New(t, e2e.Options{})
	org := w.Orgs[0]
	final := w.UsageKey(t, org, "2024-06")
	for _, k := range []string{final, "elsewhere/x.csv"} {
		_, err := w.S3.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(w.Bucket), Key: aws.String(k), Body: strings.NewReader("x")})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := w.FinalKeys(t); !slices.Equal(got, []string{final}) {
		t.Errorf("FinalKeys = %v, want [%s]", got, final)
	}
	if got := w.KeysUnder(t, "usage/org_id="+org+"/"); !slices.Equal(got, []string{final}) {
		t.Errorf("KeysUnder = %v", got)
	}
	if n := w.OpenUploads(t); n != 0 {
		t.Errorf("OpenUploads = %d", n)
	}
	inv := w.Invoice(t, org, "2024-06")
	if k := w.InvoiceKey(t, org, "2024-06", inv.ID); k != e2e.Prefix+"/invoices/org_id="+org+"/billing_month=2024-06/invoice_id="+inv.ID+".csv" {
		t.Errorf("InvoiceKey = %s", k)
	}
	if b := w.ServedInvoice(t, org, inv.ID); !strings.HasPrefix(string(b), "Invoice Number,") {
		t.Errorf("ServedInvoice starts %.40q", b)
	}
	if b := w.ServedUsage(t, org, "2024-06"); len(b) == 0 || !strings.Contains(string(b), org) {
		t.Errorf("ServedUsage = %.80q", b)
	}
}
