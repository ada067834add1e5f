package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Region is the region every test client uses.
const Region = "us-east-1"

// S3 is a running versitygw and a client for it.
type S3 struct {
	Endpoint  string // http://127.0.0.1:PORT, or https:// (VersityTLS)
	Region    string
	AccessKey string
	SecretKey string
	Client    *s3.Client
	PID       int    // the versitygw process, for a benchmark that counts its CPU
	CAFile    string // with TLS: its certificate (PEM), for SSL_CERT_FILE
	roots     *x509.CertPool
}

// versityBinary finds versitygw: $VERSITYGW, else <repo>/.tools/bin/versitygw.
func versityBinary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("VERSITYGW")
	if bin == "" {
		bin = filepath.Join(RepoRoot(t), ".tools", "bin", "versitygw")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: versitygw not found at %s (set VERSITYGW or run make tools): %v", bin, err)
	}
	return bin
}

// Versity starts versitygw with a posix backend in a fresh temporary folder on
// a free 127.0.0.1 port, waits until it answers S3 requests, and stops it in
// t.Cleanup. Its output is logged if the test fails.
func Versity(t testing.TB) *S3 { return VersityIn(t, Region) }

// VersityTLS is Versity serving HTTPS, as S3 is reached, with a certificate
// made for 127.0.0.1: the SDK then sends what it sends to S3 (an unsigned
// payload with a CRC32 trailer), not a SHA-256 of each part as over plain
// HTTP. Its clients trust the certificate; a child process does with
// SSL_CERT_FILE=CAFile.
func VersityTLS(t testing.TB) *S3 {
	t.Helper()
	s := &S3{Region: Region, AccessKey: "abx" + randomHex(8), SecretKey: randomHex(20)}
	s.CAFile, s.roots = selfSigned(t)
	return s.start(t)
}

// VersityIn is Versity serving region: like S3 for a bucket of that region,
// it refuses requests signed for another and names its own region in
// x-amz-bucket-region.
func VersityIn(t testing.TB, region string) *S3 {
	t.Helper()
	return (&S3{Region: region, AccessKey: "abx" + randomHex(8), SecretKey: randomHex(20)}).start(t)
}

func (s *S3) start(t testing.TB) *S3 {
	t.Helper()
	bin := versityBinary(t)
	// The free port is found by listening and closing, so another process can
	// take it before versitygw binds it: retry a few times on early exit.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		endpoint, pid, err := s.startVersity(t, bin)
		if err == nil {
			s.Endpoint, s.PID = endpoint, pid
			s.Client = s.NewClient()
			return s
		}
		lastErr = err
	}
	t.Fatalf("testenv: start versitygw: %v", lastErr)
	return nil
}

// NewS3Client returns an SDK client for a path-style S3 endpoint with static
// credentials in us-east-1; optFns adjust it (for example its HTTPClient).
func NewS3Client(endpoint, accessKey, secretKey string, optFns ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	}, optFns...)
}

// HTTPClient is an HTTP client for the gateway: with TLS, one that trusts
// its certificate.
func (s *S3) HTTPClient() *http.Client {
	if s.roots == nil {
		return http.DefaultClient
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	s.trust(tr)
	return &http.Client{Transport: tr}
}

func (s *S3) trust(tr *http.Transport) { tr.TLSClientConfig = &tls.Config{RootCAs: s.roots} }

// NewClient returns another client for this gateway, in its region, adjusted
// by optFns.
func (s *S3) NewClient(optFns ...func(*s3.Options)) *s3.Client {
	inRegion := func(o *s3.Options) {
		o.Region = s.Region
		if s.roots != nil {
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(s.trust)
		}
	}
	return NewS3Client(s.Endpoint, s.AccessKey, s.SecretKey, append([]func(*s3.Options){inRegion}, optFns...)...)
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// versityEnv is the test's environment without versitygw's own settings
// (VGW_*, ROOT_*), which would otherwise override the flags given here.
func versityEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "VGW_") || strings.HasPrefix(kv, "ROOT_")
	})
}

func (s *S3) startVersity(t testing.TB, bin string) (string, int, error) {
	t.Helper()
	addr := freePort(t)
	root := t.TempDir()
	out := &Buffer{Max: 64 << 10}
	args, endpoint := []string{"--port", addr, "--region", s.Region}, "http://"+addr
	if s.CAFile != "" {
		args, endpoint = append(args, "--cert", s.CAFile, "--key", s.CAFile+".key"), "https://"+addr
	}
	hc := &http.Client{Transport: s.HTTPClient().Transport, Timeout: time.Second}
	cmd := exec.Command(bin, append(args, "posix", root)...)
	cmd.Env = append(versityEnv(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = out, out
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return "", 0, fmt.Errorf("exec %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := waitHTTP(hc, endpoint, exited, 15*time.Second); err != nil {
		stop()
		return "", 0, fmt.Errorf("%w; output:\n%s", err, out.String())
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw output (%s):\n%s", addr, out.String())
		}
	})
	return endpoint, cmd.Process.Pid, nil
}

// waitHTTP polls endpoint until any HTTP answer arrives, the process exits, or
// the timeout passes.
func waitHTTP(hc *http.Client, endpoint string, exited <-chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := 5 * time.Millisecond; ; delay = min(delay*2, 200*time.Millisecond) {
		resp, err := hc.Get(endpoint + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited before answering: %v", err)
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within %s: %w", endpoint, timeout, err)
		}
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// Bucket creates a fresh, empty bucket and returns its name.
func (s *S3) Bucket(t testing.TB) string {
	t.Helper()
	name := "test-" + randomHex(6)
	if _, err := s.Client.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("testenv: create bucket %s: %v", name, err)
	}
	return name
}

// maxPages bounds every listing loop.
const maxPages = 1000

// Keys lists the keys under prefix in bucket, in S3 order.
func (s *S3) Keys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for page := 0; p.HasMorePages(); page++ {
		if page == maxPages {
			t.Fatalf("testenv: list %s/%s: more than %d pages", bucket, prefix, maxPages)
		}
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("testenv: list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// Get returns the body of an object; the test fails if it cannot be read.
func (s *S3) Get(t testing.TB, bucket, key string) []byte {
	t.Helper()
	out, err := s.Client.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("testenv: get %s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("testenv: read %s/%s: %v", bucket, key, err)
	}
	return b
}

// Head returns an object's metadata, or nil if the object does not exist.
func (s *S3) Head(t testing.TB, bucket, key string) *s3.HeadObjectOutput {
	t.Helper()
	out, err := s.Client.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nf interface{ ErrorCode() string }
		if errors.As(err, &nf) && (nf.ErrorCode() == "NotFound" || nf.ErrorCode() == "NoSuchKey") {
			return nil
		}
		t.Fatalf("testenv: head %s/%s: %v", bucket, key, err)
	}
	return out
}

// OpenMultipartUploads counts the multipart uploads in bucket that were
// neither completed nor aborted.
func (s *S3) OpenMultipartUploads(t testing.TB, bucket string) int {
	t.Helper()
	n := 0
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}
	for page := 0; ; page++ {
		if page == maxPages {
			t.Fatalf("testenv: list multipart uploads in %s: more than %d pages", bucket, maxPages)
		}
		out, err := s.Client.ListMultipartUploads(ctx(t), in)
		if err != nil {
			t.Fatalf("testenv: list multipart uploads in %s: %v", bucket, err)
		}
		n += len(out.Uploads)
		if !aws.ToBool(out.IsTruncated) {
			return n
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// selfSigned writes a certificate for 127.0.0.1, valid for a day, to
// CAFile (its key to CAFile.key) and returns the file and a pool that
// trusts it.
func selfSigned(t testing.TB) (string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: make a TLS key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{netip.MustParseAddr("127.0.0.1").AsSlice()},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testenv: make a TLS certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testenv: encode a TLS key: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	file := filepath.Join(t.TempDir(), "versitygw.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatalf("testenv: write a TLS certificate: %v", err)
	}
	if err := os.WriteFile(file+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatalf("testenv: write a TLS key: %v", err)
	}
	return file, roots
}
