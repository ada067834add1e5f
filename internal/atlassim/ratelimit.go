package atlassim

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Atlas limits the Invoices endpoint set per organization: a bucket of 500
// requests, refilled with 100 every 60 s. The simulator counts every
// org-scoped billing request against its org's bucket.
const (
	RateCapacity = 500
	RateRefill   = 100
	RatePer      = 60 * time.Second
)

// RateLimit makes the simulator enforce the per-org bucket: a request that
// finds it empty is answered 429 RATE_LIMITED, with a Retry-After of the
// whole seconds until the next request is allowed (at least 1), as Atlas
// does. A refused request takes nothing from the bucket.
type RateLimit struct {
	// Scale runs the bucket's clock Scale times faster than real time (0
	// or 1: real time), for scaled-time runs: it then refills RateRefill
	// every RatePer/Scale. Retry-After stays in real seconds, rounded up.
	Scale float64
	// Drained starts each org's bucket empty, as if other clients of the
	// org had just spent it: every request then waits for its refill.
	Drained bool
}

// rateLimiter holds each org's bucket. Without a RateLimit it refuses
// nothing and only reports the bucket in the RateLimit-* headers: use a
// Status 429 fault for a deterministic refusal.
type rateLimiter struct {
	enforce bool
	scale   float64
	start   float64 // a new bucket's requests

	mu       sync.Mutex
	buckets  map[string]*bucket
	admitted map[string]int // requests let through, per org
	refused  map[string]int // 429s answered, per org
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rl *RateLimit) *rateLimiter {
	l := &rateLimiter{scale: 1, start: RateCapacity, buckets: map[string]*bucket{}, admitted: map[string]int{}, refused: map[string]int{}}
	if rl != nil {
		l.enforce = true
		if rl.Scale > 1 {
			l.scale = rl.Scale
		}
		if rl.Drained {
			l.start = 0
		}
	}
	return l
}

// refilled is org's bucket as of now.
func (l *rateLimiter) refilled(org string, now time.Time) *bucket {
	b, ok := l.buckets[org]
	if !ok {
		b = &bucket{tokens: l.start, last: now}
		l.buckets[org] = b
	}
	perSec := float64(RateRefill) / RatePer.Seconds() * l.scale
	b.tokens = min(RateCapacity, b.tokens+now.Sub(b.last).Seconds()*perSec)
	b.last = now
	return b
}

// admit takes a request from org's bucket when the limit is enforced; it
// says how long to wait (real time) when the bucket is empty.
func (l *rateLimiter) admit(org string) (time.Duration, bool) {
	if !l.enforce || org == "" {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refilled(org, time.Now())
	if b.tokens >= 1 {
		b.tokens--
		l.admitted[org]++
		return 0, true
	}
	l.refused[org]++
	perSec := float64(RateRefill) / RatePer.Seconds() * l.scale
	return time.Duration((1 - b.tokens) / perSec * float64(time.Second)), false
}

// take reports org's bucket for the RateLimit-* headers, and takes the
// request from it unless admit already did.
func (l *rateLimiter) take(org string) (limit, remaining int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refilled(org, time.Now())
	if !l.enforce && b.tokens >= 1 {
		b.tokens--
	}
	return RateCapacity, int(b.tokens)
}

// RateCounts are the requests of org the enforced limit (Config.RateLimit)
// let through, and those it answered 429 because the bucket was empty (an
// injected fault's 429 is not one).
func (s *Server) RateCounts(org string) (admitted, refused int) {
	s.rate.mu.Lock()
	defer s.rate.mu.Unlock()
	return s.rate.admitted[org], s.rate.refused[org]
}

// rateLimited answers 429 with the whole seconds until the bucket allows
// the next request.
func (x *exchange) rateLimited(wait time.Duration) {
	secs := max(int64(math.Ceil(wait.Seconds())), 1)
	x.w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	x.apiError(http.StatusTooManyRequests, "RATE_LIMITED", "You have exceeded the rate limit of this organization's Invoices endpoints.")
}
