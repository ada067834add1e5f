package secret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Distinctive values: no error or log text may contain any part of them.
const (
	clientID     = "mdb_sa_id_Qx7Zr2Lw9Vb4Np6T"
	clientSecret = "mdb_sa_sk_Jh3Kd8Ys5Fm1Gc0Ew2Ua9Ro7Pi4"
	publicKey    = "zkvwqhjx"
	privateKey   = "c0ffee11-dead-4bee-f00d-5ecre7ed9a1b"
	orgA         = "5f1a2b3c4d5e6f7a8b9c0d1e"
	orgB         = "6a7b8c9d0e1f2a3b4c5d6e7f"
)

var secretValues = []string{clientID, clientSecret, publicKey, privateKey}

// assertNoSecret fails if text contains any 6-character piece of a secret value.
func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, v := range secretValues {
		for i := 0; i+6 <= len(v); i++ {
			if piece := v[i : i+6]; strings.Contains(text, piece) {
				t.Errorf("%s contains %q, a piece of a secret value: %s", what, piece, text)
				return
			}
		}
	}
}

func js(v map[string]any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Credentials
		kind    string
		wantErr string // substring of the Secret.Invalid message
	}{
		{name: "service account", in: js(map[string]any{"clientId": clientID, "clientSecret": clientSecret}),
			want: Credentials{ClientID: clientID, ClientSecret: clientSecret}, kind: KindServiceAccount},
		{name: "API key with org list", in: js(map[string]any{"publicKey": publicKey, "privateKey": privateKey, "orgIds": []string{orgA, orgB}}),
			want: Credentials{PublicKey: publicKey, PrivateKey: privateKey, OrgIDs: []string{orgA, orgB}}, kind: KindAPIKey},
		{name: "org ids as a comma string, padded", in: js(map[string]any{"clientId": clientID, "clientSecret": clientSecret, "orgIds": " " + orgA + " , " + orgB + ","}),
			want: Credentials{ClientID: clientID, ClientSecret: clientSecret, OrgIDs: []string{orgA, orgB}}, kind: KindServiceAccount},
		{name: "values with a pasted newline", in: js(map[string]any{"clientId": clientID + "\n", "clientSecret": " " + clientSecret, "orgIds": []string{}}),
			want: Credentials{ClientID: clientID, ClientSecret: clientSecret}, kind: KindServiceAccount},
		{name: "both kinds complete: service account first", in: js(map[string]any{"clientId": clientID, "clientSecret": clientSecret, "publicKey": publicKey, "privateKey": privateKey}),
			want: Credentials{ClientID: clientID, ClientSecret: clientSecret, PublicKey: publicKey, PrivateKey: privateKey}, kind: KindServiceAccount},

		{name: "not JSON", in: "clientId=" + clientID + "&clientSecret=" + clientSecret, wantErr: "not a JSON object"},
		{name: "broken JSON", in: `{"clientId": ` + clientID + `, "clientSecret": "` + clientSecret + `"}`, wantErr: "syntax error at byte"},
		{name: "JSON array", in: `["` + clientID + `"]`, wantErr: "not a JSON object"},
		{name: "empty", in: "", wantErr: "not a JSON object"},
		{name: "no credentials", in: `{"orgIds":[]}`, wantErr: "neither"},
		{name: "client id only", in: js(map[string]any{"clientId": clientID}), wantErr: "only one of clientId and clientSecret"},
		{name: "private key only", in: js(map[string]any{"privateKey": privateKey}), wantErr: "only one of publicKey and privateKey"},
		{name: "service account plus half an API key", in: js(map[string]any{"clientId": clientID, "clientSecret": clientSecret, "publicKey": publicKey}), wantErr: "only one of publicKey and privateKey"},
		{name: "half of each", in: js(map[string]any{"clientId": clientID, "privateKey": privateKey}), wantErr: "only one of"},
		{name: "number instead of string", in: `{"clientId": 12345, "clientSecret": "` + clientSecret + `"}`, wantErr: `"clientId" must be a string`},
		{name: "bad org id", in: js(map[string]any{"publicKey": publicKey, "privateKey": privateKey, "orgIds": []string{orgA, "not-an-org"}}), wantErr: "orgIds[1]"},
		{name: "org ids of the wrong type", in: js(map[string]any{"publicKey": publicKey, "privateKey": privateKey, "orgIds": 5}), wantErr: `"orgIds" must be`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.wantErr != "" {
				var e *export.Error
				if !errors.As(err, &e) || e.Name != export.SecretInvalid || !strings.Contains(e.Msg, tt.wantErr) {
					t.Fatalf("Parse error = %v, want %s containing %q", err, export.SecretInvalid, tt.wantErr)
				}
				assertNoSecret(t, "error", err.Error())
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if fmt.Sprint(got.OrgIDs) != fmt.Sprint(tt.want.OrgIDs) || got.ClientID != tt.want.ClientID || got.ClientSecret != tt.want.ClientSecret ||
				got.PublicKey != tt.want.PublicKey || got.PrivateKey != tt.want.PrivateKey {
				t.Errorf("Parse = %#v (redacted); fields differ from the input", got)
			}
			if got.Kind() != tt.kind {
				t.Errorf("Kind = %q, want %q", got.Kind(), tt.kind)
			}
		})
	}
}

func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{ClientID: clientID, ClientSecret: clientSecret, PublicKey: publicKey, PrivateKey: privateKey, OrgIDs: []string{orgA}}
	wrapper := struct {
		Org   string
		Creds Credentials
	}{"x", c}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "creds", c, "wrapped", wrapper)
	payload, err := json.Marshal(wrapper)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":     c.String(),
		"%v":         fmt.Sprintf("%v", c),
		"%+v":        fmt.Sprintf("%+v", c),
		"%#v":        fmt.Sprintf("%#v", c),
		"%s":         fmt.Sprintf("%s", c),
		"%q":         fmt.Sprintf("%q", c),
		"nested %+v": fmt.Sprintf("%+v", wrapper),
		"nested %#v": fmt.Sprintf("%#v", wrapper),
		"slog JSON":  logs.String(),
		"json":       string(payload),
	}
	for name, out := range outputs {
		assertNoSecret(t, name, out)
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s = %s: no redaction marker", name, out)
		}
	}
}

type smEnv struct {
	sm  *testenv.SecretsManager
	arn string
}

func newSM(t *testing.T, value string) *smEnv {
	t.Helper()
	sm := testenv.NewSecretsManager(t)
	return &smEnv{sm: sm, arn: sm.Put("atlas-billing-export/atlas", value)}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var (
	saJSON  = js(map[string]any{"clientId": clientID, "clientSecret": clientSecret, "orgIds": []string{orgA}})
	keyJSON = js(map[string]any{"publicKey": publicKey, "privateKey": privateKey})
)

func TestStoreCachesAndRefreshes(t *testing.T) {
	e := newSM(t, saJSON)
	s := NewStore(e.sm.Client, e.arn)

	for i := range 2 {
		c, err := s.Get(ctx(t))
		if err != nil {
			t.Fatalf("Get #%d: %v", i+1, err)
		}
		if c.ClientID != clientID || c.ClientSecret != clientSecret || len(c.OrgIDs) != 1 || c.OrgIDs[0] != orgA {
			t.Errorf("Get #%d = wrong credentials (%v)", i+1, c)
		}
	}
	if n := e.sm.Calls(); n != 1 {
		t.Errorf("Calls = %d after two Gets, want 1 (cached)", n)
	}

	// Rotation to an API key: Get keeps the cached value, Refresh reads the new one.
	e.sm.Put("atlas-billing-export/atlas", keyJSON)
	if c, _ := s.Get(ctx(t)); c.Kind() != KindServiceAccount || e.sm.Calls() != 1 {
		t.Errorf("Get after rotation read again or changed (kind %s, calls %d)", c.Kind(), e.sm.Calls())
	}
	c, err := s.Refresh(ctx(t))
	if err != nil || c.PublicKey != publicKey || c.PrivateKey != privateKey || c.Kind() != KindAPIKey {
		t.Fatalf("Refresh after rotation = %v, %v", c, err)
	}
	if c, _ := s.Get(ctx(t)); c.PublicKey != publicKey || e.sm.Calls() != 2 {
		t.Errorf("Get after Refresh: kind %s, calls %d", c.Kind(), e.sm.Calls())
	}

	// A failed Refresh keeps the last good credentials.
	e.sm.Fail(1, "AccessDeniedException", 400)
	if _, err := s.Refresh(ctx(t)); export.Name(err) != export.SecretUnavailable {
		t.Errorf("Refresh with access denied = %v, want %s", err, export.SecretUnavailable)
	}
	if c, err := s.Get(ctx(t)); err != nil || c.PublicKey != publicKey {
		t.Errorf("Get after failed Refresh = %v, %v", c, err)
	}
}

func TestStoreConcurrentColdStart(t *testing.T) {
	e := newSM(t, saJSON)
	s := NewStore(e.sm.Client, e.arn)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			if c, err := s.Get(ctx(t)); err != nil || c.ClientID != clientID {
				errs <- fmt.Errorf("Get = %v, %v", c, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.sm.Calls(); n != 1 {
		t.Errorf("Calls = %d after 16 concurrent cold Gets, want 1", n)
	}
}

func TestStoreErrors(t *testing.T) {
	// A client for a port nothing listens on, without retries.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().String()
	l.Close()
	dead := secretsmanager.New(secretsmanager.Options{
		BaseEndpoint: aws.String("http://" + deadAddr), Region: "us-east-1", RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
	})

	tests := []struct {
		name    string
		value   string // the stored secret
		id      string // "": the stored secret's ARN
		api     GetSecretValueAPI
		fault   string
		want    string
		wantMsg string
	}{
		{name: "missing secret", value: saJSON, id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-abcdef", want: export.SecretUnavailable, wantMsg: "ResourceNotFoundException"},
		{name: "access denied", value: saJSON, fault: "AccessDeniedException", want: export.SecretUnavailable, wantMsg: "AccessDeniedException"},
		{name: "network", value: saJSON, api: dead, want: export.SecretUnavailable, wantMsg: deadAddr},
		{name: "no ARN configured", value: saJSON, id: "-", want: export.SecretUnavailable, wantMsg: "no secret ARN"},
		{name: "not JSON", value: "clientId: " + clientID + "\nclientSecret: " + clientSecret, want: export.SecretInvalid, wantMsg: "not a JSON object"},
		{name: "broken JSON", value: `{"clientId":"` + clientID + `","clientSecret":` + clientSecret + `}`, want: export.SecretInvalid, wantMsg: "syntax error"},
		{name: "missing fields", value: js(map[string]any{"clientId": clientID, "orgIds": []string{orgA}}), want: export.SecretInvalid, wantMsg: "only one of clientId and clientSecret"},
		{name: "mixed kinds", value: js(map[string]any{"clientSecret": clientSecret, "publicKey": publicKey}), want: export.SecretInvalid, wantMsg: "only one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSM(t, tt.value)
			api, id := tt.api, tt.id
			if api == nil {
				api = e.sm.Client
			}
			switch id {
			case "":
				id = e.arn
			case "-":
				id = ""
			}
			if tt.fault != "" {
				e.sm.Fail(1, tt.fault, 400)
			}
			_, err := NewStore(api, id).Get(ctx(t))
			var se *export.Error
			if !errors.As(err, &se) || se.Name != tt.want {
				t.Fatalf("Get error = %v, want %s", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q lacks %q", err, tt.wantMsg)
			}
			assertNoSecret(t, "error", err.Error())
		})
	}

	t.Run("SDK error stays reachable", func(t *testing.T) {
		e := newSM(t, saJSON)
		_, err := NewStore(e.sm.Client, "nope").Get(ctx(t))
		var nf *smtypes.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Errorf("errors.As(ResourceNotFoundException) = false for %v", err)
		}
	})

	t.Run("a failed read is not cached", func(t *testing.T) {
		e := newSM(t, `{"clientId":"`+clientID+`"}`)
		s := NewStore(e.sm.Client, e.arn)
		if _, err := s.Get(ctx(t)); err == nil {
			t.Fatal("Get of a half secret succeeded")
		}
		e.sm.Put("atlas-billing-export/atlas", saJSON)
		if c, err := s.Get(ctx(t)); err != nil || c.ClientSecret != clientSecret {
			t.Errorf("Get after fixing the secret = %v, %v", c, err)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		e := newSM(t, saJSON)
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		if _, err := NewStore(e.sm.Client, e.arn).Get(c); export.Name(err) != export.SecretUnavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("Get with a cancelled context = %v", err)
		}
	})
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Credentials
		wantErr string
	}{
		{name: "service account", env: map[string]string{EnvClientID: "id", EnvClientSecret: "sec"}, want: Credentials{ClientID: "id", ClientSecret: "sec"}},
		{name: "api key", env: map[string]string{EnvPublicKey: "pub", EnvPrivateKey: "priv"}, want: Credentials{PublicKey: "pub", PrivateKey: "priv"}},
		{name: "both: the service account wins", env: map[string]string{EnvClientID: "id", EnvClientSecret: "sec", EnvPublicKey: "pub", EnvPrivateKey: "priv"},
			want: Credentials{ClientID: "id", ClientSecret: "sec"}},
		{name: "none", env: map[string]string{}, want: Credentials{}},
		{name: "secret missing", env: map[string]string{EnvClientID: "id"}, wantErr: EnvClientID + " is set but " + EnvClientSecret + " is not"},
		{name: "public key missing", env: map[string]string{EnvPrivateKey: "priv"}, wantErr: EnvPrivateKey + " is set but " + EnvPublicKey + " is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got.ClientID+got.PublicKey, err, tt.want.ClientID+tt.want.PublicKey)
			}
		})
	}
}
