package main

import (
	"math"
	"math/bits"
	"time"
)

// Policy is the incident's limit: PerMinute requests per tenant per minute
// and PerDay per tenant per day, counted in aligned windows.
type Policy struct {
	PerMinute int64
	PerDay    int64
}

// incidentPolicy is 120/minute and 10,000/day.
func incidentPolicy() Policy { return Policy{PerMinute: 120, PerDay: 10_000} }

// Exact is the exact model a strategy's decisions are judged against. It
// tracks, per tenant, how many requests the strategy actually admitted in
// the current minute and day, across all processes: an admission that takes
// either count past its limit is over the limit; a denial while both counts
// have room is wrong (an exact global limiter in the same state would have
// admitted it).
type Exact struct {
	policy Policy
	start  time.Time
	minute []int64 // current minute window index per tenant
	day    []int64
	inMin  []int64 // admitted in that minute
	inDay  []int64

	Admitted      int64
	Denied        int64
	OverLimit     int64 // admitted beyond a limit
	WronglyDenied int64 // denied with room under every limit
	// MaxMinute is the most requests admitted for one tenant in one minute.
	MaxMinute int64
}

// NewExact returns an empty model for tenants tenants. start is the
// replay's first instant: windows are aligned on Unix time, as the
// strategies' are.
func NewExact(p Policy, tenants int, start time.Time) *Exact {
	e := &Exact{policy: p, start: start,
		minute: make([]int64, tenants), day: make([]int64, tenants),
		inMin: make([]int64, tenants), inDay: make([]int64, tenants)}
	for i := range e.minute {
		e.minute[i], e.day[i] = -1, -1
	}
	return e
}

// Record judges one decision at now for tenant.
func (e *Exact) Record(tenant int, now time.Time, allowed bool) {
	m := now.Unix() / 60
	d := now.Unix() / 86400
	if e.minute[tenant] != m {
		e.minute[tenant], e.inMin[tenant] = m, 0
	}
	if e.day[tenant] != d {
		e.day[tenant], e.inDay[tenant] = d, 0
	}
	room := e.inMin[tenant] < e.policy.PerMinute && e.inDay[tenant] < e.policy.PerDay
	if !allowed {
		e.Denied++
		if room {
			e.WronglyDenied++
		}
		return
	}
	e.Admitted++
	if !room {
		e.OverLimit++
	}
	e.inMin[tenant]++
	e.inDay[tenant]++
	e.MaxMinute = max(e.MaxMinute, e.inMin[tenant])
}

// Histogram records durations in logarithmic buckets with 1/64 octave
// resolution (about 1 % relative error) and no allocation per sample.
type Histogram struct {
	counts [64 * 64]int64
	n      int64
}

func bucketOf(ns int64) int {
	if ns < 64 {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 7 // ns >> e is in [64, 128)
	return (e+1)*64 + int(uint64(ns)>>e) - 64
}

func bucketLow(b int) int64 {
	if b < 64 {
		return int64(b)
	}
	e := b/64 - 1
	return int64(b%64+64) << e
}

// Add records one duration.
func (h *Histogram) Add(d time.Duration) {
	b := min(bucketOf(int64(d)), len(h.counts)-1)
	h.counts[b]++
	h.n++
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() int64 { return h.n }

// Quantile returns the duration at quantile q in [0, 1], the lower bound of
// its bucket; 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketLow(b))
		}
	}
	return time.Duration(bucketLow(len(h.counts) - 1))
}
