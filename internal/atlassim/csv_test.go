package atlassim_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

// parseCents turns a decimal string like "-25.00" or "1018.39" into cents
// without floating point.
func parseCents(t testing.TB, s string) int64 {
	t.Helper()
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 {
		t.Fatalf("amount %q: want two decimals", s)
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("amount %q: not a decimal", s)
	}
	c := w*100 + f
	if neg {
		c = -c
	}
	return c
}

type parsedInvoice struct {
	preamble map[string]string
	keys     []string
	header   []string
	rows     [][]string
}

// parseInvoice reads an invoice CSV the way a client must: key/value records
// of any count, a blank line, the header, rows.
func parseInvoice(t testing.TB, b []byte) parsedInvoice {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	p := parsedInvoice{preamble: map[string]string{}}
	for {
		rec, err := r.Read()
		if err != nil {
			t.Fatalf("invoice CSV: %v", err)
		}
		if rec[0] == "Date" { // encoding/csv skips the blank line
			p.header = rec
			break
		}
		if len(rec) != 3 || rec[2] != "" {
			t.Fatalf("preamble record %q: want key,value, (trailing comma)", rec)
		}
		p.preamble[rec[0]] = rec[1]
		p.keys = append(p.keys, rec[0])
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return p
		}
		if err != nil {
			t.Fatalf("invoice CSV row %d: %v", len(p.rows)+1, err)
		}
		p.rows = append(p.rows, rec)
	}
}

func TestInvoiceCSV(t *testing.T) {
	srv, base := start(t, atlassim.Config{InvoiceRows: 300})
	c := client(t, base, oauth, nil)
	preambleLens := map[int]bool{}
	for _, org := range []string{org1, org2} {
		for _, inv := range srv.Invoices(org) {
			u := orgURL(base, org, "/invoices/"+inv.ID+"/csv")
			_, first, err := fetch(t, c, u, csvType)
			if err != nil {
				t.Fatal(err)
			}
			_, second, err := fetch(t, c, u, csvType)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := srv.WriteInvoiceCSV(&want, org, inv.ID); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first, second) || !bytes.Equal(first, want.Bytes()) {
				t.Fatalf("invoice %s: fetches differ from each other or from WriteInvoiceCSV", inv.ID)
			}
			if !utf8.Valid(first) {
				t.Fatalf("invoice %s: not UTF-8", inv.ID)
			}

			p := parseInvoice(t, first)
			preambleLens[len(p.keys)] = true
			if !slices.Equal(p.header, atlassim.InvoiceColumns) {
				t.Fatalf("header %q", p.header)
			}
			orgName := atlassim.DefaultOrgs[0].Name
			if org == org2 {
				orgName = atlassim.DefaultOrgs[1].Name
			}
			wantPeriod := inv.Start.Format("January 2, 2006") + " - " + inv.End.Format("January 2, 2006")
			if p.preamble["Invoice Number"] != inv.ID || p.preamble["Organization ID"] != org ||
				p.preamble["Organization Name"] != orgName || p.preamble["Billing Period"] != wantPeriod {
				t.Fatalf("preamble %q", p.preamble)
			}
			if len(p.rows) != 300 {
				t.Fatalf("%d rows, want 300", len(p.rows))
			}
			var sum, pos, neg int64
			for _, row := range p.rows {
				if len(row) != len(atlassim.InvoiceColumns) {
					t.Fatalf("row has %d fields: %q", len(row), row)
				}
				a := parseCents(t, row[len(row)-1])
				sum += a
				if a < 0 {
					neg -= a
				} else {
					pos += a
				}
				if row[4] != orgName || row[5] != org {
					t.Fatalf("row org %q %q", row[4], row[5])
				}
				if a > 0 { // Amount = Unit Price x Quantity x (1 - Discount), to the cent
					disc, err := strconv.ParseInt(row[17], 10, 64)
					if err != nil {
						t.Fatalf("discount %q", row[17])
					}
					if want := (parseCents(t, row[15])*parseCents(t, row[16])*(100-disc) + 5000) / 10000; a != want {
						t.Fatalf("row %q: amount %d cents, want %d", row, a, want)
					}
				}
			}
			if neg == 0 {
				t.Fatalf("invoice %s has no credit line", inv.ID)
			}

			// The JSON agrees with the CSV, to the cent.
			_, jb, err := fetch(t, c, orgURL(base, org, "/invoices/"+inv.ID), jsonType)
			if err != nil {
				t.Fatal(err)
			}
			var j struct {
				SubtotalCents, CreditsCents, AmountBilledCents, AmountPaidCents, SalesTaxCents int64
				StatusName                                                                     string
			}
			if err := json.Unmarshal(jb, &j); err != nil {
				t.Fatal(err)
			}
			if j.SubtotalCents != pos || j.CreditsCents != neg || j.SubtotalCents-j.CreditsCents != sum ||
				j.AmountBilledCents != sum+j.SalesTaxCents || j.StatusName != inv.Status {
				t.Fatalf("invoice %s JSON %+v vs CSV: positive %d, credits %d, sum %d", inv.ID, j, pos, neg, sum)
			}
			if (j.StatusName == "PAID") != (j.AmountPaidCents == j.AmountBilledCents) {
				t.Fatalf("invoice %s %s paid %d of %d", inv.ID, j.StatusName, j.AmountPaidCents, j.AmountBilledCents)
			}
		}
	}
	if len(preambleLens) < 2 {
		t.Fatalf("preamble length never varies: %v", preambleLens)
	}
}

func TestInvoiceStatuses(t *testing.T) {
	srv, _ := start(t, atlassim.Config{FirstMonth: "2023-01"})
	seen := map[string]int{}
	invs := srv.Invoices(org1)
	for i, inv := range invs {
		seen[inv.Status]++
		if len(inv.ID) != 24 || inv.ID != strings.ToLower(inv.ID) {
			t.Fatalf("id %q", inv.ID)
		}
		if i > 0 && !inv.Start.Equal(invs[i-1].End) {
			t.Fatalf("gap before %s", inv.Month)
		}
	}
	if len(invs) != 30 || seen["PENDING"] != 1 || seen["PAID"] == 0 || seen["CLOSED"] == 0 || invs[len(invs)-1].Status != "PENDING" {
		t.Fatalf("%d invoices, statuses %v", len(invs), seen)
	}
	if srv.Invoices("0123456789abcdef01234567") != nil {
		t.Fatal("invoices for an unknown org")
	}
	other, _ := start(t, atlassim.Config{FirstMonth: "2023-01"})
	if !slices.Equal(ids(other.Invoices(org1)), ids(invs)) {
		t.Fatal("invoice ids differ between two servers")
	}
}

func ids(invs []atlassim.Invoice) []string {
	var out []string
	for _, i := range invs {
		out = append(out, i.ID)
	}
	return out
}

func TestListFilters(t *testing.T) {
	srv, base := start(t, atlassim.Config{})
	c := client(t, base, oauth, nil)
	type page struct {
		Results []struct {
			ID, StatusName, StartDate, EndDate string
		}
		TotalCount int
	}
	get := func(q string) page {
		st, _, b := call(t, c, http.MethodGet, orgURL(base, org1, "/invoices?"+q), jsonType, nil)
		if st != 200 {
			t.Fatalf("%s: %d %s", q, st, b)
		}
		var p page
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := srv.Invoices(org1)
	p := get("fromDate=2025-01-01&toDate=2025-04-01&sortBy=START_DATE&orderBy=asc")
	if p.TotalCount != 3 || p.Results[0].StartDate != "2025-01-01T00:00:00Z" || p.Results[2].EndDate != "2025-04-01T00:00:00Z" {
		t.Fatalf("date filter: %+v", p)
	}
	p = get("statusNames=PENDING&statusNames=CLOSED")
	for _, r := range p.Results {
		if r.StatusName != "PENDING" && r.StatusName != "CLOSED" {
			t.Fatalf("status filter returned %s", r.StatusName)
		}
	}
	if p.TotalCount < 2 {
		t.Fatalf("status filter: %d", p.TotalCount)
	}
	p = get("includeCount=false&itemsPerPage=500&viewLinkedInvoices=false")
	if p.TotalCount != 0 || len(p.Results) != len(all) || p.Results[0].ID != all[len(all)-1].ID {
		t.Fatalf("defaults: %d results, total %d", len(p.Results), p.TotalCount)
	}
	// Walk the pages through the next links.
	var seen []string
	next := orgURL(base, org1, "/invoices?itemsPerPage=4")
	for i := 0; next != "" && i < 10; i++ {
		st, _, b := call(t, c, http.MethodGet, next, jsonType, nil)
		var pg struct {
			Results []struct{ ID string }
			Links   []struct{ Href, Rel string }
		}
		if st != 200 || json.Unmarshal(b, &pg) != nil {
			t.Fatalf("page %d: %d", i+1, st)
		}
		next = ""
		for _, r := range pg.Results {
			seen = append(seen, r.ID)
		}
		for _, l := range pg.Links {
			if l.Rel == "next" {
				next = l.Href
			}
		}
	}
	if len(seen) != len(all) {
		t.Fatalf("paging saw %d invoices, want %d", len(seen), len(all))
	}
}

func TestUsageResult(t *testing.T) {
	q := atlassim.UsageQuery{StartDate: "2025-03-01", EndDate: "2025-05-01", Services: []string{"Clusters", "Credits"}, GroupBy: "services"}
	srv, base := start(t, atlassim.Config{ReadyAfterPolls: 1})
	c := client(t, base, digestKey, nil)
	st, _, b := call(t, c, http.MethodPost, orgURL(base, org2, "/billing/costExplorer/usage"), jsonType, q)
	var tok struct{ Token string }
	if st != 202 || json.Unmarshal(b, &tok) != nil {
		t.Fatalf("create: %d %s", st, b)
	}
	u := orgURL(base, org2, "/billing/costExplorer/usage/"+tok.Token)
	poll(t, c, u, csvType)
	_, got, err := fetch(t, c, u, csvType)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := srv.WriteUsageCSV(&want, org2, q); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("served usage CSV differs from WriteUsageCSV")
	}
	recs, err := csv.NewReader(bytes.NewReader(got)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], atlassim.UsageColumns) || len(recs) < 50 {
		t.Fatalf("header %q, %d records", recs[0], len(recs))
	}
	var credits int
	for _, r := range recs[1:] {
		cents := parseCents(t, r[9])
		if r[7] != "Clusters" && r[7] != "Credits" {
			t.Fatalf("service %q outside the filter", r[7])
		}
		if (r[7] == "Credits") != (cents < 0) {
			t.Fatalf("row %q: credits must be negative, charges positive", r)
		}
		if r[7] == "Credits" {
			credits++
		}
		if r[8] < "2025-03-01" || r[8] >= "2025-05-01" {
			t.Fatalf("usage date %s outside the query", r[8])
		}
	}
	if credits == 0 {
		t.Fatal("no credit rows")
	}
	_, jb, err := fetch(t, c, u, jsonType)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		UsageDetails []struct {
			InvoiceID, OrganizationID, Service, UsageDate string
			UsageAmount                                   json.Number
		}
	}
	d := json.NewDecoder(bytes.NewReader(jb))
	d.UseNumber()
	if err := d.Decode(&j); err != nil || len(j.UsageDetails) != len(recs)-1 {
		t.Fatalf("usage JSON: %v, %d rows", err, len(j.UsageDetails))
	}
	for i, r := range j.UsageDetails {
		if r.UsageAmount.String() != recs[i+1][9] || r.InvoiceID != recs[i+1][0] || r.UsageDate != recs[i+1][8] {
			t.Fatalf("JSON row %d %+v differs from CSV %q", i, r, recs[i+1])
		}
	}
}

// TestLargeInvoiceStream streams a 256 MiB invoice CSV and checks the heap
// stays small on both sides of the connection (they share this process).
func TestLargeInvoiceStream(t *testing.T) {
	const size = 256 << 20
	srv, base := start(t, atlassim.Config{InvoiceBytes: size})
	c := client(t, base, oauth, nil)
	inv := srv.Invoices(org1)[0]

	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	req, _ := http.NewRequest(http.MethodGet, orgURL(base, org1, "/invoices/"+inv.ID+"/csv"), nil)
	req.Header.Set("Accept", csvType)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(done)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	if n != resp.ContentLength || n < size*9/10 || n > size*11/10 {
		t.Fatalf("streamed %d bytes, Content-Length %d, want about %d", n, resp.ContentLength, size)
	}
	if p := peak.Load(); p > 32<<20 {
		t.Fatalf("heap peaked at %d MiB while streaming", p>>20)
	}
	t.Logf("streamed %d MiB (%d rows), heap peak %d MiB", n>>20, inv.Rows, peak.Load()>>20)
}
