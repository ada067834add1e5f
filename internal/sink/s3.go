package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Defaults and limits of S3.
const (
	// An export streams two uploads at once (a file and its normalized
	// form); each holds about (Concurrency+1) x PartSize, so these keep a
	// Lambda's memory flat and small whatever the file's size.
	DefaultPartSize      = 5 << 20 // bytes per uploaded part
	MinPartSize          = 5 << 20 // S3's minimum for all parts but the last
	DefaultConcurrency   = 2       // parts in flight
	DefaultStagingPrefix = "_staging"

	maxCopySize   = 5 << 30   // largest CopyObject S3 accepts
	copyPartSize  = 512 << 20 // parts of a multipart copy beyond that
	maxParts      = 10000
	cleanupBudget = 30 * time.Second // for aborts and deletes after a failure
)

// S3Options configures an S3 sink. Memory use is about
// (Concurrency+3) x PartSize whatever the object size.
type S3Options struct {
	KMSKeyID      string // SSE-KMS with this key; empty: SSE-S3 (AES256)
	PartSize      int64  // default DefaultPartSize, at least MinPartSize
	Concurrency   int    // default DefaultConcurrency
	StagingPrefix string // where uploads land before the copy; default DefaultStagingPrefix
	Logger        *slog.Logger
}

// S3 stores objects in one bucket: each Put streams the body to a fresh
// staging key, then copies it to the final key (an atomic server-side step)
// unless the final key already holds the same content, and deletes the
// staging object.
type S3 struct {
	client  *s3.Client
	tm      *transfermanager.Client
	bucket  string
	opt     S3Options
	optErr  error
	log     *slog.Logger
	copyMax int64 // CopyObject limit; lowered by tests to reach the multipart copy
	copyPS  int64 // part size of a multipart copy

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

// NewS3 returns a sink writing to bucket. Invalid options make every Put fail.
func NewS3(client *s3.Client, bucket string, opt S3Options) *S3 {
	if opt.PartSize == 0 {
		opt.PartSize = DefaultPartSize
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	if opt.StagingPrefix == "" {
		opt.StagingPrefix = DefaultStagingPrefix
	}
	opt.StagingPrefix = strings.TrimSuffix(opt.StagingPrefix, "/")
	s := &S3{client: client, bucket: bucket, opt: opt, log: opt.Logger, copyMax: maxCopySize, copyPS: copyPartSize}
	if s.log == nil {
		s.log = slog.Default()
	}
	switch {
	case bucket == "":
		s.optErr = errors.New("sink: no bucket")
	case opt.PartSize < MinPartSize:
		s.optErr = fmt.Errorf("sink: part size %d is under S3's minimum %d", opt.PartSize, MinPartSize)
	default:
		if err := ValidateKey(opt.StagingPrefix); err != nil {
			s.optErr = fmt.Errorf("sink: staging prefix: %w", err)
		}
	}
	s.tm = transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes = opt.PartSize
		// The first part is buffered up to this threshold: keep it at one
		// part so memory stays (Concurrency+1) part buffers plus that one.
		o.MultipartUploadThreshold = opt.PartSize
		o.Concurrency = opt.Concurrency
		// Abort a failed upload with a fresh context, even if ctx was cancelled.
		o.FailTimeout = cleanupBudget
	})
	return s
}

// Put stores p under p.Key. On error nothing new is left under the final key
// (a previous object stays as it was), no multipart upload stays open and the
// staging object is deleted (best effort); a body error is wrapped.
func (s *S3) Put(ctx context.Context, p Put) (Object, error) {
	if s.optErr != nil {
		return Object{}, s.optErr
	}
	if err := ValidateKey(p.Key); err != nil {
		return Object{}, err
	}
	if p.Key == s.opt.StagingPrefix || strings.HasPrefix(p.Key, s.opt.StagingPrefix+"/") {
		return Object{}, fmt.Errorf("sink: key %q is under the staging prefix", p.Key)
	}
	if p.Body == nil {
		return Object{}, fmt.Errorf("sink: put %s: no body", p.Key)
	}
	if err := s.checkRegion(ctx); err != nil {
		return Object{}, err
	}
	// One flat level: an S3 server on a file system (versitygw) removes a
	// staging directory left empty by a concurrent delete, and an upload
	// that has to create a directory inside it then fails with a 409.
	staging := path.Join(s.opt.StagingPrefix, randomID()+"-"+path.Base(p.Key))

	obj, err := s.put(ctx, p, staging)
	// The staging object goes in every case; after a failure ctx may be
	// done, so cleanup gets its own bounded context.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget)
	defer cancel()
	if _, derr := s.client.DeleteObject(cctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &staging}); derr != nil && !isNotFound(derr) {
		// The result stands; a lifecycle rule on the staging prefix sweeps leftovers.
		s.log.Warn("sink: staging object not deleted", "bucket", s.bucket, "key", staging, "err", derr)
	}
	return obj, err
}

func (s *S3) put(ctx context.Context, p Put, staging string) (Object, error) {
	body := newHashingReader(ctx, p.Body)
	in := &transfermanager.UploadObjectInput{
		Bucket: &s.bucket,
		Key:    &staging,
		// Not an io.Seeker, whatever p.Body is: read once, in order, in parts.
		Body: body,
	}
	if p.ContentType != "" {
		in.ContentType = &p.ContentType
	}
	// Staging objects are encrypted like final ones: a bucket policy may
	// refuse any unencrypted put.
	if s.opt.KMSKeyID != "" {
		in.ServerSideEncryption, in.SSEKMSKeyID = tmtypes.ServerSideEncryptionAwsKms, &s.opt.KMSKeyID
	} else {
		in.ServerSideEncryption = tmtypes.ServerSideEncryptionAes256
	}
	if _, err := s.tm.UploadObject(ctx, in); err != nil {
		s.abort(ctx, staging, err)
		if body.err != nil {
			return Object{}, fmt.Errorf("sink: read body for %s: %w", p.Key, body.err)
		}
		return Object{}, fmt.Errorf("sink: upload %s to staging: %w", p.Key, err)
	}

	sum := body.sum()
	meta, err := p.metadata(sum)
	if err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	obj := Object{Bucket: s.bucket, Key: p.Key, Bytes: body.n, SHA256: sum, Rows: rows(meta)}

	stored, err := s.head(ctx, p.Key)
	if err != nil {
		return Object{}, err
	}
	if stored != nil && sameContent(stored, meta) {
		obj.Skipped = true
		return obj, nil
	}
	if body.n > s.copyMax {
		err = s.multipartCopy(ctx, staging, p, meta, body.n)
	} else {
		err = s.copy(ctx, staging, p, meta)
	}
	if err != nil {
		return Object{}, err
	}
	return obj, nil
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

// abort makes sure a failed upload leaves no open multipart upload. The
// transfer manager already aborts (with FailTimeout's fresh context); this
// covers an abort that itself failed. NoSuchUpload means it is gone.
func (s *S3) abort(ctx context.Context, key string, err error) {
	var mpu interface{ UploadID() string }
	if !errors.As(err, &mpu) || mpu.UploadID() == "" {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget)
	defer cancel()
	id := mpu.UploadID()
	_, aerr := s.client.AbortMultipartUpload(cctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &id})
	if aerr != nil && !isNotFound(aerr) {
		s.log.Warn("sink: multipart upload not aborted", "bucket", s.bucket, "key", key, "uploadId", id, "err", aerr)
	}
}

// head returns the final key's metadata, or nil if there is no object.
func (s *S3) head(ctx context.Context, key string) (map[string]string, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		// Without s3:ListBucket, S3 answers 403 for a missing key: treat it
		// as absent; a real denial fails the copy that follows.
		if isNotFound(err) || httpStatus(err) == http.StatusForbidden {
			return nil, nil
		}
		return nil, fmt.Errorf("sink: head %s: %w", key, err)
	}
	return out.Metadata, nil
}

func (s *S3) copySource(staging string) *string {
	return aws.String(url.PathEscape(s.bucket) + "/" + escapeKey(staging))
}

func (s *S3) copy(ctx context.Context, staging string, p Put, meta map[string]string) error {
	in := &s3.CopyObjectInput{
		Bucket:            &s.bucket,
		Key:               &p.Key,
		CopySource:        s.copySource(staging),
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          meta,
	}
	if p.ContentType != "" {
		in.ContentType = &p.ContentType
	}
	in.ServerSideEncryption, in.SSEKMSKeyId = s.sse()
	if _, err := s.client.CopyObject(ctx, in); err != nil {
		return fmt.Errorf("sink: copy staging to %s: %w", p.Key, err)
	}
	return nil
}

func (s *S3) sse() (types.ServerSideEncryption, *string) {
	if s.opt.KMSKeyID != "" {
		return types.ServerSideEncryptionAwsKms, aws.String(s.opt.KMSKeyID)
	}
	return types.ServerSideEncryptionAes256, nil
}

// multipartCopy copies objects over CopyObject's 5 GiB limit part by part,
// server side; the final key appears only when the upload completes.
func (s *S3) multipartCopy(ctx context.Context, staging string, p Put, meta map[string]string, size int64) error {
	partSize := max(s.copyPS, (size+maxParts-1)/maxParts)
	create := &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &p.Key, Metadata: meta}
	if p.ContentType != "" {
		create.ContentType = &p.ContentType
	}
	create.ServerSideEncryption, create.SSEKMSKeyId = s.sse()
	mpu, err := s.client.CreateMultipartUpload(ctx, create)
	if err != nil {
		return fmt.Errorf("sink: start multipart copy to %s: %w", p.Key, err)
	}

	n := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, n)
	errs := make([]error, n)
	sem := make(chan struct{}, s.opt.Concurrency)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			first := int64(i) * partSize
			last := min(first+partSize, size) - 1
			out, err := s.client.UploadPartCopy(cctx, &s3.UploadPartCopyInput{
				Bucket:          &s.bucket,
				Key:             &p.Key,
				UploadId:        mpu.UploadId,
				PartNumber:      aws.Int32(int32(i + 1)),
				CopySource:      s.copySource(staging),
				CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
			})
			if err != nil {
				errs[i] = fmt.Errorf("part %d: %w", i+1, err)
				cancel()
				return
			}
			parts[i] = types.CompletedPart{ETag: out.CopyPartResult.ETag, PartNumber: aws.Int32(int32(i + 1))}
		}()
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: &p.Key, UploadId: mpu.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupBudget)
		defer acancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &p.Key, UploadId: mpu.UploadId}); aerr != nil && !isNotFound(aerr) {
			s.log.Warn("sink: multipart copy not aborted", "bucket", s.bucket, "key", p.Key, "err", aerr)
		}
		return fmt.Errorf("sink: multipart copy to %s: %w", p.Key, err)
	}
	return nil
}

// escapeKey URL-encodes each segment of a key for x-amz-copy-source.
func escapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
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

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
