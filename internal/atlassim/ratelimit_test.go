package atlassim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim/atlassimtest"
)

// With RateLimit, each org has Atlas's bucket: 500 requests, then 429
// RATE_LIMITED with a Retry-After, refilled 100 per 60 s of the bucket's
// clock; the other org's bucket is its own.
func TestRateLimitEnforced(t *testing.T) {
	// The bucket's clock 60 times real time: 100 requests a second, far
	// fewer than the loop below makes.
	sim, base := atlassimtest.Start(t, atlassim.Config{Now: fixedNow, RateLimit: &atlassim.RateLimit{Scale: 60}})
	c := client(t, base, oauth, nil)
	list := func(org string) (int, http.Header, []byte) {
		return call(t, c, http.MethodGet, orgURL(base, org, "/invoices?itemsPerPage=1"), jsonType, nil)
	}
	ok, retryAfter := 0, ""
	for range 5000 {
		st, h, b := list(org1)
		if st == http.StatusTooManyRequests {
			if e := decodeErr(t, b); e.ErrorCode != "RATE_LIMITED" {
				t.Fatalf("429 %s", b)
			}
			retryAfter = h.Get("Retry-After")
			break
		}
		if st != http.StatusOK {
			t.Fatalf("request %d: %d %s", ok+1, st, b)
		}
		ok++
	}
	if ok < atlassim.RateCapacity || retryAfter != "1" || refused(sim, org1) != 1 {
		t.Fatalf("%d requests passed, then Retry-After %q; counted %d refused; want at least %d, then 1", ok, retryAfter, refused(sim, org1), atlassim.RateCapacity)
	}
	if st, _, _ := list(org2); st != http.StatusOK {
		t.Errorf("the other org was refused: %d", st)
	}
	time.Sleep(1100 * time.Millisecond) // the Retry-After: 110 requests on the bucket's clock
	if st, _, b := list(org1); st != http.StatusOK {
		t.Errorf("after the refill: %d %s", st, b)
	}
}

// Without RateLimit nothing is refused: the headers report the bucket.
func TestRateLimitReportedOnly(t *testing.T) {
	sim, base := atlassimtest.Start(t, atlassim.Config{Now: fixedNow})
	c := client(t, base, oauth, nil)
	var h http.Header
	for i := range atlassim.RateCapacity + 20 {
		var st int
		if st, h, _ = call(t, c, http.MethodGet, orgURL(base, org1, "/invoices?itemsPerPage=1"), jsonType, nil); st != http.StatusOK {
			t.Fatalf("request %d: %d", i+1, st)
		}
	}
	if h.Get("RateLimit-Limit") != "500" || h.Get("RateLimit-Remaining") != "0" || refused(sim, org1) != 0 {
		t.Errorf("headers %v, %d refused", h, refused(sim, org1))
	}
}

// A drained bucket refuses the first request and lets the next one through
// once the Retry-After has refilled it.
func TestRateLimitDrained(t *testing.T) {
	sim, base := atlassimtest.Start(t, atlassim.Config{Now: fixedNow, RateLimit: &atlassim.RateLimit{Scale: 60, Drained: true}})
	c := client(t, base, oauth, nil)
	url := orgURL(base, org1, "/invoices?itemsPerPage=1")
	if st, h, _ := call(t, c, http.MethodGet, url, jsonType, nil); st != http.StatusTooManyRequests || h.Get("Retry-After") != "1" {
		t.Fatalf("first request: %d, Retry-After %q", st, h.Get("Retry-After"))
	}
	time.Sleep(time.Second)
	if st, _, b := call(t, c, http.MethodGet, url, jsonType, nil); st != http.StatusOK || refused(sim, org1) != 1 {
		t.Errorf("after the Retry-After: %d %s (%d refused)", st, b, refused(sim, org1))
	}
}

func refused(sim *atlassim.Server, org string) int {
	_, n := sim.RateCounts(org)
	return n
}
