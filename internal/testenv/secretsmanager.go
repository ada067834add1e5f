package testenv

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretsManager is a local endpoint speaking the Secrets Manager JSON 1.1
// protocol (POST /, X-Amz-Target: secretsmanager.<Operation>), enough for the
// real SDK client: GetSecretValue, CreateSecret, PutSecretValue, DeleteSecret.
// Client is that SDK client, pointed at it with static credentials.
type SecretsManager struct {
	Endpoint  string
	AccessKey string
	Client    *secretsmanager.Client

	mu      sync.Mutex
	secrets map[string]*smSecret // by name
	calls   int
	faults  []smFault
}

type smSecret struct {
	name, arn         string
	current, previous string            // version ids
	values            map[string]string // version id -> value
	created           time.Time
}

type smFault struct {
	typ    string
	status int
}

const smAccount = "123456789012"

// NewSecretsManager starts the endpoint on 127.0.0.1 and stops it in t.Cleanup.
func NewSecretsManager(t testing.TB) *SecretsManager {
	t.Helper()
	m := &SecretsManager{AccessKey: "abx" + randomHex(8), secrets: map[string]*smSecret{}}
	srv := httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(srv.Close)
	m.Endpoint = srv.URL
	m.Client = secretsmanager.New(secretsmanager.Options{
		BaseEndpoint: aws.String(srv.URL),
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, randomHex(20), ""),
		// The SDK's retry policy as in production, with short pauses so that
		// tests injecting 5xx faults stay fast.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.NewExponentialJitterBackoff(20 * time.Millisecond)
		}),
	})
	return m
}

// Put creates the secret, or rotates it: a new version with the new value
// becomes AWSCURRENT. It returns the secret's ARN.
func (m *SecretsManager) Put(name, value string) (arn string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.put(name, value, "").arn
}

// Delete removes the secret at once (as ForceDeleteWithoutRecovery does).
func (m *SecretsManager) Delete(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.lookup(name); s != nil {
		delete(m.secrets, s.name)
	}
}

// Calls is the number of GetSecretValue requests received, failed ones included.
func (m *SecretsManager) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// Fail makes the next n requests (any operation) answer the AWS JSON error
// errType (for example "AccessDeniedException", "InternalServiceError") with
// the given HTTP status.
func (m *SecretsManager) Fail(n int, errType string, status int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for range n {
		m.faults = append(m.faults, smFault{errType, status})
	}
}

func (m *SecretsManager) put(name, value, token string) *smSecret {
	s := m.lookup(name)
	if s == nil {
		s = &smSecret{
			name:    name,
			arn:     fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s", Region, smAccount, name, randomHex(3)),
			values:  map[string]string{},
			created: time.Now(),
		}
		m.secrets[name] = s
	}
	token = cmp.Or(token, randomHex(16))
	s.values[token] = value
	s.previous, s.current = s.current, token
	return s
}

// lookup finds a secret by name or full ARN.
func (m *SecretsManager) lookup(id string) *smSecret {
	if s, ok := m.secrets[id]; ok {
		return s
	}
	for _, s := range m.secrets {
		if s.arn == id {
			return s
		}
	}
	return nil
}

type smError struct {
	status int
	typ    string
	msg    string
}

func (m *SecretsManager) serve(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "secretsmanager.")
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		writeSMError(w, smError{http.StatusNotFound, "UnknownOperationException", r.Method + " " + r.URL.Path})
		return
	case !ok:
		writeSMError(w, smError{http.StatusBadRequest, "UnknownOperationException", "missing or foreign X-Amz-Target"})
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1"):
		writeSMError(w, smError{http.StatusBadRequest, "SerializationException", "Content-Type must be application/x-amz-json-1.1"})
		return
	}
	// A SigV4 signature for this service with our access key: proves the
	// request came from a configured SDK client (the signature itself is
	// not recomputed).
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+m.AccessKey+"/") || !strings.Contains(auth, "/"+Region+"/secretsmanager/aws4_request") {
		writeSMError(w, smError{http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid."})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeSMError(w, smError{http.StatusBadRequest, "SerializationException", err.Error()})
		return
	}
	var in struct {
		SecretId, Name, SecretString, ClientRequestToken, VersionId, VersionStage string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeSMError(w, smError{http.StatusBadRequest, "SerializationException", "body is not JSON"})
		return
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if op == "GetSecretValue" {
		m.calls++
	}
	if len(m.faults) > 0 {
		f := m.faults[0]
		m.faults = m.faults[1:]
		writeSMError(w, smError{f.status, f.typ, "injected fault"})
		return
	}
	out, e := m.do(op, in.SecretId, in.Name, in.SecretString, in.ClientRequestToken, in.VersionId, in.VersionStage)
	if e != nil {
		writeSMError(w, *e)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

var errNotFound = &smError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret."}

func (m *SecretsManager) do(op, id, name, value, token, versionID, stage string) (map[string]any, *smError) {
	switch op {
	case "GetSecretValue":
		s := m.lookup(id)
		if s == nil {
			return nil, errNotFound
		}
		v := versionID
		switch {
		case v != "":
		case stage == "" || stage == "AWSCURRENT":
			v = s.current
		case stage == "AWSPREVIOUS" && s.previous != "":
			v = s.previous
		default:
			return nil, &smError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: " + stage}
		}
		val, ok := s.values[v]
		if !ok {
			return nil, &smError{http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: " + v}
		}
		stages := []string{}
		if v == s.current {
			stages = append(stages, "AWSCURRENT")
		} else if v == s.previous {
			stages = append(stages, "AWSPREVIOUS")
		}
		return map[string]any{
			"ARN": s.arn, "Name": s.name, "SecretString": val, "VersionId": v,
			"VersionStages": stages, "CreatedDate": float64(s.created.UnixMilli()) / 1000,
		}, nil
	case "CreateSecret":
		if name == "" {
			return nil, &smError{http.StatusBadRequest, "InvalidParameterException", "Name is required"}
		}
		if m.lookup(name) != nil {
			return nil, &smError{http.StatusBadRequest, "ResourceExistsException", "The operation failed because the secret " + name + " already exists."}
		}
		s := m.put(name, value, token)
		return map[string]any{"ARN": s.arn, "Name": s.name, "VersionId": s.current}, nil
	case "PutSecretValue":
		s := m.lookup(id)
		if s == nil {
			return nil, errNotFound
		}
		m.put(s.name, value, token)
		return map[string]any{"ARN": s.arn, "Name": s.name, "VersionId": s.current, "VersionStages": []string{"AWSCURRENT"}}, nil
	case "DeleteSecret":
		s := m.lookup(id)
		if s == nil {
			return nil, errNotFound
		}
		delete(m.secrets, s.name)
		return map[string]any{"ARN": s.arn, "Name": s.name, "DeletionDate": float64(time.Now().Unix())}, nil
	}
	return nil, &smError{http.StatusBadRequest, "UnknownOperationException", "operation " + op + " is not supported here"}
}

// writeSMError answers in the AWS JSON 1.1 error format.
func writeSMError(w http.ResponseWriter, e smError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.typ)
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}
