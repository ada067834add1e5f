package layout

import (
	"path"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// under is what every key of l starts with ("" for a layout at the root).
func under(l Layout) string {
	if l.Prefix() == "" {
		return ""
	}
	return l.Prefix() + "/"
}

// checkKey fails unless key lies under the layout's prefix, is already
// clean, and has no ".", ".." or empty segment, nor a character S3 or a
// shell would read specially.
func checkKey(t *testing.T, l Layout, key string) {
	t.Helper()
	if !strings.HasPrefix(key, under(l)) || len(key) == len(under(l)) {
		t.Fatalf("key %q is not under prefix %q", key, l.Prefix())
	}
	if path.Clean(key) != key || strings.HasPrefix(key, "/") {
		t.Fatalf("key %q is not clean", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			t.Fatalf("key %q has a segment %q", key, seg)
		}
	}
	// What the layout adds after the prefix is its own: no ".." at all.
	if rest := strings.TrimPrefix(key, under(l)); strings.Contains(rest, "..") || strings.ContainsAny(rest, "\\\x00\r\n%?#") {
		t.Fatalf("key %q has path characters after the prefix", key)
	}
}

// FuzzKeys builds keys from any prefix, org, invoice id and month: either
// an error, or a key that stays under the prefix.
func FuzzKeys(f *testing.F) {
	const inv = "65ab0c1d2e3f4a5b6c7d8e9f"
	for _, s := range [][3]string{
		{"exports/atlas", org, inv}, {"/exports/atlas/", org, inv}, {"atlas-billing", "../../etc/passwd", inv},
		{"a/../b", org, inv}, {"a//b", org, inv}, {"./a", org, inv}, {"a/\\x", org, inv}, {"..", org, inv},
		{"a..b/c.", org, inv}, {"", org, inv}, {"x", org, "../" + inv[3:]}, {"x", org + "/..", inv},
		{"x", strings.ToUpper(org), inv}, {"x\n", org, inv}, {"%2e%2e", org, "%2e%2e%2f" + inv[9:]},
	} {
		f.Add(s[0], s[1], s[2], int16(2024), uint8(6))
	}
	f.Add("x", org, inv, int16(-1), uint8(12))
	f.Add("x", org, inv, int16(9999), uint8(13))
	f.Fuzz(func(t *testing.T, prefix, orgID, invoiceID string, year int16, month uint8) {
		l, err := New(prefix)
		if err != nil {
			return
		}
		for _, seg := range strings.Split(l.Prefix(), "/") {
			if l.Prefix() != "" && (seg == "" || seg == "." || seg == "..") {
				t.Fatalf("New(%q) kept a segment %q", prefix, seg)
			}
		}
		p := period.Month(int(year), time.Month(month))
		if k, err := l.Usage(orgID, p); err == nil {
			if atlas.ValidateOrgID(orgID) != nil {
				t.Fatalf("Usage took org %q", orgID)
			}
			checkKey(t, l, k)
		}
		if k, err := l.NormalizedUsage(orgID, p); err == nil {
			if atlas.ValidateOrgID(orgID) != nil {
				t.Fatalf("NormalizedUsage took org %q", orgID)
			}
			checkKey(t, l, k)
		}
		for name, key := range map[string]func(string, period.Period, string) (string, error){
			"Invoice": l.Invoice, "NormalizedInvoice": l.NormalizedInvoice, "Focus": l.Focus, "NormalizedFocus": l.NormalizedFocus,
		} {
			k, err := key(orgID, p, invoiceID)
			if err != nil {
				continue
			}
			if atlas.ValidateOrgID(orgID) != nil || atlas.ValidateInvoiceID(invoiceID) != nil {
				t.Fatalf("%s took org %q, invoice %q", name, orgID, invoiceID)
			}
			checkKey(t, l, k)
			if !strings.Contains(k, "/invoice_id="+invoiceID+".") {
				t.Fatalf("%s key %q does not name the invoice", name, k)
			}
		}
		if k, err := l.Manifest(orgID, p); err == nil {
			checkKey(t, l, k)
		}
	})
}
