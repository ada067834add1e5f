//go:build bench

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/awslabs/goformation/v7"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
	"github.com/atlas-billing-export/atlas-billing-export/internal/testenv"
)

// The functions as the benchmark runs them, by folder name under functions/.
var functions = []string{"submit", "poll", "fetch-invoice"}

// templateIDs maps each function to its logical id in template.yaml.
var templateIDs = map[string]string{"submit": "SubmitFunction", "poll": "PollFunction", "fetch-invoice": "FetchInvoiceFunction"}

// world holds the parts every measurement shares: versitygw with a bucket,
// a Secrets Manager endpoint holding the simulator's service account, and
// the programs built for this machine.
type world struct {
	root   string
	s3     *testenv.S3
	bucket string
	sm     *testenv.SecretsManager
	arn    string
	bins   map[string]string // bootstraps (linux, host arch): submit, poll, fetch-invoice, minimal
	tools  map[string]string // floors: download, upload
	memMB  map[string]int    // MemorySize of each function in template.yaml
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{root: testenv.RepoRoot(t), bins: map[string]string{}, tools: map[string]string{}}
	// HTTPS, as Lambda reaches S3: over plain HTTP the SDK would also sign
	// a SHA-256 of every part's payload, and versitygw check it.
	w.s3 = testenv.VersityTLS(t)
	w.bucket = w.s3.Bucket(t)
	w.sm = testenv.NewSecretsManager(t)
	// Lambda signs every AWS request with one set of credentials.
	w.sm.AccessKey = w.s3.AccessKey
	secret, _ := json.Marshal(map[string]string{"clientId": atlassim.DefaultClientID, "clientSecret": atlassim.DefaultClientSecret})
	w.arn = w.sm.Put("atlas-billing", string(secret))
	w.memMB = templateMemory(t, filepath.Join(w.root, "template.yaml"))

	t.Logf("building the bootstraps and the floor programs")
	for _, fn := range functions {
		w.bins[fn] = testenv.BuildBootstrap(t, "./functions/"+fn)
	}
	w.bins["minimal"] = testenv.BuildBootstrap(t, "./bench/cmd/minimal")
	dir := t.TempDir()
	for _, tool := range []string{"download", "upload"} {
		w.tools[tool] = filepath.Join(dir, tool)
		goBuild(t, w.root, "./bench/cmd/"+tool, w.tools[tool], nil)
	}
	return w
}

// templateMemory reads each function's MemorySize from the SAM template.
func templateMemory(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the SAM template: %v", err)
	}
	tmpl, err := goformation.ParseYAML(data)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	mem := map[string]int{}
	for _, fn := range functions {
		f, err := tmpl.GetServerlessFunctionWithName(templateIDs[fn])
		if err != nil || f.MemorySize == nil {
			t.Fatalf("template.yaml: %s has no MemorySize (%v)", templateIDs[fn], err)
		}
		mem[fn] = *f.MemorySize
	}
	return mem
}

// functionEnv is the configuration template.yaml gives a function, pointed
// at the local parts.
func (w *world) functionEnv(fn, atlasBase string) []string {
	return []string{
		"ABX_BUCKET=" + w.bucket,
		"ABX_PREFIX=atlas-billing",
		"ABX_SECRET_ARN=" + w.arn,
		"ABX_ATLAS_BASE_URL=" + atlasBase,
		"ABX_S3_ENDPOINT=" + w.s3.Endpoint,
		"ABX_ORG_IDS=" + atlassim.DefaultOrgs[0].ID,
		"AWS_ACCESS_KEY_ID=" + w.s3.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + w.s3.SecretKey,
		"SSL_CERT_FILE=" + w.s3.CAFile,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + w.sm.Endpoint,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(w.memMB[fn]),
	}
}

// deleteObject removes a key, so the next run writes it again in full.
func (w *world) deleteObject(t testing.TB, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := w.s3.Client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(w.bucket), Key: aws.String(key)}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}

// clear deletes every object under prefix.
func (w *world) clear(t testing.TB, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := s3.NewListObjectsV2Paginator(w.s3.Client, &s3.ListObjectsV2Input{Bucket: aws.String(w.bucket), Prefix: aws.String(prefix)})
	for page := 0; p.HasMorePages(); page++ {
		if page == 100 {
			t.Fatalf("clear %s: more than 100 pages", prefix)
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		for _, o := range out.Contents {
			w.deleteObject(t, aws.ToString(o.Key))
		}
	}
}

// toolRun is one run of a floor program.
type toolRun struct {
	Elapsed time.Duration // exec to exit
	PeakRSS int64         // as the program reports it (VmHWM)
	CPU     time.Duration
	Bytes   int64
}

// runTool runs a floor program to its end.
func (w *world) runTool(t testing.TB, name string, env []string, args ...string) toolRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lambdaTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.tools[name], args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	err := cmd.Run()
	r := toolRun{Elapsed: time.Since(start)}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.Bytes())
	}
	var out struct{ Bytes, PeakRSS int64 }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("%s: read its answer %q: %v", name, stdout.Bytes(), err)
	}
	r.Bytes, r.PeakRSS = out.Bytes, out.PeakRSS
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r
}

// goBuild builds pkg into out for linux; env adds GOARCH and the like.
func goBuild(t testing.TB, root, pkg, out string, env []string, flags ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a first arm64 build of the SDK on a busy machine
	defer cancel()
	args := append(append([]string{"build", "-trimpath"}, flags...), "-o", out, pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, b)
	}
}

var discard = slog.New(slog.DiscardHandler)

// fixedNow pins the simulator's calendar: June 2024 is a closed month.
func fixedNow() time.Time { return time.Date(2024, time.July, 15, 12, 0, 0, 0, time.UTC) }

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return b
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
