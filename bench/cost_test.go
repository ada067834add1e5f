//go:build bench

package bench

import (
	"fmt"
	"math/big"
	"testing"
	"time"
)

// Prices (us-east-1, list prices without free tier), as decimal strings:
// money is never a float here.
const (
	priceTransition = "0.000025"     // Step Functions Standard: $0.025 per 1,000 state transitions
	priceGBSecond   = "0.0000133334" // Lambda arm64: per GB-second
	priceRequest    = "0.0000002"    // Lambda: $0.20 per 1M requests
	priceS3Write    = "0.000005"     // S3 Standard PUT, COPY, POST, LIST: $0.005 per 1,000
	priceS3Read     = "0.0000004"    // S3 Standard GET, HEAD and the rest: $0.0004 per 1,000 (DELETE is free)
)

// costRow is the cost of one org-month: its job's execution, with its
// share of its org's child (one job per org, as in a monthly run).
type costRow struct {
	Query                                    time.Duration
	Transitions, Requests                    int
	BilledMs                                 map[string]int64 // per function, cold starts included
	GBms                                     *big.Rat         // GB-milliseconds billed
	S3Writes, S3Reads                        int
	TransitionCost, RequestCost, ComputeCost *big.Rat
	S3Cost                                   *big.Rat
	Total                                    *big.Rat
	TotalAt1s                                *big.Rat // the same, were every invocation billed a full second
}

// cost prices one execution: every Task call is one Lambda invocation billed
// its measured duration rounded up to 1 ms, the first call of each function
// also its cold start (Lambda bills the init phase); memory from template.yaml.
func cost(p pollRow, mem map[string]int, init map[string]time.Duration) costRow {
	r := costRow{Query: p.Query, Transitions: p.Transitions + transitionsPerJob + transitionsPerOrg, BilledMs: map[string]int64{}, GBms: new(big.Rat),
		S3Writes: p.S3Writes, S3Reads: p.S3Reads}
	gbms1s := new(big.Rat)
	for _, c := range p.Calls {
		d := c.Duration
		if _, seen := r.BilledMs[c.Function]; !seen {
			d += init[c.Function]
		}
		ms := int64((d + time.Millisecond - 1) / time.Millisecond)
		r.BilledMs[c.Function] += ms
		gb := big.NewRat(int64(mem[c.Function]), 1024)
		r.GBms.Add(r.GBms, new(big.Rat).Mul(gb, big.NewRat(ms, 1)))
		gbms1s.Add(gbms1s, new(big.Rat).Mul(gb, big.NewRat(1000, 1)))
		r.Requests++
	}
	r.TransitionCost = mulInt(rat(priceTransition), r.Transitions)
	r.RequestCost = mulInt(rat(priceRequest), r.Requests)
	r.ComputeCost = new(big.Rat).Mul(rat(priceGBSecond), new(big.Rat).Quo(r.GBms, big.NewRat(1000, 1)))
	r.S3Cost = new(big.Rat).Add(mulInt(rat(priceS3Write), r.S3Writes), mulInt(rat(priceS3Read), r.S3Reads))
	r.Total = new(big.Rat).Add(r.TransitionCost, new(big.Rat).Add(r.RequestCost, new(big.Rat).Add(r.ComputeCost, r.S3Cost)))
	compute1s := new(big.Rat).Mul(rat(priceGBSecond), new(big.Rat).Quo(gbms1s, big.NewRat(1000, 1)))
	r.TotalAt1s = new(big.Rat).Add(r.TransitionCost, new(big.Rat).Add(r.RequestCost, new(big.Rat).Add(compute1s, r.S3Cost)))
	return r
}

// coldInits is each function's median cold start: from the cold start rows
// when they ran, else measured here.
func coldInits(t *testing.T, w *world, rows []coldRow) map[string]time.Duration {
	init := map[string]time.Duration{}
	for _, c := range rows {
		init[c.Name] = c.Median
	}
	for _, fn := range functions {
		if _, ok := init[fn]; ok {
			continue
		}
		var ds []time.Duration
		for range 7 {
			ds = append(ds, runLambda(t, w.bins[fn], w.functionEnv(fn, "http://127.0.0.1:9")).Init)
		}
		init[fn] = median(ds)
	}
	return init
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic("bad price " + s)
	}
	return r
}

func mulInt(r *big.Rat, n int) *big.Rat { return new(big.Rat).Mul(r, big.NewRat(int64(n), 1)) }

// dollars formats an amount with enough digits for fractions of a cent.
func dollars(r *big.Rat) string { return "$" + r.FloatString(7) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
