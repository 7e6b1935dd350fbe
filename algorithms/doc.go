// Package algorithms holds floodgate's rate-limiting algorithms. Each one
// compiles a decision into a few store primitives (see package store) and
// turns the store's answers into a limiter.Result; none keeps state or does
// I/O, so every algorithm runs on every store.
//
//   - FixedWindow: counters per aligned window; several limits checked
//     together, all or nothing. Exact per window; cheapest.
//   - SlidingWindow: the weighted two-window counter; smooths the burst at
//     window edges for the cost of one more read.
//   - TokenBucket: GCRA over one theoretical-arrival-time cell; an exact
//     token bucket with a burst.
//   - SlidingLog: a time-ordered log of admitted requests; exact over any
//     interval of one period, at the cost of one entry per request.
//
// docs/algorithms.md compares them.
package algorithms

import (
	"fmt"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
)

// windowed checks limits for window algorithms: no burst.
func windowed(name string, limits []limiter.Limit) error {
	for _, l := range limits {
		if l.Burst != 0 {
			return fmt.Errorf("%w: %s: burst applies only to the token bucket (got %v)", limiter.ErrInvalidLimit, name, l)
		}
	}
	return nil
}

// single checks that exactly one limit is given.
func single(name string, limits []limiter.Limit) error {
	if len(limits) != 1 {
		return fmt.Errorf("%w: %s takes exactly one limit, got %d", limiter.ErrInvalidLimit, name, len(limits))
	}
	return nil
}

// windowOf returns the index of the window of length period holding now and
// the window's start, in Unix ns. Instants before the epoch are clamped to it.
func windowOf(now int64, period time.Duration) (index, start int64) {
	now = max(now, 0)
	p := int64(period)
	index = now / p
	return index, index * p
}
