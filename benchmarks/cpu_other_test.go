//go:build !linux

package benchmarks

import "time"

// threadCPU is not available here: the CPU-time metrics are not reported.
func threadCPU() (time.Duration, bool) { return 0, false }
