package atlas

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// RetryPolicy bounds retries of 429, 500, 502, 503, 504 and connection
// errors. Waits use exponential backoff with full jitter, and at least the
// server's Retry-After.
type RetryPolicy struct {
	MaxAttempts int           // total attempts, including the first (>= 1)
	MaxElapsed  time.Duration // no wait starts that would end after this much time since the first attempt
	BaseDelay   time.Duration // backoff cap for the first retry; doubles each retry
	MaxDelay    time.Duration // backoff cap
}

// DefaultRetryPolicy is 5 attempts within 2 minutes, backoff from 500ms up
// to 30s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, MaxElapsed: 2 * time.Minute, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}
}

// normalized fills zero or invalid fields from the default policy, so a
// partial policy stays bounded.
func (p RetryPolicy) normalized() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.MaxAttempts < 1 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = d.MaxElapsed
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = max(p.BaseDelay, d.MaxDelay)
	}
	return p
}

// backoff is the wait after the given failed attempt (1-based): uniform in
// (0, min(MaxDelay, BaseDelay*2^(attempt-1))] ("full jitter").
func (p RetryPolicy) backoff(attempt int, jitter func(int64) int64) time.Duration {
	ceil := p.MaxDelay
	if attempt-1 < 32 {
		if d := p.BaseDelay << (attempt - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return time.Duration(jitter(int64(ceil))) + 1
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transient reports whether a transport or body-read error is worth another
// attempt: resets, connections closed before the answer was complete,
// timeouts. Certificate errors and the like are not.
func transient(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// HTTP/2 resets and GOAWAYs have unexported types.
	s := err.Error()
	return strings.Contains(s, "stream error") || strings.Contains(s, "GOAWAY") ||
		strings.Contains(s, "connection reset") || strings.Contains(s, "server closed idle connection")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
