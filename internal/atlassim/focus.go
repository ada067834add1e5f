package atlassim

import (
	"cmp"
	"compress/gzip"
	"io"
	"strconv"
)

// FocusColumns is the header of the FOCUS report CSV: a subset of the FOCUS
// 1.0 columns, in the specification's (alphabetical) order. Left out: the
// commitment discount columns (Atlas bills none), AvailabilityZone,
// SkuPriceId and Tags.
//
// One row per invoice line item, in the invoice CSV's order, so BilledCost
// adds up, in cents, to the invoice's line items (SubtotalCents -
// CreditsCents). Money and quantities are decimal strings, timestamps ISO 8601
// UTC. Usage rows: BilledCost = ContractedCost = EffectiveCost = the line's
// Amount (after its discount), ListCost = unit price x quantity before the
// discount. Credit rows (ChargeCategory "Credit"): BilledCost and
// EffectiveCost carry the negative amount, ListCost and ContractedCost are 0,
// and the price and quantity columns are empty (null), as FOCUS asks.
var FocusColumns = []string{
	"BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
	"BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
	"ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
	"ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost",
	"InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
	"PricingQuantity", "PricingUnit", "ProviderName", "PublisherName",
	"RegionId", "RegionName", "ResourceId", "ResourceName", "ResourceType",
	"ServiceCategory", "ServiceName", "SkuId", "SubAccountId", "SubAccountName",
}

// FocusSpecVersion is the FOCUS version the simulator generates (the
// report's formatSpecVersion).
const FocusSpecVersion = "1.0"

var regionNames = map[string]string{
	"EU_CENTRAL_1":   "Europe (Frankfurt)",
	"US_EAST_1":      "US East (N. Virginia)",
	"AP_SOUTHEAST_2": "Asia Pacific (Sydney)",
	"europe-west3":   "Frankfurt, Germany",
}

// serviceCategories maps Cost Explorer services to FOCUS 1.0 ServiceCategory values.
var serviceCategories = map[string]string{
	"Clusters":              "Databases",
	"Storage":               "Storage",
	"Backup":                "Storage",
	"Data Transfer":         "Networking",
	"App Services":          "Web",
	"Atlas Data Federation": "Analytics",
	"Premium Features":      "Security",
}

// focusTime is ISO 8601 / RFC 3339 in UTC, as FOCUS asks.
const focusTime = "2006-01-02T15:04:05Z"

// WriteFocusCSV writes the exact bytes the download host serves as the FOCUS
// report of one invoice. It streams: memory use does not grow with the size.
func (s *Server) WriteFocusCSV(w io.Writer, orgID, invoiceID string) error {
	return s.writeOf(w, orgID, invoiceID, s.writeFocusCSV)
}

// focusCSVSize is the byte size of a FOCUS CSV, for the download's
// Content-Length.
func (s *Server) focusCSVSize(inv Invoice) int64 {
	return s.sizeOf("focus/"+inv.OrgID+"/"+inv.ID+"/"+strconv.FormatInt(inv.Rows, 10), inv, s.writeFocusCSV)
}

func (s *Server) focusGzipSize(inv Invoice) int64 {
	return s.sizeOf("focus.gz/"+inv.OrgID+"/"+inv.ID+"/"+strconv.FormatInt(inv.Rows, 10), inv, s.writeFocusGzip)
}

// writeFocusGzip writes the FOCUS CSV gzipped; the same bytes every time
// (no name, no modification time), so its size can be announced.
func (s *Server) writeFocusGzip(w io.Writer, inv Invoice) error {
	zw := gzip.NewWriter(w)
	if err := s.writeFocusCSV(zw, inv); err != nil {
		return err
	}
	return zw.Close()
}

func (s *Server) writeFocusCSV(w io.Writer, inv Invoice) error {
	org := s.orgs[inv.OrgID]
	b := appendRecord(make([]byte, 0, 2048), FocusColumns...)
	if _, err := w.Write(b); err != nil {
		return err
	}
	g := newLineGen(inv)
	periodEnd, periodStart := inv.End.Format(focusTime), inv.Start.Format(focusTime)
	for i := int64(0); i < inv.Rows; i++ {
		l := g.line(i)
		day := inv.Start.AddDate(0, 0, l.day)
		category, frequency, pricing := "Usage", "Usage-Based", "Standard"
		var qty, listUnit, unit string
		billed := formatCents(l.cents)
		list, contracted := "0.00", "0.00"
		if l.credit {
			category, frequency, pricing = "Credit", "One-Time", ""
		} else {
			qty, listUnit, unit = formatCents(l.qty), formatCents(l.priceCents), l.sku.Unit
			list = formatCents((l.priceCents*l.qty + 50) / 100)
			contracted = billed
			if l.sku.Service == "Support" {
				frequency = "Recurring"
			}
		}
		var resID, resName, resType string
		switch {
		case l.cluster != "":
			resID, resName, resType = hashID(24, "cluster", l.project.ID, l.cluster), l.cluster, "Cluster"
		case l.app != "":
			resID, resName, resType = hashID(24, "app", l.project.ID), l.app, "App Services Application"
		}
		svcCat := cmp.Or(serviceCategories[l.sku.Service], "Other")
		b = appendRecord(b[:0],
			billed, org.ID, org.Name, "USD",
			periodEnd, periodStart, category, "",
			l.sku.Desc, frequency, day.AddDate(0, 0, 1).Format(focusTime), day.Format(focusTime),
			qty, unit, contracted, billed,
			"MongoDB, Inc.", list, listUnit, pricing,
			qty, unit, "MongoDB", "MongoDB",
			l.sku.Region, regionNames[l.sku.Region], resID, resName, resType,
			svcCat, l.sku.Service, l.sku.Code, l.project.ID, l.project.Name,
		)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
