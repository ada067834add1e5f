// Package config reads a function's settings from its environment, once per
// cold start. Nothing here comes from an event: in particular the Atlas base
// URL is configuration only, so no event can send credentials to another host.
package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// DefaultMaxPollAttempts bounds a Cost Explorer query to about 37 minutes
// with the poll backoff (5 s growing to a 60 s cap).
const DefaultMaxPollAttempts = 40

// Config is what every function needs.
type Config struct {
	Bucket          string   // ABX_BUCKET (required)
	Prefix          string   // ABX_PREFIX, default "atlas-billing"
	SecretARN       string   // ABX_SECRET_ARN (required)
	BaseURL         string   // ABX_ATLAS_BASE_URL, default https://cloud.mongodb.com
	OrgIDs          []string // ABX_ORG_IDS, comma separated; else the secret's orgIds
	KMSKeyID        string   // ABX_KMS_KEY_ID: SSE-KMS with this key, else SSE-S3
	MaxPollAttempts int      // ABX_MAX_POLL_ATTEMPTS
	S3Endpoint      string   // ABX_S3_ENDPOINT: a path-style endpoint (tests, S3-compatible stores)
	FocusReports    bool     // ABX_FOCUS_REPORTS: fetch Atlas's FOCUS report of each invoice, default true
}

// FromEnv reads the configuration through getenv (os.Getenv in production).
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Bucket:          strings.TrimSpace(getenv("ABX_BUCKET")),
		Prefix:          strings.TrimSpace(getenv("ABX_PREFIX")),
		SecretARN:       strings.TrimSpace(getenv("ABX_SECRET_ARN")),
		BaseURL:         strings.TrimSpace(getenv("ABX_ATLAS_BASE_URL")),
		KMSKeyID:        strings.TrimSpace(getenv("ABX_KMS_KEY_ID")),
		S3Endpoint:      strings.TrimSpace(getenv("ABX_S3_ENDPOINT")),
		MaxPollAttempts: DefaultMaxPollAttempts,
	}
	if c.Prefix == "" {
		c.Prefix = layout.DefaultPrefix
	}
	if c.BaseURL == "" {
		c.BaseURL = atlas.DefaultBaseURL
	}
	var problems []string
	if c.Bucket == "" {
		problems = append(problems, "ABX_BUCKET is not set")
	}
	if c.SecretARN == "" {
		problems = append(problems, "ABX_SECRET_ARN is not set")
	}
	if _, err := layout.New(c.Prefix); err != nil {
		problems = append(problems, fmt.Sprintf("ABX_PREFIX: %v", err))
	}
	if err := checkURL(c.BaseURL); err != nil {
		problems = append(problems, fmt.Sprintf("ABX_ATLAS_BASE_URL: %v", err))
	}
	ids, err := OrgIDs(getenv("ABX_ORG_IDS"))
	if err != nil {
		problems = append(problems, fmt.Sprintf("ABX_ORG_IDS: %v", err))
	}
	c.OrgIDs = ids
	if v := strings.TrimSpace(getenv("ABX_MAX_POLL_ATTEMPTS")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			problems = append(problems, fmt.Sprintf("ABX_MAX_POLL_ATTEMPTS %q: want a number from 1 to 1000", v))
		}
		c.MaxPollAttempts = n
	}
	c.FocusReports = true
	if v := strings.TrimSpace(getenv("ABX_FOCUS_REPORTS")); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("ABX_FOCUS_REPORTS %q: want true or false", truncate(v)))
		}
		c.FocusReports = on
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// OrgIDs splits a comma-separated list and validates each id.
func OrgIDs(list string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if err := atlas.ValidateOrgID(id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// Not echoed: user info in a URL may be a credential.
		return fmt.Errorf("must be a plain base URL (scheme and host, no user info, query or fragment)")
	}
	return nil
}
