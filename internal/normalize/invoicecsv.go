package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Field is one key/value record of an invoice CSV's preamble, for example
// {"Billing Period", "June 1, 2024 - July 1, 2024"}.
type Field struct {
	Key, Value string
}

// Preamble is the key/value block before an invoice's line items, in the
// file's order.
type Preamble []Field

// Value returns the value of key, compared as column names are (whatever
// the case and spacing: "Amount Billed" finds "amount billed").
func (p Preamble) Value(key string) (string, bool) {
	k := nameKey(key)
	for _, f := range p {
		if nameKey(f.Key) == k {
			return f.Value, true
		}
	}
	return "", false
}

// invoiceReader reads an invoice CSV: a preamble of key/value records of no
// fixed length, then the line-item header, then line items.
type invoiceReader struct {
	preamble Preamble
	header   []string // as in the file, trimmed, trailing empty names dropped
	cr       *csvReader
}

// maxPreamble bounds the records searched for the header, so a file that is
// not an invoice fails fast.
const maxPreamble = 1000

// errNoInvoiceHeader means the line-item header was not found.
var errNoInvoiceHeader = errors.New("line-item header not found")

// newInvoiceReader reads the preamble and the header, leaving r at the
// first line item. The header is the first record that names every
// required column (isInvoiceHeader), wherever it is.
func newInvoiceReader(r io.Reader) (*invoiceReader, error) {
	ir := &invoiceReader{cr: newCSVReader(r, -1)}
	for i := 0; i < maxPreamble; i++ {
		rec, err := ir.cr.Read()
		if err == io.EOF {
			return nil, errNoInvoiceHeader
		}
		if err != nil {
			return nil, err
		}
		trimmed := trimRecord(rec)
		if isInvoiceHeader(trimmed) {
			ir.header = make([]string, len(trimmed))
			for i, f := range trimmed {
				ir.header[i] = string(f)
			}
			return ir, nil
		}
		if len(trimmed) == 0 {
			continue
		}
		f := Field{Key: string(trimmed[0])}
		if len(trimmed) > 1 {
			f.Value = string(trimmed[1])
		}
		ir.preamble = append(ir.preamble, f)
	}
	return nil, fmt.Errorf("%w in the first %d records", errNoInvoiceHeader, maxPreamble)
}

// trimRecord trims spaces from every field and drops trailing empty fields
// (the preamble's trailing commas). It trims in place.
func trimRecord(rec [][]byte) [][]byte {
	for i, f := range rec {
		rec[i] = bytes.TrimSpace(f)
	}
	for len(rec) > 0 && len(rec[len(rec)-1]) == 0 {
		rec = rec[:len(rec)-1]
	}
	return rec
}

// next returns the next line item, io.EOF after the last. Fields are as in
// the file, except that empty fields past the header's width are dropped
// (trailing commas). A row of only commas or spaces is skipped. The fields
// are valid until the next call.
func (ir *invoiceReader) next() ([][]byte, error) {
	for {
		rec, err := ir.cr.Read()
		if err != nil {
			return nil, err
		}
		for len(rec) > len(ir.header) && len(bytes.TrimSpace(rec[len(rec)-1])) == 0 {
			rec = rec[:len(rec)-1]
		}
		if !blank(rec) {
			return rec, nil
		}
	}
}

func blank(rec [][]byte) bool {
	for _, f := range rec {
		if len(bytes.TrimSpace(f)) > 0 {
			return false
		}
	}
	return true
}
