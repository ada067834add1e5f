package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// metaDir is the folder under a Dir's root holding each object's metadata.
const metaDir = ".meta"

// Dir stores objects as files under a root folder, with the same keys as S3
// (the command-line tool's default). Each file is written to a temporary
// file in its folder, synced and renamed into place; its metadata goes to
// {root}/.meta/{key}.json. Every file operation goes through an os.Root, so
// no symbolic link inside the folder leads a write outside it; files and
// folders are created 0666 and 0777 less the process umask, as any tool's.
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
	root, err := d.open()
	if err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	defer root.Close()
	obj, err := d.put(ctx, root, p)
	if err != nil {
		return Object{}, fmt.Errorf("sink: put %s: %w", p.Key, err)
	}
	return obj, nil
}

// open creates the root folder if need be and opens it.
func (d *Dir) open() (*os.Root, error) {
	if err := os.MkdirAll(d.root, 0o777); err != nil {
		return nil, err
	}
	return os.OpenRoot(d.root)
}

func (d *Dir) put(ctx context.Context, root *os.Root, p Put) (Object, error) {
	metaPath := path.Join(metaDir, p.Key+".json")
	if err := root.MkdirAll(path.Dir(p.Key), 0o777); err != nil {
		return Object{}, err
	}
	tmp, body, err := writeTemp(ctx, root, path.Dir(p.Key), p.Body)
	if err != nil {
		return Object{}, err
	}
	defer root.Remove(tmp) // gone after the rename; removes it on every other path

	sum := body.sum()
	meta, err := p.metadata(sum)
	if err != nil {
		return Object{}, err
	}
	obj := Object{Bucket: d.root, Key: p.Key, Bytes: body.n, SHA256: sum, Rows: rows(meta)}

	if stored, ok := readMeta(root, metaPath); ok && sameContent(stored.Metadata, meta) && stored.Bytes == body.n {
		if fi, err := root.Stat(p.Key); err == nil && fi.Mode().IsRegular() && fi.Size() == body.n {
			obj.Skipped = true
			return obj, nil
		}
	}

	// Drop the old metadata first: a crash between the rename and the new
	// metadata then leaves no metadata (rewritten next run), never metadata
	// that vouches for other bytes.
	if err := root.Remove(metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Object{}, err
	}
	if err := root.Rename(tmp, p.Key); err != nil {
		return Object{}, err
	}
	if err := syncDir(root, path.Dir(p.Key)); err != nil {
		return Object{}, err
	}
	b, err := json.MarshalIndent(dirMeta{SHA256: sum, Bytes: body.n, ContentType: p.ContentType, Metadata: meta}, "", "  ")
	if err != nil {
		return Object{}, err
	}
	if err := writeFileAtomic(root, metaPath, b); err != nil {
		return Object{}, fmt.Errorf("metadata: %w", err)
	}
	return obj, nil
}

// writeTemp streams r into a new temporary file in dir, synced and closed,
// and returns its name (under root).
func writeTemp(ctx context.Context, root *os.Root, dir string, r io.Reader) (string, *hashingReader, error) {
	name := path.Join(dir, ".tmp-"+randomID())
	// 0666: the umask decides, as for any file a command writes.
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return "", nil, err
	}
	body := newHashingReader(ctx, r)
	_, err = io.Copy(f, body)
	if body.err != nil {
		err = fmt.Errorf("read body: %w", body.err)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		root.Remove(name)
		return "", nil, err
	}
	return name, body, nil
}

func readMeta(root *os.Root, name string) (dirMeta, bool) {
	var m dirMeta
	b, err := root.ReadFile(name)
	if err != nil || json.Unmarshal(b, &m) != nil {
		return m, false
	}
	if m.Metadata == nil {
		return m, false
	}
	m.Metadata[MetaSHA256] = m.SHA256
	return m, true
}

func writeFileAtomic(root *os.Root, name string, b []byte) error {
	dir := path.Dir(name)
	if err := root.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	tmp, _, err := writeTemp(context.Background(), root, dir, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	if err := root.Rename(tmp, name); err != nil {
		root.Remove(tmp)
		return err
	}
	return syncDir(root, dir)
}

// syncDir makes a rename in dir durable.
func syncDir(root *os.Root, dir string) error {
	f, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
