package normalize

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

// atlasHeader is the line-item header of an invoice CSV.
var atlasHeader = func() []string {
	h := make([]string, len(invoiceColumns))
	for i, c := range invoiceColumns {
		h[i] = c.atlas
	}
	return h
}()

// Field is one key/value record of an invoice CSV's preamble, for example
// {"Billing Period", "June 1, 2024 - July 1, 2024"}.
type Field struct {
	Key, Value string
}

// invoiceReader reads an invoice CSV: a preamble of key/value records of no
// fixed length, then the line-item header (atlasHeader), then line items.
type invoiceReader struct {
	preamble []Field
	header   []string
	r        *csv.Reader
}

// maxPreamble bounds the records searched for the header, so a file that is
// not an invoice fails fast instead of filling memory.
const maxPreamble = 1000

// errNoInvoiceHeader means the line-item header was not found.
var errNoInvoiceHeader = errors.New("invoice CSV: line-item header not found")

// newInvoiceReader reads the preamble and the header, leaving r at the first
// line item. The header is found by its content, wherever it is.
func newInvoiceReader(r io.Reader) (*invoiceReader, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3) // a UTF-8 byte order mark
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = false
	ir := &invoiceReader{r: cr}
	for i := 0; i < maxPreamble; i++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil, errNoInvoiceHeader
		}
		if err != nil {
			return nil, fmt.Errorf("invoice CSV preamble: %w", err)
		}
		trimmed := trimRecord(rec)
		if slices.Equal(trimmed, atlasHeader) {
			ir.header = slices.Clone(atlasHeader)
			return ir, nil
		}
		if len(trimmed) == 0 {
			continue
		}
		f := Field{Key: trimmed[0]}
		if len(trimmed) > 1 {
			f.Value = trimmed[1]
		}
		ir.preamble = append(ir.preamble, f)
	}
	return nil, fmt.Errorf("%w in the first %d records", errNoInvoiceHeader, maxPreamble)
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

// next returns the next line item, io.EOF after the last one. Fields are as
// in the file, except that empty fields past the header's width are dropped.
func (r *invoiceReader) next() ([]string, error) {
	for {
		rec, err := r.r.Read()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("invoice CSV line items: %w", err)
		}
		for len(rec) > len(r.header) && strings.TrimSpace(rec[len(rec)-1]) == "" {
			rec = rec[:len(rec)-1]
		}
		if len(trimRecord(rec)) == 0 {
			continue // a row of only commas
		}
		return rec, nil
	}
}

// value returns the preamble value for key (compared without surrounding
// spaces, case-sensitively).
func (r *invoiceReader) value(key string) (string, bool) {
	key = strings.TrimSpace(key)
	for _, f := range r.preamble {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}
