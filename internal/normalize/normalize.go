// Package normalize rewrites Atlas's billing CSVs as files Athena reads
// directly: one header row of snake_case names, then one record per line item,
// every record the same width, money as canonical plain decimals, dates as
// YYYY-MM-DD, no line breaks inside values. It streams: memory does not grow
// with the file.
//
// The org id and the billing month are not columns of the files: they are the
// partition keys of the S3 keys (internal/layout) and so columns of the Glue
// tables. Athena refuses a table whose partition key is also a data column,
// so writing them twice would break the tables.
package normalize

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Stats describes a normalized file.
type Stats struct {
	Rows int64 // records written after the header
	// AmountCents is the exact sum of the amount column (amount for invoice
	// line items, usage_amount for usage) in integer cents.
	AmountCents int64
}

// kind says how a column's values are rewritten.
type kind int

const (
	text    kind = iota // kept as given, line breaks turned into spaces
	date                // YYYY-MM-DD, empty allowed
	number              // canonical decimal, empty allowed
	percent             // canonical decimal, an optional trailing "%" dropped, empty allowed
	amount              // canonical decimal, required, summed in Stats.AmountCents
)

// column maps one Atlas column to its normalized name.
type column struct {
	atlas, name string
	kind        kind
	also        []string // other header names taken for this column (by name only)
}

// invoiceColumns are the line-item columns of an invoice CSV, in Atlas's order
// (atlasHeader).
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

// invoicePrefix are the columns Invoice adds before the line-item columns.
var invoicePrefix = []string{"invoice_id", "invoice_status"}

// InvoiceColumns is the header of a normalized invoice: the invoice's id and
// status, then the line-item columns in snake_case. The Glue table of
// invoice line items declares exactly these columns, in this order.
var InvoiceColumns = append(append([]string(nil), invoicePrefix...), names(invoiceColumns)...)

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
// read with a CSV reader, then the line items; see newInvoiceReader)
// and writes to w the header InvoiceColumns and one record per line item.
// A value that cannot be normalized is an error naming the line item and the
// column; what was written before it is then incomplete and must be dropped.
func Invoice(w io.Writer, r io.Reader, inv InvoiceInfo) (Stats, error) {
	var st Stats
	if err := atlas.ValidateInvoiceID(inv.ID); err != nil {
		return st, fmt.Errorf("normalize: invoice: %w", err)
	}
	ir, err := newInvoiceReader(r)
	if err != nil {
		return st, fmt.Errorf("normalize: invoice %s: %w", inv.ID, err)
	}
	status := inv.Status
	if status == "" {
		status, _ = ir.value("Invoice Status")
	}
	bw := bufio.NewWriterSize(w, bufSize)
	cw := csv.NewWriter(bw)
	if err := cw.Write(InvoiceColumns); err != nil {
		return st, fmt.Errorf("normalize: invoice %s: writing the header: %w", inv.ID, err)
	}
	out := make([]string, len(InvoiceColumns))
	out[0], out[1] = inv.ID, flat(strings.TrimSpace(status))
	for {
		rec, err := ir.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, fmt.Errorf("normalize: invoice %s: reading line item %d: %w", inv.ID, st.Rows+1, err)
		}
		if len(rec) != len(invoiceColumns) {
			return st, fmt.Errorf("normalize: invoice %s: line item %d has %d fields, want %d", inv.ID, st.Rows+1, len(rec), len(invoiceColumns))
		}
		for i, v := range rec {
			c := invoiceColumns[i]
			nv, cents, err := value(c.kind, v)
			if err != nil {
				return st, fmt.Errorf("normalize: invoice %s: line item %d: %s %s: %w", inv.ID, st.Rows+1, c.name, shown(v), err)
			}
			if c.kind == amount {
				if st.AmountCents, err = add(st.AmountCents, cents); err != nil {
					return st, fmt.Errorf("normalize: invoice %s: line item %d: %w", inv.ID, st.Rows+1, err)
				}
			}
			out[len(invoicePrefix)+i] = nv
		}
		if err := cw.Write(out); err != nil {
			return st, fmt.Errorf("normalize: invoice %s: writing line item %d: %w", inv.ID, st.Rows+1, err)
		}
		st.Rows++
	}
	if err := flush(cw, bw); err != nil {
		return st, fmt.Errorf("normalize: invoice %s: %w", inv.ID, err)
	}
	return st, nil
}

// Usage reads a Cost Explorer usage CSV from r (a header row, then one record
// per usage line) and writes to w the header UsageColumns and the records.
// Columns are found by their header name (see usageColumns), so Atlas may
// reorder or rename them; a column Atlas adds is left out (the raw file
// keeps it), a missing one is empty, except Usage Amount, which must be there.
func Usage(w io.Writer, r io.Reader) (Stats, error) {
	st, err := byName(w, r, usageColumns, func(c column) bool { return c.atlas == usageRequired })
	if err != nil {
		return st, fmt.Errorf("normalize: usage: %w", err)
	}
	return st, nil
}

// Focus reads a FOCUS report CSV from r (a header row, then one record per
// charge) and writes to w the header FocusColumns and the records: columns
// found by name, missing ones empty, added ones left out (see focusColumns).
// A file without a BilledCost column is an error.
func Focus(w io.Writer, r io.Reader) (Stats, error) {
	st, err := byName(w, r, focusColumns, func(c column) bool { return c.atlas == focusRequired })
	if err != nil {
		return st, fmt.Errorf("normalize: FOCUS report: %w", err)
	}
	return st, nil
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
// is an error if required says so, else empty.
func byName(w io.Writer, r io.Reader, cols []column, required func(column) bool) (Stats, error) {
	var st Stats
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3) // a UTF-8 byte order mark
	}
	cr := csv.NewReader(br)
	cr.ReuseRecord = true // FieldsPerRecord 0: every record as wide as the header
	header, err := cr.Read()
	if err == io.EOF {
		return st, errors.New("empty file, want a header row")
	}
	if err != nil {
		return st, fmt.Errorf("reading the header: %w", err)
	}
	src := make([]int, len(cols)) // src[i]: field of cols[i], -1 if none
	for i, c := range cols {
		src[i] = -1
		for j, h := range header {
			if c.named(h) {
				src[i] = j
				break
			}
		}
		if src[i] < 0 && required(c) {
			return st, fmt.Errorf("header has no %q column", c.atlas)
		}
	}
	bw := bufio.NewWriterSize(w, bufSize)
	cw := csv.NewWriter(bw)
	if err := cw.Write(names(cols)); err != nil {
		return st, fmt.Errorf("writing the header: %w", err)
	}
	out := make([]string, len(cols))
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		for i, c := range cols {
			if src[i] < 0 {
				out[i] = ""
				continue
			}
			v := rec[src[i]]
			nv, cents, err := value(c.kind, v)
			if err != nil {
				line, _ := cr.FieldPos(src[i])
				return st, fmt.Errorf("line %d: %s %s: %w", line, c.name, shown(v), err)
			}
			if c.kind == amount {
				if st.AmountCents, err = add(st.AmountCents, cents); err != nil {
					line, _ := cr.FieldPos(src[i])
					return st, fmt.Errorf("line %d: %w", line, err)
				}
			}
			out[i] = nv
		}
		if err := cw.Write(out); err != nil {
			return st, fmt.Errorf("writing record %d: %w", st.Rows+1, err)
		}
		st.Rows++
	}
	if err := flush(cw, bw); err != nil {
		return st, err
	}
	return st, nil
}

// value normalizes one field; for an amount it also returns its cents.
func value(k kind, v string) (string, int64, error) {
	switch k {
	case date:
		d, err := isoDate(v)
		return d, 0, err
	case number, percent:
		t := strings.TrimSpace(v)
		if k == percent {
			t = strings.TrimSpace(strings.TrimSuffix(t, "%"))
		}
		if t == "" {
			return "", 0, nil // e.g. a credit has no unit price
		}
		d, err := decimal(t)
		return d, 0, err
	case amount:
		if strings.TrimSpace(v) == "" {
			return "", 0, errors.New("is empty")
		}
		d, err := decimal(v)
		if err != nil {
			return "", 0, err
		}
		c, err := cents(d)
		return d, c, err
	}
	return flat(v), 0, nil
}

func flush(cw *csv.Writer, bw *bufio.Writer) error {
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing: %w", err)
	}
	return nil
}
