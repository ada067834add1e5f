package export

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Reconciliation sets one invoice's line items, summed exactly while they
// streamed, against the totals Atlas lists for the invoice: the line items
// (credits are negative ones) add up to subtotal - credits, and the amount
// billed is that plus sales tax. Money is in integer cents.
type Reconciliation struct {
	InvoiceID string `json:"invoiceId"`
	Month     string `json:"month"` // YYYY-MM the invoice bills
	// LineItems is the exact sum of the line items' amounts, decimal text.
	LineItems string `json:"lineItems"`
	Totals
	// DeltaCents is the line items minus (subtotal - credits).
	DeltaCents int64  `json:"deltaCents"`
	Reconciled bool   `json:"reconciled"`
	Reason     string `json:"reason,omitempty"` // why not
	// Usage is the Cost Explorer total of the invoice's month and
	// UsageDelta that minus the line items of the month's invoices, exact
	// decimals: information, not a check (usage at the very end of a month
	// can land on the next month's invoice). Empty when either is unknown.
	Usage      string `json:"usage,omitempty"`
	UsageDelta string `json:"usageDelta,omitempty"`
}

// Totals are an invoice's totals as Atlas lists them, in cents.
type Totals struct {
	SubtotalCents     int64 `json:"subtotalCents"`
	CreditsCents      int64 `json:"creditsCents"`
	SalesTaxCents     int64 `json:"salesTaxCents"`
	AmountBilledCents int64 `json:"amountBilledCents"`
}

func totalsOf(inv atlas.Invoice) Totals {
	return Totals{SubtotalCents: inv.SubtotalCents, CreditsCents: inv.CreditsCents, SalesTaxCents: inv.SalesTaxCents, AmountBilledCents: inv.AmountBilledCents}
}

// reconcile checks the line items st summed against inv's totals.
func reconcile(inv atlas.Invoice, st tally.Stats) Reconciliation {
	return Reconcile(inv.ID, period.Of(inv.StartDate).Label(), st.Amount.String(), totalsOf(inv))
}

// Reconcile checks lineItems, the exact sum of an invoice's line items as
// decimal text, against the invoice's totals t (as a manifest records
// them: Entry.Totals).
func Reconcile(invoiceID, month, lineItems string, t Totals) Reconciliation {
	r := Reconciliation{InvoiceID: invoiceID, Month: month, LineItems: lineItems, Totals: t}
	net := t.SubtotalCents - t.CreditsCents
	lines, err := tally.ParseCents(lineItems)
	switch {
	case err != nil:
		r.Reason = fmt.Sprintf("the line items add up to %s, not a whole number of cents", r.LineItems)
	case lines != net:
		r.DeltaCents = lines - net
		r.Reason = fmt.Sprintf("the line items add up to %s, subtotal %s - credits %s is %s: %s apart",
			FormatCents(lines), FormatCents(t.SubtotalCents), FormatCents(t.CreditsCents), FormatCents(net), FormatCents(r.DeltaCents))
	case t.AmountBilledCents != net+t.SalesTaxCents:
		r.Reason = fmt.Sprintf("the amount billed %s is not subtotal - credits + sales tax (%s + %s = %s)",
			FormatCents(t.AmountBilledCents), FormatCents(net), FormatCents(t.SalesTaxCents), FormatCents(net+t.SalesTaxCents))
	default:
		r.Reconciled = true
	}
	return r
}

// besideUsage sets the month's usage total beside the records of the
// invoices of that month.
func besideUsage(recs []Reconciliation, month period.Period, usage string) {
	if usage == "" {
		return
	}
	var lines []string
	var idx []int
	for i, r := range recs {
		if r.Month == month.Label() {
			lines = append(lines, r.LineItems)
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return
	}
	delta, ok := subDecimals(usage, lines...)
	if !ok {
		return
	}
	for _, i := range idx {
		recs[i].Usage, recs[i].UsageDelta = usage, delta
	}
}

// subDecimals is a minus each of bs, exact, written with as many decimals as
// the most precise of them (at least 2); false if one is not a decimal.
func subDecimals(a string, bs ...string) (string, bool) {
	scale := max(decimals(a), 2)
	r, ok := new(big.Rat).SetString(a)
	if !ok {
		return "", false
	}
	for _, b := range bs {
		v, ok := new(big.Rat).SetString(b)
		if !ok {
			return "", false
		}
		r.Sub(r, v)
		scale = max(scale, decimals(b))
	}
	return r.FloatString(scale), true
}

func decimals(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}

// FormatCents writes integer cents as dollars: 1234 is 12.34, -5 is -0.05.
func FormatCents(c int64) string {
	sign, u := "", uint64(c)
	if c < 0 {
		sign, u = "-", -u
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
