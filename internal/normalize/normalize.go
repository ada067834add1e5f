// Package normalize rewrites Atlas's billing files (invoice, usage and FOCUS
// CSVs, usage JSON) as Parquet files Athena reads directly: columns of
// snake_case names with real types (money and quantities as exact
// decimals, dates as DATE, FOCUS's date-times as TIMESTAMP, tags as a
// map), one row per line item. It streams: memory does not grow with the
// file (row groups of a bounded size), and a record over MaxRecordBytes is
// refused before it is held. A file it cannot rewrite is a *Warning: the
// caller keeps Atlas's file as sent.
//
// The org id and the billing month are not columns of the files: they are the
// partition keys of the S3 keys (internal/layout) and so columns of the Glue
// tables. Athena refuses a table whose partition key is also a data column,
// so writing them twice would break the tables.
package normalize

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// kind says how a column's values are read and written (parquet.go has
// each kind's Parquet type). Empty is NULL, except for amount.
type kind int

const (
	text      kind = iota // a string, kept as given (invalid UTF-8 as U+FFFD)
	date                  // DATE
	timestamp             // TIMESTAMP, milliseconds, UTC
	number                // DECIMAL(38,24)
	percent               // DECIMAL(38,24), an optional trailing "%" dropped
	amount                // DECIMAL(18,2), required, summed in tally.Stats.Amount
	tags                  // MAP<STRING,STRING>: a FOCUS Tags JSON object, or an invoice's extra columns
)

// column maps one Atlas column to its normalized name.
type column struct {
	atlas, name string
	kind        kind
	also        []string // other header names taken for this column (by name only)
}

// columnsOf is the columns of the row struct T (parquet.go), one per field
// in order: the name of its parquet tag; Atlas's name, then the other
// names taken, from its atlas tag ("Project ID,Group ID"), else the name
// itself; the kind of its Go type (goTypes), percent where its kind tag
// says so.
func columnsOf[T any]() []column {
	t := reflect.TypeFor[T]()
	cols := make([]column, t.NumField())
	for i := range cols {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		atlas, also, ok := strings.Cut(cmp.Or(f.Tag.Get("atlas"), name), ",")
		cols[i] = column{atlas: atlas, name: name}
		if ok {
			cols[i].also = strings.Split(also, ",")
		}
		cols[i].kind = kind(slices.Index(goTypes[:], f.Type)) // number before percent
		if f.Tag.Get("kind") == "percent" {
			cols[i].kind = percent
		}
	}
	return cols
}

var (
	invoiceTable = columnsOf[invoiceRow]()
	// invoiceColumns are the line-item columns of an invoice CSV: between
	// the invoice's id and status and the tags.
	invoiceColumns = invoiceTable[2 : len(invoiceTable)-1]
	usageColumns   = columnsOf[usageRow]()
	focusColumns   = columnsOf[focusRow]()
)

// usageRequired is the one column a usage file must have.
const usageRequired = "Usage Amount"

// focusRequired is the one column a file must have to be taken for FOCUS:
// without it, it is some other file (an error page, another report).
const focusRequired = "BilledCost"

// invoiceRequired are the columns an invoice header must name, and so
// how the header is told from the preamble: when a line item was billed,
// what was billed and for how much. Every other column may be missing
// (empty in the normalized file): a line item without its project or unit
// price is still a charge a user must see and the amount reconciles.
var invoiceRequired = []string{"Date", "SKU", "Amount"}

// The columns of each normalized file, in order. The Glue tables declare
// exactly these, with the types of the files' Parquet schema.
var (
	InvoiceColumns = names(invoiceTable)
	UsageColumns   = names(usageColumns)
	// FocusColumns are FOCUS 1.0's names in lower case, as Athena shows
	// them and AWS Data Exports' FOCUS table has them.
	FocusColumns = names(focusColumns)
)

func names(cs []column) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.name
	}
	return out
}

// InvoiceInfo is what Invoice adds to every line item.
type InvoiceInfo struct {
	ID string // the invoice id (24 hex)
	// Status is the invoice's status (PENDING, CLOSED, PAID, ...) as listed
	// by the API. Empty: the "Invoice Status" of the CSV's preamble.
	Status string
}

// Parquet writes Atlas's files as the normalized Parquet files: the
// export's Normalizer.
type Parquet struct{}

// Invoice is Invoice, for the invoice invoiceID of that status.
func (Parquet) Invoice(w io.Writer, r io.Reader, invoiceID, status string) (tally.Stats, error) {
	return Invoice(w, r, InvoiceInfo{ID: invoiceID, Status: status})
}

func (Parquet) UsageJSON(w io.Writer, r io.Reader) (tally.Stats, error) { return UsageJSON(w, r) }

func (Parquet) Focus(w io.Writer, r io.Reader) (tally.Stats, error) { return Focus(w, r) }

// Invoice reads a raw invoice CSV from r (a key/value preamble of any length,
// read as CSV, then the line items under a header found by its names) and
// writes to w a Parquet file of InvoiceColumns, one row per line item.
// A file that cannot be normalized is a *tally.Warning naming the line item and
// the column (any other error is a read or write failure); what was written
// before it is then incomplete and must be dropped.
func Invoice(w io.Writer, r io.Reader, inv InvoiceInfo) (tally.Stats, error) {
	var st tally.Stats
	if err := atlas.ValidateInvoiceID(inv.ID); err != nil {
		return st, fmt.Errorf("normalize: invoice: %w", err)
	}
	where := "normalize: invoice " + inv.ID
	ir, err := newInvoiceReader(r)
	if errors.Is(err, errNoInvoiceHeader) {
		return st, &tally.Warning{Name: tally.LayoutWarning, Msg: where, Err: err}
	}
	if err != nil {
		return st, csvProblem(where+": reading the preamble", err)
	}
	status := inv.Status
	if status == "" {
		status, _ = ir.preamble.Value("Invoice Status")
	}
	// The same two values on every row: set once, never copied.
	id, stat := []byte(inv.ID), appendUTF8(nil, bytes.TrimSpace([]byte(status)))
	out := newTable(w, invoiceFile())
	defer out.stop()
	m := newMapping(invoiceColumns, ir.header, true)
	for {
		rec, err := ir.next()
		if err == io.EOF {
			break
		}
		item := func() string { return fmt.Sprintf("line item %d", st.Rows+1) }
		if err != nil {
			return st, csvProblem(where+": reading "+item(), err)
		}
		if len(rec) != len(ir.header) {
			return st, &tally.Warning{Name: tally.LayoutWarning, Msg: fmt.Sprintf("%s: %s has %d fields, want %d", where, item(), len(rec), len(ir.header))}
		}
		out.setBytes(0, id)
		if len(stat) > 0 {
			out.setBytes(1, stat)
		}
		if err := m.row(out, 2, rec, ir.cr.recUTF8, &st); err != nil {
			return st, &tally.Warning{Name: tally.ValueWarning, Msg: where + ": " + item(), Err: err}
		}
		if err := out.end(); err != nil {
			return st, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := out.close(); err != nil {
		return st, fmt.Errorf("%s: %w", where, err)
	}
	return st, nil
}

// isInvoiceHeader reports whether a record (trimmed) names every column of
// invoiceRequired.
func isInvoiceHeader(rec [][]byte) bool {
	if len(rec) < len(invoiceRequired) {
		return false
	}
	for _, want := range invoiceRequired {
		k := nameKey(want)
		// A name is short: a long field is no name, and not worth a nameKey.
		if !slices.ContainsFunc(rec, func(h []byte) bool { return len(h) <= 64 && nameKey(string(h)) == k }) {
			return false
		}
	}
	return true
}

// Usage reads a Cost Explorer usage CSV from r (a header row, then one record
// per usage line) and writes to w a Parquet file of UsageColumns.
// Columns are found by their header name (see usageColumns), so Atlas may
// reorder or rename them; a column Atlas adds is left out (the raw file
// keeps it), a missing one is empty, except Usage Amount, which must be there.
func Usage(w io.Writer, r io.Reader) (tally.Stats, error) {
	return byName(newTable(w, usageFile()), r, "normalize: usage", usageColumns, usageRequired)
}

// Focus reads a FOCUS report CSV from r (a header row, then one record per
// charge) and writes to w a Parquet file of FocusColumns: columns found by
// name, missing ones NULL, added ones left out (see focusColumns).
// A file without a BilledCost column is a tally.Warning.
func Focus(w io.Writer, r io.Reader) (tally.Stats, error) {
	return byName(newTable(w, focusFile()), r, "normalize: FOCUS report", focusColumns, focusRequired)
}

// named reports whether a header field names c: its name or one of its
// others, whatever the case, spaces, underscores and hyphens.
func (c column) named(h string) bool {
	h = nameKey(h)
	if h == nameKey(c.atlas) {
		return true
	}
	for _, a := range c.also {
		if h == nameKey(a) {
			return true
		}
	}
	return false
}

// nameKey is a header name in lower case without spaces, underscores and
// hyphens: "Invoice Id", "invoice_id" and "invoiceId" are one key.
func nameKey(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '\t', '\ufeff':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// byName reads a CSV whose first row names its columns and writes cols, in
// their order, found by name (column.named), to out. A column missing from
// the file is NULL, except required, whose absence is a tally.Warning.
func byName(out *table, r io.Reader, where string, cols []column, required string) (tally.Stats, error) {
	defer out.stop()
	var st tally.Stats
	cr := newCSVReader(r, 0) // every record as wide as the header
	header, err := cr.Read()
	if err == io.EOF {
		return st, &tally.Warning{Name: tally.LayoutWarning, Msg: where + ": empty file, want a header row"}
	}
	if err != nil {
		return st, csvProblem(where+": reading the header", err)
	}
	hs := make([]string, len(header))
	for i, h := range header {
		hs[i] = string(h)
	}
	m := newMapping(cols, hs, false)
	if i := slices.IndexFunc(cols, func(c column) bool { return c.named(required) }); m.src[i] < 0 {
		return st, &tally.Warning{Name: tally.LayoutWarning, Msg: fmt.Sprintf("%s: header has no %q column", where, required)}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, csvProblem(fmt.Sprintf("%s: reading record %d", where, st.Rows+1), err)
		}
		if err := m.row(out, 0, rec, cr.recUTF8, &st); err != nil {
			return st, &tally.Warning{Name: tally.ValueWarning, Msg: fmt.Sprintf("%s: line %d", where, cr.recLine), Err: err}
		}
		if err := out.end(); err != nil {
			return st, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := out.close(); err != nil {
		return st, fmt.Errorf("%s: %w", where, err)
	}
	st.Services = m.services()
	return st, nil
}

// csvProblem names what the CSV reader refused: a record over the bounds, a
// record of another width, a syntax error. Anything else is a read failure.
func csvProblem(msg string, err error) error {
	var pe *csv.ParseError
	switch {
	case errors.Is(err, ErrRecordTooLarge), errors.Is(err, ErrTooManyColumns):
		return &tally.Warning{Name: tally.TooLargeWarning, Msg: msg, Err: err}
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		return &tally.Warning{Name: tally.LayoutWarning, Msg: msg, Err: err}
	case errors.As(err, &pe):
		return &tally.Warning{Name: tally.SyntaxWarning, Msg: msg, Err: err}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// mapping writes the records of a file as the normalized columns.
type mapping struct {
	cols     []column
	src      []int       // src[i]: the field of cols[i], -1 if none
	withTags bool        // a tags column follows cols
	tags     []tagColumn // fields carried into the tags column, by name
	scratch  []byte      // a canonical decimal
	utf8     bool        // the record being written is known to be valid UTF-8
	service  int         // the index in cols of the service column, -1 if none
	totals   map[string]*tally.Sum
	months   []month // months[i]: the month of the last ISO date of cols[i]
}

// month is a month of ISO dates ("2024-06-"): the dates of a column are
// mostly in one, and reading its day is all that is left.
type month struct {
	prefix [8]byte
	first  int32 // the days to its first day (dateOf)
	days   int   // its length
}

type tagColumn struct {
	name  []byte // valid UTF-8
	field int
}

// newMapping finds cols in header by name, the first field of each name.
// With tags, every other named field is a tag.
func newMapping(cols []column, header []string, tags bool) *mapping {
	m := &mapping{cols: cols, src: make([]int, len(cols)), withTags: tags, service: -1, months: make([]month, len(cols))}
	used := make([]bool, len(header))
	for i, c := range cols {
		m.src[i] = -1
		for j, h := range header {
			if !used[j] && c.named(h) {
				m.src[i], used[j] = j, true
				break
			}
		}
		if c.name == "service" {
			m.service, m.totals = i, map[string]*tally.Sum{}
		}
	}
	if tags {
		seen := map[string]bool{}
		for j, h := range header {
			name := appendUTF8(nil, []byte(strings.TrimSpace(h)))
			if !used[j] && len(name) > 0 && !seen[string(name)] { // a name twice: the first
				seen[string(name)] = true
				m.tags = append(m.tags, tagColumn{name, j})
			}
		}
		// A map's entries are written in the order of their keys.
		slices.SortFunc(m.tags, func(a, b tagColumn) int { return bytes.Compare(a.name, b.name) })
	}
	return m
}

// row writes one record of rec to out, its columns from the first-th on,
// adding to st. utf8 says that rec is known to be valid UTF-8.
func (m *mapping) row(out *table, first int, rec [][]byte, utf8 bool, st *tally.Stats) error {
	m.utf8 = utf8
	var amt []byte // the amount, canonical
	for i := range m.cols {
		c := &m.cols[i] // not a copy: a column is 64 bytes
		var v []byte
		if m.src[i] >= 0 {
			v = rec[m.src[i]]
		}
		if c.kind == text { // most columns: a call to value saved
			out.setText(first+i, v, m.utf8)
			continue
		}
		if err := m.value(out, first+i, c.kind, v, &amt); err != nil {
			return fmt.Errorf("%s %s: %w", c.name, tally.Shown(v), err)
		}
	}
	if m.withTags {
		for _, c := range m.tags {
			if v := rec[c.field]; len(bytes.TrimSpace(v)) > 0 {
				out.setTag(first+len(m.cols), c.name, v, m.utf8)
			}
		}
	}
	if amt != nil {
		st.Amount.Add(amt)
		if m.service >= 0 {
			var svc []byte
			if f := m.src[m.service]; f >= 0 {
				svc = rec[f]
			}
			if !m.utf8 {
				svc = appendUTF8(nil, svc) // the service as written
			}
			t := m.totals[string(svc)]
			if t == nil {
				t = &tally.Sum{}
				m.totals[string(svc)] = t
			}
			t.Add(amt)
		}
	}
	st.Rows++
	return nil
}

// value writes one field of column i, of any kind but text (row writes
// those), to out. An amount's canonical form is left in *amt, valid until
// the next value.
func (m *mapping) value(out *table, i int, k kind, v []byte, amt *[]byte) error {
	switch k {
	case date:
		days, ok, err := m.date(i, v)
		if ok {
			out.setDate(i, days)
		}
		return err
	case timestamp:
		ms, ok, err := timestampOf(v)
		if ok {
			out.setInt64(i, ms)
		}
		return err
	case number, percent:
		t := bytes.TrimSpace(v)
		if k == percent {
			t = bytes.TrimSpace(bytes.TrimSuffix(t, []byte{'%'}))
		}
		if len(t) == 0 {
			return nil // e.g. a credit has no unit price
		}
		d, err := m.decimal(t)
		if err != nil {
			return err
		}
		b, err := decimal128(d)
		if err == nil {
			out.setDecimal(i, b)
		}
		return err
	case amount:
		if len(bytes.TrimSpace(v)) == 0 {
			return errors.New("is empty")
		}
		d, err := m.decimal(v)
		if err != nil {
			return err
		}
		c, err := cents(d)
		if err == nil {
			out.setInt64(i, c)
			*amt = d
		}
		return err
	case tags:
		t, err := jsonTags(v)
		for _, k := range slices.Sorted(maps.Keys(t)) {
			out.setTag(i, []byte(k), []byte(t[k]), true)
		}
		return err
	}
	return nil
}

// date is dateOf(v) for column i, faster for an ISO date in the month of
// the column's last one.
func (m *mapping) date(i int, v []byte) (int32, bool, error) {
	mo := &m.months[i]
	if len(v) == 10 && [8]byte(v) == mo.prefix { // a month never read has no prefix
		if d, ok := num(v[8:]); ok && d >= 1 && d <= mo.days {
			return mo.first + int32(d) - 1, true, nil
		}
	}
	days, ok, err := dateOf(v)
	if y, mm, _, iso := isoDate(v); ok && iso { // dateOf took it as ISO
		*mo = month{[8]byte(v), civilDays(y, mm, 1), daysIn(y, mm)}
	}
	return days, ok, err
}

// decimal is v as a canonical decimal: v itself if it is one, else a copy
// in m's scratch buffer.
func (m *mapping) decimal(v []byte) ([]byte, error) {
	if tally.Canonical(v) {
		return v, nil
	}
	var err error
	m.scratch, err = tally.AppendDecimal(m.scratch[:0], v)
	return m.scratch, err
}

func (m *mapping) services() map[string]tally.Sum {
	if m.totals == nil {
		return nil
	}
	out := make(map[string]tally.Sum, len(m.totals))
	for k, v := range m.totals {
		out[k] = *v
	}
	return out
}

// jsonTags reads a FOCUS Tags value, a JSON object: each key and its value,
// a string as given, any other JSON value as its JSON text (null as "").
// Empty is no tags (nil).
func jsonTags(v []byte) (map[string]string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || dec.More() || obj == nil {
		return nil, errors.New("is not a JSON object")
	}
	t := make(map[string]string, len(obj))
	for k, x := range obj {
		switch x := x.(type) {
		case string:
			t[k] = x
		case nil:
			t[k] = ""
		default:
			b, _ := json.Marshal(x) // a decoded value always marshals
			t[k] = string(b)
		}
	}
	return t, nil
}
