package export

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/period"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// faultyStore is a folder that fails what it is told to.
type faultyStore struct {
	*sink.Dir
	createFails error  // what every Create answers
	writeFails  string // key whose upload fails on its first Write
	commitFails string // key whose Commit fails
}

var errDisk = errors.New("disk on fire")

func (f *faultyStore) Create(ctx context.Context, key string, opt sink.Options) (sink.Upload, error) {
	if f.createFails != nil {
		return nil, f.createFails
	}
	u, err := f.Dir.Create(ctx, key, opt)
	if err != nil {
		return nil, err
	}
	return &faultyUpload{Upload: u, write: key == f.writeFails, commit: key == f.commitFails}, nil
}

type faultyUpload struct {
	sink.Upload
	write, commit bool
}

func (u *faultyUpload) Write(p []byte) (int, error) {
	if u.write {
		return 0, errDisk
	}
	return u.Upload.Write(p)
}

func (u *faultyUpload) Commit() (sink.Object, error) {
	if u.commit {
		u.Upload.Abort()
		return sink.Object{}, errDisk
	}
	return u.Upload.Commit()
}

// brokenReader yields n bytes of CSV rows, then a broken connection.
type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, strings.Repeat("Clusters,1.00\n", 1024))
	n = min(n, b.n)
	b.n -= n
	return n, nil
}

const (
	usageA = "Service,Usage Amount\nClusters,12.50\nStorage,0.25\n"
	usageB = "Service,Usage Amount\nClusters,13.50\n"
)

// The pair rule: both objects of a pair are written only when both streams
// ended cleanly, raw first; whatever breaks, a reader never finds a new raw
// file beside a normalized one made of another.
func TestStorePair(t *testing.T) {
	p := period.Month(2024, time.June)
	for _, tc := range []struct {
		name  string
		body  func() io.Reader
		fault func(f *faultyStore, raw, norm string)
		err   string // the error's name; "" for success
		// What the keys hold after: the raw CSV, and the usage the
		// normalized file was made of ("" for no file).
		raw, norm string
		warning   string
	}{
		{name: "a new month is written whole", body: func() io.Reader { return strings.NewReader(usageB) }, raw: usageB, norm: usageB},
		{name: "the same month again is skipped", body: func() io.Reader { return strings.NewReader(usageA) }, raw: usageA, norm: usageA},
		{name: "Atlas's stream breaks", body: func() io.Reader { return &brokenReader{n: 300 << 10} }, err: AtlasStreamBroken, raw: usageA, norm: usageA},
		{
			name: "writing the raw file fails", body: func() io.Reader { return strings.NewReader(usageB) },
			fault: func(f *faultyStore, raw, _ string) { f.writeFails = raw }, err: StorageError, raw: usageA, norm: usageA,
		},
		{
			name: "writing the normalized file fails", body: func() io.Reader { return strings.NewReader(usageB) },
			fault: func(f *faultyStore, _, norm string) { f.writeFails = norm }, err: StorageError, raw: usageA, norm: usageA,
		},
		{
			name: "committing the raw file fails", body: func() io.Reader { return strings.NewReader(usageB) },
			fault: func(f *faultyStore, raw, _ string) { f.commitFails = raw }, err: StorageError, raw: usageA, norm: usageA,
		},
		{
			// The raw file is new: the old normalized one must not stay beside it.
			name: "committing the normalized file fails", body: func() io.Reader { return strings.NewReader(usageB) },
			fault: func(f *faultyStore, _, norm string) { f.commitFails = norm }, err: StorageError, raw: usageB, norm: "",
		},
		{
			// No retry helps: a configuration error, nothing written.
			name: "the bucket is in another region", body: func() io.Reader { return strings.NewReader(usageB) },
			fault: func(f *faultyStore, _, _ string) {
				f.createFails = &sink.RegionError{Bucket: "b", Region: "eu-west-1", ClientRegion: "us-east-1"}
			},
			err: ConfigInvalid, raw: usageA, norm: usageA,
		},
		{
			name: "a file that cannot be normalized", body: func() io.Reader { return strings.NewReader("Service,Cost\nClusters,1\n") },
			raw: "Service,Cost\nClusters,1\n", norm: "", warning: tally.LayoutWarning,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			store := &faultyStore{Dir: sink.NewDir(dir)}
			exp := newExporter(t, nil)
			exp.Store = store
			ctx := context.Background()
			raw, norm := must(exp.Layout.Usage(orgA, p)), must(exp.Layout.NormalizedUsage(orgA, p))
			pr := pair{raw: raw, norm: norm, conv: normalize.Usage, meta: map[string]string{"source": sourceUsage}, entry: Entry{Source: sourceUsage}}
			store1 := func(body io.Reader) (stored, *Manifest, error) {
				mf := &jobManifest{e: exp, orgID: orgA, p: p}
				m, err := mf.get(ctx)
				if err != nil {
					t.Fatal(err)
				}
				s, err := exp.storePair(ctx, m, body, pr)
				mf.done(ctx, &err)
				return s, m, err
			}
			// The previous run.
			if _, _, err := store1(strings.NewReader(usageA)); err != nil {
				t.Fatal(err)
			}
			before := etags(t, exp, raw, norm)
			if tc.fault != nil {
				tc.fault(store, raw, norm)
			}
			s, m, err := store1(tc.body())
			if got := Name(err); err != nil && got != tc.err || err == nil && tc.err != "" {
				t.Fatalf("err = %v (%s), want %q", err, got, tc.err)
			}
			if tc.warning != "" && (s.warn == nil || s.warn.Name != tc.warning) {
				t.Errorf("warning = %v, want %s", s.warn, tc.warning)
			}
			if got := read(t, dir, raw); got != tc.raw {
				t.Errorf("raw key holds %q, want %q", got, tc.raw)
			}
			var want []byte
			if tc.norm != "" {
				var b bytes.Buffer
				if _, err := normalize.Usage(&b, strings.NewReader(tc.norm)); err != nil {
					t.Fatal(err)
				}
				want = b.Bytes()
			}
			if got := read(t, dir, norm); got != string(want) {
				t.Errorf("normalized key holds %d bytes, want the %d made of %q", len(got), len(want), tc.norm)
			}
			// Nothing half-written anywhere.
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if strings.Contains(path, ".tmp-") {
					t.Errorf("temporary file left: %s", path)
				}
				return err
			})
			// The manifest says what the keys hold; the same month again
			// wrote nothing.
			after := etags(t, exp, raw, norm)
			for i, key := range []string{raw, norm} {
				e, ok := m.Object(key)
				switch {
				case after[i] == "" && ok:
					t.Errorf("manifest lists %s, which is not there", key)
				case after[i] != "" && err == nil && (!ok || e.ETag != after[i]):
					t.Errorf("manifest entry %+v for %s, whose ETag is %s", e, key, after[i])
				}
			}
			if tc.name == "the same month again is skipped" {
				if !s.raw.Skipped || s.norm == nil || !s.norm.Skipped || !slices.Equal(before, after) {
					t.Errorf("objects %+v, ETags %v then %v: want both skipped, unchanged", s.objects(), before, after)
				}
			}
		})
	}
}

func etags(t *testing.T, exp *Exporter, keys ...string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		e, err := exp.Store.ETag(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func read(t *testing.T, dir, key string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, key))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// memUpload keeps what is written in memory.
type memUpload struct{ bytes.Buffer }

func (m *memUpload) Sum() (string, int64)         { return "", int64(m.Len()) }
func (m *memUpload) Commit() (sink.Object, error) { return sink.Object{}, nil }
func (m *memUpload) Abort()                       {}

// chunkReader returns at most n bytes per Read, as a network body does.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzStream: whatever Atlas sends, in whatever chunks, the raw upload gets
// it byte for byte, and the normalized one exactly what the normalizer
// makes of it, or the normalizer's warning.
func FuzzStream(f *testing.F) {
	for _, s := range []string{
		"", "h\n", usageA, "Invoice Number,65ab0c1d2e3f4a5b6c7d8e9f,\n\nDate,SKU,Amount\n2024-06-02,S,1.00\n", "a,\"b\n",
		"Invoice Number,1,\n\nnot,the,header\n", "Date,SKU,Amount\n06/01/2024,x,\"1,000.50\"\n,,\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	conv := func(w io.Writer, r io.Reader) (tally.Stats, error) {
		return normalize.Invoice(w, r, normalize.InvoiceInfo{ID: "65ab0c1d2e3f4a5b6c7d8e9f"})
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		var want bytes.Buffer
		wantSt, wantErr := conv(&want, bytes.NewReader(data))
		var raw, norm memUpload
		st, warn, err := stream(&chunkReader{r: bytes.NewReader(data), n: int(chunk) + 1}, &raw, &norm, conv, "raw", "norm")
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if !bytes.Equal(raw.Bytes(), data) {
			t.Fatalf("raw upload got %d bytes of the %d sent", raw.Len(), len(data))
		}
		if (warn != nil) != (wantErr != nil) {
			t.Fatalf("warning %v, the normalizer alone says %v", warn, wantErr)
		}
		if warn == nil && (!bytes.Equal(norm.Bytes(), want.Bytes()) || st.Rows != wantSt.Rows) {
			t.Fatalf("normalized upload differs from the normalizer's own output (%d rows, want %d)", st.Rows, wantSt.Rows)
		}
	})
}
