// Package secret reads the Atlas credentials from AWS Secrets Manager.
// Neither its errors nor its log values ever contain a secret's value.
package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/pkg/atlas"
)

// Failures are an *export.Error named export.SecretUnavailable (not found,
// access denied, network) or export.SecretInvalid (not JSON, missing or
// mixed fields). Its message and cause never contain the secret.

func invalid(format string, a ...any) error {
	return &export.Error{Name: export.SecretInvalid, Msg: fmt.Sprintf(format, a...)}
}

// Kinds of credentials.
const (
	KindServiceAccount = "service-account" // OAuth 2.0 client credentials
	KindAPIKey         = "api-key"         // HTTP Digest
)

// Credentials are the Atlas credentials of the secret: a service account or
// an API key, and optionally the organizations to export.
type Credentials struct {
	ClientID, ClientSecret string
	PublicKey, PrivateKey  string
	OrgIDs                 []string
}

// Kind tells which credentials to use; a secret holding both prefers the
// service account, which Atlas recommends.
func (c Credentials) Kind() string {
	if c.ClientID != "" {
		return KindServiceAccount
	}
	if c.PublicKey != "" {
		return KindAPIKey
	}
	return ""
}

// String is redacted.
func (c Credentials) String() string {
	return fmt.Sprintf("secret.Credentials{kind: %s, orgIds: %d, values: [REDACTED]}", c.Kind(), len(c.OrgIDs))
}

// Format redacts every verb (fmt asks a Formatter before a GoStringer, so
// %#v too), and %v, %+v and %s of a struct holding Credentials do not
// print the fields.
func (c Credentials) Format(f fmt.State, verb rune) { fmt.Fprint(f, c.String()) }

// LogValue is redacted.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", c.Kind()), slog.Int("orgIds", len(c.OrgIDs)), slog.String("values", "[REDACTED]"))
}

// MarshalJSON is redacted, so credentials cannot end up in a state payload.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"kind": c.Kind(), "orgIds": len(c.OrgIDs), "values": "[REDACTED]"})
}

// The Atlas CLI's variables: the command-line tool reads its credentials
// from them when no secret is configured, so a shell set up for `atlas`
// works as is.
const (
	EnvClientID     = "MONGODB_ATLAS_CLIENT_ID"
	EnvClientSecret = "MONGODB_ATLAS_CLIENT_SECRET"
	EnvPublicKey    = "MONGODB_ATLAS_PUBLIC_API_KEY"
	EnvPrivateKey   = "MONGODB_ATLAS_PRIVATE_API_KEY"
)

// FromEnv reads credentials from the Atlas CLI's variables: a service
// account, or an API key (a service account wins when both are set: one
// source, never a mix). None set gives zero Credentials; half a pair is an
// error naming the missing variable.
func FromEnv(getenv func(string) string) (Credentials, error) {
	c := Credentials{
		ClientID: strings.TrimSpace(getenv(EnvClientID)), ClientSecret: strings.TrimSpace(getenv(EnvClientSecret)),
		PublicKey: strings.TrimSpace(getenv(EnvPublicKey)), PrivateKey: strings.TrimSpace(getenv(EnvPrivateKey)),
	}
	for _, p := range [][4]string{{EnvClientID, c.ClientID, EnvClientSecret, c.ClientSecret}, {EnvPublicKey, c.PublicKey, EnvPrivateKey, c.PrivateKey}} {
		switch {
		case p[1] != "" && p[3] == "":
			return Credentials{}, fmt.Errorf("%s is set but %s is not", p[0], p[2])
		case p[1] == "" && p[3] != "":
			return Credentials{}, fmt.Errorf("%s is set but %s is not", p[2], p[0])
		}
	}
	if c.ClientID != "" {
		c.PublicKey, c.PrivateKey = "", ""
	}
	return c, nil
}

// Parse reads the secret's JSON: {"clientId","clientSecret"} or
// {"publicKey","privateKey"} (a kind given only in part is an error), and
// optionally "orgIds", a list or a comma-separated string of 24-hex ids.
func Parse(b []byte) (Credentials, error) {
	var raw struct {
		ClientID     *string         `json:"clientId"`
		ClientSecret *string         `json:"clientSecret"`
		PublicKey    *string         `json:"publicKey"`
		PrivateKey   *string         `json:"privateKey"`
		OrgIDs       json.RawMessage `json:"orgIds"`
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return Credentials{}, invalid("secret is not a JSON object")
	}
	// The decoder's own errors may quote the secret's text: report only
	// where it went wrong.
	if err := json.Unmarshal(b, &raw); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Credentials{}, invalid("secret is not valid JSON (syntax error at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return Credentials{}, invalid("secret field %q must be a %s", typ.Field, "string")
		}
		return Credentials{}, invalid("secret is not valid JSON")
	}
	c := Credentials{
		ClientID: str(raw.ClientID), ClientSecret: str(raw.ClientSecret),
		PublicKey: str(raw.PublicKey), PrivateKey: str(raw.PrivateKey),
	}
	sa := c.ClientID != "" || c.ClientSecret != ""
	key := c.PublicKey != "" || c.PrivateKey != ""
	if sa && (c.ClientID == "" || c.ClientSecret == "") {
		return Credentials{}, invalid("secret has only one of clientId and clientSecret")
	}
	if key && (c.PublicKey == "" || c.PrivateKey == "") {
		return Credentials{}, invalid("secret has only one of publicKey and privateKey")
	}
	if !sa && !key {
		return Credentials{}, invalid("secret has neither clientId and clientSecret nor publicKey and privateKey")
	}
	ids, err := orgIDs(raw.OrgIDs)
	if err != nil {
		return Credentials{}, err
	}
	c.OrgIDs = ids
	return c, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

func orgIDs(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid("secret field \"orgIds\" must be a list of strings or a comma-separated string")
		}
		list = strings.Split(s, ",")
	}
	var ids []string
	for i, id := range list {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if atlas.ValidateOrgID(id) != nil {
			return nil, invalid("secret orgIds[%d] is not a 24-character lower-case hex id", i)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// GetSecretValueAPI is the part of the Secrets Manager client a Store uses.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Store reads one secret and keeps it for the life of the process (across
// warm Lambda invocations). It is safe for concurrent use; concurrent cold
// reads make a single request.
type Store struct {
	api GetSecretValueAPI
	arn string

	fetch chan struct{} // a one-slot lock around reads, that honours ctx
	mu    sync.RWMutex
	creds *Credentials
}

// NewStore returns a Store for the secret arn (an ARN or a name).
func NewStore(api GetSecretValueAPI, arn string) *Store {
	return &Store{api: api, arn: arn, fetch: make(chan struct{}, 1)}
}

// Get returns the cached credentials, reading the secret on first use.
func (s *Store) Get(ctx context.Context) (Credentials, error) {
	if c, ok := s.cached(); ok {
		return c, nil
	}
	return s.read(ctx, false)
}

// Refresh reads the secret again (after Atlas answered 401: the credentials
// may have been rotated) and caches the result. On error the previous
// credentials stay cached.
func (s *Store) Refresh(ctx context.Context) (Credentials, error) {
	return s.read(ctx, true)
}

func (s *Store) cached() (Credentials, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.creds == nil {
		return Credentials{}, false
	}
	return *s.creds, true
}

func (s *Store) read(ctx context.Context, force bool) (Credentials, error) {
	select {
	case s.fetch <- struct{}{}:
		defer func() { <-s.fetch }()
	case <-ctx.Done():
		return Credentials{}, &export.Error{Name: export.SecretUnavailable, Msg: "read secret " + s.arn, Err: ctx.Err()}
	}
	if !force {
		// Another caller may have read it while this one waited.
		if c, ok := s.cached(); ok {
			return c, nil
		}
	}
	c, err := s.load(ctx)
	if err != nil {
		return Credentials{}, err
	}
	s.mu.Lock()
	s.creds = &c
	s.mu.Unlock()
	return c, nil
}

func (s *Store) load(ctx context.Context) (Credentials, error) {
	if s.arn == "" {
		return Credentials{}, &export.Error{Name: export.SecretUnavailable, Msg: "no secret ARN configured"}
	}
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.arn)})
	if err != nil {
		// Service errors name the secret and the cause, never its value.
		return Credentials{}, &export.Error{Name: export.SecretUnavailable, Msg: "read secret " + s.arn, Err: err}
	}
	var b []byte
	switch {
	case out.SecretString != nil:
		b = []byte(*out.SecretString)
	case out.SecretBinary != nil:
		b = out.SecretBinary
	default:
		return Credentials{}, &export.Error{Name: export.SecretInvalid, Msg: "secret " + s.arn + " has no value"}
	}
	c, err := Parse(b)
	if err != nil {
		var e *export.Error
		if errors.As(err, &e) {
			return Credentials{}, &export.Error{Name: e.Name, Msg: e.Msg + " (" + s.arn + ")"}
		}
		return Credentials{}, err
	}
	return c, nil
}
