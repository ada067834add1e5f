package normalize

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// A row group holds rowGroupRows rows, the bound of the writer's memory:
// one row more starts a second.
func TestParquetRowGroupRows(t *testing.T) {
	in := "Usage Amount\n" + strings.Repeat("1.00\n", rowGroupRows+1)
	var out bytes.Buffer
	if _, err := Usage(&out, strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var rows []int64
	for _, rg := range f.Metadata().RowGroups {
		rows = append(rows, rg.NumRows)
	}
	if len(rows) != 2 || rows[0] != rowGroupRows || rows[1] != 1 {
		t.Errorf("row groups of %v rows, want [%d 1]", rows, rowGroupRows)
	}
}

// Rows go to the encoder batchRows at a time, not one by one: the batch
// being filled holds every row ended since the last one was handed over.
func TestTableBatchRows(t *testing.T) {
	amount := slices.IndexFunc(usageColumns, func(c column) bool { return c.name == "usage_amount" })
	tb := newTable(io.Discard, usageFile())
	t.Cleanup(tb.stop)
	for n := 1; n <= 2*batchRows; n++ {
		tb.setInt64(amount, 100)
		if err := tb.end(); err != nil {
			t.Fatal(err)
		}
		if want := n % batchRows; tb.b.n != want {
			t.Fatalf("after %d rows the batch has %d, want %d", n, tb.b.n, want)
		}
	}
	if err := tb.close(); err != nil {
		t.Fatal(err)
	}
}
