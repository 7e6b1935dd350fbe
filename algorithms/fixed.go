package algorithms

import (
	"slices"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// Fixed is the fixed-window algorithm; see FixedWindow.
type Fixed struct {
	limits []limiter.Limit
	cur    windows
}

var _ limiter.Algorithm = (*Fixed)(nil)

// FixedWindow counts requests in aligned windows of each limit's period
// (minute windows start on the minute, Unix time) and admits a request when
// every limit has room for it. The limits are checked and charged together,
// all or nothing: a request denied by the day is not charged to the minute.
//
// State: one counter per limit per window, expiring at the window's end.
// Exactness: exactly Count per window; up to 2×Count in an interval of one
// period that straddles a window edge.
func FixedWindow(limits ...limiter.Limit) *Fixed {
	return &Fixed{limits: append([]limiter.Limit(nil), limits...)}
}

// Name implements limiter.Algorithm.
func (*Fixed) Name() string { return "fixed" }

// Limits implements limiter.Algorithm. It returns a copy: the algorithm
// never changes after it is built.
func (a *Fixed) Limits() []limiter.Limit { return slices.Clone(a.limits) }

// Check implements limiter.Algorithm.
func (*Fixed) Check(limits []limiter.Limit) error { return windowed("fixed window", limits) }

// Plan implements limiter.Algorithm.
func (a *Fixed) Plan(b *store.Batch, r *limiter.Request) {
	for i, l := range r.Limits {
		idx, start := a.cur.of(i, a.limits, r.Now, l.Period)
		op := b.NewOp()
		op.Kind = store.Add
		// Field by field: a composite Key built aside and copied in 16-byte
		// moves stalls on the stores that just built it.
		op.Key.Namespace, op.Key.Caller, op.Key.Window = r.Namespaces[i], r.Caller, idx
		op.N, op.Ceil, op.Period = r.N, l.Count, l.Period
		op.TTL = time.Duration(start + int64(l.Period) - max(r.Now, 0))
	}
}

// Decide implements limiter.Algorithm.
func (*Fixed) Decide(b *store.Batch, r *limiter.Request, res *limiter.Result) {
	acc := newBinding(res, b.Applied)
	for i, l := range r.Limits {
		reset := b.Ops[i].TTL // Plan set it to the window's end
		v := b.Results[i].Value
		denied := !b.Applied && !store.Fits(v, r.N, 0, l.Count) // v + N could wrap
		acc.add(l, max(l.Count-v, 0), reset, denied, reset)
	}
	acc.done()
}

// fixedCell is a Fixed as a onecell.Algorithm: the limiter's short path.
type fixedCell Fixed

// CellOp is Plan for c's single limit without a batch.
func (c *fixedCell) CellOp(now, n int64) (window, weight, delta, floor, ceil, ttl int64) {
	l := c.limits[0]
	idx, start := c.cur.of(0, c.limits, now, l.Period)
	return idx, 0, n, 0, l.Count, start + int64(l.Period) - max(now, 0)
}

// CellResult is Decide for CellOp's op: ttl is the op's, value and
// applied its outcome.
func (c *fixedCell) CellResult(_, n, _, ttl, value, _ int64, applied bool) (remaining, reset, retry int64) {
	// As in Decide: the limit denied when n does not fit its count; else
	// the store refused n for a reason of its own (see refusalRetry).
	if !applied {
		retry = ttl
		if store.Fits(value, n, 0, c.limits[0].Count) {
			retry = int64(refused(time.Duration(ttl)))
		}
	}
	return max(c.limits[0].Count-value, 0), ttl, retry
}

// Keys implements limiter.Algorithm.
func (*Fixed) Keys(dst []store.Key, r *limiter.Request) []store.Key {
	for i, l := range r.Limits {
		idx, _ := windowOf(r.Now, l.Period)
		dst = append(dst, store.Key{Namespace: r.Namespaces[i], Caller: r.Caller, Window: idx})
	}
	return dst
}
