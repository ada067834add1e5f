// Package normalize rewrites Atlas's billing files (invoice, usage and FOCUS
// CSVs, usage JSON) as files Athena reads directly: one header row of
// snake_case names, then one record per line item, every record the same
// width, money as canonical plain decimals, dates as YYYY-MM-DD, no line
// breaks inside values. It streams: memory does not grow with the file, and
// a record over MaxRecordBytes is refused before it is held. A file it
// cannot rewrite is a *Warning: the caller keeps Atlas's file as sent.
//
// The org id and the billing month are not columns of the files: they are the
// partition keys of the S3 keys (internal/layout) and so columns of the Glue
// tables. Athena refuses a table whose partition key is also a data column,
// so writing them twice would break the tables.
package normalize

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Stats describes a normalized file, counted while it streamed.
type Stats struct {
	Rows int64 // records written after the header
	// Amount is the exact sum of the amount column (amount for invoice
	// line items, usage_amount for usage; zero for FOCUS, kept as given).
	Amount Sum
	// Services is the sum of usage_amount per service (the service
	// column's value, "" where the file has none). Usage only.
	Services map[string]Sum
	// Preamble is the key/value block before the line items. Invoice only.
	Preamble Preamble
}

// kind says how a column's values are rewritten.
type kind int

const (
	text    kind = iota // kept as given, line breaks turned into spaces
	date                // YYYY-MM-DD, empty allowed
	number              // canonical decimal, empty allowed
	percent             // canonical decimal, an optional trailing "%" dropped, empty allowed
	amount              // canonical decimal, required, summed in Stats.Amount
)

// column maps one Atlas column to its normalized name.
type column struct {
	atlas, name string
	kind        kind
	also        []string // other header names taken for this column (by name only)
}

// invoiceColumns are the line-item columns of an invoice CSV, in Atlas's
// order (the simulator's atlassim.InvoiceColumns), found by name.
var invoiceColumns = []column{
	{"Date", "date", date, nil},
	{"Usage Date", "usage_date", date, nil},
	{"Description", "description", text, nil},
	{"Note", "note", text, nil},
	{"Organization Name", "organization_name", text, nil},
	{"Organization ID", "organization_id", text, nil},
	{"Project", "project", text, nil},
	{"Project ID", "project_id", text, nil},
	{"SKU", "sku", text, nil},
	{"Region", "region", text, nil},
	{"Cluster", "cluster", text, nil},
	{"Replica Set", "replica_set", text, nil},
	{"Config Server", "config_server", text, nil},
	{"Application", "application", text, nil},
	{"Unit", "unit", text, nil},
	{"Unit Price", "unit_price", number, nil},
	{"Quantity", "quantity", number, nil},
	{"Discount Percent", "discount_percent", percent, nil},
	{"Amount", "amount", amount, nil},
}

// usageColumns are the columns of a Cost Explorer usage CSV, found by name.
// The CSV's layout is not documented beyond the spec's example, which names
// some columns differently ("Invoice Id", "Project Id", "Cluster Unique Id",
// "Billed Date") and has no Service or Usage Date; public clients read the
// JSON form's invoiceId, organizationId, service, usageAmount and usageDate.
// So names match whatever their case, spaces and underscores, a few other
// names are taken too, and only the amount is required: a column the file
// lacks is empty rather than the export failing.
var usageColumns = []column{
	{"Invoice ID", "invoice_id", text, nil},
	{"Organization ID", "organization_id", text, []string{"Org ID"}},
	{"Organization Name", "organization_name", text, []string{"Org Name"}},
	{"Project ID", "project_id", text, []string{"Group ID"}},
	{"Project Name", "project_name", text, []string{"Group Name"}},
	{"Cluster ID", "cluster_id", text, []string{"Cluster Unique ID"}},
	{"Cluster Name", "cluster_name", text, nil},
	{"Service", "service", text, []string{"Service Name"}},
	{"Usage Date", "usage_date", date, []string{"Billed Date", "Bill Date"}},
	{"Usage Amount", "usage_amount", amount, nil},
}

// usageRequired is the one column a usage file must have.
const usageRequired = "Usage Amount"

// focusColumns are the columns of FOCUS 1.0, the FinOps Open Cost and Usage
// Specification, in its (alphabetical) order, found by name. A FOCUS file
// need not have them all, nor in this order: a column it lacks is empty
// (FOCUS makes many of them optional, and Atlas has no commitment
// discounts), one it adds (a later FOCUS version's, or a provider's "x_"
// column) stays in the raw file only. Values are kept as given, on one line.
var focusColumns = []column{
	{"AvailabilityZone", "availabilityzone", text, nil},
	{"BilledCost", "billedcost", text, nil},
	{"BillingAccountId", "billingaccountid", text, nil},
	{"BillingAccountName", "billingaccountname", text, nil},
	{"BillingCurrency", "billingcurrency", text, nil},
	{"BillingPeriodEnd", "billingperiodend", text, nil},
	{"BillingPeriodStart", "billingperiodstart", text, nil},
	{"ChargeCategory", "chargecategory", text, nil},
	{"ChargeClass", "chargeclass", text, nil},
	{"ChargeDescription", "chargedescription", text, nil},
	{"ChargeFrequency", "chargefrequency", text, nil},
	{"ChargePeriodEnd", "chargeperiodend", text, nil},
	{"ChargePeriodStart", "chargeperiodstart", text, nil},
	{"CommitmentDiscountCategory", "commitmentdiscountcategory", text, nil},
	{"CommitmentDiscountId", "commitmentdiscountid", text, nil},
	{"CommitmentDiscountName", "commitmentdiscountname", text, nil},
	{"CommitmentDiscountStatus", "commitmentdiscountstatus", text, nil},
	{"CommitmentDiscountType", "commitmentdiscounttype", text, nil},
	{"ConsumedQuantity", "consumedquantity", text, nil},
	{"ConsumedUnit", "consumedunit", text, nil},
	{"ContractedCost", "contractedcost", text, nil},
	{"ContractedUnitPrice", "contractedunitprice", text, nil},
	{"EffectiveCost", "effectivecost", text, nil},
	{"InvoiceIssuerName", "invoiceissuername", text, nil},
	{"ListCost", "listcost", text, nil},
	{"ListUnitPrice", "listunitprice", text, nil},
	{"PricingCategory", "pricingcategory", text, nil},
	{"PricingQuantity", "pricingquantity", text, nil},
	{"PricingUnit", "pricingunit", text, nil},
	{"ProviderName", "providername", text, nil},
	{"PublisherName", "publishername", text, nil},
	{"RegionId", "regionid", text, nil},
	{"RegionName", "regionname", text, nil},
	{"ResourceId", "resourceid", text, nil},
	{"ResourceName", "resourcename", text, nil},
	{"ResourceType", "resourcetype", text, nil},
	{"ServiceCategory", "servicecategory", text, nil},
	{"ServiceName", "servicename", text, nil},
	{"SkuId", "skuid", text, nil},
	{"SkuPriceId", "skupriceid", text, nil},
	{"SubAccountId", "subaccountid", text, nil},
	{"SubAccountName", "subaccountname", text, nil},
	{"Tags", "tags", text, nil},
}

// focusRequired is the one column a file must have to be taken for FOCUS:
// without it, it is some other file (an error page, another report).
const focusRequired = "BilledCost"

// invoiceRequired are the columns an invoice header must name, and so
// how the header is told from the preamble: when a line item was billed,
// what was billed and for how much. Every other column may be missing
// (empty in the normalized file): a line item without its project or unit
// price is still a charge a user must see and the amount reconciles.
var invoiceRequired = []string{"Date", "SKU", "Amount"}

// invoicePrefix are the columns Invoice adds before the line-item columns.
var invoicePrefix = []string{"invoice_id", "invoice_status"}

// tagsColumn is the last column of a normalized invoice: the columns the
// invoice has beyond invoiceColumns (resource tags appear as extra
// columns) as one JSON object, column name -> value, names sorted, blank
// values left out; {} when there are none.
const tagsColumn = "tags"

// InvoiceColumns is the header of a normalized invoice: the invoice's id and
// status, the line-item columns in snake_case, then tags. The Glue table
// of invoice line items declares exactly these columns, in this order.
var InvoiceColumns = slices.Concat(invoicePrefix, names(invoiceColumns), []string{tagsColumn})

// UsageColumns is the header of normalized usage. The Glue table of usage
// declares exactly these columns, in this order.
var UsageColumns = names(usageColumns)

// FocusColumns is the header of a normalized FOCUS report: the FOCUS 1.0
// column names in lower case, as Athena shows them. The Glue table of FOCUS
// declares exactly these columns, in this order.
var FocusColumns = names(focusColumns)

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

// bufSize is the output buffer: large enough that a multipart upload behind w
// sees few small writes.
const bufSize = 64 << 10

// Invoice reads a raw invoice CSV from r (a key/value preamble of any length,
// read as CSV, then the line items under a header found by its names) and
// writes to w the header InvoiceColumns and one record per line item.
// A file that cannot be normalized is a *Warning naming the line item and
// the column (any other error is a read or write failure); what was written
// before it is then incomplete and must be dropped.
func Invoice(w io.Writer, r io.Reader, inv InvoiceInfo) (Stats, error) {
	var st Stats
	if err := atlas.ValidateInvoiceID(inv.ID); err != nil {
		return st, fmt.Errorf("normalize: invoice: %w", err)
	}
	where := "normalize: invoice " + inv.ID
	ir, err := newInvoiceReader(r)
	if errors.Is(err, errNoInvoiceHeader) {
		return st, &Warning{Name: LayoutWarning, Msg: where, Err: err}
	}
	if err != nil {
		return st, csvProblem(where+": reading the preamble", err)
	}
	st.Preamble = ir.preamble
	status := inv.Status
	if status == "" {
		status, _ = ir.preamble.Value("Invoice Status")
	}
	m := newMapping(invoiceColumns, ir.header, true)
	out := newOutput(w)
	out.b = appendRecord(out.b, InvoiceColumns...)
	prefix := append(appendField(nil, []byte(inv.ID)), ',')
	prefix = append(appendText(prefix, bytes.TrimSpace([]byte(status))), ',')
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
			return st, &Warning{Name: LayoutWarning, Msg: fmt.Sprintf("%s: %s has %d fields, want %d", where, item(), len(rec), len(ir.header))}
		}
		out.b = append(out.b, prefix...)
		if out.b, err = m.appendRow(out.b, rec, &st); err != nil {
			return st, &Warning{Name: ValueWarning, Msg: where + ": " + item(), Err: err}
		}
		if err := out.end(); err != nil {
			return st, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := out.flush(); err != nil {
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
// per usage line) and writes to w the header UsageColumns and the records.
// Columns are found by their header name (see usageColumns), so Atlas may
// reorder or rename them; a column Atlas adds is left out (the raw file
// keeps it), a missing one is empty, except Usage Amount, which must be there.
func Usage(w io.Writer, r io.Reader) (Stats, error) {
	return byName(w, r, "normalize: usage", usageColumns, usageRequired)
}

// Focus reads a FOCUS report CSV from r (a header row, then one record per
// charge) and writes to w the header FocusColumns and the records: columns
// found by name, missing ones empty, added ones left out (see focusColumns).
// A file without a BilledCost column is a Warning.
func Focus(w io.Writer, r io.Reader) (Stats, error) {
	return byName(w, r, "normalize: FOCUS report", focusColumns, focusRequired)
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
// their order, found by name (column.named). A column missing from the file
// is empty, except required, whose absence is a Warning.
func byName(w io.Writer, r io.Reader, where string, cols []column, required string) (Stats, error) {
	var st Stats
	cr := newCSVReader(r, 0) // every record as wide as the header
	header, err := cr.Read()
	if err == io.EOF {
		return st, &Warning{Name: LayoutWarning, Msg: where + ": empty file, want a header row"}
	}
	if err != nil {
		return st, csvProblem(where+": reading the header", err)
	}
	hs := make([]string, len(header))
	for i, h := range header {
		hs[i] = string(h)
	}
	m := newMapping(cols, hs, false)
	if i := slices.IndexFunc(cols, func(c column) bool { return c.atlas == required }); m.src[i] < 0 {
		return st, &Warning{Name: LayoutWarning, Msg: fmt.Sprintf("%s: header has no %q column", where, required)}
	}
	out := newOutput(w)
	out.b = appendRecord(out.b, names(cols)...)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, csvProblem(fmt.Sprintf("%s: reading record %d", where, st.Rows+1), err)
		}
		if out.b, err = m.appendRow(out.b, rec, &st); err != nil {
			return st, &Warning{Name: ValueWarning, Msg: fmt.Sprintf("%s: line %d", where, cr.recLine), Err: err}
		}
		if err := out.end(); err != nil {
			return st, fmt.Errorf("%s: %w", where, err)
		}
	}
	if err := out.flush(); err != nil {
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
		return &Warning{Name: TooLargeWarning, Msg: msg, Err: err}
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		return &Warning{Name: LayoutWarning, Msg: msg, Err: err}
	case errors.As(err, &pe):
		return &Warning{Name: SyntaxWarning, Msg: msg, Err: err}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// mapping writes the records of a file as the normalized columns.
type mapping struct {
	cols     []column
	src      []int       // src[i]: the field of cols[i], -1 if none
	withTags bool        // a tags column follows cols
	tags     []tagColumn // fields carried into the tags column, by name
	json     []byte      // scratch for the tags
	service  int         // the index in cols of the service column, -1 if none
	totals   map[string]*Sum
}

type tagColumn struct {
	name  string
	field int
}

// newMapping finds cols in header by name, the first field of each name.
// With tags, every other named field is a tag.
func newMapping(cols []column, header []string, tags bool) *mapping {
	m := &mapping{cols: cols, src: make([]int, len(cols)), withTags: tags, service: -1}
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
			m.service, m.totals = i, map[string]*Sum{}
		}
	}
	if tags {
		seen := map[string]bool{}
		for j, h := range header {
			h = strings.TrimSpace(h)
			if !used[j] && h != "" && !seen[h] { // a name twice: the first
				seen[h] = true
				m.tags = append(m.tags, tagColumn{h, j})
			}
		}
		slices.SortFunc(m.tags, func(a, b tagColumn) int { return strings.Compare(a.name, b.name) })
	}
	return m
}

// appendRow appends one normalized record of rec, adding to st.
func (m *mapping) appendRow(b []byte, rec [][]byte, st *Stats) ([]byte, error) {
	var amt []byte // the amount as written
	for i, c := range m.cols {
		if i > 0 {
			b = append(b, ',')
		}
		var v []byte
		if m.src[i] >= 0 {
			v = rec[m.src[i]]
		}
		start := len(b)
		var err error
		if b, err = appendValue(b, c.kind, v); err != nil {
			return b, fmt.Errorf("%s %s: %w", c.name, shown(v), err)
		}
		if c.kind == amount {
			amt = b[start:]
			st.Amount.add(amt)
		}
	}
	if m.withTags {
		b = append(b, ',')
		b = appendField(b, m.tagsJSON(rec))
	}
	if m.service >= 0 && amt != nil {
		var svc []byte
		if f := m.src[m.service]; f >= 0 {
			svc = flat(rec[f])
		}
		t := m.totals[string(svc)]
		if t == nil {
			t = &Sum{}
			m.totals[string(svc)] = t
		}
		t.add(amt)
	}
	st.Rows++
	return append(b, '\n'), nil
}

// tagsJSON is the tags of rec as a JSON object.
func (m *mapping) tagsJSON(rec [][]byte) []byte {
	b := append(m.json[:0], '{')
	for _, t := range m.tags {
		v := rec[t.field]
		if len(bytes.TrimSpace(v)) == 0 {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.name)
		b = append(b, ':')
		b = appendJSONString(b, string(v))
	}
	m.json = append(b, '}')
	return m.json
}

func (m *mapping) services() map[string]Sum {
	if m.totals == nil {
		return nil
	}
	out := make(map[string]Sum, len(m.totals))
	for k, v := range m.totals {
		out[k] = *v
	}
	return out
}

// appendValue appends one field normalized.
func appendValue(b []byte, k kind, v []byte) ([]byte, error) {
	switch k {
	case date:
		return appendISODate(b, v)
	case number, percent:
		t := bytes.TrimSpace(v)
		if k == percent {
			t = bytes.TrimSpace(bytes.TrimSuffix(t, []byte{'%'}))
		}
		if len(t) == 0 {
			return b, nil // e.g. a credit has no unit price
		}
		return appendDecimal(b, t)
	case amount:
		if len(bytes.TrimSpace(v)) == 0 {
			return b, errors.New("is empty")
		}
		return appendDecimal(b, v)
	}
	return appendText(b, v), nil
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (without its HTML escaping): invalid UTF-8 as U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
