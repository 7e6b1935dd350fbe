package algorithms

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// Sliding is the sliding-window counter; see SlidingWindow.
type Sliding struct {
	limits []limiter.Limit
	cur    windows
	per    []divider // by each own limit's period (zero when not positive)
}

var _ limiter.Algorithm = (*Sliding)(nil)

// SlidingWindow approximates a sliding window with two fixed-window
// counters: at a fraction f into the current window it estimates the count
// over the last period as
//
//	previous × (1 − f) + current
//
// (the previous window's weight rounded down to parts per million, the
// product rounded down) and admits n when estimate + n <= Count. Several
// limits are checked and charged together, all or nothing.
//
// State: one counter per limit per window, each living two windows.
// Error bound: every aligned window admits at most Count, so any interval
// of one period admits at most 2×Count; with evenly spread traffic in the
// previous window the estimate is exact. It may deny early when the previous
// window's requests came early in it.
func SlidingWindow(limits ...limiter.Limit) *Sliding {
	a := &Sliding{limits: append([]limiter.Limit(nil), limits...), per: make([]divider, len(limits))}
	for i, l := range limits {
		if l.Period > 0 { // else invalid: Check reports it to limiter.New
			a.per[i] = newDivider(int64(l.Period))
		}
	}
	return a
}

// Name implements limiter.Algorithm.
func (*Sliding) Name() string { return "sliding" }

// Limits implements limiter.Algorithm. It returns a copy: the algorithm
// never changes after it is built.
func (a *Sliding) Limits() []limiter.Limit { return slices.Clone(a.limits) }

// Check implements limiter.Algorithm.
func (*Sliding) Check(limits []limiter.Limit) error {
	return windowed("sliding window", limits) // periods up to maxPeriod: a counter lives two windows
}

// slidingWindow is the geometry of one limit at one instant.
type slidingWindow struct {
	idx     int64
	elapsed int64 // ns into the current window
	weight  int64 // previous window's weight, ppm
}

// slidingAt returns the geometry at now of the window idx starting at
// start. per, when not nil, divides by period.
func slidingAt(idx, start, now int64, period time.Duration, per *divider) slidingWindow {
	e := max(now, 0) - start
	p := int64(period)
	// ⌊(p−e)×1e6/p⌋, exactly. The product fits in an int64 for periods up
	// to 2^63/1e6 ns (about 2 h 34 min); longer ones (a day) take 128 bits.
	var w int64
	switch {
	case p <= math.MaxInt64/1_000_000 && per != nil:
		w = per.div((p - e) * 1e6)
	case p <= math.MaxInt64/1_000_000:
		w = (p - e) * 1e6 / p
	default:
		hi, lo := bits.Mul64(uint64(p-e), 1_000_000)
		q, _ := bits.Div64(hi, lo, uint64(p)) // q <= 1e6, so hi < p
		w = int64(q)
	}
	return slidingWindow{idx: idx, elapsed: e, weight: w}
}

// Plan implements limiter.Algorithm.
func (a *Sliding) Plan(b *store.Batch, r *limiter.Request) {
	for i, l := range r.Limits {
		idx, start := a.cur.of(i, a.limits, r.Now, l.Period)
		var per *divider
		if i < len(a.limits) && a.limits[i].Period == l.Period {
			per = &a.per[i]
		}
		g := slidingAt(idx, start, r.Now, l.Period, per)
		op := b.NewOp()
		op.Kind = store.Add
		op.Key.Namespace, op.Key.Caller, op.Key.Window = r.Namespaces[i], r.Caller, g.idx
		op.N, op.Ceil, op.Period = r.N, l.Count, l.Period
		op.Prior.Namespace, op.Prior.Caller, op.Prior.Window = r.Namespaces[i], r.Caller, g.idx-1
		op.PriorWeight = g.weight
		// The current window's counter is the prior of the next one.
		op.TTL = time.Duration(2*int64(l.Period) - g.elapsed)
	}
}

// Decide implements limiter.Algorithm.
func (*Sliding) Decide(b *store.Batch, r *limiter.Request, res *limiter.Result) {
	acc := newBinding(res, b.Applied)
	for i, l := range r.Limits {
		op, out := &b.Ops[i], &b.Results[i]
		remaining, reset, retry := slidingResult(l, r.N, int64(op.TTL), op.PriorWeight, out.Value, out.Prior, b.Applied)
		acc.add(l, remaining, reset, retry > 0, retry)
	}
	acc.done()
}

// slidingResult is one limit's part of Decide: from the op's TTL and prior
// weight and the cell values read, the units remaining, the time to reset
// and, when the limit denied n, the time until it would admit it (else 0).
func slidingResult(l limiter.Limit, n, ttl, weight, cur, prev int64, applied bool) (remaining int64, reset, retry time.Duration) {
	p := int64(l.Period)
	elapsed := 2*p - ttl // Plan set TTL to two windows from the window's start
	used := store.Weighted(prev, weight)
	reset = time.Duration(p - elapsed)
	if cur > 0 {
		reset += time.Duration(p)
	}
	if !applied && !store.Fits(cur, n, used, l.Count) {
		retry = slidingRetry(l.Count, n, cur, prev, elapsed, p) // at least 1
	}
	// Count − (cur + used), without forming a sum that could wrap.
	if remaining = l.Count - cur; remaining > 0 {
		remaining = max(remaining-used, 0)
	}
	return max(remaining, 0), reset, retry
}

// slidingCell is a Sliding as a onecell.Algorithm: the limiter's short
// path.
type slidingCell Sliding

// CellOp is Plan for c's single limit without a batch.
func (c *slidingCell) CellOp(now, n int64) (window, weight, delta, floor, ceil, ttl int64) {
	l := c.limits[0]
	idx, start := c.cur.of(0, c.limits, now, l.Period)
	g := slidingAt(idx, start, now, l.Period, &c.per[0])
	return g.idx, g.weight, n, 0, l.Count, 2*int64(l.Period) - g.elapsed
}

// CellResult is Decide for CellOp's op.
func (c *slidingCell) CellResult(_, n, weight, ttl, value, prior int64, applied bool) (remaining, reset, retry int64) {
	rem, rs, rt := slidingResult(c.limits[0], n, ttl, weight, value, prior, applied)
	if !applied && rt == 0 { // refused by the store (see refusalRetry)
		rt = refused(rs)
	}
	return rem, int64(rs), int64(rt)
}

// slidingRetry returns how long until n fits, if no other request comes:
// the earliest instant at which the weighted previous count drops enough.
func slidingRetry(limit, n, cur, prev, elapsed, p int64) time.Duration {
	// fitsBy returns the elapsed time into a window at which
	// floor(count × weight) <= room, given count in the previous window.
	fitsBy := func(count, room int64) int64 {
		if count <= room {
			return 0
		}
		// weight(e) × count < room + 1 ⇔ e > p × (1 − (room+1)/count)
		e := int64(math.Ceil(float64(p)*(1-float64(room+1)/float64(count)))) + 1
		return min(max(e, 0), p)
	}
	if room := limit - n - cur; room >= 0 {
		return time.Duration(max(fitsBy(prev, room)-elapsed, 1))
	}
	// Not in this window: in the next one, this window's count is the prior.
	return time.Duration(p - elapsed + max(fitsBy(cur, limit-n), 0))
}

// Keys implements limiter.Algorithm.
func (*Sliding) Keys(dst []store.Key, r *limiter.Request) []store.Key {
	for i, l := range r.Limits {
		idx, _ := windowOf(r.Now, l.Period)
		key := store.Key{Namespace: r.Namespaces[i], Caller: r.Caller, Window: idx}
		dst = append(dst, key)
		key.Window--
		dst = append(dst, key)
	}
	return dst
}
