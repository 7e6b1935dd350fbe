package algorithms

import (
	"fmt"
	"slices"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// Bucket is the token bucket; see TokenBucket.
type Bucket struct {
	limits   []limiter.Limit
	interval int64   // of limits[0], computed once
	span     int64   // interval × capacity of limits[0]
	per      divider // by interval
}

var _ limiter.Algorithm = (*Bucket)(nil)

// TokenBucket is an exact token bucket, computed with GCRA: a bucket of
// limit.Capacity() tokens (Burst, or Count when Burst is 0) refilled at
// Count per Period, one token every Period/Count (rounded down to the
// nanosecond). It starts full. A request for n tokens is admitted when the
// bucket holds n.
//
// State: one cell holding the theoretical arrival time (Unix ns); it expires
// one bucket span (burst × interval) after its last write, by when the
// bucket is surely full again. Its decisions equal those of
// golang.org/x/time/rate's Limiter.AllowN with the same rate and burst.
func TokenBucket(limit limiter.Limit) *Bucket {
	b := &Bucket{limits: []limiter.Limit{limit}}
	if limit.Count > 0 && int64(limit.Period)/limit.Count > 0 {
		// Otherwise the limit is invalid: Check reports it to limiter.New.
		b.interval = int64(limit.Period) / limit.Count
		b.span = b.interval * limit.Capacity()
		b.per = newDivider(b.interval)
	}
	return b
}

// Name implements limiter.Algorithm.
func (*Bucket) Name() string { return "bucket" }

// Limits implements limiter.Algorithm. It returns a copy: the algorithm
// never changes after it is built.
func (a *Bucket) Limits() []limiter.Limit { return slices.Clone(a.limits) }

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

// geometry returns the emission interval and the bucket's span in ns, and
// whether l is the bucket's own limit (then a.per divides by the interval).
func (a *Bucket) geometry(l limiter.Limit) (interval, span int64, own bool) {
	if len(a.limits) == 1 && l == a.limits[0] && a.interval > 0 {
		return a.interval, a.span, true // the common case: no division per decision
	}
	interval = int64(l.Period) / l.Count
	return interval, interval * l.Capacity(), false
}

// Plan implements limiter.Algorithm.
func (a *Bucket) Plan(b *store.Batch, r *limiter.Request) {
	l := r.Limits[0]
	t, span, _ := a.geometry(l)
	op := b.NewOp()
	op.Kind = store.Add
	op.Key.Namespace, op.Key.Caller = r.Namespaces[0], r.Caller // field by field, as in Fixed.Plan
	op.N, op.Floor, op.Ceil = r.N*t, r.Now, r.Now+span
	op.TTL, op.Period = time.Duration(span), l.Period
}

// Decide implements limiter.Algorithm.
func (a *Bucket) Decide(b *store.Batch, r *limiter.Request, res *limiter.Result) {
	l := r.Limits[0]
	t, span, own := a.geometry(l)
	tat := b.Results[0].Value // after the request when applied
	var remaining int64
	if x := r.Now + span - tat; x > 0 && own {
		remaining = a.per.div(x)
	} else if x > 0 {
		remaining = x / t
	}
	// Field by field, not a composite literal built aside and copied in
	// 16-byte moves (see limiter.Result's copy).
	res.Allowed = b.Applied
	res.Limit.Count, res.Limit.Period, res.Limit.Burst = l.Count, l.Period, l.Burst
	res.Remaining = remaining
	res.ResetAfter = time.Duration(max(tat-r.Now, 0))
	res.RetryAfter = 0
	if !b.Applied {
		res.RetryAfter = bucketRetry(tat+r.N*t-span-r.Now, res.ResetAfter)
	}
}

// bucketCell is a Bucket as a onecell.Algorithm: the limiter's short path.
type bucketCell Bucket

// CellOp is Plan for c's own limit without a batch.
func (c *bucketCell) CellOp(now, n int64) (window, weight, delta, floor, ceil, ttl int64) {
	return 0, 0, n * c.interval, now, now + c.span, c.span
}

// CellResult is Decide for CellOp's op: value and applied are its outcome.
func (c *bucketCell) CellResult(now, n, _, _, tat, _ int64, applied bool) (remaining, reset, retry int64) {
	if x := now + c.span - tat; x > 0 {
		remaining = c.per.div(x)
	}
	reset = max(tat-now, 0)
	if !applied {
		retry = int64(bucketRetry(tat+n*c.interval-c.span-now, time.Duration(reset)))
	}
	return remaining, reset, retry
}

// bucketRetry is the RetryAfter of a denied request: wait, how long until
// the bucket holds its tokens, when positive; otherwise the bucket holds
// them and the store refused the request (see refusalRetry).
func bucketRetry(wait int64, reset time.Duration) time.Duration {
	if wait > 0 {
		return time.Duration(wait)
	}
	return refused(reset)
}

// Keys implements limiter.Algorithm.
func (*Bucket) Keys(dst []store.Key, r *limiter.Request) []store.Key {
	return append(dst, store.Key{Namespace: r.Namespaces[0], Caller: r.Caller})
}
