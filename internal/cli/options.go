package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultBaseURL is the Atlas Admin API host used when neither --base-url nor the environment names one.
const DefaultBaseURL = "https://cloud.mongodb.com"

// DefaultMaxPolls matches the functions' ABX_MAX_POLL_ATTEMPTS default.
const DefaultMaxPolls = 40

// DefaultPrefix is the functions' ABX_PREFIX default, used when ABX_BUCKET gives the output.
const DefaultPrefix = "atlas-billing"

// Environment variable names. The credential names are the Atlas CLI's, so a shell already set up for
// `atlas` works here too; the ABX_* names are the Lambda functions' configuration.
const (
	EnvClientID      = "MONGODB_ATLAS_CLIENT_ID"
	EnvClientSecret  = "MONGODB_ATLAS_CLIENT_SECRET"
	EnvPublicKey     = "MONGODB_ATLAS_PUBLIC_API_KEY"
	EnvPrivateKey    = "MONGODB_ATLAS_PRIVATE_API_KEY"
	EnvBaseURL       = "MONGODB_ATLAS_BASE_URL"
	EnvABXBaseURL    = "ABX_ATLAS_BASE_URL"
	EnvOrgIDs        = "ABX_ORG_IDS"
	EnvBucket        = "ABX_BUCKET"
	EnvPrefix        = "ABX_PREFIX"
	EnvSecretARN     = "ABX_SECRET_ARN"
	EnvKMSKeyID      = "ABX_KMS_KEY_ID"
	EnvMaxPolls      = "ABX_MAX_POLL_ATTEMPTS"
	EnvS3Endpoint    = "ABX_S3_ENDPOINT"
	EnvStateMachine  = "ABX_STATE_MACHINE_ARN"
	defaultOutputDir = "./out"
)

// Config is what run and invoke share: where to write, which Atlas host, which credentials. It mirrors
// the functions' ABX_* environment so a step invoked here behaves as it does in Lambda.
type Config struct {
	Out         Output
	BaseURL     string      // validated: https, or http on a loopback host only; no trailing slash
	SecretARN   string      // when set, credentials (and org ids, if none given) come from this secret
	Credentials Credentials // from the environment; zero when SecretARN is set
	OrgIDs      []string    // validated 24-hex, deduplicated; may be empty when the secret lists them
	KMSKeyID    string      // SSE-KMS key for S3 output; empty = SSE-S3
	S3Endpoint  string      // path-style custom endpoint (versitygw, MinIO); empty = AWS
	Region      string      // AWS region; empty = the SDK's default chain (AWS_REGION, profile)
	MaxPolls    int         // bound on usage poll attempts per org and month
}

// RunOptions are the parsed flags of `run`.
type RunOptions struct {
	Config
	// Exactly one of Period or From/To is set. Period is "YYYY-MM", "previous-month" or
	// "month-to-date"; From and To are "YYYY-MM", inclusive, From <= To. Use Months to resolve.
	Period   string
	From, To string

	Services       []string // Cost Explorer service names, as given (pkg/atlas validates the enum)
	Projects       []string // 24-hex
	Clusters       []string // 24-hex
	GroupBy        string   // "", organizations, projects, clusters or services
	IncludePending bool     // also export the current month's pending invoice
	Concurrency    int      // org-months exported at once (the state machine's Map runs 2)
	Focus          bool     // also fetch Atlas's FOCUS report of each closed invoice
}

// InvokeOptions are the parsed flags of `invoke` (the event carries the rest).
type InvokeOptions struct {
	Config
}

// Output is where exported files go: a local folder (Dir) or an S3 bucket and key prefix.
type Output struct {
	Dir    string // local folder; empty when Bucket is set
	Bucket string
	Prefix string // key prefix in Bucket, without leading or trailing slash; may be empty
}

func (o Output) String() string {
	if o.Bucket == "" {
		return o.Dir
	}
	if o.Prefix == "" {
		return "s3://" + o.Bucket
	}
	return "s3://" + o.Bucket + "/" + o.Prefix
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseOutput reads --out: "s3://bucket[/prefix]" or a local folder.
func ParseOutput(s string) (Output, error) {
	if s == "" {
		return Output{}, fmt.Errorf("--out is empty")
	}
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		if strings.Contains(s, "://") {
			return Output{}, fmt.Errorf("--out %q: only s3:// URLs or local folders are supported", s)
		}
		return Output{Dir: s}, nil
	}
	bucket, prefix, _ := strings.Cut(rest, "/")
	if !bucketRE.MatchString(bucket) || strings.Contains(bucket, "..") {
		return Output{}, fmt.Errorf("--out %q: %q is not a valid S3 bucket name", s, bucket)
	}
	prefix = strings.Trim(prefix, "/")
	if err := validatePrefix(prefix); err != nil {
		return Output{}, fmt.Errorf("--out %q: %w", s, err)
	}
	return Output{Bucket: bucket, Prefix: prefix}, nil
}

func validatePrefix(p string) error {
	for _, seg := range strings.Split(p, "/") {
		if p != "" && (seg == "" || seg == "." || seg == "..") {
			return fmt.Errorf("prefix %q has an empty, . or .. segment", p)
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("prefix has a control character")
		}
	}
	return nil
}

// Credentials are Atlas credentials from the environment: a service account (ClientID/ClientSecret)
// or an API key (PublicKey/PrivateKey). Every printing form redacts the secret halves.
type Credentials struct {
	ClientID, ClientSecret string
	PublicKey, PrivateKey  string
}

// ServiceAccount reports whether these are service account credentials (preferred when both are set).
func (c Credentials) ServiceAccount() bool { return c.ClientID != "" }

// IsZero reports whether no credentials are set.
func (c Credentials) IsZero() bool { return c == Credentials{} }

func (c Credentials) String() string {
	switch {
	case c.ClientID != "":
		return "service account " + c.ClientID + " (secret redacted)"
	case c.PublicKey != "":
		return "API key " + c.PublicKey + " (private key redacted)"
	}
	return "no credentials"
}

// GoString keeps %#v from printing the secrets.
func (c Credentials) GoString() string { return "cli.Credentials{" + c.String() + "}" }

// LogValue keeps slog from printing the secrets.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON keeps the secrets out of any JSON the options end up in.
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// credentialsFromEnv reads the Atlas CLI's variables. A half-set pair is an error naming the missing one.
func credentialsFromEnv(getenv func(string) string) (Credentials, error) {
	c := Credentials{
		ClientID: getenv(EnvClientID), ClientSecret: getenv(EnvClientSecret),
		PublicKey: getenv(EnvPublicKey), PrivateKey: getenv(EnvPrivateKey),
	}
	if err := pairSet(EnvClientID, c.ClientID, EnvClientSecret, c.ClientSecret); err != nil {
		return Credentials{}, err
	}
	if err := pairSet(EnvPublicKey, c.PublicKey, EnvPrivateKey, c.PrivateKey); err != nil {
		return Credentials{}, err
	}
	if c.ClientID != "" {
		// A service account wins when both are set: one source, never a mix.
		c.PublicKey, c.PrivateKey = "", ""
	}
	if c.IsZero() {
		return Credentials{}, fmt.Errorf("no Atlas credentials: set %s and %s (service account) or %s and %s (API key), or pass --secret-arn",
			EnvClientID, EnvClientSecret, EnvPublicKey, EnvPrivateKey)
	}
	return c, nil
}

func pairSet(nameA, a, nameB, b string) error {
	switch {
	case a != "" && b == "":
		return fmt.Errorf("%s is set but %s is not", nameA, nameB)
	case a == "" && b != "":
		return fmt.Errorf("%s is set but %s is not", nameB, nameA)
	}
	return nil
}

// ParseBaseURL validates the Atlas base URL. Credentials travel to this host, so plain http is allowed
// only for a loopback address (the simulator).
func ParseBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url's error repeats the input, which may hold a password: keep it out.
		return "", fmt.Errorf("base URL is not a URL; want https://host[:port]")
	}
	shown := u.Redacted()
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("base URL %q: want https://host[:port]", shown)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("base URL %q: want only scheme, host and port (no path, user or query)", shown)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("base URL %q: http is allowed only for a loopback host; use https", shown)
	}
	return u.Scheme + "://" + u.Host, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var hex24 = regexp.MustCompile(`^[a-f0-9]{24}$`)

// validateIDs checks 24-hex ids (orgs, projects, clusters) and drops duplicates, keeping order.
func validateIDs(flagName string, ids []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		if !hex24.MatchString(id) {
			return nil, fmt.Errorf("%s %q: want 24 lowercase hex characters", flagName, id)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// splitList splits a comma list, trimming spaces and dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func parsePositive(name, s string, max int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%s %q: want a whole number from 1 to %d", name, s, max)
	}
	return n, nil
}

var groupBys = []string{"organizations", "projects", "clusters", "services"}

func validGroupBy(g string) bool {
	if g == "" {
		return true
	}
	for _, v := range groupBys {
		if g == v {
			return true
		}
	}
	return false
}

// ParseEndpoint validates a custom AWS service endpoint (S3, Step Functions): an http(s) URL with a host.
func ParseEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
		return "", fmt.Errorf("endpoint: want http(s)://host[:port] without user info")
	}
	return strings.TrimRight(s, "/"), nil
}
