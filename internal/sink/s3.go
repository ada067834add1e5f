package sink

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Defaults and limits of S3.
const (
	DefaultPartSize    = 5 << 20 // bytes per uploaded part
	MinPartSize        = 5 << 20 // S3's minimum for all parts but the last
	DefaultConcurrency = 2       // parts of one upload in flight

	maxParts      = 10000
	firstBuffer   = 64 << 10               // a small object never costs a whole part
	cleanupBudget = 30 * time.Second       // for aborts and deletes after a failure
	abortAgain    = 500 * time.Millisecond // before a second abort
)

// S3Options configures an S3 sink. An upload holds at most Concurrency+1
// parts of PartSize bytes, whatever the object's size.
type S3Options struct {
	KMSKeyID    string // SSE-KMS with this key; empty: SSE-S3 (AES256)
	PartSize    int64  // default DefaultPartSize, at least MinPartSize
	Concurrency int    // default DefaultConcurrency
	Logger      *slog.Logger
}

// S3 stores objects in one bucket, each straight at its final key: a
// multipart upload that completes in Commit (a single PutObject there for an
// object under one part). S3 shows a key's new object only once its upload
// completes, so a reader sees the previous object or the new one, whole.
// The SDK's transfer manager is not used: it completes an upload as soon as
// the body ends, and a pair of uploads must wait for each other.
type S3 struct {
	client *s3.Client
	bucket string
	opt    S3Options
	optErr error
	log    *slog.Logger

	regionMu   sync.Mutex
	regionDone bool  // the bucket's region is known (or S3 would not say)
	regionErr  error // a *RegionError when it is not the client's
}

// RegionError is a bucket in another region than the one S3 is called in:
// every request would fail with a redirect or a malformed authorization.
type RegionError struct {
	Bucket, Region, ClientRegion string
}

func (e *RegionError) Error() string {
	return fmt.Sprintf("sink: bucket %s is in region %s, but S3 is called in %s: deploy in %s, or write to a bucket in %s",
		e.Bucket, e.Region, e.ClientRegion, e.Region, e.ClientRegion)
}

// NewS3 returns a sink writing to bucket. Invalid options make every call fail.
func NewS3(client *s3.Client, bucket string, opt S3Options) *S3 {
	if opt.PartSize == 0 {
		opt.PartSize = DefaultPartSize
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	s := &S3{client: client, bucket: bucket, opt: opt, log: opt.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	switch {
	case bucket == "":
		s.optErr = errors.New("sink: no bucket")
	case opt.PartSize < MinPartSize:
		s.optErr = fmt.Errorf("sink: part size %d is under S3's minimum %d", opt.PartSize, MinPartSize)
	}
	return s
}

// Create starts an object at key. Nothing is sent before the first part is
// full; parts upload in the background, Concurrency at a time, and Write
// waits when they are all busy.
func (s *S3) Create(ctx context.Context, key string, opt Options) (Upload, error) {
	if s.optErr != nil {
		return nil, s.optErr
	}
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("sink: %s: %w", key, err)
	}
	if err := s.checkRegion(ctx); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	return &s3Upload{
		s: s, key: key, opt: opt, ctx: ctx, cancel: cancel, digest: newDigest(),
		buf: make([]byte, 0, firstBuffer), slots: make(chan struct{}, s.opt.Concurrency),
	}, nil
}

// Bucket is the bucket written to.
func (s *S3) Bucket() string { return s.bucket }

// ETag is the entity tag of the object under key, "" if there is none.
func (s *S3) ETag(ctx context.Context, key string) (string, error) {
	if err := s.checkRegion(ctx); err != nil {
		return "", err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if err = keyError("head", key, err); errors.Is(err, ErrNotFound) {
			return "", nil
		}
		return "", err
	}
	return aws.ToString(out.ETag), nil
}

// Open reads the object under key: ErrNotFound if there is none (or, as
// for ETag, if S3 will not say).
func (s *S3) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := s.checkRegion(ctx); err != nil {
		return nil, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, keyError("get", key, err)
	}
	return out.Body, nil
}

// keyError names a failed call on key. Without s3:ListBucket S3 answers 403
// for a missing key: that is ErrNotFound too (a real denial fails the writes
// that follow).
func keyError(op, key string, err error) error {
	if isNotFound(err) || httpStatus(err) == http.StatusForbidden {
		err = ErrNotFound
	}
	return fmt.Errorf("sink: %s %s: %w", op, key, err)
}

// List returns the keys under prefix, sorted;
// ErrNotFound if the bucket does not exist. It needs s3:ListBucket, which
// the export itself never uses.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	if err := s.checkRegion(ctx); err != nil {
		return nil, err
	}
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			var nb *types.NoSuchBucket
			if errors.As(err, &nb) {
				return nil, fmt.Errorf("sink: list s3://%s/%s: %w", s.bucket, prefix, ErrNotFound)
			}
			return nil, fmt.Errorf("sink: list s3://%s/%s: %w", s.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys, nil
}

// OpenFile opens the object under key for reading at any offset, each read
// a ranged GET of the version opened (If-Match its ETag, so an object
// replaced meanwhile fails the read rather than mixing two versions). The
// reads use ctx. ErrNotFound if there is no object (or S3 will not say).
func (s *S3) OpenFile(ctx context.Context, key string) (File, error) {
	if err := s.checkRegion(ctx); err != nil {
		return nil, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, keyError("head", key, err)
	}
	return &s3File{s: s, ctx: ctx, key: key, etag: out.ETag, size: aws.ToInt64(out.ContentLength)}, nil
}

type s3File struct {
	s    *S3
	ctx  context.Context
	key  string
	etag *string
	size int64
}

func (f *s3File) Size() int64  { return f.size }
func (f *s3File) Close() error { return nil }

func (f *s3File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("sink: read %s at %d", f.key, off)
	}
	if off >= f.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), f.size-off)
	if n == 0 {
		return 0, nil
	}
	rng := fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	out, err := f.s.client.GetObject(f.ctx, &s3.GetObjectInput{Bucket: &f.s.bucket, Key: &f.key, Range: &rng, IfMatch: f.etag})
	if err != nil {
		return 0, fmt.Errorf("sink: get %s %s: %w", f.key, rng, err)
	}
	defer out.Body.Close()
	got, err := io.ReadFull(out.Body, p[:n])
	if err != nil {
		return got, fmt.Errorf("sink: get %s %s: %w", f.key, rng, err)
	}
	if n < int64(len(p)) {
		return got, io.EOF
	}
	return got, nil
}

// Delete removes the object under key; a key without one is no error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := s.checkRegion(ctx); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil && !isNotFound(err) {
		return fmt.Errorf("sink: delete %s: %w", key, err)
	}
	return nil
}

// checkRegion asks once which region the bucket is in. The question is
// anonymous, so it needs no permission: S3 names the bucket's region in the
// x-amz-bucket-region header even when it refuses the request. When no
// answer says (no response, a server without the header), the uploads go
// ahead and fail or succeed on their own.
func (s *S3) checkRegion(ctx context.Context) error {
	s.regionMu.Lock()
	defer s.regionMu.Unlock()
	if s.regionDone {
		return s.regionErr
	}
	out, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}, func(o *s3.Options) {
		o.Credentials = nil // unsigned (per operation, aws.AnonymousCredentials fails)
	})
	var region string
	var resp *smithyhttp.ResponseError
	switch {
	case err == nil:
		region = aws.ToString(out.BucketRegion)
	case errors.As(err, &resp) && resp.Response != nil:
		region = resp.Response.Header.Get("X-Amz-Bucket-Region")
	default:
		return nil // no answer: ask again next time
	}
	s.regionDone = true
	if mine := s.client.Options().Region; region != "" && region != mine {
		s.regionErr = &RegionError{Bucket: s.bucket, Region: region, ClientRegion: mine}
	}
	return s.regionErr
}

func (s *S3) sse() (types.ServerSideEncryption, *string) {
	if s.opt.KMSKeyID != "" {
		return types.ServerSideEncryptionAwsKms, aws.String(s.opt.KMSKeyID)
	}
	return types.ServerSideEncryptionAes256, nil
}

// s3Upload is one object on its way: the part being filled, the parts in
// flight, and the multipart upload once there is one.
type s3Upload struct {
	s      *S3
	key    string
	opt    Options
	ctx    context.Context // of the parts; cancelled by Abort
	cancel context.CancelFunc
	digest

	buf      []byte // the part being filled
	free     [][]byte
	part     int32 // parts sent
	uploadID string
	slots    chan struct{} // a token per part in flight
	wg       sync.WaitGroup

	mu    sync.Mutex
	parts []types.CompletedPart
	err   error // the first failure of a part
	done  bool  // committed or aborted
}

func (u *s3Upload) Sum() (string, int64) { return u.sum() }

func (u *s3Upload) Write(p []byte) (int, error) {
	if err := u.failed(); err != nil {
		return 0, err
	}
	u.add(p)
	n := len(p)
	for len(p) > 0 {
		if len(u.buf) == cap(u.buf) && cap(u.buf) < int(u.s.opt.PartSize) {
			// Grow the first buffer up to a part: a small object stays small.
			grown := make([]byte, len(u.buf), min(2*cap(u.buf), int(u.s.opt.PartSize)))
			copy(grown, u.buf)
			u.buf = grown
		}
		k := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf, p = u.buf[:len(u.buf)+k], p[k:]
		if len(u.buf) == int(u.s.opt.PartSize) && len(p) > 0 {
			// Full, with more to come: the last part goes in Commit, which
			// may make it a single PutObject.
			if err := u.send(); err != nil {
				u.mu.Lock() // fail the upload: Commit must not store the parts before it
				u.err = cmp.Or(u.err, err)
				u.mu.Unlock()
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return fmt.Errorf("sink: upload of %s is finished", u.key)
	}
	return u.err
}

// send uploads the full buffer as the next part, in the background, once a
// slot is free.
func (u *s3Upload) send() error {
	if u.uploadID == "" {
		in := &s3.CreateMultipartUploadInput{
			Bucket: &u.s.bucket, Key: &u.key, Metadata: u.opt.Metadata,
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		}
		if u.opt.ContentType != "" {
			in.ContentType = &u.opt.ContentType
		}
		in.ServerSideEncryption, in.SSEKMSKeyId = u.s.sse()
		out, err := u.s.client.CreateMultipartUpload(u.ctx, in)
		if err != nil {
			return fmt.Errorf("sink: start the upload of %s: %w", u.key, err)
		}
		u.uploadID = aws.ToString(out.UploadId)
	}
	if u.part == maxParts {
		return fmt.Errorf("sink: %s: more than %d parts of %d bytes", u.key, maxParts, u.s.opt.PartSize)
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		return fmt.Errorf("sink: upload %s: %w", u.key, u.ctx.Err())
	}
	if err := u.failed(); err != nil {
		<-u.slots
		return err
	}
	u.part++
	num, body := u.part, u.buf
	if n := len(u.free); n > 0 {
		u.buf, u.free = u.free[n-1][:0], u.free[:n-1]
	} else {
		u.buf = make([]byte, 0, u.s.opt.PartSize)
	}
	u.wg.Go(func() {
		defer func() { <-u.slots }()
		out, err := u.s.client.UploadPart(u.ctx, &s3.UploadPartInput{
			Bucket: &u.s.bucket, Key: &u.key, UploadId: &u.uploadID, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(body), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
		})
		u.mu.Lock()
		defer u.mu.Unlock()
		u.free = append(u.free, body)
		if err != nil {
			if u.err == nil {
				u.err = fmt.Errorf("sink: upload part %d of %s: %w", num, u.key, err)
			}
			return
		}
		u.parts = append(u.parts, types.CompletedPart{ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32, PartNumber: aws.Int32(num)})
	})
	return nil
}

// Commit sends the last part and completes the upload, or puts an object
// smaller than a part in one request.
func (u *s3Upload) Commit() (Object, error) {
	if err := u.failed(); err != nil {
		u.Abort()
		return Object{}, err
	}
	sha, n := u.sum()
	obj := Object{Bucket: u.s.bucket, Key: u.key, Bytes: n, SHA256: sha}
	var err error
	if u.uploadID == "" {
		obj.ETag, err = u.put()
	} else {
		obj.ETag, err = u.complete()
	}
	if err != nil {
		u.Abort()
		return Object{}, err
	}
	u.finish()
	return obj, nil
}

func (u *s3Upload) put() (string, error) {
	in := &s3.PutObjectInput{
		Bucket: &u.s.bucket, Key: &u.key, Body: bytes.NewReader(u.buf), Metadata: u.opt.Metadata,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32,
	}
	if u.opt.ContentType != "" {
		in.ContentType = &u.opt.ContentType
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = u.s.sse()
	out, err := u.s.client.PutObject(u.ctx, in)
	if err != nil {
		return "", fmt.Errorf("sink: put %s: %w", u.key, err)
	}
	return aws.ToString(out.ETag), nil
}

func (u *s3Upload) complete() (string, error) {
	if len(u.buf) > 0 {
		if err := u.send(); err != nil {
			return "", err
		}
	}
	u.wg.Wait()
	if err := u.failed(); err != nil {
		return "", err
	}
	parts := slices.SortedFunc(slices.Values(u.parts), func(a, b types.CompletedPart) int {
		return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber))
	})
	out, err := u.s.client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.s.bucket, Key: &u.key, UploadId: &u.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return "", fmt.Errorf("sink: complete the upload of %s: %w", u.key, err)
	}
	return aws.ToString(out.ETag), nil
}

// Abort waits for the parts in flight, then aborts the multipart upload,
// with a context of its own: the caller's may be done. A part cut off on
// the client's side (the caller's context ended) may still be stored after
// an abort, so S3 asks for another then; the bucket's lifecycle rule
// sweeps an upload whose aborts failed.
func (u *s3Upload) Abort() {
	u.mu.Lock()
	done := u.done
	u.mu.Unlock()
	if done {
		return
	}
	// Not cancelled first: a part the server is still storing would
	// outlive the abort.
	u.wg.Wait()
	if u.uploadID != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), cleanupBudget)
		defer cancel()
		tries := 1
		if u.ctx.Err() != nil {
			tries = 2
		}
		for i := range tries {
			if i > 0 {
				time.Sleep(abortAgain)
			}
			_, err := u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &u.s.bucket, Key: &u.key, UploadId: &u.uploadID})
			if err != nil && !isNotFound(err) {
				u.s.log.Warn("sink: multipart upload not aborted", "bucket", u.s.bucket, "key", u.key, "uploadId", u.uploadID, "err", err)
			}
		}
	}
	u.finish()
}

func (u *s3Upload) finish() {
	u.cancel()
	u.mu.Lock()
	defer u.mu.Unlock()
	u.done = true
	u.buf, u.free = nil, nil
}

func isNotFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchKey", "NoSuchUpload":
			return true
		}
	}
	return httpStatus(err) == http.StatusNotFound
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
