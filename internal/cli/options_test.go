package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestParseOutput(t *testing.T) {
	tests := []struct {
		in      string
		want    Output
		wantErr string
	}{
		{in: "./out", want: Output{Dir: "./out"}},
		{in: "/tmp/x y", want: Output{Dir: "/tmp/x y"}},
		{in: "s3://my-lake", want: Output{Bucket: "my-lake"}},
		{in: "s3://my-lake/", want: Output{Bucket: "my-lake"}},
		{in: "s3://my-lake/atlas-billing/", want: Output{Bucket: "my-lake", Prefix: "atlas-billing"}},
		{in: "s3://my.lake-1/a/b", want: Output{Bucket: "my.lake-1", Prefix: "a/b"}},
		{in: "", wantErr: "empty"},
		{in: "s3://My_Lake/x", wantErr: "not a valid S3 bucket name"},
		{in: "s3://ab", wantErr: "not a valid S3 bucket name"},
		{in: "s3://lake/a/../b", wantErr: ".. segment"},
		{in: "s3://lake/a//b", wantErr: "empty"},
		{in: "gs://lake/x", wantErr: "only s3://"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseOutput(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseOutput(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseOutput(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseBaseURL(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "https://cloud.mongodb.com", want: "https://cloud.mongodb.com"},
		{in: "https://cloud.mongodb.com/", want: "https://cloud.mongodb.com"},
		{in: "http://127.0.0.1:8089", want: "http://127.0.0.1:8089"},
		{in: "http://localhost:8089/", want: "http://localhost:8089"},
		{in: "http://[::1]:8089", want: "http://[::1]:8089"},
		{in: "http://cloud.mongodb.com", wantErr: "loopback"},
		{in: "https://cloud.mongodb.com/api/atlas/v2", wantErr: "no path"},
		{in: "https://user:pw@cloud.mongodb.com", wantErr: "no path, user"},
		{in: "ftp://cloud.mongodb.com", wantErr: "want https"},
		{in: "cloud.mongodb.com", wantErr: "want https"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBaseURL(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBaseURL(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Fatalf("error echoes the password: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseBaseURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestCredentialsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Credentials
		wantErr string
	}{
		{
			name: "service account",
			env:  map[string]string{EnvClientID: "id", EnvClientSecret: "sec"},
			want: Credentials{ClientID: "id", ClientSecret: "sec"},
		},
		{
			name: "api key",
			env:  map[string]string{EnvPublicKey: "pub", EnvPrivateKey: "priv"},
			want: Credentials{PublicKey: "pub", PrivateKey: "priv"},
		},
		{
			name: "both: the service account wins",
			env:  map[string]string{EnvClientID: "id", EnvClientSecret: "sec", EnvPublicKey: "pub", EnvPrivateKey: "priv"},
			want: Credentials{ClientID: "id", ClientSecret: "sec"},
		},
		{name: "secret missing", env: map[string]string{EnvClientID: "id"}, wantErr: EnvClientSecret + " is not"},
		{name: "public key missing", env: map[string]string{EnvPrivateKey: "priv"}, wantErr: EnvPublicKey + " is not"},
		{name: "none", env: map[string]string{}, wantErr: "no Atlas credentials: set " + EnvClientID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := credentialsFromEnv(envMap(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "priv") || strings.Contains(err.Error(), "sec\"") {
					t.Fatalf("error names a secret value: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestCredentialsRedacted(t *testing.T) {
	const secret = "s3cr3t-value-0123456789"
	for _, c := range []Credentials{
		{ClientID: "mdb_sa_id_x", ClientSecret: secret},
		{PublicKey: "pubkey", PrivateKey: secret},
	} {
		var logged bytes.Buffer
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "creds", c, "opt", RunOptions{Config: Config{Credentials: c}})
		js, err := json.Marshal(RunOptions{Config: Config{Credentials: c}})
		if err != nil {
			t.Fatal(err)
		}
		forms := map[string]string{
			"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprint(c),
			"options %+v": fmt.Sprintf("%+v", RunOptions{Config: Config{Credentials: c}}),
			"json":        string(js), "slog": logged.String(),
		}
		for form, s := range forms {
			if strings.Contains(s, secret) {
				t.Errorf("%s prints the secret: %s", form, s)
			}
		}
		if !strings.Contains(forms["%v"], "redacted") {
			t.Errorf("%%v = %q, want it to say redacted", forms["%v"])
		}
	}
}

func TestResolveConfigEnv(t *testing.T) {
	const org1, org2 = "5f1a2b3c4d5e6f7a8b9c0d1e", "65ab12cd34ef56ab78cd90ef"
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		abx     bool // outFromABX, as invoke
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "env fills what flags do not give",
			env: map[string]string{EnvOrgIDs: org1 + ", " + org2 + "," + org1, EnvBaseURL: "http://127.0.0.1:9",
				EnvClientID: "id", EnvClientSecret: "s", EnvMaxPolls: "7", EnvS3Endpoint: "http://127.0.0.1:7070", EnvKMSKeyID: "k"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.OrgIDs, ",") != org1+","+org2 || c.BaseURL != "http://127.0.0.1:9" || c.MaxPolls != 7 ||
					c.S3Endpoint != "http://127.0.0.1:7070" || c.KMSKeyID != "k" || c.Out.Dir != "./out" || c.Credentials.ClientID != "id" {
					t.Fatalf("config = %+v", c)
				}
			},
		},
		{
			name: "flags win over env",
			args: []string{"--org", org2, "--base-url", "https://example.com", "--max-polls", "3", "--out", "s3://lake/p"},
			env:  map[string]string{EnvOrgIDs: org1, EnvBaseURL: "http://127.0.0.1:9", EnvMaxPolls: "7", EnvClientID: "id", EnvClientSecret: "s"},
			check: func(t *testing.T, c Config) {
				if strings.Join(c.OrgIDs, ",") != org2 || c.BaseURL != "https://example.com" || c.MaxPolls != 3 || c.Out.Bucket != "lake" {
					t.Fatalf("config = %+v", c)
				}
			},
		},
		{
			name: "ABX base URL when the Atlas CLI one is unset",
			env:  map[string]string{EnvABXBaseURL: "http://127.0.0.1:5", EnvClientID: "id", EnvClientSecret: "s"},
			check: func(t *testing.T, c Config) {
				if c.BaseURL != "http://127.0.0.1:5" {
					t.Fatalf("BaseURL = %q", c.BaseURL)
				}
			},
		},
		{
			name: "ABX_BUCKET stands for --out in invoke",
			abx:  true,
			env:  map[string]string{EnvBucket: "lake", EnvClientID: "id", EnvClientSecret: "s"},
			check: func(t *testing.T, c Config) {
				if c.Out != (Output{Bucket: "lake", Prefix: DefaultPrefix}) {
					t.Fatalf("Out = %+v", c.Out)
				}
			},
		},
		{
			name: "a secret ARN replaces env credentials",
			args: []string{"--secret-arn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:atlas-AbCdEf"},
			env:  map[string]string{},
			check: func(t *testing.T, c Config) {
				if c.SecretARN == "" || !c.Credentials.IsZero() {
					t.Fatalf("config = %+v", c)
				}
			},
		},
		{name: "no credentials", env: map[string]string{}, wantErr: "no Atlas credentials"},
		{name: "bad org", args: []string{"--org", "xyz"}, env: map[string]string{}, wantErr: `--org "xyz"`},
		{name: "bad max polls env", env: map[string]string{EnvMaxPolls: "0", EnvClientID: "id", EnvClientSecret: "s"}, wantErr: EnvMaxPolls},
		{name: "remote http", args: []string{"--base-url", "http://example.com"}, env: map[string]string{}, wantErr: "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newTestFlagSet()
			var cf configFlags
			cf.define(fs, "out")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			c, err := cf.resolve(fs, envMap(tt.env), true, tt.abx)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
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

// fixedNow is mid-July 2024: previous-month is 2024-06.
var fixedNow = time.Date(2024, 7, 15, 10, 0, 0, 0, time.UTC)
