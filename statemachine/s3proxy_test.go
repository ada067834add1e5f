package statemachine_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
)

// S3 operations as the fault proxy names them (the SDK's operation names).
const (
	s3PutObject      = "PutObject"
	s3UploadPart     = "UploadPart"
	s3CreateUpload   = "CreateMultipartUpload"
	s3CompleteUpload = "CompleteMultipartUpload"
	s3AbortUpload    = "AbortMultipartUpload"
	s3CopyObject     = "CopyObject"
	s3HeadObject     = "HeadObject"
	s3DeleteObject   = "DeleteObject"
)

// s3Writes are the requests that write data: what an access denial refuses.
var s3Writes = []string{s3PutObject, s3UploadPart, s3CreateUpload, s3CompleteUpload, s3CopyObject}

// s3Proxy is a reverse proxy in front of versitygw that injects the S3
// faults versitygw cannot: an error status on chosen requests, a connection
// cut in the middle of a request body, an outage. It counts requests per
// operation. The Host header is passed through unchanged, so SigV4
// signatures made for the proxy's address still verify at versitygw.
type s3Proxy struct {
	URL string

	mu     sync.Mutex
	counts map[string]int
	rules  []*s3Rule
	down   bool // every request is cut until an AbortMultipartUpload passes
}

type s3Action int

const (
	s3Fail        s3Action = iota + 1 // answer Status with an S3 XML error Code
	s3Cut                             // read part of the body, then reset the connection
	s3DownToAbort                     // cut this request and every other one until an abort passes
)

// s3Rule applies to the next Times requests of one of Ops (Times < 0: until
// cleared). An op is an operation name, or "UploadPart#N" for part N.
// SameUpload keeps a rule on the multipart upload it first hit: the sink
// writes a raw file and its normalized form at once, and the retries of one
// part must meet the fault, not the other upload's part.
type s3Rule struct {
	Ops        []string
	Action     s3Action
	Times      int
	Status     int
	Code       string
	SameUpload bool

	upload string // the upload id a SameUpload rule is bound to
}

func startS3Proxy(t testing.TB, upstream string) *s3Proxy {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatalf("s3 proxy: upstream %q: %v", upstream, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // signed by the client
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	p := &s3Proxy{counts: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3 proxy: listen: %v", err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: p.handler(rp), ErrorLog: log.New(io.Discard, "", 0)}}
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	p.URL = srv.URL
	return p
}

// Inject adds a rule; rules apply in the order added.
func (p *s3Proxy) Inject(r s3Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &r)
}

// Clear drops every rule and ends an outage.
func (p *s3Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules, p.down = nil, false
}

// Pending reports the rule applications left (-1 for a rule until cleared)
// and whether an outage is on.
func (p *s3Proxy) Pending() (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.rules {
		if r.Times < 0 {
			return -1, p.down
		}
		n += r.Times
	}
	return n, p.down
}

// Counts returns the requests seen per operation.
func (p *s3Proxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// runsOp is how the proxy names a request for an execution's own files
// (layout.RunsFolder: the plan, the Map's results, the manifest, the
// summary), apart from the exported data: a rule naming a plain operation
// never hits them, and rows count the data's requests alone.
func runsOp(op string) string { return "runs:" + op }

// bucketOp names a request on the bucket, not on a key of it: neither
// data nor a run's file.
func bucketOp(op string) string { return "bucket:" + op }

// runFile reports whether a path-style request's key is one of a run's
// files.
func runFile(path string) bool {
	return strings.Contains(path, "/"+layout.RunsFolder+"/")
}

// s3Op names the S3 operation of a path-style request.
func s3Op(r *http.Request) string {
	q := r.URL.Query()
	_, uploads := q["uploads"]
	upload := q.Get("uploadId") != ""
	copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
	switch r.Method {
	case http.MethodPut:
		switch {
		case upload && copySrc:
			return "UploadPartCopy"
		case upload:
			return s3UploadPart
		case copySrc:
			return s3CopyObject
		}
		return s3PutObject
	case http.MethodPost:
		switch {
		case uploads:
			return s3CreateUpload
		case upload:
			return s3CompleteUpload
		}
		return "Post"
	case http.MethodDelete:
		if upload {
			return s3AbortUpload
		}
		return s3DeleteObject
	case http.MethodHead:
		return s3HeadObject
	case http.MethodGet:
		if q.Get("list-type") != "" || q.Has("uploads") {
			return "List"
		}
		return "GetObject"
	}
	return r.Method
}

// decide counts the request under each of its names (an UploadPart is also
// "UploadPart#N") and picks what happens to it.
func (p *s3Proxy) decide(names []string, upload string) (s3Rule, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range names {
		p.counts[n]++
	}
	if p.down {
		if names[0] == s3AbortUpload {
			p.down = false // back in time for the cleanup
			return s3Rule{}, false
		}
		return s3Rule{Action: s3Cut}, true
	}
	for i, r := range p.rules {
		if !slices.ContainsFunc(r.Ops, func(o string) bool { return slices.Contains(names, o) }) {
			continue
		}
		if r.SameUpload {
			if r.upload != "" && r.upload != upload {
				continue
			}
			r.upload = upload
		}
		if r.Times > 0 {
			r.Times--
			if r.Times == 0 {
				p.rules = append(p.rules[:i], p.rules[i+1:]...)
			}
		}
		if r.Action == s3DownToAbort {
			p.down = true
			return s3Rule{Action: s3Cut}, true
		}
		return *r, true
	}
	return s3Rule{}, false
}

func (p *s3Proxy) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := []string{s3Op(r)}
		if names[0] == s3UploadPart {
			names = append(names, s3UploadPart+"#"+r.URL.Query().Get("partNumber"))
		}
		switch {
		case strings.Count(strings.Trim(r.URL.Path, "/"), "/") == 0:
			// The bucket itself (the sink asks its region once).
			names = []string{bucketOp(names[0])}
		case runFile(r.URL.Path):
			for i, n := range names {
				names[i] = runsOp(n)
			}
		}
		rule, hit := p.decide(names, r.URL.Query().Get("uploadId"))
		if !hit {
			next.ServeHTTP(w, r)
			return
		}
		switch rule.Action {
		case s3Fail:
			// Read the body first, so the client sees the answer rather
			// than a write error.
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(rule.Status)
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>injected by the fault proxy</Message><RequestId>fault</RequestId></Error>`, rule.Code)
		case s3Cut:
			// Half the body (at most 1 MiB), then a TCP reset.
			_, _ = io.CopyN(io.Discard, r.Body, min(max(r.ContentLength/2, 0), 1<<20))
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(http.ErrAbortHandler)
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
		}
	})
}
