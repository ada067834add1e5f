package export

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// Names of the warnings the export gives itself; normalize names the others
// (Normalize.Layout, Normalize.Syntax, Normalize.Value, Normalize.TooLarge).
// Like error names they are stable: the README lists them.
const (
	// UsageJSONUnavailable: the JSON form of a ready Cost Explorer result,
	// which the normalized usage is made of, could not be had. The CSV is
	// stored as sent; there is no normalized usage for the month.
	UsageJSONUnavailable = "Usage.JSONUnavailable"
	// FocusUnavailable: Atlas refused to create an invoice's FOCUS report
	// (400, 403, 404) or the report ended FAILED. The usage and the invoices
	// are stored; that invoice has no FOCUS report.
	FocusUnavailable = "Focus.Unavailable"
	// InvoiceUnreconciled: an invoice's line items do not add up to its own
	// totals. Both files are stored; the manifest's record of the raw one
	// says "reconciled": false.
	InvoiceUnreconciled = "Invoice.Unreconciled"
)

// ExportWarnings is the error a strict export ends with when it gave
// warnings, once everything is stored.
const ExportWarnings = "Export.Warnings"

// Warning is a problem that did not fail its step: Atlas's files are stored
// as sent, an enrichment of them (a normalized form, a FOCUS report, a
// reconciliation) is missing or disagrees. Its name is stable, as an error's
// is.
type Warning struct {
	Name      string `json:"name"`
	Message   string `json:"message"`
	OrgID     string `json:"orgId"`
	Period    string `json:"period"` // YYYY-MM
	Step      string `json:"step"`
	InvoiceID string `json:"invoiceId,omitempty"`
}

// maxWarningMessage bounds a warning's message: warnings travel in the state
// machine's payloads, which are capped.
const maxWarningMessage = 300

// WarningLog is the message of the log line each warning gets, which the
// template's metric filter counts.
const WarningLog = "export warning"

// warn adds a warning to ws and logs it, one JSON line with its org, period,
// step and name.
func (e *Exporter) warn(ws []Warning, orgID string, p period.Period, step, invoiceID, name, msg string) []Warning {
	w := Warning{Name: name, Message: truncate(msg, maxWarningMessage), OrgID: orgID, Period: p.Label(), Step: step, InvoiceID: invoiceID}
	e.log(orgID, p, step).Warn(WarningLog, "name", w.Name, "invoice", invoiceID, "message", w.Message)
	e.report(Event{OrgID: orgID, Period: p, Step: "warning", Warning: &w})
	return append(ws, w)
}

// warned adds the warning of a normalized upload, if any: the raw file is
// stored, its normalized form is not.
func (e *Exporter) warned(ws []Warning, w *tally.Warning, orgID string, p period.Period, invoiceID, step string) []Warning {
	if w == nil {
		return ws
	}
	return e.warn(ws, orgID, p, step, invoiceID, w.Name, "not normalized, the raw file is stored: "+w.Error())
}

// WarningsError is the Export.Warnings error for ws, nil when there are
// none: for exports told to fail on warnings (strict), after everything is
// stored. It counts the warnings by name.
func WarningsError(ws []Warning) error {
	if len(ws) == 0 {
		return nil
	}
	count := map[string]int{}
	for _, w := range ws {
		count[w.Name]++
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%s x%d", n, count[n]))
	}
	first := ws[0]
	where := "org " + first.OrgID + ", " + first.Period
	if first.InvoiceID != "" {
		where += ", invoice " + first.InvoiceID
	}
	return &Error{Name: ExportWarnings, Msg: fmt.Sprintf("%d warning(s) and warnings are set to fail the export (%s); everything is stored; first: %s: %s: %s",
		len(ws), strings.Join(parts, ", "), where, first.Name, first.Message)}
}

// finish ends a job: its result, or with Strict and warnings the
// Export.Warnings error, everything being stored by then.
func (e *Exporter) finish(r Result) (Result, error) {
	if e.Strict {
		if err := WarningsError(r.Warnings); err != nil {
			return Result{}, err
		}
	}
	return r, nil
}
