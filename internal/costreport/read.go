// Package costreport reads an export back (its manifests and normalized
// Parquet datasets, in a folder or S3) and writes a one-page cost report:
// one self-contained HTML file of inline SVG charts, each with a table of
// the same numbers. Money is exact throughout: decimals as the Parquet files
// hold them, summed in integers.
package costreport

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Store is where an export is read from: a sink.Dir or a sink.S3.
type Store interface {
	// List returns the keys under a prefix (sink.ErrNotFound: no such
	// folder or bucket).
	List(ctx context.Context, prefix string) ([]string, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	OpenFile(ctx context.Context, key string) (sink.File, error)
}

// Options say which part of an export to report on.
type Options struct {
	// Where is the export's location as the user named it, for the report
	// to say ("./out", "s3://bucket/prefix").
	Where string
	Orgs  []string // only these orgs; none: every org found
	// From and To bound the months, YYYY-MM, inclusive; empty: unbounded.
	From, To string
	Now      time.Time // when the report is made
}

// NoExportError is an export location that holds nothing to report on: no
// manifest at all, or none of the orgs and months asked for.
type NoExportError struct{ Msg string }

func (e *NoExportError) Error() string { return e.Msg }

// currency is the currency of Atlas's invoices and Cost Explorer amounts
// (cents of US dollars in the API).
const currency = "USD"

// Report is what was read, summed exactly.
type Report struct {
	Generated time.Time
	Where     string
	Orgs      []Org
	Months    []string // YYYY-MM, ascending: every month with a manifest read
	// Services are those with usage, the largest total over the months first.
	Services []string
	// Cost is the usage per month and service (absent: none), from the
	// normalized Cost Explorer usage of every org read.
	Cost map[string]map[string]Money
	// OrgCost is the usage per org and month.
	OrgCost map[string]map[string]Money
	// Last is the latest month with usage, Prev the month before it
	// ("" when that month was not read).
	Last, Prev string
	Projects   []Item // the largest of Last, at most topN
	Clusters   []Item
	Movers     []Mover // each service's change from Prev to Last, largest first
	Invoices   []Invoice
	Files      []File
	Notes      []string // what is missing or does not add up
}

// topN is how many projects and clusters the report lists.
const topN = 10

// Org is an organization read.
type Org struct {
	ID, Name string
	Months   []string
}

// Item is a project or a cluster and its usage in the last two months.
type Item struct {
	ID, Name string
	// Context names where it is: its project (a cluster) and org.
	Project, OrgID string
	Last, Prev     Money
}

// Mover is one service's usage in the last two months.
type Mover struct {
	Service    string
	Prev, Last Money
}

// Change is Last - Prev.
func (m Mover) Change() Money { return m.Last.Sub(m.Prev) }

// Invoice is one invoice's line items beside its totals and its FOCUS report.
type Invoice struct {
	OrgID, Month, ID, Status string
	LineItems                Money
	HasLineItems             bool
	// Check is the reconciliation of LineItems with the invoice's totals,
	// nil when either is unknown.
	Check *export.Reconciliation
	// Focus is the sum of its FOCUS report's BilledCost, nil without one.
	Focus *Focus
}

// Focus is what an invoice's FOCUS report bills.
type Focus struct {
	BilledCost Money
	Currencies []string // BillingCurrency values seen
}

// File is one file read, as its manifest lists it.
type File struct {
	Dataset, OrgID, Month, Key string
	Bytes                      int64
	SHA256                     string
	Rows                       int64 // read (a manifest: its objects)
}

// manifestRef is a manifest found by listing.
type manifestRef struct {
	key   string
	orgID string
	month period.Period
}

// Read reads the manifests under lay's prefix in st, then for the orgs and
// months asked for, the normalized usage, invoice line items and FOCUS
// reports they list, and sums them.
func Read(ctx context.Context, st Store, lay layout.Layout, opt Options) (*Report, error) {
	refs, err := manifests(ctx, st, lay, opt.Where)
	if err != nil {
		return nil, err
	}
	picked, err := pick(refs, opt)
	if err != nil {
		return nil, err
	}
	r := &Report{Generated: opt.Now.UTC(), Where: opt.Where, Cost: map[string]map[string]Money{}, OrgCost: map[string]map[string]Money{}}
	rd := &reader{st: st, lay: lay, r: r, names: map[string]string{}, seen: map[string]bool{},
		projects: map[string]map[itemKey]*itemSum{}, clusters: map[string]map[itemKey]*itemSum{},
		cost: map[string]map[string]*sum{}, orgCost: map[string]map[string]*sum{}}
	for _, ref := range picked {
		if err := rd.job(ctx, ref, opt); err != nil {
			return nil, err
		}
	}
	rd.finish()
	return r, nil
}

// manifests lists the export's manifests.
func manifests(ctx context.Context, st Store, lay layout.Layout, where string) ([]manifestRef, error) {
	prefix := path.Join(lay.Prefix(), layout.ManifestsFolder) + "/"
	keys, err := st.List(ctx, prefix)
	if errors.Is(err, sink.ErrNotFound) {
		return nil, &NoExportError{Msg: fmt.Sprintf("no export at %s: it does not exist", where)}
	}
	if err != nil {
		return nil, fmt.Errorf("listing the manifests at %s: %w", where, err)
	}
	var refs []manifestRef
	for _, key := range keys {
		org, month, ok := partition(key)
		if !ok {
			continue
		}
		if want, err := lay.Manifest(org, month); err != nil || want != key {
			continue // not a manifest the export writes
		}
		refs = append(refs, manifestRef{key: key, orgID: org, month: month})
	}
	if len(refs) == 0 {
		return nil, &NoExportError{Msg: fmt.Sprintf("no export at %s: no manifest under %s (write one with: atlas-billing-export run --out %s)", where, prefix, where)}
	}
	return refs, nil
}

// partition reads the org and month of a key's org_id=... and
// billing_month=... folders; the caller checks the key by making it again.
func partition(key string) (string, period.Period, bool) {
	var org, month string
	for seg := range strings.SplitSeq(key, "/") {
		if v, ok := strings.CutPrefix(seg, "org_id="); ok {
			org = v
		}
		if v, ok := strings.CutPrefix(seg, "billing_month="); ok {
			month = v
		}
	}
	if org == "" || month == "" {
		return "", period.Period{}, false
	}
	ms, err := period.Months(month, month)
	if err != nil {
		return "", period.Period{}, false
	}
	return org, ms[0], true
}

// pick keeps the manifests of the orgs and months asked for.
func pick(refs []manifestRef, opt Options) ([]manifestRef, error) {
	var out []manifestRef
	orgs, months := map[string]bool{}, map[string]bool{}
	for _, ref := range refs {
		orgs[ref.orgID], months[ref.month.Label()] = true, true
		m := ref.month.Label()
		if (len(opt.Orgs) == 0 || slices.Contains(opt.Orgs, ref.orgID)) && (opt.From == "" || m >= opt.From) && (opt.To == "" || m <= opt.To) {
			out = append(out, ref)
		}
	}
	if len(out) == 0 {
		found := func(set map[string]bool) string { return strings.Join(slices.Sorted(maps.Keys(set)), ", ") }
		return nil, &NoExportError{Msg: fmt.Sprintf("nothing to report on at %s for the orgs and months asked: it holds orgs %s and months %s",
			opt.Where, found(orgs), found(months))}
	}
	slices.SortFunc(out, func(a, b manifestRef) int {
		return cmp.Or(cmp.Compare(a.month.Label(), b.month.Label()), cmp.Compare(a.orgID, b.orgID))
	})
	return out, nil
}

type itemKey struct{ org, id string }

type itemSum struct {
	name, project string
	sum           sum
}

// reader sums what it reads into r.
type reader struct {
	st   Store
	lay  layout.Layout
	r    *Report
	seen map[string]bool // keys read

	names              map[string]string               // org id -> name
	cost, orgCost      map[string]map[string]*sum      // month -> service, org -> month
	projects, clusters map[string]map[itemKey]*itemSum // month -> item
}

func (rd *reader) note(format string, args ...any) {
	rd.r.Notes = append(rd.r.Notes, fmt.Sprintf(format, args...))
}

// job reads one org's month: its manifest and what it lists.
func (rd *reader) job(ctx context.Context, ref manifestRef, opt Options) error {
	m, err := rd.manifest(ctx, ref)
	if err != nil {
		return err
	}
	month := ref.month.Label()
	rd.addMonth(ref.orgID, month)

	usage, err := rd.lay.NormalizedUsage(ref.orgID, ref.month)
	if err != nil {
		return err
	}
	if e, ok := m.Object(usage); ok {
		if err := rd.usage(ctx, ref.orgID, month, e); err != nil {
			return err
		}
	} else {
		rd.note("No normalized usage for org %s in %s (the export's warnings say why): its cost is not in the charts.", ref.orgID, month)
	}

	for _, e := range m.Objects {
		if e.InvoiceID == "" || e.Normalized {
			continue
		}
		// An invoice's CSV, filed under the month it bills (for a pending
		// one maybe not the job's).
		_, p, ok := partition(e.Key)
		if want, err := rd.lay.Invoice(ref.orgID, p, e.InvoiceID); !ok || err != nil || want != e.Key {
			continue
		}
		if rd.seen[e.Key] || (opt.From != "" && p.Label() < opt.From) || (opt.To != "" && p.Label() > opt.To) {
			continue
		}
		rd.seen[e.Key] = true
		if err := rd.invoice(ctx, m, ref.orgID, p, e); err != nil {
			return err
		}
	}
	return nil
}

func (rd *reader) addMonth(org, month string) {
	if !slices.Contains(rd.r.Months, month) {
		rd.r.Months = append(rd.r.Months, month)
	}
	i := slices.IndexFunc(rd.r.Orgs, func(o Org) bool { return o.ID == org })
	if i < 0 {
		rd.r.Orgs = append(rd.r.Orgs, Org{ID: org})
		i = len(rd.r.Orgs) - 1
	}
	rd.r.Orgs[i].Months = append(rd.r.Orgs[i].Months, month)
}

// manifest reads and checks one manifest.
func (rd *reader) manifest(ctx context.Context, ref manifestRef) (*export.Manifest, error) {
	rc, err := rd.st.Open(ctx, ref.key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref.key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref.key, err)
	}
	var m export.Manifest
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%s: over %d bytes, not a manifest", ref.key, maxManifestBytes)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: not a manifest: %w", ref.key, err)
	}
	if m.Version != export.ManifestVersion || m.OrgID != ref.orgID || m.BillingMonth != ref.month.Label() {
		return nil, fmt.Errorf("%s: a manifest of version %d, org %q, month %q: want version %d of org %s, %s",
			ref.key, m.Version, m.OrgID, m.BillingMonth, export.ManifestVersion, ref.orgID, ref.month)
	}
	slices.SortFunc(m.Objects, func(a, b export.Entry) int { return cmp.Compare(a.Key, b.Key) })
	rd.r.Files = append(rd.r.Files, File{Dataset: "manifest", OrgID: ref.orgID, Month: ref.month.Label(), Key: ref.key, Bytes: int64(len(b)), Rows: int64(len(m.Objects))})
	return &m, nil
}

// maxManifestBytes bounds a manifest read: a month has a few dozen objects.
const maxManifestBytes = 1 << 20

// read reads the Parquet file of a manifest entry row by row, and lists
// it.
func read[T any](ctx context.Context, rd *reader, dataset, org, month string, e export.Entry, fn func(*T)) error {
	f, err := rd.st.OpenFile(ctx, e.Key)
	if err != nil {
		return fmt.Errorf("reading %s, which its manifest lists: %w", e.Key, err)
	}
	defer f.Close()
	rows, err := readRows(ctx, f, f.Size(), fn)
	if err != nil {
		return fmt.Errorf("reading %s: %w", e.Key, err)
	}
	if rows != e.Rows {
		rd.note("%s has %d rows, its manifest says %d: it changed after the export.", e.Key, rows, e.Rows)
	}
	rd.r.Files = append(rd.r.Files, File{Dataset: dataset, OrgID: org, Month: month, Key: e.Key, Bytes: f.Size(), SHA256: e.SHA256, Rows: rows})
	return nil
}

func (rd *reader) usage(ctx context.Context, org, month string, e export.Entry) error {
	cost := at(rd.cost, month)
	orgCost := at(rd.orgCost, org)
	projects, clusters := at(rd.projects, month), at(rd.clusters, month)
	total := cell(orgCost, month)
	return read(ctx, rd, layout.NormalizedUsageFolder, org, month, e, func(row *usageRow) {
		if rd.names[org] == "" && row.OrgName != "" {
			rd.names[org] = row.OrgName
		}
		cell(cost, cmp.Or(row.Service, noService)).add(row.Amount)
		total.add(row.Amount)
		project := cmp.Or(row.ProjectName, row.ProjectID)
		if row.ProjectID != "" || row.ProjectName != "" {
			addItem(projects, itemKey{org, cmp.Or(row.ProjectID, row.ProjectName)}, project, "", row.Amount)
		}
		if row.ClusterID != "" || row.ClusterName != "" {
			// A cluster's name is unique in its project only.
			id := cmp.Or(row.ClusterID, row.ProjectID+"/"+row.ClusterName)
			addItem(clusters, itemKey{org, id}, cmp.Or(row.ClusterName, row.ClusterID), project, row.Amount)
		}
	})
}

// noService names usage without a service.
const noService = "(no service)"

func at[K comparable, V any](m map[string]map[K]V, k string) map[K]V {
	if m[k] == nil {
		m[k] = map[K]V{}
	}
	return m[k]
}

func cell[K comparable](m map[K]*sum, k K) *sum {
	if m[k] == nil {
		m[k] = &sum{scale: centsScale}
	}
	return m[k]
}

func addItem(m map[itemKey]*itemSum, k itemKey, name, project string, amount int64) {
	it := m[k]
	if it == nil {
		it = &itemSum{name: name, project: project, sum: sum{scale: centsScale}}
		m[k] = it
	}
	it.sum.add(amount)
}

// invoice reads an invoice's line items and its FOCUS report, and
// reconciles them with its totals.
func (rd *reader) invoice(ctx context.Context, m *export.Manifest, org string, p period.Period, raw export.Entry) error {
	inv := Invoice{OrgID: org, Month: p.Label(), ID: raw.InvoiceID, Status: raw.InvoiceStatus}
	lines, err := rd.lay.NormalizedInvoice(org, p, raw.InvoiceID)
	if err != nil {
		return err
	}
	if e, ok := m.Object(lines); ok {
		s := sum{scale: centsScale}
		err := read(ctx, rd, layout.NormalizedInvoiceFolder, org, p.Label(), e, func(row *lineItemRow) {
			if rd.names[org] == "" && row.OrgName != "" {
				rd.names[org] = row.OrgName
			}
			s.add(row.Amount)
		})
		if err != nil {
			return err
		}
		inv.LineItems, inv.HasLineItems = s.money(), true
	} else {
		rd.note("Invoice %s (org %s, %s) has no normalized line items (a Normalize warning at its export): it is not reconciled here.", raw.InvoiceID, org, p)
	}
	switch {
	case raw.Totals == nil:
		rd.note("The manifest of invoice %s (org %s, %s) has no totals (it was exported before they were recorded): export %s again to reconcile it here.", raw.InvoiceID, org, p, p)
	case inv.HasLineItems:
		c := export.Reconcile(raw.InvoiceID, p.Label(), inv.LineItems.String(), *raw.Totals)
		inv.Check = &c
	}

	focus, err := rd.lay.NormalizedFocus(org, p, raw.InvoiceID)
	if err != nil {
		return err
	}
	if e, ok := m.Object(focus); ok {
		f := &Focus{}
		s := sum{scale: decimalScale}
		err := read(ctx, rd, layout.NormalizedFocusFolder, org, p.Label(), e, func(row *focusRow) {
			if row.BilledCost != nil {
				s.addBig(decimal128(row.BilledCost))
			}
			if row.Currency != "" && !slices.Contains(f.Currencies, row.Currency) {
				f.Currencies = append(f.Currencies, row.Currency)
			}
		})
		if err != nil {
			return err
		}
		f.BilledCost = s.money()
		inv.Focus = f
	}
	rd.r.Invoices = append(rd.r.Invoices, inv)
	return nil
}

// finish orders what was summed and picks the top items and movers.
func (rd *reader) finish() {
	r := rd.r
	slices.Sort(r.Months)
	for i := range r.Orgs {
		r.Orgs[i].Name = rd.names[r.Orgs[i].ID]
		slices.Sort(r.Orgs[i].Months)
	}
	slices.SortFunc(r.Orgs, func(a, b Org) int { return cmp.Compare(a.ID, b.ID) })

	totals := map[string]Money{}
	for month, services := range rd.cost {
		r.Cost[month] = map[string]Money{}
		for svc, s := range services {
			v := s.money()
			r.Cost[month][svc] = v
			totals[svc] = totals[svc].Add(v)
		}
	}
	for org, months := range rd.orgCost {
		r.OrgCost[org] = map[string]Money{}
		for month, s := range months {
			r.OrgCost[org][month] = s.money()
		}
	}
	for svc := range totals {
		r.Services = append(r.Services, svc)
	}
	slices.SortFunc(r.Services, func(a, b string) int {
		return cmp.Or(totals[b].Cmp(totals[a]), cmp.Compare(a, b))
	})

	for _, m := range r.Months {
		if len(rd.cost[m]) > 0 {
			r.Last = m
		}
	}
	if r.Last != "" {
		ms, _ := period.Months(r.Last, r.Last)
		if prev := ms[0].Prev().Label(); slices.Contains(r.Months, prev) {
			r.Prev = prev
		}
		r.Projects = top(rd.projects[r.Last], rd.projects[r.Prev])
		r.Clusters = top(rd.clusters[r.Last], rd.clusters[r.Prev])
		for _, svc := range r.Services {
			r.Movers = append(r.Movers, Mover{Service: svc, Prev: r.Cost[r.Prev][svc], Last: r.Cost[r.Last][svc]})
		}
		slices.SortStableFunc(r.Movers, func(a, b Mover) int { return b.Change().Abs().Cmp(a.Change().Abs()) })
	}

	slices.SortFunc(r.Invoices, func(a, b Invoice) int {
		return cmp.Or(cmp.Compare(a.Month, b.Month), cmp.Compare(a.OrgID, b.OrgID), cmp.Compare(a.ID, b.ID))
	})
	slices.SortFunc(r.Files, func(a, b File) int { return cmp.Compare(a.Key, b.Key) })
}

// top is the topN largest items of last, each with its amount in prev.
func top(last, prev map[itemKey]*itemSum) []Item {
	var items []Item
	for k, it := range last {
		item := Item{ID: k.id, OrgID: k.org, Name: it.name, Project: it.project, Last: it.sum.money(), Prev: cents(0)}
		if p := prev[k]; p != nil {
			item.Prev = p.sum.money()
		}
		items = append(items, item)
	}
	slices.SortFunc(items, func(a, b Item) int {
		return cmp.Or(b.Last.Cmp(a.Last), cmp.Compare(a.OrgID, b.OrgID), cmp.Compare(a.ID, b.ID))
	})
	return items[:min(len(items), topN)]
}
