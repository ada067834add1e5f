package sink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// files lists the regular files under root (slash paths), temporary ones included.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

func noTemp(t *testing.T, root string) {
	t.Helper()
	for _, f := range files(t, root) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file left: %s", f)
		}
	}
}

func TestDirRoundTrip(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	for i, size := range []int{0, 3000, 12 * MiB} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			key := "atlas-billing/usage/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-0" + strconv.Itoa(i+1) + "/usage.csv"
			body := csvData(size, uint64(i))
			obj, err := put(testCtx(t), d, key, reader(body), Options{ContentType: "text/csv", Metadata: map[string]string{"org-id": "x"}})
			if err != nil {
				t.Fatal(err)
			}
			etag, _ := d.ETag(testCtx(t), key)
			want := Object{Bucket: root, Key: key, Bytes: int64(size), SHA256: hexSHA(body), ETag: etag}
			if obj != want || etag == "" {
				t.Errorf("Object = %+v, want %+v", obj, want)
			}
			path := filepath.Join(root, filepath.FromSlash(key))
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, body) {
				t.Errorf("file holds %d bytes (%v), want the %d sent", len(got), err, len(body))
			}
		})
	}
	noTemp(t, root)
}

// Until Commit the key's file is the previous one; Abort leaves it and no
// temporary file; a new file has a new ETag.
func TestDirCommitOrAbort(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	ctx := testCtx(t)
	const key = "exports/k.csv"
	path := filepath.Join(root, filepath.FromSlash(key))
	old := []byte("previous export\n")
	first, err := put(ctx, d, key, bytes.NewReader(old), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		u, err := d.Create(ctx, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		body := data(5*MiB, 3)
		if _, err := u.Write(body); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
			t.Fatalf("before Commit the file holds %d bytes, want the previous one", len(got))
		}
		if !commit {
			u.Abort()
			u.Abort()
			if got, _ := os.ReadFile(path); !bytes.Equal(got, old) {
				t.Errorf("after Abort the file holds %d bytes, want the previous one", len(got))
			}
			noTemp(t, root)
			continue
		}
		obj, err := u.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, body) {
			t.Errorf("after Commit the file holds %d bytes, want %d", len(got), len(body))
		}
		if obj.ETag == first.ETag {
			t.Errorf("the new file has the old ETag %s", obj.ETag)
		}
		if _, err := u.Write([]byte("x")); err == nil {
			t.Error("Write after Commit succeeded")
		}
	}
	noTemp(t, root)
}

func TestDirContextCancelled(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(testCtx(t))
	_, err := put(ctx, NewDir(root), "k.csv", &cancelReader{r: reader(data(4*MiB, 4)), n: MiB, cancel: cancel}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if f := files(t, root); len(f) != 0 {
		t.Errorf("files left: %v", f)
	}
}

// A context cancelled before a Write, or before Commit, fails it, and
// nothing is stored; a key that names a folder fails Commit.
func TestDirCommitRefused(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	if err := os.MkdirAll(filepath.Join(root, "folder", "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key  string
		cancelAt   string // "write", "commit" or ""
		wantCancel bool
	}{
		{"cancelled before a write", "w.csv", "write", true},
		{"cancelled before commit", "c.csv", "commit", true},
		{"a key that is a folder", "folder", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			u, err := d.Create(ctx, tc.key, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.cancelAt == "write" {
				cancel()
			}
			_, err = u.Write([]byte("a,b\n"))
			if tc.cancelAt == "write" {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Write after cancel: %v, want context.Canceled", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.cancelAt == "commit" {
				cancel()
			}
			obj, err := u.Commit()
			if err == nil || tc.wantCancel != errors.Is(err, context.Canceled) {
				t.Fatalf("Commit = %+v, %v; want an error (context.Canceled: %v)", obj, err, tc.wantCancel)
			}
			if fi, err := os.Stat(filepath.Join(root, tc.key)); tc.wantCancel && err == nil || !tc.wantCancel && (err != nil || !fi.IsDir()) {
				t.Errorf("after a failed Commit %s: %v, %v", tc.key, fi, err)
			}
		})
	}
	noTemp(t, root)
}

func TestDirETagOpenDelete(t *testing.T) {
	d := NewDir(t.TempDir())
	ctx := testCtx(t)
	if etag, err := d.ETag(ctx, "none.csv"); etag != "" || err != nil {
		t.Errorf("ETag of no file = %q, %v", etag, err)
	}
	if _, err := d.Open(ctx, "none.csv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open of no file: %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, "none.csv"); err != nil {
		t.Errorf("Delete of no file: %v", err)
	}
	if _, err := put(ctx, d, "a/b.json", strings.NewReader(`{}`), Options{}); err != nil {
		t.Fatal(err)
	}
	rc, err := d.Open(ctx, "a/b.json")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != `{}` {
		t.Errorf("Open read %q", b)
	}
	if err := d.Delete(ctx, "a/b.json"); err != nil {
		t.Fatal(err)
	}
	if etag, _ := d.ETag(ctx, "a/b.json"); etag != "" {
		t.Error("Delete left the file")
	}
}

func TestDirRejects(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	for _, key := range []string{"../escape.csv", "a/../../b", "/etc/passwd", "a//b", "a\x00b"} {
		if _, err := d.Create(testCtx(t), key, Options{}); err == nil {
			t.Errorf("Create(%q) succeeded", key)
		}
	}
	if f := files(t, filepath.Dir(root)); len(f) != 0 {
		t.Errorf("files written: %v", f)
	}
}
