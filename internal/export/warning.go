package export

import (
	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
)

// Warning is a problem that did not fail its step: Atlas's file is stored
// as sent, an enrichment of it (its normalized form) is not. Its name is
// stable, as an error's is (normalize's: Normalize.Layout, Normalize.Syntax,
// Normalize.Value, Normalize.TooLarge).
type Warning struct {
	Name      string `json:"name"`
	Message   string `json:"message"`
	OrgID     string `json:"orgId"`
	Period    string `json:"period"` // YYYY-MM
	InvoiceID string `json:"invoiceId,omitempty"`
}

// warned adds the warning of a normalized upload, if any, to ws, and logs it.
func (e *Exporter) warned(ws []Warning, w *normalize.Warning, orgID string, p period.Period, invoiceID, step string) []Warning {
	if w == nil {
		return ws
	}
	x := Warning{Name: w.Name, Message: w.Error(), OrgID: orgID, Period: p.Label(), InvoiceID: invoiceID}
	e.log(orgID, p, step).Warn("not normalized, the raw file is stored", "warning", x.Name, "invoice", invoiceID, "message", x.Message)
	return append(ws, x)
}
