// Package report summarizes an export for a person: the files written, with
// sizes and row counts, and the usage totals per month and service read back
// from the exported data.
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
	"text/tabwriter"

	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
	"github.com/atlas-billing-export/atlas-billing-export/internal/sink"
)

// Opener reads back an object that was written.
type Opener func(ctx context.Context, key string) (io.ReadCloser, error)

// Total is the usage of one service in one month, exact (a decimal, never a float).
type Total struct {
	Month   string
	Service string
	Amount  *big.Rat
}

// Summary is what an export wrote and what it adds up to.
type Summary struct {
	Objects []sink.Object
	Totals  []Total
}

// Summarize lists the objects of results and reads the usage files back to
// total them per month and service.
func Summarize(ctx context.Context, results []export.Result, open Opener) (Summary, error) {
	var s Summary
	sums := map[[2]string]*big.Rat{}
	for _, r := range results {
		for _, o := range r.Objects {
			s.Objects = append(s.Objects, o)
			if !strings.Contains(o.Key, "/usage/") {
				continue
			}
			if err := addUsage(ctx, open, o.Key, r.Period.Label(), sums); err != nil {
				return Summary{}, err
			}
		}
	}
	for k, v := range sums {
		s.Totals = append(s.Totals, Total{Month: k[0], Service: k[1], Amount: v})
	}
	sort.Slice(s.Totals, func(i, j int) bool {
		a, b := s.Totals[i], s.Totals[j]
		if a.Month != b.Month {
			return a.Month < b.Month
		}
		return a.Service < b.Service
	})
	return s, nil
}

func addUsage(ctx context.Context, open Opener, key, month string, sums map[[2]string]*big.Rat) error {
	rc, err := open(ctx, key)
	if err != nil {
		return fmt.Errorf("reading back %s: %w", key, err)
	}
	defer rc.Close()
	cr := csv.NewReader(rc)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading the header of %s: %w", key, err)
	}
	service, amount := index(header, "Service"), index(header, "Usage Amount")
	if service < 0 || amount < 0 {
		return fmt.Errorf("%s has no Service and Usage Amount columns", key)
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", key, err)
		}
		if len(rec) <= max(service, amount) {
			return fmt.Errorf("%s line %d: too few fields", key, line)
		}
		v, ok := new(big.Rat).SetString(strings.TrimSpace(rec[amount]))
		if !ok {
			return fmt.Errorf("%s line %d: amount %q is not a decimal", key, line, rec[amount])
		}
		k := [2]string{month, rec[service]}
		if sums[k] == nil {
			sums[k] = new(big.Rat)
		}
		sums[k].Add(sums[k], v)
	}
}

func index(header []string, name string) int {
	for i, h := range header {
		if strings.TrimSpace(h) == name {
			return i
		}
	}
	return -1
}

// Print writes the summary as two aligned tables.
func (s Summary) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "FILE\tSIZE\tROWS\t\n")
	var bytes, rows int64
	for _, o := range s.Objects {
		note := ""
		if o.Skipped {
			note = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", o.Key, Size(o.Bytes), o.Rows, note)
		bytes += o.Bytes
		rows += o.Rows
	}
	fmt.Fprintf(tw, "%d files\t%s\t%d\t\n", len(s.Objects), Size(bytes), rows)
	if len(s.Totals) > 0 {
		fmt.Fprintf(tw, "\nMONTH\tSERVICE\tUSAGE (USD)\t\n")
		month := ""
		total := new(big.Rat)
		flush := func() {
			if month != "" {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\n", month, "total", total.FloatString(2))
			}
		}
		for _, t := range s.Totals {
			if t.Month != month {
				flush()
				month, total = t.Month, new(big.Rat)
			}
			total.Add(total, t.Amount)
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", t.Month, t.Service, t.Amount.FloatString(2))
		}
		flush()
	}
	return tw.Flush()
}

// Size writes a byte count for a person.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
