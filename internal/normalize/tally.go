package normalize

import (
	"io"

	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// What a normalizer yields besides the file, defined in internal/tally
// (which does not link the Parquet writer).
type (
	Stats   = tally.Stats
	Sum     = tally.Sum
	Warning = tally.Warning
)

// The names of a Warning.
const (
	LayoutWarning   = tally.LayoutWarning
	SyntaxWarning   = tally.SyntaxWarning
	ValueWarning    = tally.ValueWarning
	TooLargeWarning = tally.TooLargeWarning
)

// Parquet writes Atlas's files as the normalized Parquet files: the
// export's Normalizer.
type Parquet struct{}

// Invoice is Invoice, for the invoice invoiceID of that status.
func (Parquet) Invoice(w io.Writer, r io.Reader, invoiceID, status string) (Stats, error) {
	return Invoice(w, r, InvoiceInfo{ID: invoiceID, Status: status})
}

func (Parquet) UsageJSON(w io.Writer, r io.Reader) (Stats, error) { return UsageJSON(w, r) }

func (Parquet) Focus(w io.Writer, r io.Reader) (Stats, error) { return Focus(w, r) }
