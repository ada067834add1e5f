package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const MiB = 1 << 20

var errBoom = errors.New("boom: upstream connection reset")

// data returns n deterministic pseudo-random bytes.
func data(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// reader hides bytes.Reader's Seek, like an HTTP response body.
func reader(b []byte) io.Reader { return struct{ io.Reader }{bytes.NewReader(b)} }

// store is what both sinks are.
type store interface {
	Bucket() string
	Create(ctx context.Context, key string, opt Options) (Upload, error)
	ETag(ctx context.Context, key string) (string, error)
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	Delete(ctx context.Context, key string) error
}

var _, _ store = (*S3)(nil), (*Dir)(nil)

// put stores body under key: Create, copy, Commit (Abort on error).
func put(ctx context.Context, s store, key string, body io.Reader, opt Options) (Object, error) {
	u, err := s.Create(ctx, key, opt)
	if err != nil {
		return Object{}, err
	}
	if _, err := io.Copy(u, body); err != nil {
		u.Abort()
		return Object{}, err
	}
	return u.Commit()
}

// csvData returns about n bytes of CSV-like lines.
func csvData(n int, seed uint64) []byte {
	var b bytes.Buffer
	r := rand.New(rand.NewPCG(seed, seed))
	for i := 0; b.Len() < n; i++ {
		b.WriteString("2024-06-01,65ab" + strconv.Itoa(i) + ",Atlas AWS Instance M10," + strconv.Itoa(r.IntN(100000)) + ".00\n")
	}
	return b.Bytes()[:n]
}

// recorder is an HTTP client that records each S3 request, and refuses
// those refuse matches as S3 refuses a request it is not allowed.
type recorder struct {
	next   *http.Client
	mu     sync.Mutex
	reqs   []request
	refuse func(request) bool
}

type request struct {
	Method, Key string
	Query       url.Values
	Header      http.Header
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	// Path style: /bucket/key...
	_, key, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
	q := request{req.Method, key, req.URL.Query(), req.Header.Clone()}
	r.reqs = append(r.reqs, q)
	refuse := r.refuse != nil && r.refuse(q)
	r.mu.Unlock()
	if refuse {
		if req.Body != nil {
			_, _ = io.Copy(io.Discard, req.Body)
			req.Body.Close()
		}
		const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`
		return &http.Response{
			StatusCode: http.StatusForbidden, Status: "403 Forbidden", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Content-Type": {"application/xml"}},
			Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
		}, nil
	}
	return r.next.Do(req)
}

// refusing makes the recorder refuse the requests f matches (nil: none).
func (r *recorder) refusing(f func(request) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = f
}

// op names the S3 operation of a recorded request.
func (q request) op() string {
	copySrc := q.Header.Get("X-Amz-Copy-Source") != ""
	switch {
	case q.Method == http.MethodPost && q.Query.Has("uploads"):
		return "CreateMultipartUpload"
	case q.Method == http.MethodPost && q.Query.Has("uploadId"):
		return "CompleteMultipartUpload"
	case q.Method == http.MethodDelete && q.Query.Has("uploadId"):
		return "AbortMultipartUpload"
	case q.Method == http.MethodDelete:
		return "DeleteObject"
	case q.Method == http.MethodPut && q.Query.Has("partNumber") && copySrc:
		return "UploadPartCopy"
	case q.Method == http.MethodPut && q.Query.Has("partNumber"):
		return "UploadPart"
	case q.Method == http.MethodPut && copySrc:
		return "CopyObject"
	case q.Method == http.MethodPut:
		return "PutObject"
	case q.Method == http.MethodHead && q.Key == "":
		return "HeadBucket"
	case q.Method == http.MethodHead:
		return "HeadObject"
	}
	return q.Method
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

func (r *recorder) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// count returns how many requests were of operation op.
func (r *recorder) count(op string) int {
	n := 0
	for _, q := range r.requests() {
		if q.op() == op {
			n++
		}
	}
	return n
}

func recordingClient(newClient func(...func(*s3.Options)) *s3.Client) (*s3.Client, *recorder) {
	rec := &recorder{next: &http.Client{}}
	return newClient(func(o *s3.Options) { o.HTTPClient = rec }), rec
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
