package algorithms

import (
	"fmt"
	"slices"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// Log is the sliding log; see SlidingLog.
type Log struct{ limits []limiter.Limit }

var _ limiter.Algorithm = (*Log)(nil)

// SlidingLog keeps a time-ordered log of admitted requests and admits n when
// the log holds at most Count − n entries younger than one period. It is
// exact: no interval of one period ever admits more than Count, and a
// request is admitted whenever admitting it keeps that true.
//
// State: one entry per admitted unit (a Redis Stream in the Redis store),
// so memory grows with Count; prefer it for small limits that must be exact.
func SlidingLog(limit limiter.Limit) *Log {
	return &Log{limits: []limiter.Limit{limit}}
}

// Name implements limiter.Algorithm.
func (*Log) Name() string { return "log" }

// Limits implements limiter.Algorithm. It returns a copy: the algorithm
// never changes after it is built.
func (a *Log) Limits() []limiter.Limit { return slices.Clone(a.limits) }

// Check implements limiter.Algorithm.
func (*Log) Check(limits []limiter.Limit) error {
	if err := single("sliding log", limits); err != nil {
		return err
	}
	if c := limits[0].Count; c > store.MaxLogAppend {
		return fmt.Errorf("%w: sliding log of %d entries; at most %d (store.MaxLogAppend): use a sliding window for large limits",
			limiter.ErrInvalidLimit, c, int64(store.MaxLogAppend))
	}
	return windowed("sliding log", limits)
}

// Plan implements limiter.Algorithm.
func (*Log) Plan(b *store.Batch, r *limiter.Request) {
	l := r.Limits[0]
	op := b.NewOp()
	op.Kind = store.Log
	op.Key.Namespace, op.Key.Caller = r.Namespaces[0], r.Caller
	op.N, op.Ceil, op.Window, op.Period = r.N, l.Count, l.Period, l.Period
}

// Decide implements limiter.Algorithm.
func (*Log) Decide(b *store.Batch, r *limiter.Request, res *limiter.Result) {
	l := r.Limits[0]
	out := b.Results[0]
	*res = limiter.Result{
		Allowed:   b.Applied,
		Limit:     l,
		Remaining: max(l.Count-out.Value, 0),
	}
	if out.Newest != 0 {
		res.ResetAfter = time.Duration(max(out.Newest+int64(l.Period)-r.Now, 0))
	}
	if !b.Applied {
		res.RetryAfter = time.Duration(max(out.Oldest+int64(l.Period)-r.Now, 1))
	}
}

// Keys implements limiter.Algorithm.
func (*Log) Keys(dst []store.Key, r *limiter.Request) []store.Key {
	return append(dst, store.Key{Namespace: r.Namespaces[0], Caller: r.Caller})
}
