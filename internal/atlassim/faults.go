package atlassim

import (
	"sync"
	"time"
)

// FaultKind is what an injected fault does to a request.
type FaultKind int

const (
	// Status answers Fault.Status (429, 500, 502, 503, 504) with an ApiError
	// body; 429 and 503 carry Retry-After when Fault.RetryAfter > 0.
	Status FaultKind = iota + 1
	// Reset sends the headers and Fault.After bytes of the real body, then
	// resets the connection (TCP RST on HTTP/1.1, RST_STREAM on HTTP/2).
	Reset
	// Truncate announces the full Content-Length, sends Fault.After bytes and
	// closes the connection (HTTP/2: resets the stream).
	Truncate
	// SlowBody sends the real body in chunks with Fault.Delay between them.
	SlowBody
	// ExpiredToken answers 401 as if the bearer token had expired, and
	// forgets the token so the client must get a new one. For a Digest
	// request it answers 401 with a stale nonce challenge.
	ExpiredToken
	// NotFound answers 404 RESOURCE_NOT_FOUND.
	NotFound
	// NeverReady makes the Cost Explorer query of the request (the one being
	// created, or the token polled) answer 102 forever. On other operations
	// it is used up without effect.
	NeverReady
	// WrongMediaType answers 200 with Content-Type text/html.
	WrongMediaType
	// MalformedJSON answers 200 with the right Content-Type and a JSON body
	// cut in the middle.
	MalformedJSON
	// ReportFailed makes an invoice report end FAILED: on OpCreateInvoiceReport
	// (the default Op) the report created goes PENDING, RUNNING, then FAILED
	// instead of SUCCEEDED; on OpGetInvoiceReport the report polled fails at
	// that poll (used up without effect if it had already finished).
	ReportFailed
	// ExpiredURL makes the download host answer the next signed download
	// (Op OpDownloadReport, the default) 403 AccessDenied "Request has
	// expired", as S3 does for a pre-signed URL past its X-Amz-Expires.
	ExpiredURL
)

// FaultKinds lists every kind, in order.
var FaultKinds = []FaultKind{Status, Reset, Truncate, SlowBody, ExpiredToken, NotFound, NeverReady, WrongMediaType, MalformedJSON, ReportFailed, ExpiredURL}

var faultNames = []string{"FaultKind(?)", "Status", "Reset", "Truncate", "SlowBody", "ExpiredToken", "NotFound", "NeverReady", "WrongMediaType", "MalformedJSON", "ReportFailed", "ExpiredURL"}

func (k FaultKind) String() string {
	if k < 0 || int(k) >= len(faultNames) {
		return faultNames[0]
	}
	return faultNames[k]
}

// Operation ids (from the spec), and the pseudo ids of the token endpoint
// and of the download host.
const (
	OpCreateUsage         = "createOrgBillingCostExplorerUsageProcess"
	OpGetUsage            = "getOrgBillingCostExplorerUsage"
	OpListInvoices        = "listOrgInvoices"
	OpGetInvoice          = "getOrgInvoice"
	OpGetInvoiceCSV       = "getOrgInvoiceCsv"
	OpPendingInvoice      = "listOrgInvoicePending"
	OpCreateInvoiceReport = "createOrgInvoiceReport"
	OpGetInvoiceReport    = "getOrgInvoiceReport"
	OpListInvoiceReports  = "listOrgInvoiceReports"
	OpOAuthToken          = "oauthToken"
	OpDownloadReport      = "downloadReport"
)

// Fault is one injected misbehaviour. See FaultKind for what each kind does.
type Fault struct {
	// Op is an operationId, OpOAuthToken, OpDownloadReport, or "" for any
	// spec operation (not the token endpoint, not the download host).
	// ReportFailed defaults to OpCreateInvoiceReport, ExpiredURL to
	// OpDownloadReport. On the download host only Status (S3-style XML
	// errors), NotFound, ExpiredURL, WrongMediaType, Reset, Truncate and
	// SlowBody have an effect.
	Op         string        //
	Kind       FaultKind     //
	Times      int           // matching requests affected (0 = 1)
	Status     int           // for Status
	RetryAfter time.Duration // for Status 429/503: Retry-After, rounded up to whole seconds
	After      int64         // for Reset/Truncate: body bytes sent first
	Delay      time.Duration // for SlowBody: pause between chunks
}

type faultQueue struct {
	mu sync.Mutex
	q  []*pending
}

type pending struct {
	f    Fault
	left int
}

// Inject queues f. Faults apply to matching authenticated requests in FIFO
// order: a request takes the oldest fault whose Op matches it.
func (s *Server) Inject(f Fault) {
	if f.Op == "" {
		switch f.Kind {
		case ReportFailed:
			f.Op = OpCreateInvoiceReport
		case ExpiredURL:
			f.Op = OpDownloadReport
		}
	}
	n := max(f.Times, 1)
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.q = append(s.faults.q, &pending{f: f, left: n})
}

// PendingFaults reports how many injected fault applications are left.
func (s *Server) PendingFaults() int {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	n := 0
	for _, p := range s.faults.q {
		n += p.left
	}
	return n
}

// take removes one application of the first fault matching op.
func (q *faultQueue) take(op string) (Fault, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, p := range q.q {
		if p.f.Op != op && (p.f.Op != "" || op == OpOAuthToken || op == OpDownloadReport) {
			continue
		}
		p.left--
		if p.left <= 0 {
			q.q = append(q.q[:i], q.q[i+1:]...)
		}
		return p.f, true
	}
	return Fault{}, false
}
