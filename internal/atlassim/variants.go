package atlassim

import (
	"fmt"
	"slices"
	"strings"
)

// Variant is a form of an answer that the real Atlas sends (or may send)
// beyond what the spec shows. A simulator serves the spec's forms unless
// Config.Variants names some; they combine.
type Variant string

const (
	// Tags adds resource tag columns to the invoice CSV, after Amount: one
	// per tag key, named "Tags/<key>", values joined by ";" (the spec's
	// InvoiceLineItem.tags is a map of key to values; the CSV's naming of
	// them is not documented, so this form is an assumption).
	Tags Variant = "tags"
	// Exponent writes invoice CSV quantities in exponent notation, as
	// "6.035E-7" (same values).
	Exponent Variant = "exponent"
	// USDates writes the invoice CSV's Date and Usage Date as MM/DD/YYYY.
	USDates Variant = "us-dates"
	// KeyValueUsage serves the usage CSV as the spec's example shows it: no
	// header row, one block of "Key,value" lines per row, a blank line after
	// each block.
	KeyValueUsage Variant = "kv-usage"
	// PendingObject answers listOrgInvoicePending with the pending invoice
	// object itself, not a page (what a public Go client decodes).
	PendingObject Variant = "pending-object"
	// TextCSV serves CSV answers as "text/csv; charset=utf-8".
	TextCSV Variant = "text-csv"
	// IgnoreDateFilters makes listOrgInvoices ignore fromDate and toDate.
	IgnoreDateFilters Variant = "ignore-date-filters"
	// FocusUnavailable refuses to create invoice reports, with an ApiError:
	// 400, 403 or 404 by the invoice's month (FocusUnavailableStatus).
	FocusUnavailable Variant = "focus-unavailable"
	// H2EndStream102 sends each HTTP/2 102 Processing as a HEADERS frame
	// with END_STREAM (see HTTP2NextProto); HTTP/1.1 is unchanged.
	H2EndStream102 Variant = "h2-102-end-stream"
)

// Variants lists every variant.
var Variants = []Variant{Tags, Exponent, USDates, KeyValueUsage, PendingObject, TextCSV, IgnoreDateFilters, FocusUnavailable, H2EndStream102}

// ParseVariants reads a comma-separated list of variant names.
func ParseVariants(s string) ([]Variant, error) {
	var out []Variant
	for _, f := range strings.Split(s, ",") {
		v := Variant(strings.TrimSpace(f))
		switch {
		case v == "":
		case !slices.Contains(Variants, v):
			return nil, fmt.Errorf("unknown variant %q (known: %s)", v, variantNames())
		case !slices.Contains(out, v):
			out = append(out, v)
		}
	}
	return out, nil
}

func variantNames() string {
	names := make([]string, len(Variants))
	for i, v := range Variants {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

func (s *Server) has(v Variant) bool { return slices.Contains(s.cfg.Variants, v) }

// FocusUnavailableStatus is the status the FocusUnavailable variant answers
// to creating the report of an invoice: 400, 403 or 404, by its month.
func FocusUnavailableStatus(inv Invoice) int {
	return []int{400, 403, 404}[int(inv.Start.Month())%3]
}
