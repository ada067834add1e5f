package costreport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

const (
	org = "5f1a2b3c4d5e6f7a8b9c0d1e"
	inv = "65ab0c1d2e3f4a5b6c7d8e9f"
)

// folder writes files (key -> bytes) under a new folder and returns it.
func folder(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for key, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func manifest(t *testing.T, month string, entries ...export.Entry) []byte {
	t.Helper()
	b, err := json.Marshal(export.Manifest{Version: export.ManifestVersion, OrgID: org, BillingMonth: month, Objects: entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

// What an export lacks or does not agree with is a note in the report, not
// a failure: a month without normalized usage, an invoice whose manifest
// predates its totals, a file with other rows than its manifest says.
func TestReadNotes(t *testing.T) {
	lay, _ := layout.New("")
	june := period.Month(2024, time.June)
	var lines bytes.Buffer
	csv := "Invoice Number,1,\n\nDate,SKU,Amount,Organization Name\n2024-06-02,S,13.00,Acme\n2024-06-03,CREDIT,-0.50,Acme\n"
	if _, err := normalize.Invoice(&lines, strings.NewReader(csv), normalize.InvoiceInfo{ID: inv, Status: "PAID"}); err != nil {
		t.Fatal(err)
	}
	raw, norm := must(lay.Invoice(org, june, inv)), must(lay.NormalizedInvoice(org, june, inv))
	dir := folder(t, map[string][]byte{
		must(lay.Manifest(org, june)): manifest(t, "2024-06",
			export.Entry{Key: raw, InvoiceID: inv, InvoiceStatus: "PAID"},
			export.Entry{Key: norm, InvoiceID: inv, Normalized: true, Rows: 3}),
		norm: lines.Bytes(),
	})
	r, err := Read(context.Background(), sink.NewDir(dir), lay, Options{Where: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Invoices) != 1 || r.Invoices[0].LineItems.String() != "12.50" || r.Invoices[0].Check != nil {
		t.Fatalf("invoices %+v", r.Invoices)
	}
	if r.Orgs[0].Name != "Acme" {
		t.Errorf("org name %q, want the line items' Acme", r.Orgs[0].Name)
	}
	want := []string{"No normalized usage for org " + org + " in 2024-06", "has 2 rows, its manifest says 3", "has no totals"}
	if len(r.Notes) != len(want) {
		t.Fatalf("notes %q, want %d", r.Notes, len(want))
	}
	for i, w := range want {
		if !strings.Contains(r.Notes[i], w) {
			t.Errorf("note %q, want one about %q", r.Notes[i], w)
		}
	}
	var page bytes.Buffer
	if err := r.WriteHTML(&page); err != nil || !strings.Contains(page.String(), "has no totals") {
		t.Errorf("the page does not show the notes (%v)", err)
	}
}

// A file that is not the normalizer's (another type of column) fails the
// report rather than being misread.
func TestReadRefusesAnotherSchema(t *testing.T) {
	lay, _ := layout.New("")
	june := period.Month(2024, time.June)
	var focus bytes.Buffer // a FOCUS file where the line items should be
	if _, err := normalize.Focus(&focus, strings.NewReader("BilledCost,BillingCurrency\n1.00,USD\n")); err != nil {
		t.Fatal(err)
	}
	norm := must(lay.NormalizedInvoice(org, june, inv))
	dir := folder(t, map[string][]byte{
		must(lay.Manifest(org, june)): manifest(t, "2024-06",
			export.Entry{Key: must(lay.Invoice(org, june, inv)), InvoiceID: inv},
			export.Entry{Key: norm, InvoiceID: inv, Normalized: true, Rows: 1}),
		norm: focus.Bytes(),
	})
	_, err := Read(context.Background(), sink.NewDir(dir), lay, Options{Where: dir})
	if err == nil || !strings.Contains(err.Error(), norm+": no column") {
		t.Fatalf("err = %v, want one naming the missing column", err)
	}
	var none *NoExportError
	if errors.As(err, &none) {
		t.Error("a broken file is not a missing export")
	}
}

// A decimal of another scale is refused, never read as cents.
func TestCheckColumns(t *testing.T) {
	type other struct {
		OrgName string `parquet:"organization_name,optional"`
		Amount  int64  `parquet:"amount,decimal(3:18)"`
	}
	err := checkColumns[lineItemRow](parquet.SchemaOf(new(other)))
	if err == nil || !strings.Contains(err.Error(), "column amount is INT64 DECIMAL(18,3), want INT64 DECIMAL(18,2)") {
		t.Errorf("err = %v", err)
	}
	if err := checkColumns[lineItemRow](parquet.SchemaOf(new(lineItemRow))); err != nil {
		t.Errorf("the same schema: %v", err)
	}
}
