package layout

import (
	"strings"
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

// TestDerivedKeys pins the keys of the Athena datasets: each has its own
// folder (one Glue table each) and the raw keys' partitions.
func TestDerivedKeys(t *testing.T) {
	l, err := New("exports")
	if err != nil {
		t.Fatal(err)
	}
	p := period.Month(2025, time.January)
	const inv = "65ab0c1d2e3f4a5b6c7d8e9f"
	for _, tc := range []struct {
		name string
		key  func() (string, error)
		want string
	}{
		{"NormalizedUsage", func() (string, error) { return l.NormalizedUsage(org, p) },
			"exports/usage_normalized/org_id=" + org + "/billing_month=2025-01/usage.parquet"},
		{"NormalizedInvoice", func() (string, error) { return l.NormalizedInvoice(org, p, inv) },
			"exports/invoice_line_items/org_id=" + org + "/billing_month=2025-01/invoice_id=" + inv + ".parquet"},
		{"Focus", func() (string, error) { return l.Focus(org, p, inv) },
			"exports/focus/org_id=" + org + "/billing_month=2025-01/invoice_id=" + inv + ".csv"},
		{"NormalizedFocus", func() (string, error) { return l.NormalizedFocus(org, p, inv) },
			"exports/focus_normalized/org_id=" + org + "/billing_month=2025-01/invoice_id=" + inv + ".parquet"},
		{"Manifest", func() (string, error) { return l.Manifest(org, p) },
			"exports/_manifests/org_id=" + org + "/billing_month=2025-01/manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.key()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
			}
		})
	}
	// Each dataset has its own top folder: a Glue table over one folder must
	// never read another dataset's files (for example the raw CSVs).
	keys := []func() (string, error){
		func() (string, error) { return l.Usage(org, p) },
		func() (string, error) { return l.Invoice(org, p, inv) },
		func() (string, error) { return l.NormalizedUsage(org, p) },
		func() (string, error) { return l.NormalizedInvoice(org, p, inv) },
		func() (string, error) { return l.Focus(org, p, inv) },
		func() (string, error) { return l.NormalizedFocus(org, p, inv) },
		func() (string, error) { return l.Manifest(org, p) },
	}
	seen := map[string]bool{}
	for _, key := range keys {
		k, err := key()
		if err != nil {
			t.Fatal(err)
		}
		folder := strings.Split(strings.TrimPrefix(k, "exports/"), "/")[0]
		if seen[folder] {
			t.Errorf("two datasets share the folder %q", folder)
		}
		seen[folder] = true
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
		if k, err := l.NormalizedUsage(bad, p); err == nil {
			t.Errorf("NormalizedUsage(%q) = %q, want an error", bad, k)
		}
		for name, key := range map[string]func(string, period.Period, string) (string, error){
			"NormalizedInvoice": l.NormalizedInvoice, "Focus": l.Focus, "NormalizedFocus": l.NormalizedFocus,
		} {
			if k, err := key(org, p, bad); err == nil {
				t.Errorf("%s(org, %q) = %q, want an error", name, bad, k)
			}
			if k, err := key(bad, p, "65ab0c1d2e3f4a5b6c7d8e9f"); err == nil {
				t.Errorf("%s(%q, id) = %q, want an error", name, bad, k)
			}
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

func TestRun(t *testing.T) {
	l, err := New("exports")
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Run("abx-2024-06-1719792000")
	if err != nil {
		t.Fatal(err)
	}
	want := Run{
		Folder:   "exports/_runs/abx-2024-06-1719792000",
		Plan:     "exports/_runs/abx-2024-06-1719792000/plan.json",
		Results:  "exports/_runs/abx-2024-06-1719792000/results",
		Summary:  "exports/_runs/abx-2024-06-1719792000/summary.json",
		Outcomes: "exports/_runs/abx-2024-06-1719792000/outcomes.jsonl",
	}
	if r != want {
		t.Errorf("Run = %+v, want %+v", r, want)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "-x", "a b", "näme", strings.Repeat("a", 81), "x\n"} {
		if _, err := l.Run(bad); err == nil {
			t.Errorf("Run(%q) accepted", bad)
		}
	}
}
