package atlas

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
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
func ValidateReportID(id string) error { return checkHex24("reportId", id) }

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

// downloadURL checks a report's download URL: https, no user info, not the
// API host, and not a host inside this machine or its network (loopback,
// private and link-local addresses, localhost), where a hostile URL could
// reach the Lambda Runtime API or instance metadata. Only when the API
// itself is on loopback (the simulator) may it be such a host, and plain
// http only when the API is loopback http. Reasons never quote the URL: its
// query is a credential.
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
	local := isLoopback(c.base.Hostname())
	switch u.Scheme {
	case "https":
	case "http":
		if !local || c.base.Scheme != "http" {
			return nil, invalid("plain http only when the API base URL is loopback http")
		}
	default:
		return nil, invalid("scheme must be https")
	}
	if !local && internalHost(u.Hostname()) {
		return nil, invalid("a loopback, private or link-local host")
	}
	if strings.EqualFold(u.Hostname(), c.base.Hostname()) && portOf(u) == portOf(c.base) {
		return nil, invalid("points at the Atlas API host; a pre-signed download URL is on another host")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// internalRanges are the address ranges of this machine and its networks.
var internalRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // this network
	netip.MustParsePrefix("10.0.0.0/8"),     // private
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),    // loopback
	netip.MustParsePrefix("169.254.0.0/16"), // link-local (instance metadata)
	netip.MustParsePrefix("172.16.0.0/12"),  // private
	netip.MustParsePrefix("192.168.0.0/16"), // private
	netip.MustParsePrefix("::/128"),         // unspecified
	netip.MustParsePrefix("::1/128"),        // loopback
	netip.MustParsePrefix("fc00::/7"),       // unique local
	netip.MustParsePrefix("fe80::/10"),      // link-local
	netip.MustParsePrefix("fec0::/10"),      // site-local
}

// internalHost reports whether host names this machine or an address of
// internalRanges (IPv4-mapped IPv6 included), or is not a DNS name at all
// ("127.1", "2130706433": forms some resolvers read as addresses).
func internalHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		last := h[strings.LastIndexByte(h, '.')+1:]
		return last == "" || '0' <= last[0] && last[0] <= '9'
	}
	ip = ip.Unmap().WithZone("")
	if ip.IsMulticast() {
		return true
	}
	for _, p := range internalRanges {
		if p.Contains(ip) {
			return true
		}
	}
	return false
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
	u := *r.download
	req, cancel, err := c.newRequest(ctx, r, &u)
	if err != nil {
		return nil, err
	}
	resp, err := c.dl.Do(req)
	if err != nil {
		cancel()
		return nil, transportError(err, r)
	}
	b := c.body(resp, r, cancel)
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

// downloadError turns a non-2xx download answer into an *Error. Nothing of
// the body goes into it but an S3 error code from a fixed list: the host
// is not Atlas, and its text could be anything. Expired: 403 AccessDenied
// saying "expired" (S3 past X-Amz-Expires), 400 ExpiredToken (the signing
// credentials expired), or a 403 plain-text body saying "expired".
func (c *Client) downloadError(resp *http.Response, b *bodyReader, r *request) error {
	defer b.Close()
	data, _ := io.ReadAll(io.LimitReader(b, maxErrorBody))
	e := &Error{StatusCode: resp.StatusCode, Method: r.method, Path: r.shown(),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now())}
	var x s3Error
	isXML := xml.Unmarshal(data, &x) == nil && x.Code != ""
	if isXML && slices.Contains(s3Codes, x.Code) {
		e.ErrorCode = x.Code
	}
	text := string(data)
	if isXML {
		text = x.Message
	}
	saysExpired := strings.Contains(strings.ToLower(text), "expired")
	switch {
	case resp.StatusCode == http.StatusForbidden && isXML && x.Code == "AccessDenied" && saysExpired,
		resp.StatusCode == http.StatusBadRequest && isXML && x.Code == "ExpiredToken",
		resp.StatusCode == http.StatusForbidden && !isXML && saysExpired:
		e.expired = true
		e.Detail = "the pre-signed URL expired"
	}
	return e
}

// s3Codes are the S3 error codes an *Error may carry from a download host.
var s3Codes = []string{
	"AccessDenied", "AuthorizationQueryParametersError", "ExpiredToken", "InternalError", "InvalidAccessKeyId",
	"InvalidArgument", "InvalidRequest", "InvalidToken", "NoSuchBucket", "NoSuchKey", "RequestTimeTooSkewed",
	"RequestTimeout", "ServiceUnavailable", "SignatureDoesNotMatch", "SlowDown",
}
