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

// Exact is the exact model a strategy's decisions are judged against.
//
// Over the limit: it counts, per tenant, the requests the strategy actually
// admitted in the current minute and day, across all processes; an
// admission that takes either count past its limit is over the limit.
//
// Wrongly denied: beside that, it runs an exact global limiter on the same
// request sequence (aligned minute and day windows, both limits checked
// together, denied requests not charged); a request that limiter admits and
// the strategy denies is wrongly denied.
type Exact struct {
	policy Policy
	own    windows // what the strategy admitted
	ideal  windows // what the exact limiter admitted

	Admitted      int64
	Denied        int64
	OverLimit     int64 // admitted beyond a limit
	WronglyDenied int64 // denied although the exact limiter admits it
	// MaxMinute is the most requests admitted for one tenant in one minute.
	MaxMinute int64
	// IdealAdmitted is how many requests the exact limiter admitted.
	IdealAdmitted int64
}

// windows holds per-tenant counts in the current minute and day windows.
type windows struct {
	minute, day  []int64 // window index per tenant
	inMin, inDay []int64 // admitted in that window
}

func newWindows(tenants int) windows {
	w := windows{minute: make([]int64, tenants), day: make([]int64, tenants),
		inMin: make([]int64, tenants), inDay: make([]int64, tenants)}
	for i := range w.minute {
		w.minute[i], w.day[i] = -1, -1
	}
	return w
}

// room rolls tenant's windows to now and reports whether one more
// admission keeps both within p.
func (w *windows) room(p Policy, tenant int, now time.Time) bool {
	sec := now.Unix()
	if m := sec / 60; w.minute[tenant] != m {
		w.minute[tenant], w.inMin[tenant] = m, 0
	}
	if d := sec / 86400; w.day[tenant] != d {
		w.day[tenant], w.inDay[tenant] = d, 0
	}
	return w.inMin[tenant] < p.PerMinute && w.inDay[tenant] < p.PerDay
}

func (w *windows) admit(tenant int) int64 {
	w.inMin[tenant]++
	w.inDay[tenant]++
	return w.inMin[tenant]
}

// NewExact returns an empty model for tenants tenants.
func NewExact(p Policy, tenants int) *Exact {
	return &Exact{policy: p, own: newWindows(tenants), ideal: newWindows(tenants)}
}

// Record judges one decision at now for tenant. Calls come in time order.
func (e *Exact) Record(tenant int, now time.Time, allowed bool) {
	idealAdmits := e.ideal.room(e.policy, tenant, now)
	if idealAdmits {
		e.ideal.admit(tenant)
		e.IdealAdmitted++
	}
	room := e.own.room(e.policy, tenant, now)
	if !allowed {
		e.Denied++
		if idealAdmits {
			e.WronglyDenied++
		}
		return
	}
	e.Admitted++
	if !room {
		e.OverLimit++
	}
	e.MaxMinute = max(e.MaxMinute, e.own.admit(tenant))
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
