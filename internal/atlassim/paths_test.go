package atlassim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

// TestPaths walks every billing path the client uses, with both auth schemes.
func TestPaths(t *testing.T) {
	for _, sc := range []scheme{oauth, digestKey} {
		t.Run(string(sc), func(t *testing.T) {
			srv, base := start(t, atlassim.Config{ReadyAfterPolls: 1})
			c := client(t, base, sc, nil)
			invs := srv.Invoices(org1)
			if len(invs) != 13 {
				t.Fatalf("Invoices(org1) = %d invoices, want 13 (2024-06..2025-06)", len(invs))
			}
			closed, pending := invs[len(invs)-2], invs[len(invs)-1]
			if pending.Status != "PENDING" || pending.Month != "2025-06" || closed.Month != "2025-05" {
				t.Fatalf("last invoices = %s %s / %s %s", closed.Month, closed.Status, pending.Month, pending.Status)
			}

			// Cost Explorer: submit, 102 once, then CSV and JSON.
			st, _, b := call(t, c, http.MethodPost, orgURL(base, org1, "/billing/costExplorer/usage"), jsonType, usageQuery())
			if st != http.StatusAccepted {
				t.Fatalf("create usage: %d %s", st, b)
			}
			var tok struct{ Token string }
			if err := json.Unmarshal(b, &tok); err != nil || len(tok.Token) != 64 {
				t.Fatalf("create usage body %s: token %q, %v", b, tok.Token, err)
			}
			u := orgURL(base, org1, "/billing/costExplorer/usage/"+tok.Token)
			got102, _, _, err := poll(t, c, u, csvType)
			if !got102 || err == nil {
				t.Fatalf("first poll: got102=%v err=%v, want a 102 and no final response", got102, err)
			}
			got102, st, body, err := poll(t, c, u, csvType)
			if err != nil || got102 || st != http.StatusOK {
				t.Fatalf("second poll: got102=%v status=%d err=%v", got102, st, err)
			}
			if !contains(string(body), "Invoice ID,Organization ID,") {
				t.Fatalf("usage CSV starts %q", body[:min(80, len(body))])
			}
			csvRows := strings.Count(string(body), "\n") - 1
			st, h, body := call(t, c, http.MethodGet, u, jsonType, nil)
			if st != http.StatusOK || h.Get("Content-Type") != jsonType {
				t.Fatalf("usage JSON: %d %s", st, h.Get("Content-Type"))
			}
			var uj struct {
				UsageDetails []map[string]any `json:"usageDetails"`
			}
			if err := json.Unmarshal(body, &uj); err != nil || len(uj.UsageDetails) != csvRows || csvRows < 50 {
				t.Fatalf("usage JSON: %d rows, %v; the CSV has %d", len(uj.UsageDetails), err, csvRows)
			}

			// Invoices.
			st, h, body = call(t, c, http.MethodGet, orgURL(base, org1, "/invoices?itemsPerPage=5&pageNum=2"), jsonType, nil)
			if st != http.StatusOK || h.Get("RateLimit-Limit") == "" {
				t.Fatalf("list invoices: %d %s (RateLimit-Limit %q)", st, body, h.Get("RateLimit-Limit"))
			}
			var page struct {
				Results []struct {
					ID         string `json:"id"`
					StatusName string `json:"statusName"`
				} `json:"results"`
				TotalCount int `json:"totalCount"`
				Links      []struct{ Href, Rel string }
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			if page.TotalCount != 13 || len(page.Results) != 5 || len(page.Links) != 3 {
				t.Fatalf("page 2: total %d, %d results, links %v", page.TotalCount, len(page.Results), page.Links)
			}
			// Default order: END_DATE desc, so page 2 starts at the 6th newest.
			if page.Results[0].ID != invs[len(invs)-6].ID {
				t.Fatalf("page 2 first = %s, want %s", page.Results[0].ID, invs[len(invs)-6].ID)
			}

			st, _, body = call(t, c, http.MethodGet, orgURL(base, org1, "/invoices/"+closed.ID), jsonType, nil)
			var inv struct {
				ID            string `json:"id"`
				SubtotalCents int64  `json:"subtotalCents"`
			}
			if st != http.StatusOK || json.Unmarshal(body, &inv) != nil || inv.ID != closed.ID || inv.SubtotalCents != closed.SubtotalCents {
				t.Fatalf("get invoice: %d %s", st, body)
			}
			for _, p := range []struct{ path, accept string }{
				{"/invoices/" + closed.ID + "/csv", csvType},
				{"/invoices/" + closed.ID, csvType},
			} {
				st, h, body = call(t, c, http.MethodGet, orgURL(base, org1, p.path), p.accept, nil)
				if st != http.StatusOK || h.Get("Content-Type") != csvType || h.Get("Content-Length") != fmt.Sprint(len(body)) {
					t.Fatalf("GET %s: %d %s, Content-Length %s for %d bytes", p.path, st, h.Get("Content-Type"), h.Get("Content-Length"), len(body))
				}
				if !contains(string(body), "Invoice Number,"+closed.ID+",\n") {
					t.Fatalf("GET %s: CSV starts %q", p.path, body[:min(100, len(body))])
				}
			}

			st, _, body = call(t, c, http.MethodGet, orgURL(base, org1, "/invoices/pending"), jsonType, nil)
			if st != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Results) != 1 || page.Results[0].ID != pending.ID || page.Results[0].StatusName != "PENDING" {
				t.Fatalf("pending: %d %s", st, body)
			}
		})
	}
}
