package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"math/big"
	"regexp"
	"strings"
	"testing"
)

// plainDecimal is what a usage amount looks like: digits, an optional sign
// and fraction; no exponent, base prefix or digit separator.
var plainDecimal = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// referenceTotals sums a usage CSV the simple way, accepting only plain
// decimals; ok is false when the file has a row it would refuse.
func referenceTotals(data []byte) (map[string]*big.Rat, bool) {
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, false
	}
	service, amount := index(recs[0], "Service"), index(recs[0], "Usage Amount")
	if service < 0 || amount < 0 {
		return nil, false
	}
	sums := map[string]*big.Rat{}
	for _, rec := range recs[1:] {
		if len(rec) <= max(service, amount) {
			return nil, false
		}
		s := strings.TrimSpace(rec[amount])
		if !plainDecimal.MatchString(s) {
			return nil, false
		}
		v, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, false
		}
		if sums[rec[service]] == nil {
			sums[rec[service]] = new(big.Rat)
		}
		sums[rec[service]].Add(sums[rec[service]], v)
	}
	return sums, true
}

// FuzzTotals reads a usage file that came from Atlas (not trusted): totals
// are exact sums of plain decimals, and anything else is an error that
// quotes little of the file.
func FuzzTotals(f *testing.F) {
	for _, s := range []string{
		"Invoice ID,Service,Usage Amount\n1,Clusters,0.10\n2,Clusters,0.20\n3,\"Data Transfer\",1018.39\n4,Credits,-25.00\n",
		"Service,Usage Amount\nClusters, 1.5\n",
		"Service,Usage Amount\nClusters,1.0e400\n",
		"Service,Usage Amount\nClusters,0x10\n",
		"Service,Usage Amount\nClusters,1/3\n",
		"Service,Usage Amount\nClusters\n",
		"A,B\n1,2\n",
		"Usage Amount,Service\n.5,a\n5.,a\n+1,b\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		open := func(context.Context, string) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}
		got, err := Totals(context.Background(), []Usage{{Key: "usage.csv", Month: "2024-06"}}, open)
		ref, refOK := referenceTotals(data)
		if err != nil {
			if len(err.Error()) > 300 {
				t.Fatalf("error is %d bytes long", len(err.Error()))
			}
			return
		}
		if !refOK {
			t.Fatalf("Totals accepted a file with an amount that is not a plain decimal: %v", got)
		}
		if len(got) != len(ref) {
			t.Fatalf("%d totals, want %d", len(got), len(ref))
		}
		for i, tot := range got {
			if tot.Month != "2024-06" {
				t.Fatalf("total in month %q", tot.Month)
			}
			if i > 0 && !(got[i-1].Service < tot.Service) {
				t.Fatalf("totals not sorted and unique: %q then %q", got[i-1].Service, tot.Service)
			}
			want := ref[tot.Service]
			if want == nil {
				t.Fatalf("a total for %q, which no row names", tot.Service)
			}
			if tot.Amount != want.FloatString(2) {
				t.Fatalf("%s: total %s, want %s", tot.Service, tot.Amount, want.FloatString(2))
			}
		}
	})
}

// The reference itself refuses what it should.
func TestPlainDecimal(t *testing.T) {
	for s, want := range map[string]bool{
		"1": true, "-25.00": true, "+1.5": true, ".5": true, "5.": true,
		"": false, "1e3": false, "0x10": false, "0x1p9": false, "1_0": false, "1/3": false, "Inf": false, "1.2.3": false, "--1": false,
	} {
		if plainDecimal.MatchString(s) != want {
			t.Errorf("plainDecimal(%q) = %v", s, !want)
		}
	}
}
