package normalize_test

import (
	"bytes"
	"compress/gzip"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
	"github.com/atlas-billing-export/atlas-billing-export/internal/tally"
)

// gzipOfField is a FOCUS report, gzipped, whose second record is one quoted
// field of size bytes: a few hundred KiB on the wire.
func gzipOfField(t *testing.T, size int) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	chunk := []byte(strings.Repeat("x", 1<<20))
	_, err := zw.Write([]byte("BilledCost,ServiceName\n1.00,\"a\"\n2.00,\""))
	for written := 0; err == nil && written < size; written += len(chunk) {
		_, err = zw.Write(chunk)
	}
	if err == nil {
		_, err = zw.Write([]byte("\"\n"))
	}
	if err != nil || zw.Close() != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// A hostile report, a 400 MiB quoted field gzipped to about 400 KiB, ends
// in the named warning with the heap under 64 MiB: the reader stops at
// MaxRecordBytes. Not parallel: the heap is the process's.
func TestFocusHugeFieldGzipped(t *testing.T) {
	gz := gzipOfField(t, 400<<20)
	t.Logf("%d KiB gzipped", len(gz)>>10)
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	stop := heapPeak(t)
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	var out countWriter
	st, err := normalize.Focus(&out, zr)
	peak := stop()
	if w := tally.AsWarning(err); w == nil || w.Name != tally.TooLargeWarning || !strings.Contains(err.Error(), "record 2") {
		t.Errorf("err = %v, want the %s warning at record 2", err, tally.TooLargeWarning)
	}
	t.Logf("%v; %d rows; heap peak %d KiB", err, st.Rows, peak>>10)
	if peak > 64<<20 {
		t.Errorf("heap peaked at %d MiB, want < 64 MiB", peak>>20)
	}
}
