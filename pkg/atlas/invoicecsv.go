package atlas

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// InvoiceColumns is the line-item header of an invoice CSV.
var InvoiceColumns = []string{"Date", "Usage Date", "Description", "Note", "Organization Name", "Organization ID", "Project", "Project ID", "SKU", "Region", "Cluster", "Replica Set", "Config Server", "Application", "Unit", "Unit Price", "Quantity", "Discount Percent", "Amount"}

// Field is one key/value record of an invoice CSV's preamble, for example
// {"Billing Period", "June 1, 2024 - July 1, 2024"}.
type Field struct {
	Key, Value string
}

// InvoiceReader reads an invoice CSV: a preamble of key/value records of no
// fixed length, then the line-item header (InvoiceColumns), then line items.
type InvoiceReader struct {
	Preamble []Field
	Header   []string
	r        *csv.Reader
}

// maxPreamble bounds the records searched for the header, so a file that is
// not an invoice fails fast instead of filling memory.
const maxPreamble = 1000

// ErrNoInvoiceHeader means the line-item header was not found.
var ErrNoInvoiceHeader = errors.New("atlas: invoice CSV: line-item header not found")

// NewInvoiceReader reads the preamble and the header, leaving r at the first
// line item. The header is found by its content, wherever it is.
func NewInvoiceReader(r io.Reader) (*InvoiceReader, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3) // a UTF-8 byte order mark
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = false
	ir := &InvoiceReader{r: cr}
	for i := 0; i < maxPreamble; i++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, ErrNoInvoiceHeader
		}
		if err != nil {
			return nil, fmt.Errorf("atlas: invoice CSV preamble: %w", err)
		}
		trimmed := trimRecord(rec)
		if slices.Equal(trimmed, InvoiceColumns) {
			ir.Header = slices.Clone(InvoiceColumns)
			return ir, nil
		}
		if len(trimmed) == 0 {
			continue
		}
		f := Field{Key: trimmed[0]}
		if len(trimmed) > 1 {
			f.Value = trimmed[1]
		}
		ir.Preamble = append(ir.Preamble, f)
	}
	return nil, fmt.Errorf("%w in the first %d records", ErrNoInvoiceHeader, maxPreamble)
}

// trimRecord trims spaces from every field and drops trailing empty fields
// (the preamble's trailing commas).
func trimRecord(rec []string) []string {
	out := make([]string, len(rec))
	for i, f := range rec {
		out[i] = strings.TrimSpace(f)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// Next returns the next line item, io.EOF after the last one. Fields are as
// in the file, except that empty fields past the header's width are dropped.
func (r *InvoiceReader) Next() ([]string, error) {
	for {
		rec, err := r.r.Read()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("atlas: invoice CSV line items: %w", err)
		}
		for len(rec) > len(r.Header) && strings.TrimSpace(rec[len(rec)-1]) == "" {
			rec = rec[:len(rec)-1]
		}
		if len(trimRecord(rec)) == 0 {
			continue // a row of only commas
		}
		return rec, nil
	}
}

// Value returns the preamble value for key (compared without surrounding
// spaces, case-sensitively).
func (r *InvoiceReader) Value(key string) (string, bool) {
	key = strings.TrimSpace(key)
	for _, f := range r.Preamble {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}
