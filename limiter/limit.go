package limiter

import (
	"fmt"
	"time"
)

// Limit is a quota: Count requests per Period. For the token bucket, Burst is
// the bucket's capacity (0 means Count) and Count/Period its refill rate.
//
// The zero Limit is invalid; build one with [PerSecond], [PerMinute],
// [PerHour], [PerDay] or [Per].
type Limit struct {
	// Count is how many requests (units of n) the limit admits per Period.
	Count int64
	// Period is the span Count applies to: a window's length, or the time
	// a token bucket takes to refill Count tokens.
	Period time.Duration
	// Burst is the token bucket's capacity, when not Count (0 means Count);
	// window algorithms refuse a Burst.
	Burst int64
}

// Per returns a limit of n requests per period d.
func Per(n int64, d time.Duration) Limit { return Limit{Count: n, Period: d} }

// PerSecond returns a limit of n requests per second.
func PerSecond(n int64) Limit { return Per(n, time.Second) }

// PerMinute returns a limit of n requests per minute.
func PerMinute(n int64) Limit { return Per(n, time.Minute) }

// PerHour returns a limit of n requests per hour.
func PerHour(n int64) Limit { return Per(n, time.Hour) }

// PerDay returns a limit of n requests per 24 hours.
func PerDay(n int64) Limit { return Per(n, 24*time.Hour) }

// WithBurst returns a copy of l with burst b: the most a token bucket admits
// at once. Only the token bucket takes a burst; the window algorithms and the
// sliding log refuse a limit with one (ErrInvalidLimit).
func (l Limit) WithBurst(b int64) Limit {
	l.Burst = b
	return l
}

// Capacity returns the most requests the limit can admit at one instant:
// Burst when set, else Count.
func (l Limit) Capacity() int64 {
	if l.Burst > 0 {
		return l.Burst
	}
	return l.Count
}

// Validate reports whether l is usable: Count and Period positive, Burst not
// negative. The error wraps [ErrInvalidLimit].
func (l Limit) Validate() error {
	switch {
	case l.Count <= 0:
		return fmt.Errorf("%w: count %d must be positive", ErrInvalidLimit, l.Count)
	case l.Period <= 0:
		return fmt.Errorf("%w: period %v must be positive", ErrInvalidLimit, l.Period)
	case l.Burst < 0:
		return fmt.Errorf("%w: burst %d must not be negative", ErrInvalidLimit, l.Burst)
	}
	return nil
}

// String returns a form such as "120/1m0s" or "10/1s burst 20".
func (l Limit) String() string {
	if l.Burst > 0 {
		return fmt.Sprintf("%d/%v burst %d", l.Count, l.Period, l.Burst)
	}
	return fmt.Sprintf("%d/%v", l.Count, l.Period)
}

// Result is the outcome of one decision.
//
// RetryAfter is 0 when the request was allowed; otherwise it is how long
// until the same request would be admitted if nothing else happened. A
// store may refuse a request that the counts admit (the hybrid store near a
// limit, while other processes write to the key, keeps to a fair share of
// what is left, renewed at each sync): RetryAfter is then one second, or
// ResetAfter when that is sooner.
// ResetAfter is how long until the binding limit's quota is whole again.
// Limit is the binding limit: the one that denied the request (the one with
// the longest RetryAfter when several did) or, when allowed, the one with the
// least Remaining.
type Result struct {
	// Allowed reports whether the request was admitted (and charged).
	Allowed bool
	// Limit is the binding limit (see Result).
	Limit Limit
	// Remaining is how many more units the binding limit admits now, after
	// this request when it was allowed.
	Remaining int64
	// ResetAfter is how long until the binding limit's quota is whole.
	ResetAfter time.Duration
	// RetryAfter is 0 when allowed; else how long until the same request
	// would be admitted (see Result).
	RetryAfter time.Duration
}

// copyFrom sets *r to *s one field at a time: a whole-struct copy reads
// 16 bytes at once across fields that were just stored separately (the
// Allowed byte among them), which stalls store forwarding on the hot path.
func (r *Result) copyFrom(s *Result) {
	r.Allowed = s.Allowed
	r.Limit.Count, r.Limit.Period, r.Limit.Burst = s.Limit.Count, s.Limit.Period, s.Limit.Burst
	r.Remaining, r.ResetAfter, r.RetryAfter = s.Remaining, s.ResetAfter, s.RetryAfter
}
