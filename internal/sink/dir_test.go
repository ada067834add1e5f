package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

func readDirMeta(t *testing.T, root, key string) dirMeta {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".meta", filepath.FromSlash(key)+".json"))
	if err != nil {
		t.Fatalf("metadata of %s: %v", key, err)
	}
	var m dirMeta
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("metadata of %s: %v", key, err)
	}
	return m
}

func TestDirRoundTrip(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"small", 3000},
		{"12 MiB", 12 * MiB},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "atlas-billing/usage/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-0" + strconv.Itoa(i+1) + "/usage.csv"
			body := csvData(tt.size, uint64(i))
			lc := &lineCounter{r: reader(body)}
			obj, err := d.Put(testCtx(t), Put{Key: key, Body: lc, ContentType: "text/csv", Meta: lc.meta(map[string]string{"org-id": "5f1a2b3c4d5e6f7a8b9c0d1e"})})
			if err != nil {
				t.Fatal(err)
			}
			rows := int64(bytes.Count(body, []byte{'\n'}))
			want := Object{Bucket: root, Key: key, Bytes: int64(tt.size), SHA256: hexSHA(body), Rows: rows}
			if obj != want {
				t.Errorf("Object = %+v, want %+v", obj, want)
			}
			path := filepath.Join(root, filepath.FromSlash(key))
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("file holds %d bytes (%v), want the %d sent", len(got), err, len(body))
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o666&^umask() {
				t.Errorf("mode %v, want %v (0666 less the umask)", fi.Mode().Perm(), 0o666&^umask())
			}
			m := readDirMeta(t, root, key)
			if m.SHA256 != hexSHA(body) || m.Bytes != int64(tt.size) || m.ContentType != "text/csv" || m.Metadata["org-id"] != "5f1a2b3c4d5e6f7a8b9c0d1e" || m.Metadata["rows"] != strconv.FormatInt(rows, 10) {
				t.Errorf("metadata = %+v", m)
			}
		})
	}
	for _, f := range files(t, root) {
		if strings.Contains(f, ".tmp-") {
			t.Errorf("temporary file left: %s", f)
		}
	}
}

func TestDirSkipAndOverwrite(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	ctx := testCtx(t)
	const key = "invoices/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/billing_month=2024-06/invoice_id=65ab.csv"
	path := filepath.Join(root, filepath.FromSlash(key))
	a, b := csvData(200<<10, 1), csvData(200<<10, 2)
	if _, err := d.Put(ctx, Put{Key: key, Body: reader(a)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		body        []byte
		status      string
		dropMeta    bool // as after a crash between rename and metadata
		wantSkipped bool
	}{
		{"same content is skipped", a, "", false, true},
		{"changed content is written", b, "", false, false},
		{"changed metadata is written", b, "PAID", false, false},
		{"same content without metadata is written", b, "PAID", true, false},
		{"same content is skipped again", b, "PAID", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.dropMeta {
				os.Remove(filepath.Join(root, ".meta", filepath.FromSlash(key)+".json"))
			}
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			meta := func() map[string]string {
				if tt.status == "" {
					return nil
				}
				return map[string]string{"invoice-status": tt.status}
			}
			obj, err := d.Put(ctx, Put{Key: key, Body: reader(tt.body), Meta: meta})
			if err != nil {
				t.Fatal(err)
			}
			if obj.Skipped != tt.wantSkipped || obj.SHA256 != hexSHA(tt.body) {
				t.Errorf("Object = %+v, want Skipped=%v", obj, tt.wantSkipped)
			}
			after, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			// A skipped Put leaves the very same file; a write renames a new one in.
			if same := os.SameFile(before, after); same != tt.wantSkipped {
				t.Errorf("same file after Put = %v, want %v", same, tt.wantSkipped)
			}
			if tt.wantSkipped && !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("skipped file's ModTime changed")
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tt.body) {
				t.Error("file does not hold the expected bytes")
			}
			if m := readDirMeta(t, root, key); m.SHA256 != hexSHA(tt.body) || m.Metadata["invoice-status"] != tt.status {
				t.Errorf("metadata = %+v", m)
			}
		})
	}
}

func TestDirBodyFails(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	body := data(8*MiB, 3)
	old := []byte("previous export\n")
	tests := []struct {
		name     string
		existing bool
	}{
		{"new key", false},
		{"over an existing file", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "exports/" + strconv.Itoa(i) + ".csv"
			path := filepath.Join(root, filepath.FromSlash(key))
			if tt.existing {
				if _, err := d.Put(testCtx(t), Put{Key: key, Body: bytes.NewReader(old)}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := d.Put(testCtx(t), Put{Key: key, Body: failAfter(body, 5*MiB, errBoom)})
			if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), key) {
				t.Fatalf("Put error = %v, want one naming the key and wrapping the body's error", err)
			}
			got, err := os.ReadFile(path)
			switch {
			case tt.existing && !bytes.Equal(got, old):
				t.Errorf("existing file changed (%d bytes, %v)", len(got), err)
			case !tt.existing && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("final file exists after a failed Put (%d bytes)", len(got))
			}
			for _, f := range files(t, root) {
				if strings.Contains(f, ".tmp-") {
					t.Errorf("temporary file left: %s", f)
				}
			}
		})
	}
}

func TestDirContextCancelled(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(testCtx(t))
	_, err := NewDir(root).Put(ctx, Put{Key: "k.csv", Body: &cancelReader{r: reader(data(4*MiB, 4)), n: MiB, cancel: cancel}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put error = %v, want context.Canceled", err)
	}
	if f := files(t, root); len(f) != 0 {
		t.Errorf("files left: %v", f)
	}
}

func TestDirRejects(t *testing.T) {
	root := t.TempDir()
	d := NewDir(root)
	for _, key := range []string{"../escape.csv", "a/../../b", "/etc/passwd", ".meta/x.json", ".meta", "a//b", "a\x00b"} {
		if _, err := d.Put(testCtx(t), Put{Key: key, Body: strings.NewReader("x")}); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
	}
	if f := files(t, filepath.Dir(root)); len(f) != 0 {
		t.Errorf("files written: %v", f)
	}
}
