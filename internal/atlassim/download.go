package atlassim

import (
	"crypto/hmac"
	"encoding/xml"
	"io"
	"net/http"
	"time"
)

// maxDownloadLog bounds DownloadRequests, so a long-running simulator does
// not grow without end.
const maxDownloadLog = 1000

// DownloadHandler returns the handler of the download host: what a report's
// downloadUrl points at. Serve it on its own listener (another port: another
// host, as far as a client can tell) and give its URL to SetDownloadBaseURL;
// ServeDownloads and atlassimtest do both.
//
// It answers like S3 for a pre-signed GET: errors are XML <Error> bodies
// (application/xml), and
//   - an Authorization header: 400 InvalidArgument (one auth mechanism only);
//   - no or a bad signature, or a URL this server did not issue: 403
//     AccessDenied or SignatureDoesNotMatch;
//   - past ReportURLTTL, or an ExpiredURL fault: 403 AccessDenied "Request
//     has expired";
//   - otherwise 200 text/csv with Content-Length, the FOCUS CSV streamed
//     (with Config.ReportGzip: application/gzip, the CSV gzipped).
//
// Only GET is allowed. Faults with Op OpDownloadReport apply to requests
// whose signature is valid.
func (s *Server) DownloadHandler() http.Handler { return http.HandlerFunc(s.serveDownload) }

// DownloadRequests returns the headers of the requests the download host got
// (the latest 1000), oldest first, so a test can check that no credentials
// (Authorization, Cookie) reached it.
func (s *Server) DownloadRequests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]http.Header, len(s.downloads))
	for i, h := range s.downloads {
		out[i] = h.Clone()
	}
	return out
}

func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{s: s, w: &recorder{ResponseWriter: w}, r: r, op: OpDownloadReport}
	defer x.logRequest(start)
	s.mu.Lock()
	if len(s.downloads) >= maxDownloadLog {
		s.downloads = append(s.downloads[:0], s.downloads[1:]...)
	}
	s.downloads = append(s.downloads, r.Header.Clone())
	s.mu.Unlock()
	s.count(OpDownloadReport)

	if r.Method != http.MethodGet {
		x.w.Header().Set("Allow", http.MethodGet)
		x.s3Error(http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.")
		return
	}
	if r.Header.Get("Authorization") != "" {
		x.s3Error(http.StatusBadRequest, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
		return
	}
	q := r.URL.Query()
	sig := q.Get("X-Amz-Signature")
	if sig == "" || q.Get("X-Amz-Expires") == "" || q.Get("X-Amz-Date") == "" {
		x.s3Error(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	q.Del("X-Amz-Signature")
	if !hmac.Equal([]byte(sig), []byte(s.sign(r.URL.Path, q))) {
		x.s3Error(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
		return
	}
	s.mu.Lock()
	rep, ok := s.grants[sig]
	var grant report
	if ok {
		grant = *rep
	}
	s.mu.Unlock()
	if !ok {
		x.s3Error(http.StatusForbidden, "AccessDenied", "Access Denied")
		return
	}
	if f, ok := s.faults.take(OpDownloadReport); ok {
		x.fault = &f
		if x.applyDownloadFault() {
			return
		}
	}
	if time.Now().After(grant.expires) {
		x.s3Error(http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	inv, ok := s.invoice(grant.org, grant.invoice)
	if !ok {
		x.s3Error(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	if s.cfg.ReportGzip {
		x.w.Header().Set("Content-Type", "application/gzip")
		x.send(http.StatusOK, s.focusGzipSize(inv), nil, func(w io.Writer) error { return s.writeFocusGzip(w, inv) })
		return
	}
	x.w.Header().Set("Content-Type", "text/csv")
	x.send(http.StatusOK, s.focusCSVSize(inv), nil, func(w io.Writer) error { return s.writeFocusCSV(w, inv) })
}

// applyDownloadFault answers the download if the fault replaces the answer;
// the transport faults (Reset, Truncate, SlowBody) return false and act in send.
func (x *exchange) applyDownloadFault() bool {
	f := x.fault
	switch f.Kind {
	case Status:
		x.faultRetryAfter()
		switch f.Status {
		case 429, 503:
			x.s3Error(f.Status, "SlowDown", "Please reduce your request rate.")
		default:
			x.s3Error(f.Status, "InternalError", "We encountered an internal error. Please try again.")
		}
		return true
	case NotFound:
		x.s3Error(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return true
	case ExpiredURL:
		x.s3Error(http.StatusForbidden, "AccessDenied", "Request has expired")
		return true
	case WrongMediaType:
		return x.applyFault()
	case Reset, Truncate, SlowBody:
		return false
	}
	x.fault = nil // kinds without meaning here are used up without effect
	return false
}

// s3Error answers an S3-style XML error.
func (x *exchange) s3Error(status int, code, msg string) {
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestID string `xml:"RequestId"`
	}{Code: code, Message: msg, RequestID: hashID(16, "request", x.r.URL.String(), time.Now().String())})
	body = append([]byte(xml.Header), body...)
	x.w.Header().Set("Content-Type", "application/xml")
	x.send(status, int64(len(body)), body, nil)
}
