package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// metaDir is the folder under a Dir's root holding each object's metadata.
const metaDir = ".meta"

// Dir stores objects as files under a root folder, with the same keys as S3
// (the command-line tool's default). Each file is written to a temporary
// file in its folder, synced and renamed into place; its metadata goes to
// {root}/.meta/{key}.json.
type Dir struct {
	root string
}

// NewDir returns a sink writing under root (created on first Put).
func NewDir(root string) *Dir { return &Dir{root: root} }

type dirMeta struct {
	SHA256      string            `json:"sha256"`
	Bytes       int64             `json:"bytes"`
	ContentType string            `json:"contentType,omitempty"`
	Metadata    map[string]string `json:"metadata"`
}

// Put stores p under root/p.Key, skipping it when the stored metadata has the
// same sha256 (and metadata) and the file is there. On error the final file is
// unchanged and no temporary file is left.
func (d *Dir) Put(ctx context.Context, p Put) (Object, error) {
	if err := ValidateKey(p.Key); err != nil {
		return Object{}, err
	}
	if p.Key == metaDir || strings.HasPrefix(p.Key, metaDir+"/") {
		return Object{}, fmt.Errorf("sink: key %q is under the metadata folder", p.Key)
	}
	if p.Body == nil {
		return Object{}, fmt.Errorf("sink: put %s: no body", p.Key)
	}
	final := filepath.Join(d.root, filepath.FromSlash(p.Key))
	metaPath := filepath.Join(d.root, metaDir, filepath.FromSlash(p.Key)+".json")
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}

	tmp, body, err := writeTemp(ctx, filepath.Dir(final), p.Body)
	if err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	defer os.Remove(tmp) // gone after the rename; removes it on every other path

	sum := body.sum()
	meta, err := p.metadata(sum)
	if err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	obj := Object{Bucket: d.root, Key: p.Key, Bytes: body.n, SHA256: sum, Rows: rows(meta)}

	if stored, ok := readMeta(metaPath); ok && sameContent(stored.Metadata, meta) && stored.Bytes == body.n {
		if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == body.n {
			obj.Skipped = true
			return obj, nil
		}
	}

	// Drop the old metadata first: a crash between the rename and the new
	// metadata then leaves no metadata (rewritten next run), never metadata
	// that vouches for other bytes.
	if err := os.Remove(metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	b, err := json.MarshalIndent(dirMeta{SHA256: sum, Bytes: body.n, ContentType: p.ContentType, Metadata: meta}, "", "  ")
	if err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	if err := writeFileAtomic(metaPath, b); err != nil {
		return Object{}, fmt.Errorf("sink: put %s: metadata: %w", p.Key, err)
	}
	return obj, nil
}

// writeTemp streams r into a new temporary file in dir, synced and closed.
func writeTemp(ctx context.Context, dir string, r io.Reader) (string, *hashingReader, error) {
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", nil, err
	}
	body := newHashingReader(ctx, r)
	_, err = io.Copy(f, body)
	if body.err != nil {
		err = fmt.Errorf("read body: %w", body.err)
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", nil, err
	}
	return f.Name(), body, nil
}

func readMeta(path string) (dirMeta, bool) {
	var m dirMeta
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	if m.Metadata == nil {
		return m, false
	}
	m.Metadata[MetaSHA256] = m.SHA256
	return m, true
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, _, err := writeTemp(context.Background(), dir, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
