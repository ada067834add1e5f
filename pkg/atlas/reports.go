package atlas

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ReportState is the state of an invoice report.
type ReportState string

// Invoice report states (InvoiceReportResponse.state).
const (
	ReportPending   ReportState = "PENDING"
	ReportRunning   ReportState = "RUNNING"
	ReportSucceeded ReportState = "SUCCEEDED"
	ReportFailed    ReportState = "FAILED"
)

// Done reports whether the state is final (SUCCEEDED or FAILED).
func (s ReportState) Done() bool { return s == ReportSucceeded || s == ReportFailed }

// Report is an invoice report (InvoiceReportResponse, version 2025-03-12).
type Report struct {
	ID                string // 24 hex characters
	InvoiceID         string
	State             ReportState
	Format            string // "CSV"
	Type              string // "FOCUS"
	FormatSpecVersion string // FOCUS version, e.g. "1.0"; may be empty
	// DownloadURL is the pre-signed URL of the file, on another host; set
	// when State is SUCCEEDED. It works for anyone holding it until
	// ExpiresAt: keep it out of logs (String and LogValue leave its query out).
	DownloadURL   string
	ExpiresAt     time.Time // of DownloadURL; zero when absent
	FailureReason string    // when State is FAILED
}

// String shows the report with the query (the signature) of its download
// URL left out.
func (r Report) String() string {
	s := fmt.Sprintf("report %s of invoice %s: %s", r.ID, r.InvoiceID, r.State)
	if r.DownloadURL != "" {
		s += " at " + redactURL(r.DownloadURL)
	}
	if r.FailureReason != "" {
		s += ": " + r.FailureReason
	}
	return s
}

// LogValue logs the report without the query of its download URL.
func (r Report) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("id", r.ID), slog.String("invoiceId", r.InvoiceID), slog.String("state", string(r.State))}
	if r.DownloadURL != "" {
		attrs = append(attrs, slog.String("downloadUrl", redactURL(r.DownloadURL)), slog.Time("expiresAt", r.ExpiresAt))
	}
	if r.FailureReason != "" {
		attrs = append(attrs, slog.String("failureReason", r.FailureReason))
	}
	return slog.GroupValue(attrs...)
}

// redactURL is u without user info, query and fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		s += "?(redacted)"
	}
	return clean(s, 256)
}

// ValidateReportID checks an invoice report id (^[a-f0-9]{24}$, as the spec
// declares InvoiceReportResponse.reportId).
func ValidateReportID(id string) error {
	if !isHex24(id) {
		return &ValidationError{Field: "reportId", Reason: "must be 24 lowercase hexadecimal characters"}
	}
	return nil
}

type wireReport struct {
	DownloadURL       string `json:"downloadUrl"`
	ExpiresAt         string `json:"expiresAt"`
	FailureReason     string `json:"failureReason"`
	FormatSpecVersion string `json:"formatSpecVersion"`
	InvoiceID         string `json:"invoiceId"`
	ReportFormat      string `json:"reportFormat"`
	ReportID          string `json:"reportId"`
	ReportType        string `json:"reportType"`
	State             string `json:"state"`
}

// focusRequest is the only report the API generates: FOCUS, as CSV.
var focusRequest = []byte(`{"reportFormat":"CSV","reportType":"FOCUS"}`)

// CreateInvoiceReport asks Atlas for the FOCUS report (CSV) of an invoice
// (createOrgInvoiceReport) and returns it, normally PENDING; poll it with
// GetInvoiceReport.
func (c *Client) CreateInvoiceReport(ctx context.Context, orgID, invoiceID string) (Report, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return Report{}, err
	}
	if err := ValidateInvoiceID(invoiceID); err != nil {
		return Report{}, err
	}
	return c.report(ctx, invoiceID, &request{
		method: http.MethodPost,
		path:   "/orgs/" + orgID + "/invoices/" + invoiceID + "/reports",
		accept: mediaReportJSON,
		ctype:  mediaReportJSON,
		body:   focusRequest,
	})
}

// GetInvoiceReport returns a report's current state (getOrgInvoiceReport). A
// FAILED report is not an error (see FailureReason); a SUCCEEDED one always
// has a DownloadURL.
func (c *Client) GetInvoiceReport(ctx context.Context, orgID, invoiceID, reportID string) (Report, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return Report{}, err
	}
	if err := ValidateInvoiceID(invoiceID); err != nil {
		return Report{}, err
	}
	if err := ValidateReportID(reportID); err != nil {
		return Report{}, err
	}
	return c.report(ctx, invoiceID, &request{
		method: http.MethodGet,
		path:   "/orgs/" + orgID + "/invoices/" + invoiceID + "/reports/" + reportID,
		accept: mediaReportJSON,
	})
}

// report sends r and checks the answer is a usable report of invoiceID.
// Problems with the answer are plain errors, not *ValidationError: the
// caller's input was fine.
func (c *Client) report(ctx context.Context, invoiceID string, r *request) (Report, error) {
	res, err := c.send(ctx, r)
	if err != nil {
		return Report{}, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("atlas: %s %s: answer has %s", r.method, r.shown(), fmt.Sprintf(format, args...))
	}
	var w wireReport
	if err := json.Unmarshal(res.data, &w); err != nil {
		return Report{}, fmt.Errorf("atlas: %s %s: decoding answer: %w", r.method, r.shown(), err)
	}
	rep := Report{
		ID: w.ReportID, InvoiceID: w.InvoiceID, State: ReportState(w.State),
		Format: clean(w.ReportFormat, 16), Type: clean(w.ReportType, 16), FormatSpecVersion: clean(w.FormatSpecVersion, 16),
		DownloadURL: w.DownloadURL, FailureReason: clean(w.FailureReason, 1024),
	}
	if !isHex24(w.ReportID) {
		return Report{}, bad("an unusable report id %q", clean(w.ReportID, 32))
	}
	if w.InvoiceID != invoiceID {
		return Report{}, bad("invoice id %q, want %s", clean(w.InvoiceID, 32), invoiceID)
	}
	switch rep.State {
	case ReportPending, ReportRunning, ReportFailed:
	case ReportSucceeded:
		if w.DownloadURL == "" {
			return Report{}, bad("no downloadUrl for a SUCCEEDED report")
		}
	default:
		return Report{}, bad("unknown report state %q", clean(w.State, 32))
	}
	if w.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, w.ExpiresAt)
		if err != nil {
			return Report{}, bad("expiresAt %q, not an ISO 8601 time", clean(w.ExpiresAt, 40))
		}
		rep.ExpiresAt = t
	}
	return rep, nil
}

// DownloadReport streams the file of a SUCCEEDED report from its pre-signed
// DownloadURL (not an API operation: no Atlas credentials are sent), gunzipped
// if it is a .csv.gz. An expired URL is an *Error for which IsExpired is true.
func (c *Client) DownloadReport(ctx context.Context, r Report) (io.ReadCloser, error) {
	u, err := c.downloadURL(r.DownloadURL)
	if err != nil {
		return nil, err
	}
	display := u.Scheme + "://" + u.Host + u.EscapedPath()
	res, err := c.send(ctx, &request{
		method:   http.MethodGet,
		display:  display,
		download: u,
		stream:   true,
	})
	if err != nil {
		return nil, err
	}
	return gunzipped(res.body, http.MethodGet, display)
}

// downloadURL checks a report's download URL: https (http only for loopback,
// as WithBaseURL), no user info, not the API host itself. Reasons never quote
// the URL: its query is a credential.
func (c *Client) downloadURL(raw string) (*url.URL, error) {
	invalid := func(reason string) error { return &ValidationError{Field: "downloadUrl", Reason: reason} }
	if raw == "" {
		return nil, invalid("empty (the report has not SUCCEEDED)")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, invalid("not an absolute URL")
	}
	if u.User != nil {
		return nil, invalid("carries user info")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, invalid("plain http only for loopback hosts")
		}
	default:
		return nil, invalid("scheme must be https")
	}
	if strings.EqualFold(u.Hostname(), c.base.Hostname()) && portOf(u) == portOf(c.base) {
		return nil, invalid("points at the Atlas API host; a pre-signed download URL is on another host")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// fetch makes one download exchange with the plain download client.
func (c *Client) fetch(ctx context.Context, r *request) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.download.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("atlas: GET %s: %w", r.shown(), err)
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := c.dl.Do(req)
	if err != nil {
		// url.Error repeats the whole URL, signature included: drop it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("atlas: GET %s: %w", r.shown(), err)
	}
	b := &bodyReader{rc: resp.Body, method: r.method, path: r.shown(), want: resp.ContentLength}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.downloadError(resp, b, r)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, _ := mime.ParseMediaType(ct); strings.EqualFold(mt, "text/html") {
		b.Close()
		return nil, &MediaTypeError{Method: r.method, Path: r.shown(), Want: "the report file (not HTML)", Got: ct}
	}
	return &response{body: b, contentType: ct}, nil
}

// s3Error is the XML error body of S3 (and of other object stores).
type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// downloadError turns a non-2xx download answer into an *Error, reading a
// bounded part of the body. Expired: 403 AccessDenied saying "expired" (S3
// past X-Amz-Expires), 400 ExpiredToken (the signing credentials expired),
// or a 403 plain-text body saying "expired".
func (c *Client) downloadError(resp *http.Response, b *bodyReader, r *request) error {
	defer b.Close()
	data, _ := io.ReadAll(io.LimitReader(b, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, Method: r.method, Path: r.shown(),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	var x s3Error
	isXML := xml.Unmarshal(data, &x) == nil && x.Code != ""
	if isXML {
		e.ErrorCode, e.Detail = clean(x.Code, 128), clean(x.Message, 1024)
	} else {
		e.Detail = clean(strings.TrimSpace(string(data)), 256)
	}
	saysExpired := strings.Contains(strings.ToLower(e.Detail), "expired")
	switch {
	case resp.StatusCode == http.StatusForbidden && isXML && x.Code == "AccessDenied" && saysExpired,
		resp.StatusCode == http.StatusBadRequest && isXML && x.Code == "ExpiredToken",
		resp.StatusCode == http.StatusForbidden && !isXML && saysExpired:
		e.expired = true
	}
	return e
}
