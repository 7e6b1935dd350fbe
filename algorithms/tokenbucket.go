package algorithms

import (
	"fmt"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// Bucket is the token bucket; see TokenBucket.
type Bucket struct {
	limits   []limiter.Limit
	interval int64   // of limits[0], computed once
	inverse  float64 // 1/interval, for dividing without a division
}

var _ limiter.Algorithm = (*Bucket)(nil)

// TokenBucket is an exact token bucket, computed with GCRA: a bucket of
// limit.Capacity() tokens (Burst, or Count when Burst is 0) refilled at
// Count per Period, one token every Period/Count (rounded down to the
// nanosecond). It starts full. A request for n tokens is admitted when the
// bucket holds n.
//
// State: one cell holding the theoretical arrival time (Unix ns); it expires
// when the bucket would be full again. Its decisions equal those of
// golang.org/x/time/rate's Limiter.AllowN with the same rate and burst.
func TokenBucket(limit limiter.Limit) *Bucket {
	b := &Bucket{limits: []limiter.Limit{limit}}
	if limit.Count > 0 {
		b.interval = int64(limit.Period) / limit.Count
		if b.interval > 0 {
			b.inverse = 1 / float64(b.interval)
		}
	}
	return b
}

// Name implements limiter.Algorithm.
func (*Bucket) Name() string { return "bucket" }

// Limits implements limiter.Algorithm.
func (a *Bucket) Limits() []limiter.Limit { return a.limits }

// Check implements limiter.Algorithm.
func (*Bucket) Check(limits []limiter.Limit) error {
	if err := single("token bucket", limits); err != nil {
		return err
	}
	l := limits[0]
	if int64(l.Period)/l.Count == 0 {
		return fmt.Errorf("%w: token bucket %v refills faster than one token per nanosecond", limiter.ErrInvalidLimit, l)
	}
	if l.Capacity() > (1<<62)/(int64(l.Period)/l.Count) {
		return fmt.Errorf("%w: token bucket %v: burst too large", limiter.ErrInvalidLimit, l)
	}
	return nil
}

// geometry returns the emission interval and the bucket's span in ns.
func (a *Bucket) geometry(l limiter.Limit) (interval, span int64) {
	if len(a.limits) == 1 && l == a.limits[0] {
		interval = a.interval // the common case: no division per decision
	} else {
		interval = int64(l.Period) / l.Count
	}
	return interval, interval * l.Capacity()
}

// Plan implements limiter.Algorithm.
func (a *Bucket) Plan(b *store.Batch, r *limiter.Request) {
	l := r.Limits[0]
	t, span := a.geometry(l)
	b.Ops = append(b.Ops, store.Op{
		Kind:   store.Add,
		Key:    store.Key{Namespace: r.Namespaces[0], Caller: r.Caller},
		N:      r.N * t,
		Floor:  r.Now,
		Ceil:   r.Now + span,
		TTL:    time.Duration(span),
		Period: l.Period,
	})
}

// Decide implements limiter.Algorithm.
func (a *Bucket) Decide(b *store.Batch, r *limiter.Request) limiter.Result {
	l := r.Limits[0]
	t, span := a.geometry(l)
	tat := b.Results[0].Value // after the request when applied
	res := limiter.Result{
		Allowed:    b.Applied,
		Limit:      l,
		Remaining:  a.tokens(r.Now+span-tat, t),
		ResetAfter: time.Duration(max(tat-r.Now, 0)),
	}
	if !b.Applied {
		res.RetryAfter = time.Duration(max(tat+r.N*t-span-r.Now, 1))
	}
	return res
}

// Keys implements limiter.Algorithm.
func (*Bucket) Keys(dst []store.Key, r *limiter.Request) []store.Key {
	return append(dst, store.Key{Namespace: r.Namespaces[0], Caller: r.Caller})
}

// tokens returns the whole tokens in d nanoseconds of refill, ⌊d/t⌋ (0 for
// d < 0). For the bucket's own interval it multiplies by the cached inverse
// and corrects the estimate exactly, sparing a 64-bit division on every
// decision.
func (a *Bucket) tokens(d, t int64) int64 {
	if d <= 0 {
		return 0
	}
	if t != a.interval || a.inverse == 0 {
		return d / t
	}
	q := int64(float64(d) * a.inverse)
	for q > 0 && q*t > d {
		q--
	}
	for (q+1)*t <= d {
		q++
	}
	return q
}
