package atlas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Format is the media type of a usage result.
type Format string

const (
	CSV  Format = "csv"
	JSON Format = "json"
)

// Usage is the answer to GetUsage: still processing, or the result as a stream.
type Usage struct {
	Processing  bool
	Body        io.ReadCloser // nil when Processing; the caller closes it
	ContentType string
}

// CreateUsageQuery starts a Cost Explorer query
// (createOrgBillingCostExplorerUsageProcess) and returns its 64-character
// token. An invalid query is refused before anything is sent; one naming no
// organization is sent naming orgID, as public clients do.
func (c *Client) CreateUsageQuery(ctx context.Context, orgID string, q UsageQuery) (string, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return "", err
	}
	if err := q.Validate(); err != nil {
		return "", err
	}
	if len(q.Organizations) == 0 {
		q.Organizations = []string{orgID}
	}
	body, err := json.Marshal(q)
	if err != nil {
		return "", fmt.Errorf("atlas: encoding usage query: %w", err)
	}
	r := &request{
		method: http.MethodPost,
		path:   "/orgs/" + orgID + "/billing/costExplorer/usage",
		accept: mediaJSON,
		body:   body,
	}
	res, err := c.send(ctx, r)
	if err != nil {
		return "", err
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(res.data, &out); err != nil {
		return "", fmt.Errorf("atlas: %s %s: decoding answer: %w", r.method, r.shown(), err)
	}
	// Not a *ValidationError: the caller's input was fine, the answer is not.
	if err := ValidateToken(out.Token); err != nil {
		return "", fmt.Errorf("atlas: %s %s: answer has an unusable token: %s", r.method, r.shown(), err.(*ValidationError).Reason)
	}
	return out.Token, nil
}

// GetUsage polls a Cost Explorer query (getOrgBillingCostExplorerUsage). It
// returns Usage{Processing: true} while Atlas answers 102 (in any form), then
// the result as a stream in Usage.Body, CSV or JSON as f asks.
func (c *Client) GetUsage(ctx context.Context, orgID, token string, f Format) (*Usage, error) {
	if err := ValidateOrgID(orgID); err != nil {
		return nil, err
	}
	if err := ValidateToken(token); err != nil {
		return nil, err
	}
	accept := mediaCSV
	switch f {
	case CSV:
	case JSON:
		accept = mediaJSON
	default:
		return nil, &ValidationError{Field: "format", Reason: fmt.Sprintf("%q is not csv or json", clean(string(f), 16))}
	}
	res, err := c.send(ctx, &request{
		method:  http.MethodGet,
		path:    "/orgs/" + orgID + "/billing/costExplorer/usage/" + token,
		display: "/orgs/" + orgID + "/billing/costExplorer/usage/" + token[:8] + "...",
		accept:  accept,
		usage:   true,
		stream:  true,
	})
	if err != nil {
		return nil, err
	}
	if res.processing {
		return &Usage{Processing: true}, nil
	}
	return &Usage{Body: res.body, ContentType: res.contentType}, nil
}
