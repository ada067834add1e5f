package export

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

// chunkReader returns at most n bytes per Read, as a network body does.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// FuzzRowCounters checks the row counting that runs while a CSV streams to
// S3: the bytes pass through unchanged, the count does not depend on how the
// body is chunked, and a CSV that does not parse fails the upload.
func FuzzRowCounters(f *testing.F) {
	for _, s := range []string{
		"", "\n", "h\n", "h1,h2\n1,\"a,\nb\"\n2,c\n", "h\r\n1\r\n2", "a,\"b\n", "a,b\"c\n", "\"\"\"\"\n\n\n",
		"Invoice Number,666acb8787ba43606905dcae,\nBilling Period,\"June 1, 2024 - July 1, 2024\",\n\n" +
			strings.Join(atlassim.InvoiceColumns, ",") + "\n06/01/2024,06/01/2024,x,,Org,id,P,pid,SKU,US_EAST_1,c,,,,hours,0.10,24,0,2.40\n,,,\n",
		"\ufeff" + strings.Join(atlassim.InvoiceColumns, ",") + ",,\r\n1\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		lines := int64(bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1)
		// At most about 256 reads per input: each read is a hand-over to the
		// counting goroutine, and one-byte reads of a large input only slow
		// the fuzzer down.
		size := max(int(chunk)+1, len(data)/256+1)
		var csvRows, invRows int64 = -1, -1
		for _, c := range []struct {
			name  string
			count rowCounter
			rows  *int64
		}{{"countCSVRows", countCSVRows, &csvRows}, {"invoiceLineItems", invoiceLineItems, &invRows}} {
			want, wantErr := c.count(bytes.NewReader(data))
			if want < 0 || want > lines {
				t.Fatalf("%s = %d for %d lines", c.name, want, lines)
			}
			src := newCountingSource(&chunkReader{r: bytes.NewReader(data), n: size}, c.count)
			got, err := io.ReadAll(src)
			src.finish(errors.New("done"))
			if wantErr != nil {
				if err == nil || src.countErr == nil {
					t.Fatalf("%s fails (%v) but the stream did not: %v", c.name, wantErr, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: stream failed: %v", c.name, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: the stream changed the bytes", c.name)
			}
			if src.rows != want {
				t.Fatalf("%s: %d rows streamed in chunks of %d, %d at once", c.name, src.rows, size, want)
			}
			*c.rows = want
		}
		if csvRows >= 0 && invRows > csvRows {
			t.Fatalf("%d line items but only %d CSV rows", invRows, csvRows)
		}
	})
}
