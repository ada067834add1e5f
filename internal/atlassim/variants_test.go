package atlassim_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
)

// cents parses a decimal amount with two decimals into integer cents.
func cents(t *testing.T, s string) int64 {
	t.Helper()
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok || !r.Mul(r, big.NewRat(100, 1)).IsInt() {
		t.Fatalf("amount %q is not a decimal of cents", s)
	}
	return r.Num().Int64()
}

// lineItems reads an invoice CSV's line items (after the header row).
func lineItems(t *testing.T, b []byte) (header []string, rows [][]string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		if len(rec) > 0 && rec[0] == "Date" {
			return rec, recs[i+1:]
		}
	}
	t.Fatal("no line-item header")
	return nil, nil
}

// Per org and month the usage total is the invoice's line-item total, which
// is its subtotal minus credits; its JSON totals agree; the usage JSON has
// the CSV's rows.
func TestUsageReconcilesWithInvoices(t *testing.T) {
	srv, err := atlassim.New(atlassim.Config{Now: fixedNow, InvoiceRows: 120})
	if err != nil {
		t.Fatal(err)
	}
	for _, org := range []string{org1, org2} {
		for _, inv := range srv.Invoices(org) {
			var b bytes.Buffer
			if err := srv.WriteInvoiceCSV(&b, org, inv.ID); err != nil {
				t.Fatal(err)
			}
			_, rows := lineItems(t, b.Bytes())
			var lines int64
			for _, r := range rows {
				lines += cents(t, r[len(r)-1])
			}
			if lines != inv.SubtotalCents-inv.CreditsCents || inv.AmountBilledCents != inv.SubtotalCents-inv.CreditsCents+inv.SalesTaxCents || inv.CreditsCents == 0 {
				t.Errorf("%s %s: line items %d, subtotal %d, credits %d, billed %d", org, inv.Month, lines, inv.SubtotalCents, inv.CreditsCents, inv.AmountBilledCents)
			}
			q := atlassim.UsageQuery{StartDate: inv.Start.Format("2006-01-02"), EndDate: inv.End.Format("2006-01-02")}
			var u, uj bytes.Buffer
			if err := srv.WriteUsageCSV(&u, org, q); err != nil {
				t.Fatal(err)
			}
			if err := srv.WriteUsageJSON(&uj, org, q); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(&u).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var usage int64
			for _, r := range recs[1:] {
				usage += cents(t, r[9])
			}
			var j struct {
				UsageDetails []struct{ UsageAmount json.Number }
			}
			d := json.NewDecoder(&uj)
			d.UseNumber()
			if err := d.Decode(&j); err != nil {
				t.Fatal(err)
			}
			var usageJSON int64
			for _, r := range j.UsageDetails {
				usageJSON += cents(t, r.UsageAmount.String())
			}
			if usage != lines || usageJSON != lines || len(j.UsageDetails) != len(recs)-1 {
				t.Errorf("%s %s: usage CSV %d, JSON %d (%d rows, CSV %d), invoice line items %d", org, inv.Month, usage, usageJSON, len(j.UsageDetails), len(recs)-1, lines)
			}
		}
	}
}

// Each variant serves the form it names; the rest of the answer is the
// default one.
func TestVariants(t *testing.T) {
	_, plainBase := start(t, atlassim.Config{ReadyAfterPolls: 1})
	plain := client(t, plainBase, oauth, nil)
	get := func(t *testing.T, c *http.Client, url, accept string) (http.Header, []byte) {
		t.Helper()
		st, h, b := call(t, c, http.MethodGet, url, accept, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", url, st, b)
		}
		return h, b
	}
	srv0, _ := start(t, atlassim.Config{})
	inv := srv0.Invoices(org1)[3]
	csvPath := "/invoices/" + inv.ID + "/csv"
	_, plainCSV := get(t, plain, orgURL(plainBase, org1, csvPath), csvType)
	plainHeader, plainRows := lineItems(t, plainCSV)
	usage := func(t *testing.T, c *http.Client, base string) (http.Header, []byte) {
		t.Helper()
		u := newQuery(t, c, base, org1)
		for i := 0; i < 5; i++ {
			if got102, st, _, err := poll(t, c, u, csvType); err == nil && !got102 && st == 200 {
				return get(t, c, u, csvType)
			}
		}
		t.Fatal("usage never ready")
		return nil, nil
	}
	_, plainUsage := usage(t, plain, plainBase)

	tests := []struct {
		v     atlassim.Variant
		check func(t *testing.T, c *http.Client, base string)
	}{
		{atlassim.Tags, func(t *testing.T, c *http.Client, base string) {
			_, b := get(t, c, orgURL(base, org1, csvPath), csvType)
			h, rows := lineItems(t, b)
			want := append(append([]string{}, plainHeader...), "Tags/environment", "Tags/team", "Tags/cost-center")
			if strings.Join(h, "|") != strings.Join(want, "|") || len(rows) != len(plainRows) {
				t.Fatalf("header %q, %d rows", h, len(rows))
			}
			if !bytes.Contains(b, []byte(`"Data, Platform"`)) {
				t.Error("no quoted tag value")
			}
			for i, r := range rows {
				if len(r) != len(want) || strings.Join(r[:19], "|") != strings.Join(plainRows[i], "|") || r[19] == "" {
					t.Fatalf("row %d = %q", i, r)
				}
			}
		}},
		{atlassim.Exponent, func(t *testing.T, c *http.Client, base string) {
			_, b := get(t, c, orgURL(base, org1, csvPath), csvType)
			_, rows := lineItems(t, b)
			exp := regexp.MustCompile(`^[1-9](\.[0-9]+)?E[+-][0-9]+$`)
			n := 0
			for i, r := range rows {
				if plainRows[i][16] == "" {
					continue // a credit: no quantity
				}
				q, ok := new(big.Rat).SetString(r[16])
				want, _ := new(big.Rat).SetString(plainRows[i][16])
				if !exp.MatchString(r[16]) || !ok || q.Cmp(want) != 0 {
					t.Fatalf("row %d quantity %q, default %q", i, r[16], plainRows[i][16])
				}
				n++
			}
			if n == 0 {
				t.Fatal("no quantity")
			}
		}},
		{atlassim.USDates, func(t *testing.T, c *http.Client, base string) {
			_, b := get(t, c, orgURL(base, org1, csvPath), csvType)
			_, rows := lineItems(t, b)
			for i, r := range rows {
				for col := 0; col < 2; col++ {
					p := plainRows[i][col] // YYYY-MM-DD
					if r[col] != p[5:7]+"/"+p[8:10]+"/"+p[0:4] {
						t.Fatalf("row %d column %d = %q, default %q", i, col, r[col], p)
					}
				}
			}
		}},
		{atlassim.KeyValueUsage, func(t *testing.T, c *http.Client, base string) {
			_, b := usage(t, c, base)
			blocks := strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n")
			recs, _ := csv.NewReader(bytes.NewReader(plainUsage)).ReadAll()
			if !strings.HasPrefix(string(b), "Billed Date,") || len(blocks) != len(recs)-1 {
				t.Fatalf("%d blocks (default %d rows), starts %q", len(blocks), len(recs)-1, b[:min(40, len(b))])
			}
			var sum, want int64
			for i, bl := range blocks {
				_, amount, ok := strings.Cut(bl, "\nUsage Amount,")
				if !ok {
					t.Fatalf("block %d has no Usage Amount: %q", i, bl)
				}
				sum += cents(t, amount)
				want += cents(t, recs[i+1][9])
			}
			if sum != want {
				t.Errorf("key/value usage sums to %d, default %d", sum, want)
			}
		}},
		{atlassim.PendingObject, func(t *testing.T, c *http.Client, base string) {
			_, b := get(t, c, orgURL(base, org1, "/invoices/pending"), jsonType)
			var obj map[string]json.RawMessage
			if json.Unmarshal(b, &obj) != nil || obj["id"] == nil || obj["results"] != nil || !bytes.Contains(obj["statusName"], []byte("PENDING")) {
				t.Fatalf("pending answer %s", b)
			}
		}},
		{atlassim.TextCSV, func(t *testing.T, c *http.Client, base string) {
			h, b := get(t, c, orgURL(base, org1, csvPath), csvType)
			hu, _ := usage(t, c, base)
			if h.Get("Content-Type") != "text/csv; charset=utf-8" || hu.Get("Content-Type") != "text/csv; charset=utf-8" || !bytes.Equal(b, plainCSV) {
				t.Fatalf("Content-Type %q and %q", h.Get("Content-Type"), hu.Get("Content-Type"))
			}
		}},
		{atlassim.IgnoreDateFilters, func(t *testing.T, c *http.Client, base string) {
			_, b := get(t, c, orgURL(base, org1, "/invoices?fromDate=2025-01-01&toDate=2025-02-01"), jsonType)
			_, pb := get(t, plain, orgURL(plainBase, org1, "/invoices?fromDate=2025-01-01&toDate=2025-02-01"), jsonType)
			var page, plainPage struct{ Results []json.RawMessage }
			_ = json.Unmarshal(b, &page)
			_ = json.Unmarshal(pb, &plainPage)
			if len(page.Results) != len(srv0.Invoices(org1)) || len(plainPage.Results) != 1 {
				t.Fatalf("%d invoices listed (default %d), want all %d", len(page.Results), len(plainPage.Results), len(srv0.Invoices(org1)))
			}
		}},
		{atlassim.FocusUnavailable, func(t *testing.T, c *http.Client, base string) {
			seen := map[int]bool{}
			for _, inv := range srv0.Invoices(org1)[:3] {
				st, _, b := send(t, c, http.MethodPost, reportsURL(base, org1, inv.ID), reportType, reportType, focusBody)
				e := decodeErr(t, b)
				if st != atlassim.FocusUnavailableStatus(inv) || e.Error != st || e.ErrorCode == "" || e.Detail == "" {
					t.Fatalf("create report of %s: %d %s", inv.Month, st, b)
				}
				seen[st] = true
			}
			if len(seen) != 3 {
				t.Errorf("statuses %v, want 400, 403 and 404", seen)
			}
		}},
	}
	if len(tests)+1 != len(atlassim.Variants) { // H2EndStream102: TestVariantH2EndStream102
		t.Fatalf("%d variants tested here, %d exist", len(tests), len(atlassim.Variants))
	}
	for _, tc := range tests {
		t.Run(string(tc.v), func(t *testing.T) {
			_, base := start(t, atlassim.Config{ReadyAfterPolls: 1, Variants: []atlassim.Variant{tc.v}})
			tc.check(t, client(t, base, oauth, nil), base)
		})
	}
}

// Over HTTP/2 the variant sends the 102 as a HEADERS frame with END_STREAM,
// which Go's client refuses as such; without it the 102 is followed by
// RST_STREAM.
func TestVariantH2EndStream102(t *testing.T) {
	for _, v := range [][]atlassim.Variant{{atlassim.H2EndStream102}, nil} {
		cfg := atlassim.Config{Now: fixedNow, Variants: v, ReadyAfterPolls: 1}
		_, base, hc := atlassimtest.StartTLS(t, cfg)
		c := client(t, base, oauth, hc.Transport)
		u := newQuery(t, c, base, org1)
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", csvType)
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		endStream := err != nil && strings.Contains(err.Error(), "1xx informational response with END_STREAM flag")
		if endStream != (v != nil) {
			t.Errorf("variants %v: poll error %v", v, err)
		}
		if _, st, _, err := poll(t, c, u, csvType); err != nil || st != http.StatusOK {
			t.Errorf("variants %v: the next poll: %d %v", v, st, err)
		}
	}
}
