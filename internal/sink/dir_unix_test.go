//go:build unix

package sink

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// umask is the process's file mode creation mask.
func umask() fs.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m)
}

// Files get 0666 and folders 0777, less the umask, as with any command.
func TestDirUmask(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
	for _, mask := range []int{0o022, 0o027, 0o002, 0o077} {
		syscall.Umask(mask)
		root := t.TempDir()
		const key = "atlas-billing/usage/org_id=5f1a2b3c4d5e6f7a8b9c0d1e/usage.csv"
		if _, err := put(testCtx(t), NewDir(root), key, strings.NewReader("a\n"), Options{}); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]fs.FileMode{
			key:                   0o666 &^ fs.FileMode(mask),
			"atlas-billing/usage": fs.ModeDir | 0o777&^fs.FileMode(mask),
		} {
			fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
				t.Errorf("umask %#o: %s has mode %v, want %v", mask, name, got, want)
			}
		}
	}
}

// A symbolic link inside the output folder never leads a write outside it:
// not a folder of a key, not the key itself.
func TestDirSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	target := filepath.Join(outside, "target.csv")
	if err := os.WriteFile(target, []byte("not yours\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, link, to, key string
		fails               bool
	}{
		{"folder of the key", "atlas-billing", outside, "atlas-billing/usage/usage.csv", true},
		{"a deeper folder", "usage", outside, "usage/org_id=x/usage.csv", true},
		{"parent of the root", "up", "..", "up/usage.csv", true},
		// Renamed over: the link is replaced, what it pointed to is untouched.
		{"the key itself", "usage.csv", target, "usage.csv", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.Symlink(tt.to, filepath.Join(root, tt.link)); err != nil {
				t.Fatal(err)
			}
			_, err := put(testCtx(t), NewDir(root), tt.key, strings.NewReader("a,b\n1,2\n"), Options{})
			if tt.fails && err == nil {
				t.Errorf("Put(%s) through a link to %s succeeded", tt.key, tt.to)
			}
			if !tt.fails && err != nil {
				t.Errorf("Put(%s): %v", tt.key, err)
			}
			var pe *fs.PathError
			if tt.fails && !errors.As(err, &pe) {
				t.Errorf("error %v is not the file system's refusal", err)
			}
			entries, err := os.ReadDir(outside)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != "target.csv" {
				t.Errorf("the folder outside holds %v, want only target.csv", entries)
			}
			if b, _ := os.ReadFile(target); string(b) != "not yours\n" {
				t.Errorf("the file outside was changed: %q", b)
			}
			if entries, _ := os.ReadDir(filepath.Dir(root)); len(entries) != 1 {
				t.Errorf("the root's parent holds %d entries, want the root only", len(entries))
			}
		})
	}
}

// List never lists a file outside the folder through a symbolic link in it,
// whatever the prefix: the link's folder is refused or not followed.
func TestDirListSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"target.csv", "sub/x.csv"} {
		if err := os.WriteFile(filepath.Join(outside, f), []byte("not yours\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	d := NewDir(root)
	ctx := testCtx(t)
	if _, err := put(ctx, d, "p/in.csv", strings.NewReader("a\n"), Options{}); err != nil {
		t.Fatal(err)
	}
	for link, to := range map[string]string{"p/out": outside, "up": "..", "abs": "/"} {
		if err := os.Symlink(to, filepath.Join(root, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	// Walking past a link does not follow it.
	for _, prefix := range []string{"", "p/"} {
		if keys, err := d.List(ctx, prefix); err != nil || len(keys) != 1 || keys[0] != "p/in.csv" {
			t.Errorf("List(%q) = %q, %v; want [p/in.csv]", prefix, keys, err)
		}
	}
	// Starting in one is refused, or finds nothing.
	for _, prefix := range []string{"p/out", "p/out/", "p/out/sub/", "up/", "abs/", "abs/etc/"} {
		if keys, _ := d.List(ctx, prefix); len(keys) > 0 {
			t.Errorf("List(%q) lists %q, outside the folder", prefix, keys)
		}
	}
}
