// Package report reads the exported usage back and totals it per month and
// service, so a person sees at a glance what an export adds up to.
package report

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
)

// Opener reads back an object that was written.
type Opener func(ctx context.Context, key string) (io.ReadCloser, error)

// Usage is one usage file and the month it covers.
type Usage struct {
	Key   string
	Month string
}

// Total is the usage of one service in one month, as a decimal string with
// two places: summed exactly (big.Rat), never through a float.
type Total struct {
	Month   string `json:"month"`
	Service string `json:"service"`
	Amount  string `json:"amount"`
}

// Totals reads the usage files back and totals them per month and service,
// sorted by month then service.
func Totals(ctx context.Context, files []Usage, open Opener) ([]Total, error) {
	sums := map[[2]string]*big.Rat{}
	for _, f := range files {
		if err := add(ctx, open, f, sums); err != nil {
			return nil, err
		}
	}
	out := make([]Total, 0, len(sums))
	for k, v := range sums {
		out = append(out, Total{Month: k[0], Service: k[1], Amount: v.FloatString(2)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Month != out[j].Month {
			return out[i].Month < out[j].Month
		}
		return out[i].Service < out[j].Service
	})
	return out, nil
}

func add(ctx context.Context, open Opener, f Usage, sums map[[2]string]*big.Rat) error {
	rc, err := open(ctx, f.Key)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", f.Key, err)
	}
	defer rc.Close()
	cr := csv.NewReader(rc)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading the header of %s: %w", f.Key, err)
	}
	// The normalized file's names (what the export reads back), or Atlas's.
	service, amount := index(header, "service", "Service"), index(header, "usage_amount", "Usage Amount")
	if service < 0 || amount < 0 {
		return fmt.Errorf("%s has no Service and Usage Amount columns", f.Key)
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.Key, err)
		}
		if len(rec) <= max(service, amount) {
			return fmt.Errorf("%s line %d: too few fields", f.Key, line)
		}
		v, ok := decimal(rec[amount])
		if !ok {
			return fmt.Errorf("%s line %d: amount %q is not a decimal", f.Key, line, truncate(rec[amount]))
		}
		k := [2]string{f.Month, rec[service]}
		if sums[k] == nil {
			sums[k] = new(big.Rat)
		}
		sums[k].Add(sums[k], v)
	}
}

// decimal reads a plain decimal such as "1018.39" or "-25.00": a sign,
// digits and a point only (big.Rat would also take exponents, "0x1p999999",
// "1/3" and "1_0"), so a hostile value cannot make big.Rat work hard.
func decimal(s string) (*big.Rat, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 40 || strings.Trim(strings.TrimLeft(s, "+-"), "0123456789.") != "" {
		return nil, false
	}
	return new(big.Rat).SetString(s)
}

// index is the field of the first of names the header has, or -1.
func index(header []string, names ...string) int {
	for _, name := range names {
		for i, h := range header {
			if strings.TrimSpace(h) == name {
				return i
			}
		}
	}
	return -1
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
