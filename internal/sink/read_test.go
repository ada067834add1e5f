package sink

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// lister is a sink that also lists and reads at offsets.
type lister interface {
	store
	List(ctx context.Context, prefix string) ([]string, error)
	OpenFile(ctx context.Context, key string) (File, error)
}

var _, _ lister = (*S3)(nil), (*Dir)(nil)

// testListOpenFile checks List and OpenFile on s, which holds nothing yet.
func testListOpenFile(t *testing.T, s lister) {
	ctx := testCtx(t)
	for _, key := range []string{"p/_manifests/org_id=a/billing_month=2024-05/manifest.json", "p/_manifests/org_id=a/billing_month=2024-04/manifest.json",
		"p/_manifests/org_id=b/billing_month=2024-04/manifest.json", "p/usage/org_id=a/usage.csv", "p/_manifestsX/x.json", "q/_manifests/y.json"} {
		if _, err := put(ctx, s, key, strings.NewReader(key), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	// An upload in progress is no key.
	u, err := s.Create(ctx, "p/_manifests/org_id=c/billing_month=2024-04/manifest.json", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort()
	u.Write([]byte("half"))

	manifests := []string{"p/_manifests/org_id=a/billing_month=2024-04/manifest.json", "p/_manifests/org_id=a/billing_month=2024-05/manifest.json", "p/_manifests/org_id=b/billing_month=2024-04/manifest.json"}
	underP := append(append(slices.Clip(manifests), "p/_manifestsX/x.json"), "p/usage/org_id=a/usage.csv")
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"p/_manifests/", manifests},
		{"p/_manifests", append(slices.Clip(manifests), "p/_manifestsX/x.json")},
		{"p/_manifests/org_id=b", manifests[2:]},
		{"p/", underP},
		{"p/usage/org_id=a/", []string{"p/usage/org_id=a/usage.csv"}},
		{"", append(slices.Clip(underP), "q/_manifests/y.json")},
		{"p/none/", nil},
		{"p/none/deeper/", nil},
		{"r", nil},
		// A file named as a folder, or a folder under a file.
		{"p/usage/org_id=a/usage.csv/", nil},
		{"p/usage/org_id=a/usage.csv/x/", nil},
		// No key begins with a slash or holds an empty, "." or ".." segment.
		{"/p", nil},
		{"/p/", nil},
		{"/", nil},
		{"//p/", nil},
		{"p//", nil},
		{"./p/", nil},
		{"p/./", nil},
		{"p/../p/", nil},
		{"../", nil},
	} {
		got, err := s.List(ctx, tc.prefix)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}

	body := data(100_000, 7)
	if _, err := put(ctx, s, "p/f.parquet", reader(body), Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := s.OpenFile(ctx, "p/f.parquet")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != int64(len(body)) {
		t.Errorf("Size = %d, want %d", f.Size(), len(body))
	}
	for _, r := range []struct {
		off    int64
		n      int
		wantN  int
		wantEO bool
	}{{0, 10, 10, false}, {99_990, 10, 10, false}, {99_995, 10, 5, true}, {100_000, 1, 0, true}} {
		p := make([]byte, r.n)
		n, err := f.ReadAt(p, r.off)
		if n != r.wantN || (err == io.EOF) != r.wantEO || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d (EOF %v)", r.n, r.off, n, err, r.wantN, r.wantEO)
		}
		if string(p[:n]) != string(body[r.off:r.off+int64(n)]) {
			t.Errorf("ReadAt(%d bytes at %d) read other bytes", r.n, r.off)
		}
	}
	if _, err := s.OpenFile(ctx, "p/none.parquet"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenFile of no object: %v, want ErrNotFound", err)
	}
}

func TestDirListOpenFile(t *testing.T) {
	testListOpenFile(t, NewDir(t.TempDir()))
}

func TestS3ListOpenFile(t *testing.T) {
	e := newS3Env(t, S3Options{})
	testListOpenFile(t, e.sink)

	// A file replaced after it was opened fails the next read.
	ctx := testCtx(t)
	f, err := e.sink.OpenFile(ctx, "p/f.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := put(ctx, e.sink, "p/f.parquet", strings.NewReader("another"), Options{}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.ReadAt(make([]byte, 4), 0); err == nil {
		t.Errorf("ReadAt of a replaced object read %d bytes, no error", n)
	}
	if _, err := NewS3(e.sink.client, "no-such-bucket-here", S3Options{}).List(ctx, "p/"); !errors.Is(err, ErrNotFound) {
		t.Errorf("List of no bucket: %v, want ErrNotFound", err)
	}
}

// Reading a folder never creates it.
func TestDirReadMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "none")
	d := NewDir(dir)
	ctx := testCtx(t)
	if _, err := d.List(ctx, "_manifests/"); !errors.Is(err, ErrNotFound) {
		t.Errorf("List of no folder: %v, want ErrNotFound", err)
	}
	if _, err := d.OpenFile(ctx, "a.parquet"); !errors.Is(err, ErrNotFound) {
		t.Errorf("OpenFile in no folder: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reading created the folder: %v", err)
	}
}
