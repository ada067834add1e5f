package atlassim

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// InvoiceColumns is the line-item header of an invoice CSV.
var InvoiceColumns = []string{"Date", "Usage Date", "Description", "Note", "Organization Name", "Organization ID", "Project", "Project ID", "SKU", "Region", "Cluster", "Replica Set", "Config Server", "Application", "Unit", "Unit Price", "Quantity", "Discount Percent", "Amount"}

// UsageColumns is the header of a Cost Explorer usage CSV.
var UsageColumns = []string{"Invoice ID", "Organization ID", "Organization Name", "Project ID", "Project Name", "Cluster ID", "Cluster Name", "Service", "Usage Date", "Usage Amount"}

// Services is the spec's enum of Cost Explorer services.
var Services = []string{"Atlas", "Clusters", "Storage", "Serverless Instances", "Backup", "Data Transfer", "BI Connector", "DSC Compute", "DSC Storage", "Premium Features", "Atlas Data Federation", "Atlas Stream Processing", "App Services", "Charts", "Cloud Manager", "Cloud Manager Standard/Premium", "Legacy Backup", "AI Model APIs", "Automated Embedding", "Native Reranking", "Flex Consulting", "Support", "Credits"}

// digest is the SHA-256 of parts, each ended by a zero byte: stable across
// runs.
func digest(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(append([]byte(p), 0))
	}
	return h.Sum(nil)
}

// hashID returns n hex characters derived from parts.
func hashID(n int, parts ...string) string { return hex.EncodeToString(digest(parts...))[:n] }

// seeds derives two PCG seeds from parts.
func seeds(parts ...string) (uint64, uint64) {
	sum := digest(parts...)
	return binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])
}

// rowPCG seeds p for row i of a stream, so any row can be generated (or
// just its amount summed) independently of the others.
func rowPCG(p *rand.PCG, s1, s2 uint64, i int64) {
	p.Seed(s1+uint64(i)*0x9E3779B97F4A7C15, s2^(uint64(i)*0xBF58476D1CE4E5B9))
}

func pick[T any](p *rand.PCG, xs []T) T { return xs[p.Uint64()%uint64(len(xs))] }

type project struct{ ID, Name string }

// projectNames carry commas, quotes and non-ASCII letters on purpose.
var projectNames = []string{"Café Prod", "Analytics, EU", "Платформа", "数据 Lake", `Mobile "Beta"`, "ops"}

func projectsOf(org string) []project {
	ps := make([]project, len(projectNames))
	for i, n := range projectNames {
		ps[i] = project{ID: hashID(24, "project", org, n), Name: n}
	}
	return ps
}

type sku struct {
	Code, Desc, Unit, Service, Region string
	Cluster                           bool // charged to a cluster
	App                               bool // App Services
}

var skus = []sku{
	{"ATLAS_AWS_INSTANCE_M30", "Atlas AWS Instance M30", "server hours", "Clusters", "EU_CENTRAL_1", true, false},
	{"ATLAS_AWS_INSTANCE_M10", "Atlas AWS Instance M10", "server hours", "Clusters", "US_EAST_1", true, false},
	{"ATLAS_GCP_INSTANCE_M20", "Atlas GCP Instance M20", "server hours", "Clusters", "europe-west3", true, false},
	{"ATLAS_AWS_DATA_TRANSFER_SAME_REGION", "AWS Data Transfer (Same Region)", "GB", "Data Transfer", "EU_CENTRAL_1", true, false},
	{"ATLAS_AWS_DATA_TRANSFER_INTERNET", "AWS Data Transfer (Internet), per GB", "GB", "Data Transfer", "AP_SOUTHEAST_2", true, false},
	{"ATLAS_AWS_BACKUP_SNAPSHOT_STORAGE", "Backup Snapshot Storage, AWS", "GB days", "Backup", "EU_CENTRAL_1", true, false},
	{"ATLAS_NDS_AWS_PIT_RESTORE_STORAGE", "Continuous Cloud Backup Storage", "GB days", "Backup", "US_EAST_1", true, false},
	{"ATLAS_AWS_STORAGE_PROVISIONED", "AWS Storage — Provisioned IOPS", "GB months", "Storage", "EU_CENTRAL_1", true, false},
	{"REALM_APP_REQUESTS", "App Services Requests", "requests", "App Services", "", false, true},
	{"ATLAS_DATA_LAKE_AWS_DATA_SCANNED", "Atlas Data Federation: Data Scanned", "TB", "Atlas Data Federation", "US_EAST_1", false, false},
	{"ATLAS_ADVANCED_SECURITY", "Advanced Security, 10%", "%", "Premium Features", "", false, false},
	{"ATLAS_SUPPORT_DEVELOPER", "Atlas Developer Support", "months", "Support", "", false, false},
}

var creditSKU = sku{"CREDIT", `Credit, promotional "Startup" program`, "", "Credits", "", false, false}

var clusterNames = []string{"Cluster0", "prod-eu-1", "analytics-2", "reporting"}

var discounts = []int64{0, 0, 0, 0, 0, 0, 10, 15}

// amount is the money part of a line item. Both the CSV writer and the
// totals draw it first from the row's generator, so totals need no
// formatting pass.
type amount struct {
	credit     bool
	priceCents int64 // unit price
	qty        int64 // hundredths of a unit
	disc       int64 // percent
	cents      int64 // line amount, negative for credits
}

func drawAmount(p *rand.PCG) amount {
	if p.Uint64()%100 < 3 {
		return amount{credit: true, cents: -int64(100 + p.Uint64()%50000)}
	}
	a := amount{
		priceCents: int64(1 + p.Uint64()%2500),
		qty:        int64(1 + p.Uint64()%74400),
		disc:       discounts[p.Uint64()%uint64(len(discounts))],
	}
	// price x quantity x (1 - discount), rounded half up to the cent.
	a.cents = (a.priceCents*a.qty*(100-a.disc) + 5000) / 10000
	return a
}

// appendCents formats integer cents as a decimal string with two decimals.
func appendCents(b []byte, c int64) []byte {
	if c < 0 {
		b = append(b, '-')
		c = -c
	}
	b = strconv.AppendInt(b, c/100, 10)
	b = append(b, '.', byte('0'+c%100/10), byte('0'+c%10))
	return b
}

// formatCents is appendCents as a string.
func formatCents(c int64) string { return string(appendCents(nil, c)) }

// appendField appends one CSV field, quoted the way encoding/csv quotes.
func appendField(b []byte, s string) []byte {
	need := s != "" && (s[0] == ' ' || s[0] == '\t')
	for i := 0; i < len(s) && !need; i++ {
		switch s[i] {
		case ',', '"', '\n', '\r':
			need = true
		}
	}
	if !need {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

func appendRecord(b []byte, fields ...string) []byte {
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendField(b, f)
	}
	return append(b, '\n')
}

// Invoice is what the simulator serves about one invoice.
type Invoice struct {
	ID, OrgID, Status string
	Month             string    // "YYYY-MM" of the billing period
	Start, End        time.Time // billing period, end exclusive (first of next month)
	Created, Updated  time.Time
	Rows              int64 // line items in its CSV
	// Money in cents. Subtotal is the sum of the positive line items, Credits
	// the sum of the negative ones (as a positive number), so
	// sum(all line item Amounts) = Subtotal - Credits, and
	// AmountBilled = Subtotal - Credits + SalesTax.
	AmountBilledCents, AmountPaidCents, CreditsCents, SubtotalCents, SalesTaxCents int64
}

type invoiceTotals struct{ subtotal, credits int64 }

// rowsOf is the line-item count of an invoice: InvoiceRows, or with
// InvoiceBytes the count that makes the CSV about that size, estimated from
// the preamble and a sample of rows (rows do not depend on the count).
func (s *Server) rowsOf(inv Invoice) int64 {
	if s.cfg.InvoiceBytes <= 0 {
		return int64(s.cfg.InvoiceRows)
	}
	return cached(s, s.sizes, "rows/"+inv.OrgID+"/"+inv.ID+"/"+inv.Status, func() int64 {
		const sample = 512
		var pre, rows countingWriter
		_ = s.writeInvoicePreamble(&pre, inv) // a countingWriter never fails
		_ = s.writeInvoiceRows(&rows, inv, 0, sample)
		return max(1, (s.cfg.InvoiceBytes-pre.n)*sample/rows.n)
	})
}

// cached is m[key], computed by f the first time (without holding s.mu).
func cached[V any](s *Server, m map[string]V, key string, f func() V) V {
	s.mu.Lock()
	v, ok := m[key]
	s.mu.Unlock()
	if ok {
		return v
	}
	v = f()
	s.mu.Lock()
	m[key] = v
	s.mu.Unlock()
	return v
}

func invoiceIDOf(org, month string) string { return hashID(24, "invoice", org, month) }

// Invoices returns the invoices of orgID, oldest first: one closed invoice
// per month from FirstMonth to the month before Now, and the current month's
// PENDING one last. It returns nil for an unknown org.
func (s *Server) Invoices(orgID string) []Invoice {
	if _, ok := s.orgs[orgID]; !ok {
		return nil
	}
	now := s.cfg.Now().UTC()
	cur := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	first := cur.AddDate(-1, 0, 0)
	if s.cfg.FirstMonth != "" {
		t, _ := time.Parse("2006-01", s.cfg.FirstMonth) // checked in New
		first = t
	}
	if first.After(cur) {
		first = cur
	}
	var out []Invoice
	for m := first; !m.After(cur); m = m.AddDate(0, 1, 0) {
		month := m.Format("2006-01")
		inv := Invoice{
			ID: invoiceIDOf(orgID, month), OrgID: orgID, Month: month,
			Start: m, End: m.AddDate(0, 1, 0),
		}
		switch {
		case m.Equal(cur):
			inv.Status = "PENDING"
			inv.Created, inv.Updated = m, m
		case m.Equal(cur.AddDate(0, -1, 0)) || hashID(2, "status", inv.ID) < "30":
			inv.Status = "CLOSED"
			inv.Created, inv.Updated = inv.End.Add(2*time.Hour), inv.End.Add(26*time.Hour)
		default:
			inv.Status = "PAID"
			inv.Created, inv.Updated = inv.End.Add(2*time.Hour), inv.End.AddDate(0, 0, 5)
		}
		inv.Rows = s.rowsOf(inv)
		t := s.totalsOf(inv)
		inv.SubtotalCents, inv.CreditsCents = t.subtotal, t.credits
		inv.AmountBilledCents = t.subtotal - t.credits + inv.SalesTaxCents
		if inv.Status == "PAID" {
			inv.AmountPaidCents = inv.AmountBilledCents
		}
		out = append(out, inv)
	}
	return out
}

func (s *Server) invoice(orgID, invoiceID string) (Invoice, bool) {
	for _, inv := range s.Invoices(orgID) {
		if inv.ID == invoiceID {
			return inv, true
		}
	}
	return Invoice{}, false
}

func (s *Server) totalsOf(inv Invoice) invoiceTotals {
	return cached(s, s.totals, inv.OrgID+"/"+inv.ID+"/"+strconv.FormatInt(inv.Rows, 10), func() (t invoiceTotals) {
		s1, s2 := seeds("invoice-rows", inv.OrgID, inv.ID)
		var p rand.PCG
		for i := int64(0); i < inv.Rows; i++ {
			rowPCG(&p, s1, s2, i)
			if a := drawAmount(&p); a.cents < 0 {
				t.credits -= a.cents
			} else {
				t.subtotal += a.cents
			}
		}
		return t
	})
}

// WriteInvoiceCSV writes the exact bytes the simulator serves as the CSV of
// one invoice. It streams: memory use does not grow with the size.
func (s *Server) WriteInvoiceCSV(w io.Writer, orgID, invoiceID string) error {
	return s.writeOf(w, orgID, invoiceID, s.writeInvoiceCSV)
}

// writeOf writes what gen generates for one invoice, buffered.
func (s *Server) writeOf(w io.Writer, orgID, invoiceID string, gen func(io.Writer, Invoice) error) error {
	inv, ok := s.invoice(orgID, invoiceID)
	if !ok {
		return fmt.Errorf("atlassim: org %s has no invoice %s", orgID, invoiceID)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := gen(bw, inv); err != nil {
		return err
	}
	return bw.Flush()
}

// invoiceCSVSize is the byte size of an invoice CSV, so responses can carry
// a Content-Length.
func (s *Server) invoiceCSVSize(inv Invoice) int64 {
	return s.sizeOf("csv/"+inv.OrgID+"/"+inv.ID+"/"+inv.Status+"/"+strconv.FormatInt(inv.Rows, 10), inv, s.writeInvoiceCSV)
}

// sizeOf is the byte size of what gen generates for inv: one dry run,
// cached under key.
func (s *Server) sizeOf(key string, inv Invoice, gen func(io.Writer, Invoice) error) int64 {
	return cached(s, s.sizes, key, func() int64 {
		var c countingWriter
		_ = gen(&c, inv) // a countingWriter never fails
		return c.n
	})
}

var preambleExtras = [][2]string{
	{"Currency", "USD"},
	{"Payment Terms", "Net 30, end of month"},
	{"Billing Contact", "Jörg Müller, Finance"},
	{"Purchase Order", `PO "2024-17"`},
	{"Tax ID", "CHE-123.456.789 MWST"},
}

func (s *Server) writeInvoiceCSV(w io.Writer, inv Invoice) error {
	if err := s.writeInvoicePreamble(w, inv); err != nil {
		return err
	}
	return s.writeInvoiceRows(w, inv, 0, inv.Rows)
}

// writeInvoicePreamble writes the key/value block, the blank line and the
// line-item header.
func (s *Server) writeInvoicePreamble(w io.Writer, inv Invoice) error {
	org := s.orgs[inv.OrgID]
	b := make([]byte, 0, 1024)
	b = appendRecord(b, "Invoice Number", inv.ID, "")
	period := inv.Start.Format("January 2, 2006") + " - " + inv.End.Format("January 2, 2006")
	b = appendRecord(b, "Billing Period", period, "")
	b = appendRecord(b, "Organization Name", org.Name, "")
	b = appendRecord(b, "Organization ID", org.ID, "")
	// A varying number of extra key/value lines: readers must not count lines.
	var p rand.PCG
	s1, s2 := seeds("invoice-preamble", inv.OrgID, inv.ID)
	p.Seed(s1, s2)
	extra := int(p.Uint64() % uint64(len(preambleExtras)+1))
	b = appendRecord(b, "Invoice Status", inv.Status, "")
	for i := 0; i < extra; i++ {
		kv := preambleExtras[i]
		b = appendRecord(b, kv[0], kv[1], "")
	}
	b = append(b, '\n')
	b = appendRecord(b, s.invoiceColumns()...)
	_, err := w.Write(b)
	return err
}

// invoiceColumns is the line-item header: InvoiceColumns, and with the Tags
// variant one column per tag key.
func (s *Server) invoiceColumns() []string {
	if !s.has(Tags) {
		return InvoiceColumns
	}
	cols := slices.Clone(InvoiceColumns)
	for _, k := range tagKeys {
		cols = append(cols, "Tags/"+k)
	}
	return cols
}

// tagKeys are the resource tag keys of the Tags variant.
var tagKeys = []string{"environment", "team", "cost-center"}

// tagValues are a line item's tag values (one per tagKeys, "" for none), from
// its project and cluster, as Atlas tags resources: projects carry
// environment and team, clusters a cost center too.
func tagValues(l lineItem) []string {
	pickOf := func(key string, xs []string) string {
		h := hashID(2, "tag", key, l.project.ID, l.cluster)
		n, _ := strconv.ParseUint(h, 16, 8)
		return xs[int(n)%len(xs)]
	}
	vals := []string{
		pickOf("environment", []string{"prod", "staging", "dev"}),
		pickOf("team", []string{"data", "Data, Platform", "web;mobile", `"core"`}),
		"",
	}
	if l.cluster != "" {
		vals[2] = pickOf("cost-center", []string{"CC-1001", "CC-2002", "CC-3003"})
	}
	return vals
}

// appendExponent appends hundredths c (c > 0) in exponent notation, e.g.
// 12345 as "1.2345E+2" and 7 as "7E-2".
func appendExponent(b []byte, c int64) []byte {
	d := strconv.FormatInt(c, 10)
	exp := len(d) - 3
	d = strings.TrimRight(d, "0")
	b = append(b, d[0])
	if len(d) > 1 {
		b = append(append(b, '.'), d[1:]...)
	}
	b = append(b, 'E')
	if exp >= 0 {
		b = append(b, '+')
	}
	return strconv.AppendInt(b, int64(exp), 10)
}

// lineItem is one generated line of an invoice: what the invoice CSV and the
// FOCUS report both show, so the two always agree.
type lineItem struct {
	amount
	sku                                     sku
	day                                     int // days since the billing period start
	project                                 project
	note, cluster, replicaSet, configServer string
	app                                     string
}

// lineGen draws line items; row i depends only on the org, the invoice and i.
type lineGen struct {
	p        rand.PCG
	s1, s2   uint64
	projects []project
	days     int
	shard    string
}

func newLineGen(inv Invoice) *lineGen {
	g := &lineGen{projects: projectsOf(inv.OrgID), days: int(inv.End.Sub(inv.Start).Hours() / 24), shard: hashID(6, "shard", inv.OrgID)}
	g.s1, g.s2 = seeds("invoice-rows", inv.OrgID, inv.ID)
	return g
}

// line draws row i. The order of draws is part of the generated data: keep it.
func (g *lineGen) line(i int64) lineItem {
	p := &g.p
	rowPCG(p, g.s1, g.s2, i)
	var l lineItem
	l.amount = drawAmount(p)
	l.sku = pick(p, skus)
	if l.credit {
		l.sku = creditSKU
	}
	l.day = int(p.Uint64() % uint64(g.days))
	l.project = pick(p, g.projects)
	switch n := p.Uint64() % 20; {
	case l.credit:
		l.note = "Applied to balance, thank you"
	case n == 0:
		l.note = "Discount applied, see contract §4"
	case n == 1:
		l.note = `Includes "free tier" allowance`
	}
	if l.sku.Cluster {
		l.cluster = pick(p, clusterNames)
		l.replicaSet = "atlas-" + g.shard + "-shard-0"
		if p.Uint64()%5 == 0 {
			l.configServer = "atlas-" + g.shard + "-config-0"
		}
	}
	if l.sku.App {
		l.app = "Çàfé App, Triggers"
	}
	return l
}

// writeInvoiceRows writes line items [from, to).
func (s *Server) writeInvoiceRows(w io.Writer, inv Invoice, from, to int64) error {
	org := s.orgs[inv.OrgID]
	b := make([]byte, 0, 1024)
	g := newLineGen(inv)
	// Pre-format what repeats, for speed on gigabyte streams.
	layout := "2006-01-02,"
	if s.has(USDates) {
		layout = "01/02/2006,"
	}
	tags, exponent := s.has(Tags), s.has(Exponent)
	dates := make([][]byte, g.days)
	for d := range dates {
		u := inv.Start.AddDate(0, 0, d)
		dates[d] = u.AppendFormat(u.AddDate(0, 0, 1).AppendFormat(nil, layout), layout)
	}
	orgCols := append(appendField(nil, org.Name), ',')
	orgCols = append(append(orgCols, org.ID...), ',')
	for i := from; i < to; i++ {
		l := g.line(i)
		b = append(b[:0], dates[l.day]...) // Date (charges post the next day), Usage Date
		b = appendField(b, l.sku.Desc)
		b = append(b, ',')
		b = appendField(b, l.note)
		b = append(b, ',')
		b = append(b, orgCols...)
		b = appendField(b, l.project.Name)
		b = append(b, ',')
		b = append(b, l.project.ID...)
		b = append(b, ',')
		b = append(b, l.sku.Code...)
		b = append(b, ',')
		b = append(b, l.sku.Region...)
		b = append(b, ',')
		b = append(b, l.cluster...)
		b = append(b, ',')
		b = append(b, l.replicaSet...)
		b = append(b, ',')
		b = append(b, l.configServer...)
		b = append(b, ',')
		b = appendField(b, l.app)
		b = append(b, ',')
		b = append(b, l.sku.Unit...)
		b = append(b, ',')
		if !l.credit {
			b = appendCents(b, l.priceCents)
			b = append(b, ',')
			if exponent {
				b = appendExponent(b, l.qty)
			} else {
				b = appendCents(b, l.qty)
			}
			b = append(b, ',')
			b = strconv.AppendInt(b, l.disc, 10)
		} else {
			b = append(b, ',', ',')
		}
		b = append(b, ',')
		b = appendCents(b, l.cents)
		if tags {
			for _, v := range tagValues(l) {
				b = appendField(append(b, ','), v)
			}
		}
		b = append(b, '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}
