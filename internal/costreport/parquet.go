package costreport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/parquet-go/parquet-go"

	"github.com/atlas-billing-export/atlas-billing-export/internal/normalize"
)

// The columns the report reads of each normalized dataset (internal/normalize
// writes them; template.yaml's Glue tables describe them). Only these are
// read from a file: a Parquet reader reads a column's chunks alone. Each
// field's type must be the file's column type exactly (checkColumns), so a
// decimal is read at the scale it was written with.
type usageRow struct {
	OrgName     string `parquet:"organization_name,optional"`
	ProjectID   string `parquet:"project_id,optional"`
	ProjectName string `parquet:"project_name,optional"`
	ClusterID   string `parquet:"cluster_id,optional"`
	ClusterName string `parquet:"cluster_name,optional"`
	Service     string `parquet:"service,optional"`
	Amount      int64  `parquet:"usage_amount,decimal(2:18)"` // cents: normalize.CentsScale
}

type lineItemRow struct {
	OrgName string `parquet:"organization_name,optional"`
	Amount  int64  `parquet:"amount,decimal(2:18)"`
}

type focusRow struct {
	BilledCost *[16]byte `parquet:"billedcost,decimal(24:38),optional"` // normalize.DecimalScale
	Currency   string    `parquet:"billingcurrency,optional"`
}

// The scales of the decimals above, as the normalizer writes them.
const (
	centsScale   = normalize.CentsScale
	decimalScale = normalize.DecimalScale
)

// readBuffer is what a column is read in at once: fewer, larger reads,
// which S3 (a ranged GET each) needs.
const readBuffer = 1 << 20

// readRows calls fn for each row of the Parquet file f holds, reading only
// T's columns; it returns the rows read.
func readRows[T any](ctx context.Context, f io.ReaderAt, size int64, fn func(*T)) (int64, error) {
	pf, err := parquet.OpenFile(f, size, parquet.ReadBufferSize(readBuffer), parquet.OptimisticRead(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return 0, fmt.Errorf("not a Parquet file: %w", err)
	}
	if err := checkColumns[T](pf.Schema()); err != nil {
		return 0, err
	}
	r := parquet.NewGenericReader[T](pf)
	defer r.Close()
	buf := make([]T, 1024)
	var rows int64
	for {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		n, err := r.Read(buf)
		for i := range buf[:n] {
			fn(&buf[i])
		}
		rows += int64(n)
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("reading Parquet: %w", err)
		}
	}
}

// checkColumns makes sure the file has each of T's columns with T's type:
// the same physical and logical type (a decimal's precision and scale).
func checkColumns[T any](file *parquet.Schema) error {
	want := parquet.SchemaOf(new(T))
	for _, path := range want.Columns() {
		w, _ := want.Lookup(path...)
		got, ok := file.Lookup(path...)
		if !ok {
			return fmt.Errorf("no column %s", path[0])
		}
		if gt, wt := got.Node.Type(), w.Node.Type(); gt.Kind() != wt.Kind() || gt.String() != wt.String() {
			return fmt.Errorf("column %s is %s %s, want %s %s", path[0], gt.Kind(), gt, wt.Kind(), wt)
		}
	}
	return nil
}

// decimal128 is a DECIMAL(38,x)'s 16 bytes (big-endian two's complement)
// as an integer.
func decimal128(b *[16]byte) *big.Int {
	u := new(big.Int).SetBytes(b[:])
	if b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), 128))
	}
	return u
}
