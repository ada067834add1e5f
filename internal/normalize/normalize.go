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
}

// invoiceColumns are the line-item columns of an invoice CSV, in Atlas's order
// (atlas.InvoiceColumns).
var invoiceColumns = []column{
	{"Date", "date", date},
	{"Usage Date", "usage_date", date},
	{"Description", "description", text},
	{"Note", "note", text},
	{"Organization Name", "organization_name", text},
	{"Organization ID", "organization_id", text},
	{"Project", "project", text},
	{"Project ID", "project_id", text},
	{"SKU", "sku", text},
	{"Region", "region", text},
	{"Cluster", "cluster", text},
	{"Replica Set", "replica_set", text},
	{"Config Server", "config_server", text},
	{"Application", "application", text},
	{"Unit", "unit", text},
	{"Unit Price", "unit_price", number},
	{"Quantity", "quantity", number},
	{"Discount Percent", "discount_percent", percent},
	{"Amount", "amount", amount},
}

// usageColumns are the columns of a Cost Explorer usage CSV, found by name.
var usageColumns = []column{
	{"Invoice ID", "invoice_id", text},
	{"Organization ID", "organization_id", text},
	{"Organization Name", "organization_name", text},
	{"Project ID", "project_id", text},
	{"Project Name", "project_name", text},
	{"Cluster ID", "cluster_id", text},
	{"Cluster Name", "cluster_name", text},
	{"Service", "service", text},
	{"Usage Date", "usage_date", date},
	{"Usage Amount", "usage_amount", amount},
}

// focusColumns are the columns of FOCUS 1.0, the FinOps Open Cost and Usage
// Specification, in its (alphabetical) order, found by name. A FOCUS file
// need not have them all, nor in this order: a column it lacks is empty
// (FOCUS makes many of them optional, and Atlas has no commitment
// discounts), one it adds (a later FOCUS version's, or a provider's "x_"
// column) stays in the raw file only. Values are kept as given, on one line.
var focusColumns = []column{
	{"AvailabilityZone", "availabilityzone", text},
	{"BilledCost", "billedcost", text},
	{"BillingAccountId", "billingaccountid", text},
	{"BillingAccountName", "billingaccountname", text},
	{"BillingCurrency", "billingcurrency", text},
	{"BillingPeriodEnd", "billingperiodend", text},
	{"BillingPeriodStart", "billingperiodstart", text},
	{"ChargeCategory", "chargecategory", text},
	{"ChargeClass", "chargeclass", text},
	{"ChargeDescription", "chargedescription", text},
	{"ChargeFrequency", "chargefrequency", text},
	{"ChargePeriodEnd", "chargeperiodend", text},
	{"ChargePeriodStart", "chargeperiodstart", text},
	{"CommitmentDiscountCategory", "commitmentdiscountcategory", text},
	{"CommitmentDiscountId", "commitmentdiscountid", text},
	{"CommitmentDiscountName", "commitmentdiscountname", text},
	{"CommitmentDiscountStatus", "commitmentdiscountstatus", text},
	{"CommitmentDiscountType", "commitmentdiscounttype", text},
	{"ConsumedQuantity", "consumedquantity", text},
	{"ConsumedUnit", "consumedunit", text},
	{"ContractedCost", "contractedcost", text},
	{"ContractedUnitPrice", "contractedunitprice", text},
	{"EffectiveCost", "effectivecost", text},
	{"InvoiceIssuerName", "invoiceissuername", text},
	{"ListCost", "listcost", text},
	{"ListUnitPrice", "listunitprice", text},
	{"PricingCategory", "pricingcategory", text},
	{"PricingQuantity", "pricingquantity", text},
	{"PricingUnit", "pricingunit", text},
	{"ProviderName", "providername", text},
	{"PublisherName", "publishername", text},
	{"RegionId", "regionid", text},
	{"RegionName", "regionname", text},
	{"ResourceId", "resourceid", text},
	{"ResourceName", "resourcename", text},
	{"ResourceType", "resourcetype", text},
	{"ServiceCategory", "servicecategory", text},
	{"ServiceName", "servicename", text},
	{"SkuId", "skuid", text},
	{"SkuPriceId", "skupriceid", text},
	{"SubAccountId", "subaccountid", text},
	{"SubAccountName", "subaccountname", text},
	{"Tags", "tags", text},
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
// read with a CSV reader, then the line items; see atlas.NewInvoiceReader)
// and writes to w the header InvoiceColumns and one record per line item.
// A value that cannot be normalized is an error naming the line item and the
// column; what was written before it is then incomplete and must be dropped.
func Invoice(w io.Writer, r io.Reader, inv InvoiceInfo) (Stats, error) {
	var st Stats
	if err := atlas.ValidateInvoiceID(inv.ID); err != nil {
		return st, fmt.Errorf("normalize: invoice: %w", err)
	}
	ir, err := atlas.NewInvoiceReader(r)
	if err != nil {
		return st, fmt.Errorf("normalize: invoice %s: %w", inv.ID, err)
	}
	status := inv.Status
	if status == "" {
		status, _ = ir.Value("Invoice Status")
	}
	bw := bufio.NewWriterSize(w, bufSize)
	cw := csv.NewWriter(bw)
	if err := cw.Write(InvoiceColumns); err != nil {
		return st, fmt.Errorf("normalize: invoice %s: writing the header: %w", inv.ID, err)
	}
	out := make([]string, len(InvoiceColumns))
	out[0], out[1] = inv.ID, flat(strings.TrimSpace(status))
	for {
		rec, err := ir.Next()
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
// Columns are found by their header name, so Atlas may reorder them; a
// column Atlas adds is left out (the raw file keeps it), a missing one is an
// error.
func Usage(w io.Writer, r io.Reader) (Stats, error) {
	st, err := byName(w, r, usageColumns, func(c column) bool { return true })
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

// byName reads a CSV whose first row names its columns and writes cols, in
// their order, found by name (case and surrounding spaces aside). A column
// missing from the file is an error if required says so, else empty.
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
			if strings.EqualFold(strings.TrimSpace(h), c.atlas) {
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
