package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
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

const staging = "atlas-billing/_staging"

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
	if opt.StagingPrefix == "" {
		opt.StagingPrefix = staging
	}
	bucket := gw.Bucket(t)
	return &s3Env{gw: gw, bucket: bucket, rec: rec, sink: NewS3(client, bucket, opt)}
}

// clean asserts what every Put must leave behind: no staging object and no
// open multipart upload.
func (e *s3Env) clean(t *testing.T) {
	t.Helper()
	if keys := e.gw.Keys(t, e.bucket, staging+"/"); len(keys) != 0 {
		t.Errorf("staging objects left: %v", keys)
	}
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
		copyMax   int64 // 0: S3's 5 GiB
		wantParts int   // UploadPart requests (0: a single PutObject)
		wantCopy  string
	}{
		{"empty", 0, 0, 0, "CopyObject"},
		{"small", 3000, 0, 0, "CopyObject"},
		{"one part exactly", 5 * MiB, 0, 1, "CopyObject"},
		{"12 MiB in 5 MiB parts", 12 * MiB, 0, 3, "CopyObject"},
		{"over the copy limit: multipart copy", 12 * MiB, 6 * MiB, 3, "UploadPartCopy"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.sink.copyMax, e.sink.copyPS = maxCopySize, copyPartSize
			if tt.copyMax > 0 {
				e.sink.copyMax, e.sink.copyPS = tt.copyMax, 5*MiB
			}
			body := csvData(tt.size, uint64(i))
			key := "atlas-billing/invoices/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-06/invoice_id=" + strconv.Itoa(i) + ".csv"
			lc := &lineCounter{r: reader(body)}
			e.rec.reset()
			obj, err := e.sink.Put(testCtx(t), Put{Key: key, Body: lc, ContentType: "text/csv", Meta: lc.meta(map[string]string{"org-id": "5f1a2b3c4d5e6f7a8b9c0d1e", "billing-month": "2024-06"})})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			wantRows := int64(bytes.Count(body, []byte{'\n'}))
			want := Object{Bucket: e.bucket, Key: key, Bytes: int64(tt.size), SHA256: hexSHA(body), Rows: wantRows}
			if obj != want {
				t.Errorf("Object = %+v, want %+v", obj, want)
			}
			if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, body) {
				t.Errorf("stored %d bytes differ from the %d sent", len(got), len(body))
			}
			h := e.gw.Head(t, e.bucket, key)
			wantMeta := map[string]string{"sha256": hexSHA(body), "rows": strconv.FormatInt(wantRows, 10), "org-id": "5f1a2b3c4d5e6f7a8b9c0d1e", "billing-month": "2024-06"}
			for k, v := range wantMeta {
				if h.Metadata[k] != v {
					t.Errorf("metadata %s = %q, want %q (all: %v)", k, h.Metadata[k], v, h.Metadata)
				}
			}
			if ct := aws.ToString(h.ContentType); ct != "text/csv" {
				t.Errorf("ContentType = %q", ct)
			}
			if n := e.rec.count("UploadPart"); n != tt.wantParts {
				t.Errorf("%d UploadPart requests, want %d", n, tt.wantParts)
			}
			if n := e.rec.count(tt.wantCopy); n == 0 {
				t.Errorf("no %s request", tt.wantCopy)
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
			if _, err := e.sink.Put(testCtx(t), Put{Key: "k.csv", Body: reader(data(6*MiB, 1))}); err != nil {
				t.Fatal(err)
			}
			// Every request that creates an object (staging or final) asks for encryption.
			writes := 0
			for _, q := range e.rec.requests() {
				switch q.op() {
				case "CreateMultipartUpload", "PutObject", "CopyObject":
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
				t.Errorf("%d object-creating requests, want 2 (staging upload, copy)", writes)
			}
		})
	}
}

func TestS3SkipAndOverwrite(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB})
	ctx := testCtx(t)
	const key = "atlas-billing/usage/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-06/usage.csv"
	a, b := csvData(7*MiB, 1), csvData(7*MiB, 2)
	meta := func(status string) func() map[string]string {
		return func() map[string]string { return map[string]string{"invoice-status": status} }
	}

	first, err := e.sink.Put(ctx, Put{Key: key, Body: reader(a), Meta: meta("CLOSED")})
	if err != nil || first.Skipped {
		t.Fatalf("first Put: %+v, %v", first, err)
	}
	before := e.gw.Head(t, e.bucket, key)

	tests := []struct {
		name        string
		body        []byte
		status      string
		wantSkipped bool
	}{
		{"same content is skipped", a, "CLOSED", true},
		{"changed content is written", b, "CLOSED", false},
		{"same content again is skipped", b, "CLOSED", true},
		{"same bytes, changed metadata is written", b, "PAID", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.rec.reset()
			obj, err := e.sink.Put(ctx, Put{Key: key, Body: reader(tt.body), Meta: meta(tt.status)})
			if err != nil {
				t.Fatal(err)
			}
			if obj.Skipped != tt.wantSkipped || obj.SHA256 != hexSHA(tt.body) || obj.Bytes != int64(len(tt.body)) {
				t.Errorf("Object = %+v, want Skipped=%v sha256=%s", obj, tt.wantSkipped, hexSHA(tt.body))
			}
			wrote := 0
			for _, q := range e.rec.requests() {
				if q.Key == key && q.Method != "HEAD" {
					wrote++
				}
			}
			if tt.wantSkipped && wrote != 0 {
				t.Errorf("skipped Put sent %d requests writing the final key", wrote)
			}
			if !tt.wantSkipped && wrote == 0 {
				t.Errorf("Put did not write the final key")
			}
			if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, tt.body) {
				t.Errorf("final key does not hold the expected bytes")
			}
			if h := e.gw.Head(t, e.bucket, key); h.Metadata["invoice-status"] != tt.status || h.Metadata["sha256"] != hexSHA(tt.body) {
				t.Errorf("metadata = %v", h.Metadata)
			}
			e.clean(t)
		})
		if tt.name == "same content is skipped" {
			if after := e.gw.Head(t, e.bucket, key); !aws.ToTime(after.LastModified).Equal(aws.ToTime(before.LastModified)) || aws.ToString(after.ETag) != aws.ToString(before.ETag) {
				t.Errorf("skipped object changed: LastModified %v -> %v", before.LastModified, after.LastModified)
			}
		}
	}
}

func TestS3BodyFails(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	body := data(16*MiB, 3)
	old := []byte("the previous, complete export\n")
	tests := []struct {
		name     string
		after    int  // bytes read before the error
		existing bool // the final key already holds an object
	}{
		{"before the first part is full", 1 * MiB, false},
		{"in the second part", 7 * MiB, false},
		{"in the last part", 16*MiB - 1, false},
		{"over an existing object", 11 * MiB, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			key := "exports/" + strconv.Itoa(i) + ".csv"
			if tt.existing {
				if _, err := e.sink.Put(ctx, Put{Key: key, Body: bytes.NewReader(old)}); err != nil {
					t.Fatal(err)
				}
			}
			metaCalled := false
			_, err := e.sink.Put(ctx, Put{Key: key, Body: failAfter(body, tt.after, errBoom), Meta: func() map[string]string { metaCalled = true; return nil }})
			if !errors.Is(err, errBoom) {
				t.Fatalf("Put error = %v, want one wrapping the body's error", err)
			}
			if !strings.Contains(err.Error(), key) {
				t.Errorf("error %q does not name the key", err)
			}
			if metaCalled {
				t.Error("Meta was called for a body that failed")
			}
			if tt.existing {
				if got := e.gw.Get(t, e.bucket, key); !bytes.Equal(got, old) {
					t.Errorf("existing object changed to %d bytes", len(got))
				}
			} else if h := e.gw.Head(t, e.bucket, key); h != nil {
				t.Errorf("final key exists after a failed Put (%d bytes)", aws.ToInt64(h.ContentLength))
			}
			e.clean(t)
		})
	}
}

// cancelReader cancels the Put's context once n bytes were read.
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

func TestS3ContextCancelled(t *testing.T) {
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	ctx, cancel := context.WithCancel(testCtx(t))
	_, err := e.sink.Put(ctx, Put{Key: "k.csv", Body: &cancelReader{r: reader(data(20*MiB, 4)), n: 11 * MiB, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put error = %v, want context.Canceled", err)
	}
	if h := e.gw.Head(t, e.bucket, "k.csv"); h != nil {
		t.Error("final key exists after a cancelled Put")
	}
	// Cleanup ran with its own context although ctx was cancelled.
	e.clean(t)
}

func TestS3Rejects(t *testing.T) {
	e := newS3Env(t, S3Options{})
	tests := []struct {
		name string
		put  Put
	}{
		{"dot-dot key", Put{Key: "a/../b", Body: strings.NewReader("x")}},
		{"absolute key", Put{Key: "/a", Body: strings.NewReader("x")}},
		{"control character", Put{Key: "a\rb", Body: strings.NewReader("x")}},
		{"under the staging prefix", Put{Key: staging + "/x.csv", Body: strings.NewReader("x")}},
		{"no body", Put{Key: "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.rec.reset()
			if _, err := e.sink.Put(testCtx(t), tt.put); err == nil {
				t.Fatal("Put succeeded")
			}
			if n := len(e.rec.requests()); n != 0 {
				t.Errorf("%d requests sent for a rejected Put", n)
			}
		})
	}

	t.Run("bad metadata after upload", func(t *testing.T) {
		_, err := e.sink.Put(testCtx(t), Put{Key: "m.csv", Body: strings.NewReader("x"), Meta: func() map[string]string { return map[string]string{"Bad Key": "v"} }})
		if err == nil {
			t.Fatal("Put succeeded")
		}
		if h := e.gw.Head(t, e.bucket, "m.csv"); h != nil {
			t.Error("final key written")
		}
		e.clean(t)
	})

	for _, opt := range []S3Options{{PartSize: MiB}, {StagingPrefix: "../x"}} {
		if _, err := NewS3(e.sink.client, e.bucket, opt).Put(testCtx(t), Put{Key: "a", Body: strings.NewReader("x")}); err == nil {
			t.Errorf("NewS3(%+v).Put succeeded", opt)
		}
	}
}

// TestS3Memory streams far more than the sink may hold and samples the heap
// as the body is read: it must stay near (Concurrency+3) x PartSize.
func TestS3Memory(t *testing.T) {
	const size = 128 * MiB
	e := newS3Env(t, S3Options{PartSize: 5 * MiB, Concurrency: 2})
	// Collect often, from a clean start, so the heap tracks live data.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	src := &sampler{r: io.LimitReader(rand.NewChaCha8([32]byte{5}), size), every: 4 * MiB}
	obj, err := e.sink.Put(testCtx(t), Put{Key: "big.csv", Body: src})
	if err != nil {
		t.Fatal(err)
	}
	if obj.Bytes != size {
		t.Errorf("Bytes = %d, want %d", obj.Bytes, size)
	}
	if h := e.gw.Head(t, e.bucket, "big.csv"); aws.ToInt64(h.ContentLength) != size {
		t.Errorf("stored %d bytes", aws.ToInt64(h.ContentLength))
	}
	// Live data is about 5 x 5 MiB; allow for garbage between collections.
	grew := int64(src.peak) - int64(base.HeapInuse)
	if grew > 48*MiB {
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

// A bucket in another region than the client's is named on the first Put,
// before anything is uploaded, and asked about once.
func TestS3BucketInAnotherRegion(t *testing.T) {
	gw := testenv.VersityIn(t, "eu-west-1")
	bucket := gw.Bucket(t)
	// The functions' client, in the stack's region.
	client, rec := recordingClient(func(o ...func(*s3.Options)) *s3.Client {
		return testenv.NewS3Client(gw.Endpoint, gw.AccessKey, gw.SecretKey, o...)
	})
	s := NewS3(client, bucket, S3Options{StagingPrefix: staging})
	for i := range 2 {
		_, err := s.Put(testCtx(t), Put{Key: "atlas-billing/usage/a.csv", Body: strings.NewReader("a\n")})
		var re *RegionError
		if !errors.As(err, &re) || re.Region != "eu-west-1" || re.ClientRegion != testenv.Region || re.Bucket != bucket {
			t.Fatalf("Put %d: error = %v, want a RegionError naming eu-west-1", i, err)
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
	s = NewS3(client, bucket, S3Options{StagingPrefix: staging})
	for range 2 {
		if _, err := s.Put(testCtx(t), Put{Key: "atlas-billing/usage/a.csv", Body: strings.NewReader("a\n")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := rec.count("HeadBucket"); n != 1 {
		t.Errorf("%d HeadBucket requests for two Puts, want 1", n)
	}
}
