package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Dir stores objects as files under a root folder, with the same keys as S3
// (the command-line tool's default). Each file is written to a temporary
// file in its folder, synced and renamed into place in Commit. Every file
// operation goes through an os.Root, so no symbolic link inside the folder
// leads a write outside it; files and folders are created 0666 and 0777
// less the process umask, as any command's. Metadata is not kept (the
// export's manifest lists what it wrote).
type Dir struct {
	dir string

	mu   sync.Mutex
	root *os.Root // opened on first use
}

// NewDir returns a sink writing under dir (created on first use).
func NewDir(dir string) *Dir { return &Dir{dir: dir} }

// open creates the folder if need be and opens it, once.
func (d *Dir) open() (*os.Root, error) { return d.openRoot(true) }

// openRoot opens the folder, once; create makes it first if it is missing.
// Without create, a missing folder is ErrNotFound: reading never creates one.
func (d *Dir) openRoot(create bool) (*os.Root, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.root != nil {
		return d.root, nil
	}
	if create {
		if err := os.MkdirAll(d.dir, 0o777); err != nil {
			return nil, err
		}
	}
	root, err := os.OpenRoot(d.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sink: folder %s: %w", d.dir, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	d.root = root
	return root, nil
}

// tmpPrefix starts the name of a file being written, until Commit.
const tmpPrefix = ".tmp-"

// Create starts the file of key as a temporary file in its folder.
func (d *Dir) Create(ctx context.Context, key string, opt Options) (Upload, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	root, err := d.open()
	if err != nil {
		return nil, fmt.Errorf("sink: create %s: %w", key, err)
	}
	dir := path.Dir(key)
	if err := root.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("sink: create %s: %w", key, err)
	}
	tmp := path.Join(dir, tmpPrefix+randomID())
	// 0666: the umask decides, as for any file a command writes.
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, fmt.Errorf("sink: create %s: %w", key, err)
	}
	return &dirUpload{d: d, root: root, ctx: ctx, key: key, tmp: tmp, f: f, digest: newDigest()}, nil
}

// Bucket is the folder written to: what an Object's Bucket says.
func (d *Dir) Bucket() string { return d.dir }

// ETag is the size and modification time of the file of key ("" if there
// is none): a file renamed into place has a new one.
func (d *Dir) ETag(_ context.Context, key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	root, err := d.open()
	if err != nil {
		return "", err
	}
	fi, err := root.Stat(key)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sink: stat %s: %w", key, err)
	}
	return etag(fi), nil
}

func etag(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.Size(), 10) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)
}

// Open reads the file of key: ErrNotFound if there is none. It does not
// create the folder.
func (d *Dir) Open(_ context.Context, key string) (io.ReadCloser, error) {
	f, err := d.openFile(key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// List returns the keys under prefix, sorted, leaving out uploads in
// progress; ErrNotFound if the folder itself does not exist.
func (d *Dir) List(ctx context.Context, prefix string) ([]string, error) {
	root, err := d.openRoot(false)
	if err != nil {
		return nil, err
	}
	// Walk the deepest folder the prefix names whole. A folder no key can
	// be in (a leading slash, an empty, "." or ".." segment) holds none,
	// as S3 answers: no key under it, no error.
	start := "."
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
		if ValidateKey(start) != nil {
			return nil, nil
		}
	}
	var keys []string
	err = fs.WalkDir(root.FS(), start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			// No such folder, or a file where a folder would be: nothing under prefix.
			if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
				return fs.SkipAll
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if e.Type().IsRegular() && strings.HasPrefix(p, prefix) && !strings.HasPrefix(e.Name(), tmpPrefix) {
			keys = append(keys, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sink: list %s: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// OpenFile opens the file of key for reading at any offset: ErrNotFound if
// there is none. It does not create the folder.
func (d *Dir) OpenFile(_ context.Context, key string) (File, error) {
	f, err := d.openFile(key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (d *Dir) openFile(key string) (*dirFile, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	root, err := d.openRoot(false)
	if err != nil {
		return nil, err
	}
	f, err := root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sink: open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sink: open %s: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sink: stat %s: %w", key, err)
	}
	return &dirFile{File: f, size: fi.Size()}, nil
}

type dirFile struct {
	*os.File
	size int64
}

func (f *dirFile) Size() int64 { return f.size }

// Delete removes the file of key; a key without one is no error.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	root, err := d.open()
	if err != nil {
		return err
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sink: delete %s: %w", key, err)
	}
	return syncDir(root, path.Dir(key))
}

type dirUpload struct {
	d    *Dir
	root *os.Root
	ctx  context.Context
	key  string
	tmp  string
	f    *os.File // nil once finished
	digest
	err error
}

func (u *dirUpload) Sum() (string, int64) { return u.sum() }

func (u *dirUpload) Write(p []byte) (int, error) {
	if u.f == nil {
		return 0, fmt.Errorf("sink: upload of %s is finished", u.key)
	}
	if u.err == nil {
		u.err = u.ctx.Err()
	}
	if u.err != nil {
		return 0, u.err
	}
	n, err := u.f.Write(p)
	u.add(p[:n])
	if err != nil {
		u.err = fmt.Errorf("sink: write %s: %w", u.key, err)
	}
	return n, u.err
}

// Commit syncs the temporary file and renames it over the key's.
func (u *dirUpload) Commit() (Object, error) {
	if u.f == nil {
		return Object{}, fmt.Errorf("sink: upload of %s is finished", u.key)
	}
	err := u.err
	if err == nil {
		err = u.ctx.Err()
	}
	if err == nil {
		err = u.f.Sync()
	}
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	u.f = nil
	if err == nil {
		err = u.root.Rename(u.tmp, u.key)
	}
	if err == nil {
		err = syncDir(u.root, path.Dir(u.key))
	}
	var fi fs.FileInfo
	if err == nil {
		fi, err = u.root.Stat(u.key)
	}
	if err != nil {
		u.root.Remove(u.tmp)
		return Object{}, fmt.Errorf("sink: commit %s: %w", u.key, err)
	}
	sha, n := u.sum()
	return Object{Bucket: u.d.dir, Key: u.key, Bytes: n, SHA256: sha, ETag: etag(fi)}, nil
}

// Abort removes the temporary file.
func (u *dirUpload) Abort() {
	if u.f == nil {
		return
	}
	u.f.Close()
	u.f = nil
	u.root.Remove(u.tmp)
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
