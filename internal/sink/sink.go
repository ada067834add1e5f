// Package sink stores streamed exports under their final keys: in S3 (S3)
// or in a local folder with the same keys (Dir). An object is written
// through an Upload: its bytes go out as they come (multipart parts, a
// temporary file) and nothing shows under the key until Commit, which puts
// the whole object there at once; Abort leaves the key as it was. A caller
// writing objects that go together (a file and its normalized form)
// commits them only once every stream has ended (internal/export).
package sink

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"unicode/utf8"
)

// Object describes a stored object.
type Object struct {
	Bucket  string `json:"bucket"` // for Dir: its root folder
	Key     string `json:"key"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"` // hex
	Rows    int64  `json:"rows"`   // set by the caller: data rows, headers excluded
	Skipped bool   `json:"skipped"`
	// ETag tells one stored version of the key from another: S3's entity
	// tag, or a file's size and modification time.
	ETag string `json:"-"`
}

// Options is what an object carries besides its bytes, known before them.
type Options struct {
	ContentType string
	// Metadata is S3 user metadata (x-amz-meta-*): lower-case names,
	// printable ASCII values, 2 KiB in all. A folder keeps none.
	Metadata map[string]string
}

// Upload is an object being written. Its bytes stream out as they are
// written; what the key holds changes only in Commit.
type Upload interface {
	io.Writer
	// Sum is the hex SHA-256 and the size of what was written so far.
	Sum() (sha string, n int64)
	// Commit puts what was written under the key, whole; on error the key
	// holds what it held before. The upload is finished either way.
	Commit() (Object, error)
	// Abort drops what was written: the key keeps what it held. It may
	// follow a failed Commit, or another Abort.
	Abort()
}

// File is an object opened for reading at any offset, as a Parquet reader
// reads: its footer first, then the columns it needs.
type File interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// ErrNotFound is the error of Open for a key that holds no object, and of
// List for a folder or bucket that does not exist.
var ErrNotFound = errors.New("sink: no such object")

// maxMetaBytes is S3's limit on user-defined metadata (keys plus values).
const maxMetaBytes = 2 << 10

// ValidateKey reports whether key is safe to use as an object key and as a
// relative file path: not empty, at most 1024 bytes of UTF-8, no leading or
// trailing "/", no empty, "." or ".." segments, no backslashes or control
// characters.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return errors.New("sink: empty key")
	case len(key) > 1024:
		return fmt.Errorf("sink: key longer than 1024 bytes (%d)", len(key))
	case !utf8.ValidString(key):
		return errors.New("sink: key is not valid UTF-8")
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("sink: key %q starts with /", key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\\' {
			return fmt.Errorf("sink: key %q contains the character %U", key, r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("sink: key %q has an empty segment", key)
		case ".", "..":
			return fmt.Errorf("sink: key %q has a %q segment", key, seg)
		}
	}
	return nil
}

// validate checks the metadata as S3 takes it.
func (o Options) validate() error {
	size := 0
	for k, v := range o.Metadata {
		if !validMetaKey(k) {
			return fmt.Errorf("sink: metadata key %q: want lower-case letters, digits and '-'", k)
		}
		for _, r := range v {
			if r < 0x20 || r > 0x7e {
				// S3 metadata travels in HTTP headers: keep it printable ASCII.
				return fmt.Errorf("sink: metadata %q: value has the character %U (printable ASCII only)", k, r)
			}
		}
		size += len(k) + len(v)
	}
	if size > maxMetaBytes {
		return fmt.Errorf("sink: metadata is %d bytes, over S3's %d", size, maxMetaBytes)
	}
	return nil
}

func validMetaKey(k string) bool {
	if k == "" || k[0] == '-' {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// digest is the SHA-256 and size of the bytes written to it.
type digest struct {
	h hash.Hash
	n int64
}

func newDigest() digest { return digest{h: sha256.New()} }

func (d *digest) add(p []byte) {
	d.h.Write(p)
	d.n += int64(len(p))
}

func (d *digest) sum() (string, int64) { return hex.EncodeToString(d.h.Sum(nil)), d.n }

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
