//go:build !unix

package normalize_test

import "time"

// cpuTime is unknown here: BenchmarkInvoice then reports no MB/cpu-s.
func cpuTime() time.Duration { return 0 }
