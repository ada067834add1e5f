package config

import (
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/secret"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		"ABX_BUCKET":     "my-bucket",
		"ABX_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:atlas-abc",
		"ABX_ORG_IDS":    " 5f1a2b3c4d5e6f7a8b9c0d1e, 6a1b2c3d4e5f6a7b8c9d0e1f ,",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Prefix != "atlas-billing" || c.BaseURL != "https://cloud.mongodb.com" || c.MaxPollAttempts != DefaultMaxPollAttempts {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.OrgIDs) != 2 || c.OrgIDs[1] != "6a1b2c3d4e5f6a7b8c9d0e1f" {
		t.Errorf("OrgIDs = %v", c.OrgIDs)
	}
	if c.Zone != nil || c.StrictWarnings {
		t.Errorf("Zone = %v, StrictWarnings = %v, want nil (UTC) and false", c.Zone, c.StrictWarnings)
	}
	c, err = FromEnv(env(map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_STRICT_WARNINGS": "true"}))
	if err != nil || !c.StrictWarnings {
		t.Errorf("ABX_STRICT_WARNINGS=true: StrictWarnings %v, %v", c.StrictWarnings, err)
	}
	c, err = FromEnv(env(map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_SCHEDULE_TIMEZONE": "Pacific/Auckland"}))
	if err != nil || c.Zone.String() != "Pacific/Auckland" {
		t.Errorf("ABX_SCHEDULE_TIMEZONE=Pacific/Auckland: Zone %v, %v", c.Zone, err)
	}
}

func TestFromEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{"ABX_BUCKET is not set", "ABX_SECRET_ARN is not set"}},
		{"bad org", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ORG_IDS": "../x"}, []string{"ABX_ORG_IDS"}},
		{"bad url", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "ftp://x"}, []string{"ABX_ATLAS_BASE_URL"}},
		{"url with credentials", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "https://u:p@x"}, []string{"without user info"}},
		{"remote http", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "http://cloud.mongodb.com"}, []string{"loopback"}},
		{"url with a path", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "https://cloud.mongodb.com/api/atlas/v2"}, []string{"host[:port] only"}},
		{"bad prefix", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_PREFIX": "a/../b"}, []string{"ABX_PREFIX"}},
		{"bad bucket", map[string]string{"ABX_BUCKET": "My_Lake", "ABX_SECRET_ARN": "s"}, []string{`ABX_BUCKET "My_Lake" is not a valid S3 bucket name`}},
		{"bucket with ..", map[string]string{"ABX_BUCKET": "my..lake", "ABX_SECRET_ARN": "s"}, []string{"not a valid S3 bucket name"}},
		{"no attempts", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_MAX_POLL_ATTEMPTS": "0"}, []string{"ABX_MAX_POLL_ATTEMPTS"}},
		{"too many attempts", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_MAX_POLL_ATTEMPTS": "1001"}, []string{"from 1 to 1000"}},
		{"focus neither true nor false", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_FOCUS_REPORTS": "maybe"}, []string{`ABX_FOCUS_REPORTS "maybe"`}},
		{"strict neither true nor false", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_STRICT_WARNINGS": "yes please"}, []string{`ABX_STRICT_WARNINGS "yes please"`}},
		{"unknown time zone", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_SCHEDULE_TIMEZONE": "Mars/Olympus"}, []string{`ABX_SCHEDULE_TIMEZONE: time zone "Mars/Olympus"`}},
		{"bad endpoint", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_S3_ENDPOINT": "s3.local"}, []string{"ABX_S3_ENDPOINT"}},
		{"a host name too long for DNS", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ATLAS_BASE_URL": "https://" + strings.Repeat("a", 5000) + ".com"}, []string{"at most 253"}},
		{"a long value is not echoed", map[string]string{"ABX_BUCKET": "lake", "ABX_SECRET_ARN": "s", "ABX_ORG_IDS": strings.Repeat("5f1a2b3c", 625)}, []string{"ABX_ORG_IDS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(env(tt.env))
			if export.Name(err) != export.ConfigInvalid {
				t.Fatalf("err = %v, want %s", err, export.ConfigInvalid)
			}
			if len(err.Error()) > 300 || strings.Contains(err.Error(), ":p@") {
				t.Errorf("error quotes too much: %q", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestLocal: the command-line tool's configuration, by the same rules, with --out and the Atlas
// CLI's variables.
func TestLocal(t *testing.T) {
	sa := map[string]string{secret.EnvClientID: "id", secret.EnvClientSecret: "sec"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name    string
		env     map[string]string
		out     string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{name: "a folder", env: sa, out: "/tmp/x y", check: func(t *testing.T, c Config) {
			if c.Dir != "/tmp/x y" || c.Bucket != "" || c.Prefix != "" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "the default folder", env: sa, check: func(t *testing.T, c Config) {
			if c.Dir != DefaultOutputDir || c.Bucket != "" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "ABX_BUCKET stands for --out", env: with(sa, EnvBucket, "lake"), check: func(t *testing.T, c Config) {
			if c.Dir != "" || c.Bucket != "lake" || c.Prefix != "atlas-billing" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "--out wins over ABX_BUCKET", env: with(sa, EnvBucket, "lake", EnvPrefix, "p"), out: "./here", check: func(t *testing.T, c Config) {
			if c.Dir != "./here" || c.Bucket != "" || c.Prefix != "" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "a bucket", env: sa, out: "s3://my-lake", check: func(t *testing.T, c Config) {
			if c.Bucket != "my-lake" || c.Prefix != "" || c.Dir != "" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "a bucket and prefix", env: sa, out: "s3://my.lake-1/a/b/", check: func(t *testing.T, c Config) {
			if c.Bucket != "my.lake-1" || c.Prefix != "a/b" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "MONGODB_ATLAS_BASE_URL first", env: with(sa, EnvAtlasBaseURL, "http://127.0.0.1:9", EnvBaseURL, "http://127.0.0.1:5"), check: func(t *testing.T, c Config) {
			if c.BaseURL != "http://127.0.0.1:9" {
				t.Errorf("BaseURL = %q", c.BaseURL)
			}
		}},
		{name: "then ABX_ATLAS_BASE_URL", env: with(sa, EnvBaseURL, "http://[::1]:5/"), check: func(t *testing.T, c Config) {
			if c.BaseURL != "http://[::1]:5/" {
				t.Errorf("BaseURL = %q", c.BaseURL)
			}
		}},
		{name: "service account", env: sa, check: func(t *testing.T, c Config) {
			if c.Credentials.ClientID != "id" || c.Credentials.ClientSecret != "sec" || c.Credentials.PublicKey != "" {
				t.Errorf("%v", c.Credentials)
			}
		}},
		{name: "both kinds: the service account wins", env: with(sa, secret.EnvPublicKey, "pub", secret.EnvPrivateKey, "priv"), check: func(t *testing.T, c Config) {
			if c.Credentials.Kind() != secret.KindServiceAccount || c.Credentials.PrivateKey != "" {
				t.Errorf("%v", c.Credentials)
			}
		}},
		{name: "a secret replaces the variables", env: with(sa, EnvSecretARN, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:atlas-AbCdEf"), check: func(t *testing.T, c Config) {
			if c.SecretARN == "" || c.Credentials.Kind() != "" {
				t.Errorf("%+v", c)
			}
		}},
		{name: "no credentials is no error here", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if c.Credentials.Kind() != "" {
				t.Errorf("%v", c.Credentials)
			}
		}},
		{name: "half a pair", env: map[string]string{secret.EnvClientID: "id"}, wantErr: secret.EnvClientSecret + " is not"},
		{name: "other half", env: map[string]string{secret.EnvPrivateKey: "priv"}, wantErr: secret.EnvPrivateKey + " is set but " + secret.EnvPublicKey},
		{name: "empty bucket", env: sa, out: "s3://", wantErr: "names no bucket"},
		{name: "bad bucket", env: sa, out: "s3://My_Lake/x", wantErr: "not a valid S3 bucket name"},
		{name: "short bucket", env: sa, out: "s3://ab", wantErr: "not a valid S3 bucket name"},
		{name: "prefix with ..", env: sa, out: "s3://lake/a/../b", wantErr: ".."},
		{name: "prefix with an empty segment", env: sa, out: "s3://lake/a//b", wantErr: "ABX_PREFIX"},
		{name: "other scheme", env: sa, out: "gs://lake/x", wantErr: "only s3://"},
		{name: "functions' bound on polls", env: with(sa, EnvMaxPolls, "10000"), wantErr: "from 1 to 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Local(env(tt.env), tt.out)
			if tt.wantErr != "" {
				if export.Name(err) != export.ConfigInvalid || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %s naming %q", err, export.ConfigInvalid, tt.wantErr)
				}
				if strings.Contains(err.Error(), "priv\"") || strings.Contains(err.Error(), "sec\"") {
					t.Fatalf("error names a secret value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
