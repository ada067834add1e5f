// Package sink stores streamed exports: to S3 through a staging key and a
// server-side copy (S3), or to a local folder with the same keys (Dir). A
// final key only ever holds a complete object, and storing the same content
// again is skipped.
package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Object describes a stored object.
type Object struct {
	Bucket  string `json:"bucket"` // for Dir: its root folder
	Key     string `json:"key"`
	Bytes   int64  `json:"bytes"`
	SHA256  string `json:"sha256"` // hex
	Rows    int64  `json:"rows"`   // from the "rows" metadata, if the caller set it
	Skipped bool   `json:"skipped"`
}

// Put is one object to store.
type Put struct {
	Key  string
	Body io.Reader
	// Meta is called after Body was fully read, so it can include counts
	// computed while streaming. The sink adds "sha256".
	Meta        func() map[string]string
	ContentType string
}

// MetaSHA256 is the metadata key holding the content's hex SHA-256.
const MetaSHA256 = "sha256"

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

// metadata calls p.Meta, checks the result and adds the sha256.
func (p Put) metadata(sum string) (map[string]string, error) {
	m := map[string]string{}
	if p.Meta != nil {
		maps.Copy(m, p.Meta())
	}
	m[MetaSHA256] = sum
	size := 0
	for k, v := range m {
		if !validMetaKey(k) {
			return nil, fmt.Errorf("sink: metadata key %q: want lower-case letters, digits and '-'", k)
		}
		for _, r := range v {
			if r < 0x20 || r > 0x7e {
				// S3 metadata travels in HTTP headers: keep it printable ASCII.
				return nil, fmt.Errorf("sink: metadata %q: value has the character %U (printable ASCII only)", k, r)
			}
		}
		size += len(k) + len(v)
	}
	if size > maxMetaBytes {
		return nil, fmt.Errorf("sink: metadata is %d bytes, over S3's %d", size, maxMetaBytes)
	}
	return m, nil
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

// rows reads the caller's "rows" metadata, if any.
func rows(meta map[string]string) int64 {
	n, _ := strconv.ParseInt(meta["rows"], 10, 64)
	return n
}

// sameContent is the skip rule: the stored object has our sha256 and the
// same value for every metadata key we would write (so a changed invoice
// status with identical bytes still updates the object).
func sameContent(stored, want map[string]string) bool {
	if stored[MetaSHA256] == "" {
		return false
	}
	for k, v := range want {
		if stored[k] != v {
			return false
		}
	}
	return true
}

// hashingReader computes the SHA-256 and size of what passes through it and
// remembers the body's own error, so that it can be reported (wrapped) even
// when a library flattens it into a string. It stops when ctx is done.
type hashingReader struct {
	ctx context.Context
	r   io.Reader
	h   hash.Hash
	n   int64
	err error // first error from r other than io.EOF
}

func newHashingReader(ctx context.Context, r io.Reader) *hashingReader {
	return &hashingReader{ctx: ctx, r: r, h: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	if err := h.ctx.Err(); err != nil {
		h.err = err
		return 0, err
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.h.Sum(nil)) }
