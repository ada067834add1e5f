package atlas

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
)

// gunzipped returns body decompressed if it starts with gzip's magic bytes,
// else body as it is (peeked, nothing lost). A report may come as a .csv.gz
// file (the spec's example is "invoice_abc123_focus.csv.gz"), served as
// application/gzip without a Content-Encoding, so net/http leaves it alone;
// callers want the CSV either way. A gzip stream that is corrupt or cut short
// is a *StreamError, as a cut body is.
func gunzipped(body io.ReadCloser, method, path string) (io.ReadCloser, error) {
	br := bufio.NewReader(body)
	magic, _ := br.Peek(2) // an error shows again on Read
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return struct {
			io.Reader
			io.Closer
		}{br, body}, nil
	}
	g := &gunzipBody{body: body, method: method, path: path}
	z, err := gzip.NewReader(br)
	if err != nil {
		body.Close()
		return nil, g.streamError(err)
	}
	g.z = z
	return g, nil
}

type gunzipBody struct {
	z            *gzip.Reader
	body         io.Closer
	method, path string
	n            int64 // bytes decompressed
}

func (g *gunzipBody) Read(p []byte) (int, error) {
	n, err := g.z.Read(p)
	g.n += int64(n)
	if err != nil && err != io.EOF {
		err = g.streamError(err)
	}
	return n, err
}

func (g *gunzipBody) Close() error { return g.body.Close() }

func (g *gunzipBody) streamError(err error) error {
	if IsStreamBroken(err) {
		return err // the body itself broke; it says so already
	}
	return &StreamError{Method: g.method, Path: g.path, Read: g.n, Err: fmt.Errorf("gunzip: %w", err)}
}
