package layout

import (
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
)

const org = "5f1a2b3c4d5e6f7a8b9c0d1e"

func TestKeys(t *testing.T) {
	l, err := New("/exports/atlas/")
	if err != nil {
		t.Fatal(err)
	}
	p := period.Month(2024, time.June)
	got, err := l.Usage(org, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := "exports/atlas/usage/org_id=" + org + "/billing_month=2024-06/usage.csv"; got != want {
		t.Errorf("Usage = %s, want %s", got, want)
	}
	got, err = l.Invoice(org, p, "65ab0c1d2e3f4a5b6c7d8e9f")
	if err != nil {
		t.Fatal(err)
	}
	if want := "exports/atlas/invoices/org_id=" + org + "/billing_month=2024-06/invoice_id=65ab0c1d2e3f4a5b6c7d8e9f.csv"; got != want {
		t.Errorf("Invoice = %s, want %s", got, want)
	}
}

func TestRejectsPathCharacters(t *testing.T) {
	l, err := New(DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	p := period.Month(2024, time.June)
	for _, bad := range []string{"../../etc/passwd", "5f1a2b3c4d5e6f7a8b9c0d1", "5F1A2B3C4D5E6F7A8B9C0D1E", "5f1a2b3c4d5e6f7a8b9c0d1e/..", ""} {
		if k, err := l.Usage(bad, p); err == nil {
			t.Errorf("Usage(%q) = %q, want an error", bad, k)
		}
		if k, err := l.Invoice(org, p, bad); err == nil {
			t.Errorf("Invoice(%q) = %q, want an error", bad, k)
		}
	}
	root, err := New("")
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := root.Usage(org, p); k != "usage/org_id="+org+"/billing_month=2024-06/usage.csv" {
		t.Errorf("root usage key = %s", k)
	}
	for _, bad := range []string{"a/../b", "a//b", "./a", "a/\\x"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
