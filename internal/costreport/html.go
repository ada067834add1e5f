package costreport

import (
	"cmp"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
)

//go:embed report.tmpl
var pageText string

var page = template.Must(template.New("report").Funcs(template.FuncMap{"short": short, "dict": dict, "slashes": slashes}).Parse(pageText))

// slashes lets a long key break after each "/".
func slashes(key string) template.HTML {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = template.HTMLEscapeString(p)
	}
	return template.HTML(strings.Join(parts, "/<wbr>"))
}

// dict makes a map of key, value pairs: arguments for a template.
func dict(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// WriteHTML writes the report as one HTML page: inline CSS and SVG, no
// script, nothing fetched, so it reads the same offline, printed on A4 or
// attached to an email. Each figure carries data-fig (what it is),
// data-key (of what) and data-value (the exact number its text shows).
func (r *Report) WriteHTML(w io.Writer) error {
	if err := page.Execute(w, r.view()); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// fig is one number of the report as the page shows it.
type fig struct {
	Fig, Key, Value, Text string
}

func money(kind, key string, m Money) fig { return fig{kind, key, m.String(), m.Grouped()} }

func change(kind, key string, m Money) fig { return fig{kind, key, m.String(), m.Signed()} }

// percent is change / |base| as "+12.3%"; nil when base is zero.
func percent(kind, key string, ch, base Money) *fig {
	p, ok := Percent(ch, base)
	if !ok {
		return nil
	}
	text := p + "%"
	if !strings.HasPrefix(p, "-") && strings.Trim(p, "0.") != "" {
		text = "+" + text
	}
	return &fig{kind, key, p, text}
}

func count(kind, key string, n int64) fig {
	s := fmt.Sprint(n)
	return fig{kind, key, s, group(s)}
}

// short is the start of an id, for a narrow cell; the page has it whole
// elsewhere.
func short(id string) string {
	if len(id) <= 14 {
		return id
	}
	return id[:12] + "…"
}

type view struct {
	R                       *Report
	Range, OrgLine          string
	Generated, GeneratedISO string
	Total, LastTotal        fig
	LastChange, LastPct     *fig
	Reconciled, Checked     int
	Cost                    stackView
	CostRows                []tableRow
	CostTotals              []fig
	GrandTotal              fig
	Orgs                    []tableRow
	Projects, Clusters      hbarView
	ProjectRows             []itemRow
	ClusterRows             []itemRow
	Movers                  hbarView
	MoverRows               []moverRow
	Invoices                []invoiceRow
	Focus                   []invoiceRow
	Files                   []fileRow
}

// tableRow is a service's or an org's row of a money table: a cell per
// month, and their total.
type tableRow struct {
	Name, ID string
	Swatch   string // a service's pattern id, "" when the chart groups it
	Cells    []fig
	Total    fig
}

type itemRow struct {
	Rank             int
	Name, Where, ID  string
	Prev, Last       fig
	Change           *fig
	Pct              *fig
	New, NoPrevMonth bool
}

type moverRow struct {
	Service          string
	Prev, Last       fig
	Change           fig
	Pct              *fig
	Up, Down         bool
	NoPrevMonth, New bool
}

type invoiceRow struct {
	OrgName, Month, ID, Status     string
	Lines                          *fig
	Subtotal, Credits, Tax, Billed *fig
	Delta                          *fig
	Reconciled                     bool
	Reason                         string
	Focus, FocusDelta              *fig
	Currency                       string
	FocusMatches                   bool
	FocusNote                      string
}

type fileRow struct {
	Key, SHA string
	Rows     *fig // nil for a manifest
	Bytes    fig
}

func (r *Report) view() view {
	v := view{R: r, Generated: r.Generated.Format("2006-01-02 15:04 UTC"), GeneratedISO: r.Generated.Format("2006-01-02T15:04:05Z")}
	if len(r.Months) > 0 {
		v.Range = r.Months[0]
		if len(r.Months) > 1 {
			v.Range += " to " + r.Months[len(r.Months)-1]
		}
	}
	var names []string
	for _, o := range r.Orgs {
		names = append(names, orgName(o))
	}
	noun := "organizations"
	if len(r.Orgs) == 1 {
		noun = "organization"
	}
	v.OrgLine = fmt.Sprintf("%d %s: %s", len(r.Orgs), noun, strings.Join(names, "; "))

	// Cost per month and service, and the totals.
	chart := r.costChart()
	v.Cost = chart
	grand := Money{}
	monthTotals := map[string]Money{}
	for _, svc := range r.Services {
		row := tableRow{Name: svc, Swatch: chart.swatch[svc]}
		var t Money
		for _, m := range r.Months {
			a := r.Cost[m][svc]
			row.Cells = append(row.Cells, money("cost", m+"|"+svc, a))
			t = t.Add(a)
			monthTotals[m] = monthTotals[m].Add(a)
		}
		row.Total = money("service-total", svc, t)
		grand = grand.Add(t)
		v.CostRows = append(v.CostRows, row)
	}
	for _, m := range r.Months {
		v.CostTotals = append(v.CostTotals, money("month-total", m, monthTotals[m]))
	}
	v.GrandTotal = money("grand-total", "", grand)
	v.Total = v.GrandTotal
	if r.Last != "" {
		v.LastTotal = money("month-total", r.Last, monthTotals[r.Last])
		if r.Prev != "" {
			ch := monthTotals[r.Last].Sub(monthTotals[r.Prev])
			c := change("month-change", r.Last, ch)
			v.LastChange = &c
			v.LastPct = percent("month-change-pct", r.Last, ch, monthTotals[r.Prev])
		}
	}
	if len(r.Orgs) > 1 {
		for _, o := range r.Orgs {
			row := tableRow{ID: o.ID, Name: o.Name}
			var t Money
			for _, m := range r.Months {
				a := r.OrgCost[o.ID][m]
				row.Cells = append(row.Cells, money("org-cost", o.ID+"|"+m, a))
				t = t.Add(a)
			}
			row.Total = money("org-total", o.ID, t)
			v.Orgs = append(v.Orgs, row)
		}
	}

	// The top projects and clusters, and the movers.
	v.ProjectRows = r.itemRows("project", r.Projects)
	v.ClusterRows = r.itemRows("cluster", r.Clusters)
	v.Projects = r.itemChart("projects", "project", r.Projects)
	v.Clusters = r.itemChart("clusters", "cluster", r.Clusters)
	for _, mv := range r.Movers {
		ch := mv.Change()
		row := moverRow{Service: mv.Service, Prev: money("service-prev", mv.Service, mv.Prev), Last: money("service-last", mv.Service, mv.Last),
			Change: change("service-change", mv.Service, ch), Pct: percent("service-change-pct", mv.Service, ch, mv.Prev),
			Up: ch.Sign() > 0, Down: ch.Sign() < 0, NoPrevMonth: r.Prev == ""}
		row.New = row.Pct == nil && !row.NoPrevMonth && ch.Sign() != 0
		v.MoverRows = append(v.MoverRows, row)
	}
	v.Movers = r.moverChart()

	// Invoices.
	for _, inv := range r.Invoices {
		row := invoiceRow{OrgName: r.orgName(inv.OrgID), Month: inv.Month, ID: inv.ID, Status: inv.Status}
		if inv.HasLineItems {
			f := money("invoice-lines", inv.ID, inv.LineItems)
			row.Lines = &f
		}
		if c := inv.Check; c != nil {
			v.Checked++
			if c.Reconciled {
				v.Reconciled++
			}
			for _, p := range []struct {
				dst  **fig
				kind string
				c    int64
			}{{&row.Subtotal, "invoice-subtotal", c.SubtotalCents}, {&row.Credits, "invoice-credits", c.CreditsCents},
				{&row.Tax, "invoice-tax", c.SalesTaxCents}, {&row.Billed, "invoice-billed", c.AmountBilledCents}} {
				f := money(p.kind, inv.ID, cents(p.c))
				*p.dst = &f
			}
			d := change("invoice-delta", inv.ID, cents(c.DeltaCents))
			row.Delta, row.Reconciled, row.Reason = &d, c.Reconciled, c.Reason
		}
		v.Invoices = append(v.Invoices, row)
		if inv.Focus == nil {
			continue
		}
		fr := row
		f := money("focus-billed", inv.ID, inv.Focus.BilledCost)
		fr.Focus = &f
		fr.Currency = strings.Join(inv.Focus.Currencies, ", ")
		switch {
		case len(inv.Focus.Currencies) != 1 || inv.Focus.Currencies[0] != currency:
			fr.FocusNote = "not compared: the FOCUS report bills in " + cmp.Or(fr.Currency, "no currency") + ", the invoice in " + currency
		case !inv.HasLineItems:
			fr.FocusNote = "not compared: no line items"
		default:
			d := change("focus-delta", inv.ID, inv.Focus.BilledCost.Sub(inv.LineItems))
			fr.FocusDelta, fr.FocusMatches = &d, d.Value == "0.00"
		}
		v.Focus = append(v.Focus, fr)
	}

	for _, f := range r.Files {
		row := fileRow{Key: f.Key, SHA: f.SHA256, Bytes: count("file-bytes", f.Key, f.Bytes)}
		if f.Dataset != "manifest" {
			c := count("file-rows", f.Key, f.Rows)
			row.Rows = &c
		}
		v.Files = append(v.Files, row)
	}
	return v
}

func orgName(o Org) string {
	if o.Name == "" {
		return o.ID
	}
	return o.Name + " (" + o.ID + ")"
}

func (r *Report) orgName(id string) string {
	for _, o := range r.Orgs {
		if o.ID == id {
			return o.Name
		}
	}
	return ""
}

func (r *Report) itemRows(kind string, items []Item) []itemRow {
	var rows []itemRow
	for i, it := range items {
		key := it.OrgID + "|" + it.ID
		row := itemRow{Rank: i + 1, Name: it.Name, ID: it.ID, Where: r.where(it),
			Last: money(kind+"-last", key, it.Last), Prev: money(kind+"-prev", key, it.Prev), NoPrevMonth: r.Prev == ""}
		if r.Prev != "" {
			ch := it.Last.Sub(it.Prev)
			c := change(kind+"-change", key, ch)
			row.Change = &c
			row.Pct = percent(kind+"-change-pct", key, ch, it.Prev)
			row.New = it.Prev.Sign() == 0
		}
		rows = append(rows, row)
	}
	return rows
}

// where says where an item is: its project (a cluster's) and, when there
// are several, its org.
func (r *Report) where(it Item) string {
	var parts []string
	if it.Project != "" {
		parts = append(parts, it.Project)
	}
	if len(r.Orgs) > 1 {
		parts = append(parts, cmp.Or(r.orgName(it.OrgID), it.OrgID))
	}
	return strings.Join(parts, " · ")
}

// stackView is a chart of stacked vertical bars.
type stackView struct {
	ID, Title, Desc      string
	H                    string
	Patterns             []pattern
	Ticks                []tickView
	X0, X1, Y0, Y1, Zero string
	YLabel, XLabel       string
	YLabelY, XLabelX     string
	MonthY               string
	Bars                 []stackBar
	Legend               []legendItem
	swatch               map[string]string // service -> pattern id
}

type tickView struct{ Pos, Label string }

type stackBar struct {
	Month, LabelX  string
	Segs           []seg
	Total          fig
	TotalX, TotalY string
	TotalRotate    bool
	Title          string
}

type seg struct {
	X, Y, W, H     string
	Pattern, Title string
	Fig            fig
	Label          string
	LabelX, LabelY string
	Ink            string // the label's class: on-light or on-dark
}

type legendItem struct {
	Y, TextY, Pattern, Name string
}

// maxStacked is how many services the cost chart stacks; more are one
// "Other" segment (the table lists each).
const maxStacked = 12

// other names the services a chart groups.
const other = "Other"

func (r *Report) costChart() stackView {
	const (
		x0, x1 = 74.0, 560.0
		y0, y1 = 34.0, 318.0
		h      = 380.0
	)
	v := stackView{ID: "cost-chart", Title: "Cost per month, stacked by service (USD)", H: num(h),
		X0: num(x0), X1: num(x1), Y0: num(y0), Y1: num(y1), YLabel: "Cost (USD)", XLabel: "Billing month",
		YLabelY: num((y0 + y1) / 2), XLabelX: num((x0 + x1) / 2), MonthY: num(y1 + 18), swatch: map[string]string{}}
	shown, grouped := r.Services, len(r.Services) > maxStacked
	if grouped {
		shown = append(slices.Clone(shown[:maxStacked-1]), other)
	}
	for i, svc := range shown {
		p := newPattern(fmt.Sprintf("cost-p%d", i), i)
		v.Patterns = append(v.Patterns, p)
		v.swatch[svc] = p.ID
	}
	// What each month's bar stacks: its shown services, the rest as Other.
	amount := func(month, svc string) Money {
		if !grouped || svc != other {
			return r.Cost[month][svc]
		}
		var m Money
		for _, s := range r.Services[maxStacked-1:] {
			m = m.Add(r.Cost[month][s])
		}
		return m
	}
	lo, hi := 0.0, 0.0
	for _, m := range r.Months {
		pos, neg := 0.0, 0.0
		for _, svc := range shown {
			if f := amount(m, svc).Float(); f > 0 {
				pos += f
			} else {
				neg += f
			}
		}
		hi, lo = max(hi, pos), min(lo, neg)
	}
	sc := newScale(lo, hi*1.08, y1, y0) // room for the totals above the bars
	for _, t := range sc.ticks {
		v.Ticks = append(v.Ticks, tickView{Pos: num(sc.at(t)), Label: compact(t)})
	}
	v.Zero = num(sc.at(0))
	n := max(len(r.Months), 1)
	slot := (x1 - x0) / float64(n)
	barW := min(slot*0.62, 110)
	for i, m := range r.Months {
		cx := x0 + slot*(float64(i)+0.5)
		bar := stackBar{Month: m, LabelX: num(cx)}
		up, down := 0.0, 0.0 // stacked so far, above and below zero
		var total Money
		for j, svc := range shown {
			a := amount(m, svc)
			total = total.Add(a)
			f := a.Float()
			if a.Sign() == 0 {
				continue
			}
			var top float64
			if f > 0 {
				top = sc.at(up) - sc.size(f)
				up += f
			} else {
				top = sc.at(down)
				down += f
			}
			hgt := sc.size(f)
			s := seg{X: num(cx - barW/2), Y: num(top), W: num(barW), H: num(hgt), Pattern: v.Patterns[j].ID,
				Title: svc + ", " + m + ": " + a.Grouped() + " USD", Fig: money("cost", m+"|"+svc, a)}
			if hgt >= 15 && barW >= 56 {
				s.Label, s.LabelX, s.LabelY = fit(svc, barW-8), num(cx), num(top+hgt/2+4)
				s.Ink = "on-light"
				if v.Patterns[j].Ink == "#FFFFFF" {
					s.Ink = "on-dark"
				}
			}
			bar.Segs = append(bar.Segs, s)
		}
		bar.Total = money("month-total", m, total)
		bar.Title = m + ": " + total.Grouped() + " USD"
		topY := sc.at(up)
		if textPx(bar.Total.Text) > slot-6 {
			bar.TotalRotate, bar.TotalX, bar.TotalY = true, num(cx+4), num(topY-6)
		} else {
			bar.TotalX, bar.TotalY = num(cx), num(topY-6)
		}
		v.Bars = append(v.Bars, bar)
	}
	// The legend reads top down as the stack does.
	for i := len(shown) - 1; i >= 0; i-- {
		y := y0 + float64(len(shown)-1-i)*22
		v.Legend = append(v.Legend, legendItem{Y: num(y), TextY: num(y + 11), Pattern: v.Patterns[i].ID, Name: fit(shown[i], chartW-600)})
	}
	v.Desc = fmt.Sprintf("Stacked bars, one per billing month from %s, each service a segment with its own colour and pattern (legend at the right), the month's total above its bar. The table below has the same numbers.", r.rangeText())
	return v
}

func (r *Report) rangeText() string {
	if len(r.Months) == 0 {
		return "no month"
	}
	return r.Months[0] + " to " + r.Months[len(r.Months)-1]
}

// hbarView is a chart of horizontal bars, one per row, with two value
// columns at the right.
type hbarView struct {
	ID, Title, Desc, XLabel string
	H                       string
	X0, X1, Zero            string
	AxisY, TickY, XLabelY   string
	Ticks                   []tickView
	Rows                    []hbarRow
	Head1, Head2            string
	HeadY                   string
	Diverging               bool
	LegendY                 string
}

type hbarRow struct {
	Y, TextY, Label, Full string
	Sub, SubY             string // a second line of label
	ValueY                string
	BarX, BarW, BarH      string
	Fill                  string
	Value                 fig
	Second                *fig // the change, or the percent
	SecondText            string
	Arrow                 string
}

// Columns of a horizontal chart.
const (
	hbarX0    = 262.0
	hbarX1    = 520.0
	valueX    = 636.0 // right edge of the first value column
	secondX   = 756.0 // right edge of the second
	hbarTop   = 44.0
	hbarFill  = "#0072B2"
	upFill    = "#D55E00"
	downFill  = "url(#movers-down)"
	arrowUp   = "▲"
	arrowDown = "▼"
)

func (r *Report) itemChart(id, kind string, items []Item) hbarView {
	noun := map[string]string{"project": "projects", "cluster": "clusters"}[kind]
	v := hbarView{ID: id + "-chart", Title: fmt.Sprintf("Top %d %s in %s (USD)", len(items), noun, r.Last), XLabel: "Cost in " + r.Last + " (USD)",
		Head1: r.Last, Head2: "change"}
	if r.Prev != "" {
		v.Head2 = "change from " + r.Prev
	}
	values := make([]float64, len(items))
	for i, it := range items {
		values[i] = it.Last.Float()
	}
	v.layout(values, func(i int, y float64, row *hbarRow) {
		it := items[i]
		key := it.OrgID + "|" + it.ID
		label, sub := it.Name, r.where(it)
		row.Label, row.Full, row.Value = fit(label, labelPx-8), label+": "+it.Last.Grouped()+" USD", money(kind+"-last", key, it.Last)
		if sub != "" {
			row.Full = label + " (" + sub + "): " + it.Last.Grouped() + " USD"
			row.TextY, row.Sub, row.SubY = num(y+rowH/2-1), fit(sub, (labelPx-8)*1.2), num(y+rowH/2+10)
		}
		switch {
		case r.Prev == "":
			row.SecondText = "—"
		default:
			ch := it.Last.Sub(it.Prev)
			c := change(kind+"-change", key, ch)
			row.Second = &c
			row.Arrow = arrow(ch)
		}
	})
	v.Desc = fmt.Sprintf("Horizontal bars of the %s with the largest cost in %s, largest first; at the right each one's cost and its change from %s. The table below has the same numbers.",
		noun, r.Last, cmp.Or(r.Prev, "the month before (not in this report)"))
	return v
}

// layout places one bar per value, from hbarTop down, on a scale from the
// lowest value (or 0) to the highest (or 0), with its axis below; fill
// completes each row (y is its top).
func (v *hbarView) layout(values []float64, fill func(i int, y float64, row *hbarRow)) {
	lo, hi := 0.0, 0.0
	for _, f := range values {
		lo, hi = min(lo, f), max(hi, f)
	}
	sc := newScale(lo, hi, hbarX0, hbarX1)
	v.X0, v.X1, v.HeadY, v.Zero = num(hbarX0), num(hbarX1), num(hbarTop-10), num(sc.at(0))
	for i, f := range values {
		y := hbarTop + float64(i)*rowH
		row := hbarRow{Y: num(y + 5), TextY: num(y + rowH/2 + 4), ValueY: num(y + rowH/2 + 4),
			BarX: num(sc.at(min(f, 0))), BarW: num(sc.size(f)), BarH: num(rowH - 10), Fill: hbarFill}
		fill(i, y, &row)
		v.Rows = append(v.Rows, row)
	}
	h := hbarTop + float64(len(values))*rowH
	v.AxisY, v.TickY, v.XLabelY, v.H = num(h+2), num(h+16), num(h+34), num(h+44)
	if v.Diverging { // room for the legend
		v.LegendY, v.H = num(h+52), num(h+62)
	}
	for _, t := range sc.ticks {
		v.Ticks = append(v.Ticks, tickView{Pos: num(sc.at(t)), Label: compact(t)})
	}
}

func arrow(m Money) string {
	switch m.Sign() {
	case 1:
		return arrowUp
	case -1:
		return arrowDown
	}
	return ""
}

func (r *Report) moverChart() hbarView {
	v := hbarView{ID: "movers-chart", Title: fmt.Sprintf("Change in cost per service, %s to %s (USD)", r.Prev, r.Last),
		XLabel: "Change (USD)", Head1: "change", Head2: "in percent", Diverging: true}
	values := make([]float64, len(r.Movers))
	for i, mv := range r.Movers {
		values[i] = mv.Change().Float()
	}
	v.layout(values, func(i int, _ float64, row *hbarRow) {
		mv := r.Movers[i]
		ch := mv.Change()
		row.Label, row.Full = fit(mv.Service, labelPx-8), mv.Service+": "+ch.Signed()+" USD"
		row.Value, row.Arrow, row.Fill = change("service-change", mv.Service, ch), arrow(ch), upFill
		if ch.Sign() < 0 {
			row.Fill = downFill
		}
		if p := percent("service-change-pct", mv.Service, ch, mv.Prev); p != nil {
			row.Second = p
		} else if ch.Sign() != 0 {
			row.SecondText = "new"
		}
	})
	v.Desc = fmt.Sprintf("Horizontal bars from a zero line: right and solid vermillion (▲) where a service cost more in %s than in %s, left and striped blue (▼) where it cost less; largest change first, with the change and its percentage at the right. The table below has the same numbers.", r.Last, r.Prev)
	return v
}
