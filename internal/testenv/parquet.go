package testenv

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// ParquetRows reads a Parquet file as text, for tests to compare: the first
// row is the column names, then one row per record. A value is written as
// a person reads it: NULL as "", a decimal without trailing zeros ("24"
// for 24.00, "0.0000006035"), a date as 2006-01-02, a timestamp as RFC 3339
// in UTC, a map as a JSON object (keys sorted). It fails t if b is not a
// Parquet file or has a column of another shape.
func ParquetRows(t testing.TB, b []byte) [][]string {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a Parquet file: %v", err)
	}
	fields := f.Schema().Fields()
	header := make([]string, len(fields))
	for i, fl := range fields {
		header[i] = fl.Name()
	}
	out := [][]string{header}
	r := parquet.NewReader(f)
	defer r.Close()
	leaves := f.Schema().Columns() // leaf paths, in column index order
	rows := make([]parquet.Row, 64)
	for {
		n, err := r.ReadRows(rows)
		for _, row := range rows[:n] {
			byLeaf := make([][]parquet.Value, len(leaves))
			row.Range(func(col int, vs []parquet.Value) bool {
				byLeaf[col] = vs
				return true
			})
			rec := make([]string, len(fields))
			leaf := 0
			for i, fl := range fields {
				if fl.Leaf() {
					rec[i] = parquetText(t, fl, byLeaf[leaf][0])
					leaf++
					continue
				}
				// A map: key_value { key, value }.
				keys, vals := byLeaf[leaf], byLeaf[leaf+1]
				leaf += 2
				m := map[string]string{}
				for j, k := range keys {
					if !k.IsNull() {
						m[k.String()] = vals[j].String()
					}
				}
				j, _ := json.Marshal(m)
				rec[i] = string(j)
			}
			out = append(out, rec)
		}
		if err != nil {
			break
		}
	}
	return out
}

func parquetText(t testing.TB, n parquet.Node, v parquet.Value) string {
	t.Helper()
	if v.IsNull() {
		return ""
	}
	var lt format.LogicalTypeValue
	if l := n.Type().LogicalType(); l != nil {
		lt = l.Value
	}
	switch lt := lt.(type) {
	case *format.DecimalType:
		var u *big.Int
		if v.Kind() == parquet.FixedLenByteArray {
			u = twosComplement(v.ByteArray())
		} else {
			u = big.NewInt(v.Int64())
		}
		return decimalText(u, int(lt.Scale))
	case *format.DateType:
		return time.Unix(int64(v.Int32())*86400, 0).UTC().Format(time.DateOnly)
	case *format.TimestampType:
		return time.UnixMilli(v.Int64()).UTC().Format(time.RFC3339Nano)
	case *format.StringType:
		return string(v.ByteArray())
	}
	t.Fatalf("column %s: no text form for %v", n.Type(), v)
	return ""
}

func twosComplement(b []byte) *big.Int {
	u := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return u
}

// decimalText is u / 10^scale without trailing zeros.
func decimalText(u *big.Int, scale int) string {
	s := new(big.Rat).SetFrac(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).FloatString(scale)
	if scale > 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
