// Package testenv starts the real parts the tests talk to: versitygw for S3,
// a Secrets Manager endpoint for the real SDK client, and a Lambda Runtime API
// that drives a built bootstrap. Import it only from _test.go files.
//
// Every server listens on 127.0.0.1 on a free port and is stopped in t.Cleanup;
// every wait is bounded.
package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// RepoRoot returns the directory of the go.mod that encloses the working
// directory (go test runs in the package's folder).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	t.Fatalf("testenv: no go.mod above the working directory")
	return ""
}

// randomHex returns n random bytes as lower-case hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never returns an error
	return hex.EncodeToString(b)
}

// Buffer collects what concurrent writers write: a child process's stdout
// and stderr, or handlers logging at once. With Max above zero it keeps only
// the last Max bytes, so a chatty process cannot grow test memory without
// bound. The zero value keeps everything.
type Buffer struct {
	Max int

	mu      sync.Mutex
	buf     []byte
	dropped int64
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.Max; b.Max > 0 && over > 0 {
		b.dropped += int64(over)
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// String is what the buffer holds, after a line saying so if output was
// dropped.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out bytes.Buffer
	if b.dropped > 0 {
		out.WriteString("[... earlier output dropped ...]\n")
	}
	out.Write(b.buf)
	return out.String()
}
