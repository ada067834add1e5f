package sink

import (
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"atlas-billing/usage/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-06/usage.csv", true},
		{"a", true},
		{"", false},
		{"/abs/key", false},
		{"trailing/", false},
		{"a//b", false},
		{"a/../b", false},
		{"..", false},
		{"a/./b", false},
		{"a/b\x00c", false},
		{"a\nb", false},
		{"a\x7fb", false},
		{"a\\b", false},
		{"bad\xffutf8", false},
		{strings.Repeat("k", 1025), false},
		{strings.Repeat("k", 1024), true},
		// The edges of the refused characters: C0, DEL and C1 controls.
		{"a b", true},
		{"a\x1fb", false},
		{"a~b", true},
		{"a\u0080b", false},
		{"a\u009fb", false},
		{"a\u00a0b", true},
		{"Zürich Ödön/数据.csv", true},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
	}
}

func TestMetadata(t *testing.T) {
	tests := []struct {
		name string
		meta map[string]string
		ok   bool
	}{
		{"layout keys", map[string]string{"source": "invoice", "org-id": "5f1a", "billing-month": "2024-06", "invoice-status": "PAID"}, true},
		{"none", nil, true},
		{"upper-case key", map[string]string{"Org-Id": "x"}, false},
		{"space in key", map[string]string{"org id": "x"}, false},
		{"non-ASCII value", map[string]string{"org-name": "Zürich"}, false},
		{"newline in value", map[string]string{"note": "a\nb"}, false},
		{"too large", map[string]string{"big": strings.Repeat("x", 2100)}, false},
		{"at the size limit", map[string]string{"big": strings.Repeat("x", 2048-3)}, true},
		{"one byte over", map[string]string{"big": strings.Repeat("x", 2048-2)}, false},
		{"key of the edge characters", map[string]string{"az09-z": "x"}, true},
		{"key starting with a dash", map[string]string{"-a": "x"}, false},
		{"key of another character", map[string]string{"a_b": "x"}, false},
		{"empty key", map[string]string{"": "x"}, false},
		{"printable edges in value", map[string]string{"v": " a~"}, true},
		{"unit separator in value", map[string]string{"v": "a\x1f"}, false},
		{"DEL in value", map[string]string{"v": "a\x7f"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := (Options{Metadata: tt.meta}).validate(); (err == nil) != tt.ok {
				t.Fatalf("validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
