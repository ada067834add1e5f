package atlas

import (
	"context"
	"time"
)

// SetRetryHooks replaces the sleep, jitter and clock of c, so unit tests can
// check waits without waiting. A nil argument keeps the current one.
func SetRetryHooks(c *Client, sleep func(context.Context, time.Duration) error, jitter func(int64) int64, now func() time.Time) {
	if sleep != nil {
		c.sleep = sleep
	}
	if jitter != nil {
		c.jitter = jitter
	}
	if now != nil {
		c.now = now
	}
}

// DecodeError exposes the ApiError decoder to the fuzz target.
var DecodeError = decodeError

// CheckDownloadURL runs c's download URL rules on raw, sending nothing.
func CheckDownloadURL(c *Client, raw string) error {
	_, err := c.downloadURL(raw)
	return err
}
