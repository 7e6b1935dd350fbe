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
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// windowed checks limits for window algorithms: no burst, and a period of
// at most maxPeriod.
func windowed(name string, limits []limiter.Limit) error {
	for _, l := range limits {
		if l.Burst != 0 {
			return fmt.Errorf("%w: %s: burst applies only to the token bucket (got %v)", limiter.ErrInvalidLimit, name, l)
		}
		if l.Period > maxPeriod {
			return fmt.Errorf("%w: %s %v: period above %v", limiter.ErrInvalidLimit, name, l, time.Duration(maxPeriod))
		}
	}
	return nil
}

// maxPeriod is the longest period of a window algorithm, about 146 years:
// the limiter's clock stays below it too (limiter.ErrClockRange), so an
// instant plus a period, or two periods (a sliding window's counter lives
// two windows), never overflow int64 nanoseconds.
const maxPeriod = math.MaxInt64 / 2

// single checks that exactly one limit is given.
func single(name string, limits []limiter.Limit) error {
	if len(limits) != 1 {
		return fmt.Errorf("%w: %s takes exactly one limit, got %d", limiter.ErrInvalidLimit, name, len(limits))
	}
	return nil
}

// windowOf returns the index of the window of length period holding now and
// the window's start, in Unix ns. The limiter never passes an instant before
// the epoch (limiter.ErrClockRange); one would be clamped to it.
func windowOf(now int64, period time.Duration) (index, start int64) {
	now = max(now, 0)
	p := int64(period)
	index = now / p
	return index, index * p
}

// windows remembers, for each of an algorithm's own limits, the index of
// the window the latest decision fell in. Nearly every decision falls in
// the same window as the one before it, and checking that takes a
// multiplication where windowOf takes a division. Safe for concurrent use:
// a stale or torn-looking index simply fails the check.
type windows [store.MaxOps]atomic.Int64

// of is windowOf for limit i of a decision. own are the algorithm's own
// limits; a limit that is not own[i] (a limit function's) is not cached.
func (w *windows) of(i int, own []limiter.Limit, now int64, period time.Duration) (index, start int64) {
	if i >= len(own) || own[i].Period != period {
		return windowOf(now, period)
	}
	now = max(now, 0)
	p := int64(period)
	index = w[i].Load()
	if start = index * p; start <= now && now-start < p {
		return index, start
	}
	index, start = windowOf(now, period)
	w[i].Store(index)
	return index, start
}

// divider divides non-negative int64s by a fixed positive d with a
// multiplication instead of a division instruction, which costs tens of
// cycles on some CPUs. m is ⌈2^64/d⌉ (0 for d = 1): x·m/2^64 exceeds x/d
// by less than x/2^64 < 1/2, so its integer part is ⌊x/d⌋ or one more,
// and one multiplication tells which.
type divider struct {
	d int64
	m uint64
}

func newDivider(d int64) divider {
	if d == 1 {
		return divider{d: 1}
	}
	return divider{d: d, m: (1<<64-1)/uint64(d) + 1}
}

// div returns ⌊x/d⌋ for x ≥ 0.
func (v divider) div(x int64) int64 {
	if v.m == 0 {
		return x
	}
	q, _ := bits.Mul64(uint64(x), v.m)
	if q*uint64(v.d) > uint64(x) {
		q--
	}
	return int64(q)
}

// binding folds the outcomes of several limits into one Result: the limit
// that denied (the one with the longest RetryAfter when several did) or,
// when none did, the one with the least Remaining.
type binding struct{ res *limiter.Result }

// newBinding starts the fold into res.
// refusalRetry is the RetryAfter of a request that a store refused while
// the counts admit it: the hybrid store near a limit, while other processes
// write to the key, keeps to a fair share of what is left, renewed at each
// sync (every second by default). Asking again then is worth it.
const refusalRetry = time.Second

// refused returns the RetryAfter of such a refusal: refusalRetry, or the
// time until the binding limit resets when that is sooner.
func refused(reset time.Duration) time.Duration {
	if reset > 0 && reset < refusalRetry {
		return reset
	}
	return refusalRetry
}

// done gives a request that no limit denied but the store refused a
// RetryAfter (see refusalRetry).
func (b *binding) done() {
	if r := b.res; !r.Allowed && r.RetryAfter == 0 {
		r.RetryAfter = refused(r.ResetAfter)
	}
}

func newBinding(res *limiter.Result, allowed bool) binding {
	*res = limiter.Result{Allowed: allowed, Remaining: -1}
	return binding{res: res}
}

// add records limit l: remaining units, time to reset and, when l denied
// the request, the time until it would admit it (retry > 0).
func (b *binding) add(l limiter.Limit, remaining int64, reset time.Duration, denied bool, retry time.Duration) {
	r := b.res
	if denied {
		if retry > r.RetryAfter {
			r.RetryAfter, r.Limit, r.ResetAfter = retry, l, reset
		}
	} else if r.RetryAfter == 0 && (r.Remaining < 0 || remaining < r.Remaining) {
		r.Limit, r.ResetAfter = l, reset
	}
	if r.Remaining < 0 || remaining < r.Remaining {
		r.Remaining = remaining
	}
}
