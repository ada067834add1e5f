// Package config reads the settings of an export once per start: the
// functions' from their environment, the command-line tool's from the same
// variables with its flags laid over them. One loader, so both front ends
// apply the same rules. Nothing here comes from an event: in particular the
// Atlas base URL is configuration only, so no event can send credentials to
// another host.
package config

import (
	"cmp"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/layout"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// The variables, as the template sets them for the functions.
const (
	EnvBucket     = "ABX_BUCKET"
	EnvPrefix     = "ABX_PREFIX"
	EnvSecretARN  = "ABX_SECRET_ARN"
	EnvBaseURL    = "ABX_ATLAS_BASE_URL"
	EnvOrgIDs     = "ABX_ORG_IDS"
	EnvKMSKeyID   = "ABX_KMS_KEY_ID"
	EnvMaxPolls   = "ABX_MAX_POLL_ATTEMPTS"
	EnvS3Endpoint = "ABX_S3_ENDPOINT"
	EnvFocus      = "ABX_FOCUS_REPORTS"
	EnvZone       = "ABX_SCHEDULE_TIMEZONE"
	EnvStrict     = "ABX_STRICT_WARNINGS"
	// EnvAtlasBaseURL is the Atlas CLI's name for the base URL, which the
	// command-line tool reads first.
	EnvAtlasBaseURL = "MONGODB_ATLAS_BASE_URL"
)

// DefaultMaxPollAttempts bounds a Cost Explorer query to about 37 minutes
// with the poll backoff (5 s growing to a 60 s cap).
const DefaultMaxPollAttempts = 40

// MaxPollAttempts is the most polls a query may be given: about 16 hours.
const MaxPollAttempts = 1000

// DefaultOutputDir is where the command-line tool writes when neither --out
// nor ABX_BUCKET says.
const DefaultOutputDir = "./out"

// Config is what an export needs.
type Config struct {
	Bucket    string // ABX_BUCKET
	Prefix    string // ABX_PREFIX, default "atlas-billing"
	Dir       string // the command-line tool's local folder instead of a bucket
	SecretARN string // ABX_SECRET_ARN
	// Credentials are the command-line tool's, from the Atlas CLI's
	// variables, when no secret is configured.
	Credentials     secret.Credentials
	BaseURL         string   // ABX_ATLAS_BASE_URL, default https://cloud.mongodb.com
	OrgIDs          []string // ABX_ORG_IDS, comma separated; else the secret's orgIds
	KMSKeyID        string   // ABX_KMS_KEY_ID: SSE-KMS with this key, else SSE-S3
	MaxPollAttempts int      // ABX_MAX_POLL_ATTEMPTS, 1 to MaxPollAttempts
	S3Endpoint      string   // ABX_S3_ENDPOINT: a path-style endpoint (tests, S3-compatible stores)
	FocusReports    bool     // ABX_FOCUS_REPORTS: fetch Atlas's FOCUS report of each invoice, default true
	// Zone is ABX_SCHEDULE_TIMEZONE, the schedules' time zone, whose months
	// previous-month and month-to-date are; nil is UTC.
	Zone *time.Location
	// StrictWarnings is ABX_STRICT_WARNINGS: an export that gave warnings
	// fails (Export.Warnings) once everything is stored; default false.
	StrictWarnings bool
}

// FromEnv reads a function's configuration through getenv (os.Getenv in
// Lambda): the bucket and the secret are required. A problem is a named
// Config.Invalid listing every bad setting.
func FromEnv(getenv func(string) string) (Config, error) { return load(getenv, nil) }

// Local reads the command-line tool's configuration: the same variables
// (getenv lays its flags over them), MONGODB_ATLAS_BASE_URL before
// ABX_ATLAS_BASE_URL, and without a secret the credentials in the Atlas
// CLI's variables (secret.FromEnv). out is where to write, --out:
// "s3://bucket[/prefix]" or a folder; empty, ABX_BUCKET and ABX_PREFIX say,
// else DefaultOutputDir.
func Local(getenv func(string) string, out string) (Config, error) { return load(getenv, &out) }

func load(getenv func(string) string, out *string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		Bucket:          get(EnvBucket),
		Prefix:          get(EnvPrefix),
		SecretARN:       get(EnvSecretARN),
		BaseURL:         get(EnvBaseURL),
		KMSKeyID:        get(EnvKMSKeyID),
		S3Endpoint:      get(EnvS3Endpoint),
		MaxPollAttempts: DefaultMaxPollAttempts,
		FocusReports:    true,
	}
	c.Prefix = cmp.Or(c.Prefix, layout.DefaultPrefix)
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if out != nil {
		if v := get(EnvAtlasBaseURL); v != "" {
			c.BaseURL = v
		}
		if err := c.setOut(*out); err != nil {
			problem("%v", err)
		}
		if c.SecretARN == "" {
			creds, err := secret.FromEnv(getenv)
			if err != nil {
				problem("%v", err)
			}
			c.Credentials = creds
		}
	} else {
		if c.Bucket == "" {
			problem("%s is not set", EnvBucket)
		}
		if c.SecretARN == "" {
			problem("%s is not set", EnvSecretARN)
		}
	}
	c.BaseURL = cmp.Or(c.BaseURL, atlas.DefaultBaseURL)
	if c.Bucket != "" && (!bucketName.MatchString(c.Bucket) || strings.Contains(c.Bucket, "..")) {
		problem("%s %.64q is not a valid S3 bucket name", EnvBucket, c.Bucket)
	}
	if _, err := layout.New(c.Prefix); err != nil {
		problem("%s: %v", EnvPrefix, err)
	}
	if strings.ContainsAny(c.SecretARN, " \t\r\n") {
		problem("%s %.64q: no spaces allowed", EnvSecretARN, c.SecretARN)
	}
	if err := checkBaseURL(c.BaseURL); err != nil {
		problem("%s: %v", EnvBaseURL, err)
	}
	if c.S3Endpoint != "" {
		if err := CheckEndpoint(c.S3Endpoint); err != nil {
			problem("%s: %v", EnvS3Endpoint, err)
		}
	}
	ids, err := OrgIDs(getenv(EnvOrgIDs))
	if err != nil {
		problem("%s: %v", EnvOrgIDs, err)
	}
	c.OrgIDs = ids
	if v := get(EnvMaxPolls); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPollAttempts {
			problem("%s %.64q: want a number from 1 to %d", EnvMaxPolls, v, MaxPollAttempts)
		}
		c.MaxPollAttempts = n
	}
	for _, b := range []struct {
		env string
		dst *bool
	}{{EnvFocus, &c.FocusReports}, {EnvStrict, &c.StrictWarnings}} {
		if v := get(b.env); v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				problem("%s %.64q: want true or false", b.env, v)
			}
			*b.dst = on
		}
	}
	if v := get(EnvZone); v != "" {
		zone, err := period.Zone(v)
		if err != nil {
			problem("%s: %v", EnvZone, err)
		}
		c.Zone = zone
	}
	if len(problems) > 0 {
		return Config{}, &export.Error{Name: export.ConfigInvalid, Msg: "configuration: " + strings.Join(problems, "; ")}
	}
	return c, nil
}

// setOut reads --out, else ABX_BUCKET, else DefaultOutputDir.
func (c *Config) setOut(out string) error {
	rest, s3 := strings.CutPrefix(out, "s3://")
	switch {
	case out == "" && c.Bucket != "":
		return nil
	case out == "":
		c.Bucket, c.Prefix, c.Dir = "", "", DefaultOutputDir
	case s3:
		c.Bucket, c.Prefix, _ = strings.Cut(rest, "/")
		c.Prefix = strings.Trim(c.Prefix, "/")
		if c.Bucket == "" {
			return fmt.Errorf("--out %.64q names no bucket", out)
		}
	case strings.Contains(out, "://"):
		return fmt.Errorf("--out %.64q: only s3:// URLs or local folders are supported", out)
	default:
		c.Bucket, c.Prefix, c.Dir = "", "", out
	}
	return nil
}

// bucketName is S3's rule for a bucket name: 3 to 63 lower-case letters,
// digits, dots and hyphens, a letter or digit at each end (and no "..").
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// OrgIDs splits a comma-separated list and checks each id.
func OrgIDs(list string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if err := atlas.ValidateOrgID(id); err != nil {
			return nil, fmt.Errorf("%.40q: %w", id, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// checkBaseURL applies the Atlas client's own rule (https, or http on a
// loopback host; scheme, host and port only) now, so a bad value is a
// Config.Invalid before any call. User info is refused first, without
// quoting it: it may be a password.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.User != nil:
		return fmt.Errorf("want https://host[:port], without user info")
	case len(u.Hostname()) > 253:
		return fmt.Errorf("a host name is at most 253 characters, not %d", len(u.Hostname()))
	}
	_, err = atlas.NewClient(atlas.WithBaseURL(s))
	return err
}

// CheckEndpoint checks a custom AWS service endpoint (S3, Step Functions):
// an http(s) URL with a host and no user info.
func CheckEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return fmt.Errorf("want http(s)://host[:port] without user info")
	}
	return nil
}
