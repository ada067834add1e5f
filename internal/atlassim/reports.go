package atlassim

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Invoice report states (InvoiceReportResponse.state).
const (
	StatePending   = "PENDING"
	StateRunning   = "RUNNING"
	StateSucceeded = "SUCCEEDED"
	StateFailed    = "FAILED"
)

// downloadBucket is the first path segment of download URLs (S3 path style).
const downloadBucket = "atlas-invoice-reports"

// report is the state of one invoice report.
type report struct {
	id, org, invoice, spec string
	seq                    uint64
	created                time.Time
	polls                  int
	doomed                 bool   // ends FAILED (ReportFailed fault at create)
	state                  string // PENDING, RUNNING, SUCCEEDED or FAILED
	failure                string
	path, url              string    // download path and URL, once SUCCEEDED
	expires                time.Time // of the URL (monotonic reading kept)
}

func (r *report) final() bool { return r.state == StateSucceeded || r.state == StateFailed }

func (r *report) expired(now time.Time) bool {
	return r.state == StateSucceeded && now.After(r.expires)
}

type reportJSON struct {
	DownloadURL       string `json:"downloadUrl,omitempty"`
	ExpiresAt         string `json:"expiresAt,omitempty"`
	FailureReason     string `json:"failureReason,omitempty"`
	FormatSpecVersion string `json:"formatSpecVersion"`
	InvoiceID         string `json:"invoiceId"`
	ReportFormat      string `json:"reportFormat"`
	ReportID          string `json:"reportId"`
	ReportType        string `json:"reportType"`
	State             string `json:"state"`
}

// json is the answer for r; the caller holds s.mu. Lists never carry the URL.
func (r *report) json(withURL bool) reportJSON {
	j := reportJSON{
		FailureReason: r.failure, FormatSpecVersion: r.spec, InvoiceID: r.invoice,
		ReportFormat: "CSV", ReportID: r.id, ReportType: "FOCUS", State: r.state,
	}
	if r.state == StateSucceeded {
		j.ExpiresAt = ts(r.expires)
		if withURL {
			j.DownloadURL = r.url
		}
	}
	return j
}

type reportRequest struct {
	FormatSpecVersion string `json:"formatSpecVersion"`
	ReportFormat      string `json:"reportFormat"`
	ReportType        string `json:"reportType"`
}

func (s *Server) createReport(x *exchange, invoiceID string) {
	inv, ok := s.invoice(x.org, invoiceID)
	if !ok {
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", fmt.Sprintf("Cannot find invoice %s for organization %s.", invoiceID, x.org))
		return
	}
	if s.has(FocusUnavailable) {
		status := FocusUnavailableStatus(inv)
		code := map[int]string{400: "INVALID_PARAMETER", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND"}[status]
		x.apiError(status, code, fmt.Sprintf("No FOCUS report can be generated for invoice %s (simulated: variant %s).", invoiceID, FocusUnavailable))
		return
	}
	var req reportRequest // enums and required fields checked by the spec
	if err := json.NewDecoder(x.r.Body).Decode(&req); err != nil {
		x.apiError(http.StatusBadRequest, "INVALID_JSON", "The request body is not valid JSON.")
		return
	}
	req.FormatSpecVersion = cmp.Or(req.FormatSpecVersion, FocusSpecVersion)
	if req.FormatSpecVersion != FocusSpecVersion {
		x.apiError(http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("formatSpecVersion %q is not supported; the simulator generates FOCUS %s.", req.FormatSpecVersion, FocusSpecVersion))
		return
	}
	s.mu.Lock()
	s.reportSeq++
	r := &report{
		id:  hashID(24, "report", x.org, invoiceID, strconv.FormatUint(s.reportSeq, 10)),
		org: x.org, invoice: invoiceID, spec: req.FormatSpecVersion, seq: s.reportSeq,
		created: time.Now(), state: StatePending,
		doomed: x.fault != nil && x.fault.Kind == ReportFailed,
	}
	s.reports[r.id] = r
	body := jsonBody(r.json(true))
	s.mu.Unlock()
	x.sendJSON(http.StatusCreated, x.accept, body)
}

func (s *Server) getReport(x *exchange, invoiceID, reportID string) {
	s.mu.Lock()
	r, ok := s.reports[reportID]
	if !ok || r.org != x.org || r.invoice != invoiceID {
		s.mu.Unlock()
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", fmt.Sprintf("Cannot find report %s of invoice %s.", reportID, invoiceID))
		return
	}
	s.advance(r, x.fault != nil && x.fault.Kind == ReportFailed)
	body := jsonBody(r.json(true))
	s.mu.Unlock()
	x.sendJSON(http.StatusOK, x.accept, body)
}

// advance moves r on by one poll; the caller holds s.mu.
func (s *Server) advance(r *report, fail bool) {
	if r.final() {
		return
	}
	r.polls++
	if fail {
		r.state, r.failure = StateFailed, "Report generation failed (simulated fault)."
		return
	}
	ready := false
	if n := s.cfg.ReportReadyAfterPolls; n > 0 {
		ready = r.polls > n
		r.state = StateRunning
		if r.polls <= n/2 {
			r.state = StatePending
		}
	} else {
		d, took := s.cfg.ReportProcessingTime, time.Since(r.created)
		ready = d < 0 || took >= d
		r.state = StateRunning
		if took < d/2 {
			r.state = StatePending
		}
	}
	switch {
	case !ready:
	case r.doomed:
		r.state, r.failure = StateFailed, "Report generation failed (simulated fault)."
	case s.dlBase == "":
		s.log.Error("atlassim: a report is ready but no download host is set (Config.DownloadBaseURL, SetDownloadBaseURL)")
		r.state, r.failure = StateFailed, "The simulator has no download host: set Config.DownloadBaseURL or call SetDownloadBaseURL."
	default:
		s.issueURL(r)
		r.state = StateSucceeded
	}
}

// issueURL gives r a pre-signed-looking download URL valid for ReportURLTTL;
// the caller holds s.mu. The signature is an HMAC over the path and the
// other query parameters, keyed by a secret of this server.
func (s *Server) issueURL(r *report) {
	now := time.Now()
	r.expires = now.Add(s.cfg.ReportURLTTL)
	r.path = "/" + downloadBucket + "/focus/" + r.org + "/" + r.invoice + "/" + r.id + ".csv"
	q := url.Values{}
	q.Set("X-Amz-Algorithm", "AWS4-HMAC-SHA256")
	q.Set("X-Amz-Credential", "atlassim/"+now.UTC().Format("20060102")+"/us-east-1/s3/aws4_request")
	q.Set("X-Amz-Date", now.UTC().Format("20060102T150405Z"))
	q.Set("X-Amz-Expires", strconv.FormatInt(max(1, int64(math.Ceil(s.cfg.ReportURLTTL.Seconds()))), 10))
	q.Set("X-Amz-SignedHeaders", "host")
	sig := s.sign(r.path, q)
	q.Set("X-Amz-Signature", sig)
	r.url = s.dlBase + r.path + "?" + q.Encode()
	s.grants[sig] = r
}

// sign is the signature of a download path and its query (without
// X-Amz-Signature), as lowercase hex.
func (s *Server) sign(path string, q url.Values) string {
	m := hmac.New(sha256.New, s.dlKey[:])
	m.Write([]byte("GET\n" + path + "\n" + q.Encode()))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) listReports(x *exchange, invoiceID string) {
	if _, ok := s.invoice(x.org, invoiceID); !ok {
		x.apiError(http.StatusNotFound, "RESOURCE_NOT_FOUND", fmt.Sprintf("Cannot find invoice %s for organization %s.", invoiceID, x.org))
		return
	}
	now := time.Now()
	s.mu.Lock()
	var all []*report
	for _, r := range s.reports {
		if r.org == x.org && r.invoice == invoiceID && !r.expired(now) {
			all = append(all, r)
		}
	}
	slices.SortFunc(all, func(a, b *report) int { return cmp.Compare(b.seq, a.seq) }) // newest first
	res := pageOf(x, all, func(r *report) reportJSON { return r.json(false) })
	s.mu.Unlock()
	x.sendJSON(http.StatusOK, x.accept, jsonBody(res))
}

// SetDownloadBaseURL sets the base URL (scheme://host:port) of the download
// host, where DownloadHandler is served. URLs already issued keep theirs.
func (s *Server) SetDownloadBaseURL(u string) error {
	if err := checkBaseURL(u); err != nil {
		return fmt.Errorf("atlassim: download base URL: %w", err)
	}
	s.mu.Lock()
	s.dlBase = strings.TrimRight(u, "/")
	s.mu.Unlock()
	return nil
}

// DownloadBaseURL returns the download host's base URL, "" when unset.
func (s *Server) DownloadBaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dlBase
}

func checkBaseURL(raw string) error {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want http(s)://host[:port] only")
	}
	return nil
}
