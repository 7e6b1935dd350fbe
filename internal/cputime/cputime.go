// Package cputime reads the CPU time of the calling OS thread, for
// benchmarks that compare code paths by the CPU they use rather than by
// wall-clock time, which time taken by other processes inflates.
package cputime

import "time"

// Thread returns the CPU time the calling OS thread has used, and false
// where the platform offers no per-thread clock (then the duration is 0).
// Callers pin the goroutine to its thread (runtime.LockOSThread) between
// two readings.
func Thread() (time.Duration, bool) { return thread() }
