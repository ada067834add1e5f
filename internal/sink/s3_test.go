package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

type s3Env struct {
	gw     *testenv.S3
	bucket string
	rec    *recorder
	sink   *S3
}

func newS3Env(t *testing.T, opt S3Options) *s3Env {
	t.Helper()
	gw := testenv.Versity(t)
	client, rec := recordingClient(gw.NewClient)
	bucket := gw.Bucket(t)
	return &s3Env{gw: gw, bucket: bucket, rec: rec, sink: NewS3(client, bucket, opt)}
}

// clean asserts what every upload must leave behind, committed or not: no
// open multipart upload.
func (e *s3Env) clean(t *testing.T) {
	t.Helper()
	if n := e.gw.OpenMultipartUploads(t, e.bucket); n != 0 {
		t.Errorf("%d multipart uploads left open", n)
	}
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestS3RoundTrip(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	tests := []struct {
		name      string
		size      int
		wantParts int // UploadPart requests (0: a single PutObject)
	}{
		{"empty", 0, 0},
		{"small", 3000, 0},
		{"one part exactly", 5 * MiB, 0},
		{"12 MiB in 5 MiB parts", 12 * MiB, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := csvData(tt.size, uint64(i))
			key := "atlas-billing/invoices/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-06/invoice_id=" + strconv.Itoa(i) + ".csv"
			meta := map[string]string{"org-id": "5f1a2b3c4d5e6f7a8b9c0d1e", "billing-month": "2024-06"}
			e.rec.reset()
			obj, err := put(testCtx(t), e.sink, key, reader(body), Options{ContentType: "text/csv", Metadata: meta})
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			h := e.gw.Head(t, e.bucket, key)
			want := Object{Bucket: e.bucket, Key: key, Bytes: int64(tt.size), SHA256: hexSHA(body), ETag: aws.ToString(h.ETag)}
			if obj != want || obj.ETag == "" {
				t.Errorf("Object = %+v, want %+v", obj, want)
			}
			if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, body) {
				t.Errorf("stored %d bytes differ from the %d sent", len(got), len(body))
			}
			if !maps.Equal(h.Metadata, meta) {
				t.Errorf("metadata = %v, want %v", h.Metadata, meta)
			}
			if ct := aws.ToString(h.ContentType); ct != "text/csv" {
				t.Errorf("ContentType = %q", ct)
			}
			if etag, err := e.sink.ETag(testCtx(t), key); err != nil || etag != obj.ETag {
				t.Errorf("ETag = %q, %v; want the commit's %q", etag, err, obj.ETag)
			}
			ops := map[string]int{}
			for _, q := range e.rec.requests() {
				ops[q.op()]++
			}
			want1 := map[string]int{"PutObject": 1}
			if tt.wantParts > 0 {
				want1 = map[string]int{"CreateMultipartUpload": 1, "UploadPart": tt.wantParts, "CompleteMultipartUpload": 1}
			}
			delete(ops, "HeadObject") // the test's own ETag
			delete(ops, "HeadBucket") // the sink's region check, once
			if !maps.Equal(ops, want1) {
				t.Errorf("requests %v, want %v: straight to the key, no copy", ops, want1)
			}
			e.clean(t)
		})
	}
}

func TestS3Encryption(t *testing.T) {
	tests := []struct {
		name, kmsKey, wantSSE string
	}{
		{"SSE-S3 by default", "", "AES256"},
		{"SSE-KMS with a key", "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws:kms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newS3Env(t, S3Options{KMSKeyID: tt.kmsKey, PartSize: 5 * MiB})
			for _, size := range []int{6 * MiB, 10} {
				if _, err := put(testCtx(t), e.sink, "k"+strconv.Itoa(size)+".csv", reader(data(size, 1)), Options{}); err != nil {
					t.Fatal(err)
				}
			}
			// Every request that creates an object asks for encryption.
			writes := 0
			for _, q := range e.rec.requests() {
				switch q.op() {
				case "CreateMultipartUpload", "PutObject":
					writes++
					if got := q.Header.Get("X-Amz-Server-Side-Encryption"); got != tt.wantSSE {
						t.Errorf("%s %s: SSE %q, want %q", q.op(), q.Key, got, tt.wantSSE)
					}
					if got := q.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); got != tt.kmsKey {
						t.Errorf("%s %s: KMS key %q, want %q", q.op(), q.Key, got, tt.kmsKey)
					}
				}
			}
			if writes != 2 {
				t.Errorf("%d object-creating requests, want 2", writes)
			}
		})
	}
}

// Until Commit, the key holds the previous object, however many parts went
// out; Commit puts the new one there whole; Abort leaves the old one and no
// open upload. Whatever stopped the writes.
func TestS3CommitOrAbort(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	old := []byte("the previous, complete export\n")
	body := data(16*MiB, 3)
	tests := []struct {
		name     string
		written  int // bytes written before the decision
		existing bool
		commit   bool
	}{
		{"new key, small, aborted", 1 * MiB, false, false},
		{"new key, parts sent, aborted", 12 * MiB, false, false},
		{"over an object, parts sent, aborted", 11 * MiB, true, false},
		{"over an object, parts sent, committed", 16 * MiB, true, true},
		{"over an object, small, committed", 1 * MiB, true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			key := "exports/" + strconv.Itoa(i) + ".csv"
			if tt.existing {
				if _, err := put(ctx, e.sink, key, bytes.NewReader(old), Options{}); err != nil {
					t.Fatal(err)
				}
			}
			u, err := e.sink.Create(ctx, key, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(u, reader(body[:tt.written])); err != nil {
				t.Fatal(err)
			}
			if sha, n := u.Sum(); n != int64(tt.written) || sha != hexSHA(body[:tt.written]) {
				t.Errorf("Sum = %s, %d; want the bytes written", sha, n)
			}
			// Nothing new under the key yet.
			if tt.existing {
				if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, old) {
					t.Errorf("before Commit the key holds %d bytes, want the previous object", len(got))
				}
			} else if h := e.gw.Head(t, e.bucket, key); h != nil {
				t.Errorf("before Commit the key holds %d bytes", aws.ToInt64(h.ContentLength))
			}
			want := old
			if tt.commit {
				if _, err := u.Commit(); err != nil {
					t.Fatal(err)
				}
				want = body[:tt.written]
			} else {
				u.Abort()
				u.Abort() // twice is fine
			}
			if tt.existing || tt.commit {
				if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, want) {
					t.Errorf("the key holds %d bytes, want %d", len(got), len(want))
				}
			} else if h := e.gw.Head(t, e.bucket, key); h != nil {
				t.Errorf("the key holds %d bytes after Abort", aws.ToInt64(h.ContentLength))
			}
			if _, err := u.Write([]byte("x")); err == nil {
				t.Error("Write after the upload finished succeeded")
			}
			e.clean(t)
		})
	}
}

// An upload that S3 refuses part of fails in Commit, which aborts it: the
// key keeps its previous object and no multipart upload is left open.
// (The sink's own abort: no other code aborts its uploads.)
func TestS3RefusedUploadAborted(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	old := []byte("the previous, complete export\n")
	body := data(12*MiB, 6)
	for i, tc := range []struct {
		name   string
		refuse func(request) bool
		size   int
		want   string // in the error
		aborts int
	}{
		{"a part refused", func(q request) bool { return q.op() == "UploadPart" && q.Query.Get("partNumber") == "2" }, 12 * MiB, "upload part 2", 1},
		{"the last part refused", func(q request) bool { return q.op() == "UploadPart" && q.Query.Get("partNumber") == "3" }, 12 * MiB, "upload part 3", 1},
		{"complete refused", func(q request) bool { return q.op() == "CompleteMultipartUpload" }, 12 * MiB, "complete the upload", 1},
		{"put refused", func(q request) bool { return q.op() == "PutObject" }, 1 * MiB, "put", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			key := "refused/" + strconv.Itoa(i) + ".csv"
			if _, err := put(ctx, e.sink, key, bytes.NewReader(old), Options{}); err != nil {
				t.Fatal(err)
			}
			e.rec.refusing(tc.refuse)
			t.Cleanup(func() { e.rec.refusing(nil) })
			e.rec.reset()
			_, err := put(ctx, e.sink, key, reader(body[:tc.size]), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "AccessDenied") {
				t.Fatalf("error = %v, want S3's AccessDenied for %q", err, tc.want)
			}
			e.rec.refusing(nil)
			if n := e.rec.count("AbortMultipartUpload"); n != tc.aborts {
				t.Errorf("%d AbortMultipartUpload requests, want %d", n, tc.aborts)
			}
			if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, old) {
				t.Errorf("the key holds %d bytes, want the previous object", len(got))
			}
			e.clean(t)
		})
	}
}

// A Write that fails (here S3 refuses to start the multipart upload) fails
// the upload: Write takes less than all it was given, as io.Writer says,
// and a Commit after it returns the error rather than storing the part of
// the body that came before.
func TestS3FailedWriteFailsCommit(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB})
	ctx := testCtx(t)
	old := []byte("the previous, complete export\n")
	if _, err := put(ctx, e.sink, "refused-start.csv", bytes.NewReader(old), Options{}); err != nil {
		t.Fatal(err)
	}
	e.rec.refusing(func(q request) bool { return q.op() == "CreateMultipartUpload" })
	t.Cleanup(func() { e.rec.refusing(nil) })
	u, err := e.sink.Create(ctx, "refused-start.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	body := data(12*MiB, 9)
	if n, err := u.Write(body); err == nil || !strings.Contains(err.Error(), "AccessDenied") || n < 0 || n >= len(body) {
		t.Fatalf("Write = %d, %v; want fewer than %d bytes taken and S3's AccessDenied", n, err, len(body))
	}
	if obj, err := u.Commit(); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("Commit after a failed Write = %+v, %v; want the Write's error", obj, err)
	}
	e.rec.refusing(nil)
	if got := e.gw.Get(t, e.bucket, "refused-start.csv"); !bytes.Equal(got, old) {
		t.Errorf("the key holds %d bytes, want the previous object", len(got))
	}
	e.clean(t)
}

// An abort S3 refuses is logged as a warning naming the key and the upload
// (the bucket's lifecycle rule sweeps it), to the sink's logger or, without
// one, slog's default.
func TestS3AbortRefusedIsLogged(t *testing.T) {
	for _, withLogger := range []bool{true, false} {
		t.Run(fmt.Sprintf("logger %v", withLogger), func(t *testing.T) {
			var logs testenv.Buffer
			opt := S3Options{PartSize: 5 * MiB}
			if withLogger {
				opt.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			}
			e := newS3Env(t, opt)
			e.rec.refusing(func(q request) bool { return q.op() == "AbortMultipartUpload" })
			u, err := e.sink.Create(testCtx(t), "refused.csv", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(u, reader(data(6*MiB, 7))); err != nil {
				t.Fatal(err)
			}
			u.Abort()
			if n := e.rec.count("AbortMultipartUpload"); n != 1 {
				t.Errorf("%d AbortMultipartUpload requests, want 1", n)
			}
			if !withLogger {
				return // slog's default logger took it, without a panic
			}
			out := logs.String()
			if !strings.Contains(out, `"msg":"sink: multipart upload not aborted"`) || !strings.Contains(out, `"key":"refused.csv"`) ||
				!strings.Contains(out, `"uploadId":"`) || !strings.Contains(out, "AccessDenied") {
				t.Errorf("log = %s, want a warning naming the key, the upload and S3's error", out)
			}
		})
	}
}

// Without s3:ListBucket S3 answers 403 for a missing key: ETag, Open and
// OpenFile take it as absent.
func TestS3ForbiddenIsAbsent(t *testing.T) {
	e := newS3Env(t, S3Options{})
	ctx := testCtx(t)
	if _, err := put(ctx, e.sink, "there.csv", strings.NewReader("a\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	e.rec.refusing(func(q request) bool { return q.op() == "HeadObject" || q.Method == "GET" })
	if etag, err := e.sink.ETag(ctx, "there.csv"); etag != "" || err != nil {
		t.Errorf("ETag = %q, %v; want none", etag, err)
	}
	if _, err := e.sink.Open(ctx, "there.csv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open: %v, want ErrNotFound", err)
	}
	if _, err := e.sink.OpenFile(ctx, "there.csv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenFile: %v, want ErrNotFound", err)
	}
}

// One Write of several parts at once (a caller with a large buffer) is
// split into parts like many small ones.
func TestS3OneLargeWrite(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	body := data(12*MiB, 8)
	u, err := e.sink.Create(testCtx(t), "large.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := u.Write(body); n != len(body) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	obj, err := u.Commit()
	if err != nil || obj.Bytes != int64(len(body)) || obj.SHA256 != hexSHA(body) {
		t.Fatalf("Commit = %+v, %v", obj, err)
	}
	if got := e.gw.Get(t, e.bucket, "large.csv"); !bytes.Equal(got, body) {
		t.Errorf("stored %d bytes differ from the %d written", len(got), len(body))
	}
	if n := e.rec.count("UploadPart"); n != 3 {
		t.Errorf("%d parts, want 3", n)
	}
	e.clean(t)
}

// A context cancelled mid-stream (a Lambda's deadline) fails the upload;
// its Abort still cleans up, with a context of its own.
func TestS3ContextCancelled(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	ctx, cancel := context.WithCancel(testCtx(t))
	u, err := e.sink.Create(ctx, "k.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(u, &cancelReader{r: reader(data(20*MiB, 4)), n: 11 * MiB, cancel: cancel})
	if err == nil {
		_, err = u.Commit()
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	u.Abort()
	if h := e.gw.Head(t, e.bucket, "k.csv"); h != nil {
		t.Error("the key exists after a cancelled upload")
	}
	e.clean(t)
}

// cancelReader cancels a context once n bytes were read.
type cancelReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestS3ETagOpenDelete(t *testing.T) {
	e := newS3Env(t, S3Options{})
	ctx := testCtx(t)
	if etag, err := e.sink.ETag(ctx, "none.csv"); etag != "" || err != nil {
		t.Errorf("ETag of no object = %q, %v", etag, err)
	}
	if _, err := e.sink.Open(ctx, "none.csv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of no object: %v, want ErrNotFound", err)
	}
	if err := e.sink.Delete(ctx, "none.csv"); err != nil {
		t.Errorf("Delete of no object: %v", err)
	}
	obj, err := put(ctx, e.sink, "a.json", strings.NewReader(`{"a":1}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.sink.Open(ctx, "a.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != `{"a":1}` {
		t.Errorf("Open read %q", b)
	}
	again, err := put(ctx, e.sink, "a.json", strings.NewReader(`{"a":2}`), Options{})
	if err != nil || again.ETag == obj.ETag {
		t.Errorf("a new object has the ETag %q of the old one (%v)", again.ETag, err)
	}
	if err := e.sink.Delete(ctx, "a.json"); err != nil {
		t.Fatal(err)
	}
	if h := e.gw.Head(t, e.bucket, "a.json"); h != nil {
		t.Error("Delete left the object")
	}
}

func TestS3Rejects(t *testing.T) {
	e := newS3Env(t, S3Options{})
	tests := []struct {
		name string
		key  string
		opt  Options
	}{
		{"dot-dot key", "a/../b", Options{}},
		{"absolute key", "/a", Options{}},
		{"control character", "a\rb", Options{}},
		{"bad metadata", "m.csv", Options{Metadata: map[string]string{"Bad Key": "v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.rec.reset()
			if _, err := e.sink.Create(testCtx(t), tt.key, tt.opt); err == nil {
				t.Fatal("Create succeeded")
			}
			if n := len(e.rec.requests()); n != 0 {
				t.Errorf("%d requests sent for a rejected Create", n)
			}
		})
	}
	for _, opt := range []S3Options{{PartSize: MiB}} {
		if _, err := NewS3(e.sink.client, e.bucket, opt).Create(testCtx(t), "a", Options{}); err == nil {
			t.Errorf("NewS3(%+v).Create succeeded", opt)
		}
	}
	if _, err := NewS3(e.sink.client, "", S3Options{}).Create(testCtx(t), "a", Options{}); err == nil {
		t.Error("a sink without a bucket created an upload")
	}
}

// TestS3Memory streams far more than the sink may hold and samples the heap
// as the body is read: it must stay near (Concurrency+1) x PartSize.
func TestS3Memory(t *testing.T) {
	const size = 128 * MiB
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	// Collect often, from a clean start, so the heap tracks live data.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	src := &sampler{r: io.LimitReader(rand.NewChaCha8([32]byte{5}), size), every: 4 * MiB}
	obj, err := put(testCtx(t), e.sink, "big.csv", src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if obj.Bytes != size {
		t.Errorf("Bytes = %d, want %d", obj.Bytes, size)
	}
	if h := e.gw.Head(t, e.bucket, "big.csv"); aws.ToInt64(h.ContentLength) != size {
		t.Errorf("stored %d bytes", aws.ToInt64(h.ContentLength))
	}
	// Live data is about 3 x 5 MiB; allow for garbage between collections.
	grew := int64(src.peak) - int64(base.HeapInuse)
	if grew > 40*MiB {
		t.Errorf("heap grew by %d MiB while streaming %d MiB", grew/MiB, size/MiB)
	}
	t.Logf("heap in use grew by at most %d MiB over %d samples", grew/MiB, src.samples)
	e.clean(t)
}

type sampler struct {
	r           io.Reader
	every, next int64
	read        int64
	peak        uint64
	samples     int
}

func (s *sampler) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += int64(n)
	if s.read >= s.next {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		s.peak = max(s.peak, m.HeapInuse)
		s.samples++
		s.next += s.every
	}
	return n, err
}

// A bucket in another region than the client's is named on the first call,
// before anything is uploaded, and asked about once.
func TestS3BucketInAnotherRegion(t *testing.T) {
	gw := testenv.VersityIn(t, "eu-west-1")
	bucket := gw.Bucket(t)
	// The functions' client, in the stack's region.
	client, rec := recordingClient(func(o ...func(*s3.Options)) *s3.Client {
		return testenv.NewS3Client(gw.Endpoint, gw.AccessKey, gw.SecretKey, o...)
	})
	s := NewS3(client, bucket, S3Options{})
	for i, call := range []func() error{
		func() error { _, err := s.Create(testCtx(t), "atlas-billing/usage/a.csv", Options{}); return err },
		func() error { _, err := s.Open(testCtx(t), "atlas-billing/_manifests/m.json"); return err },
	} {
		err := call()
		var re *RegionError
		if !errors.As(err, &re) || re.Region != "eu-west-1" || re.ClientRegion != testenv.Region || re.Bucket != bucket {
			t.Fatalf("call %d: error = %v, want a RegionError naming eu-west-1", i, err)
		}
		if !strings.Contains(err.Error(), "eu-west-1") {
			t.Errorf("error %q does not name the bucket's region", err)
		}
	}
	if ops := rec.requests(); len(ops) != 1 || ops[0].op() != "HeadBucket" || ops[0].Header.Get("Authorization") != "" {
		t.Errorf("requests = %v, want one anonymous HeadBucket", ops)
	}
	if keys := gw.Keys(t, bucket, ""); len(keys) != 0 {
		t.Errorf("objects written: %v", keys)
	}

	// The same bucket from its own region: the check passes once, uploads go ahead.
	client, rec = recordingClient(gw.NewClient)
	s = NewS3(client, bucket, S3Options{})
	for range 2 {
		if _, err := put(testCtx(t), s, "atlas-billing/usage/a.csv", strings.NewReader("a\n"), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count("HeadBucket"); n != 1 {
		t.Errorf("%d HeadBucket requests for two Puts, want 1", n)
	}
}
