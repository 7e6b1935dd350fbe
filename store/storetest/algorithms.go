package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
)

// Clock is a fake clock for tests: it moves only when told to. It is safe
// for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time; pass it to limiter.WithClock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// step is one request in an algorithm scenario.
type step struct {
	at          time.Duration // after the scenario's start
	n           int64
	wantAllowed bool
	wantRetry   time.Duration // checked when not allowed
	wantRemain  int64         // checked always
}

// runSteps drives alg through steps on s, starting at base.
func runSteps(t *testing.T, s store.Store, alg limiter.Algorithm, steps []step) {
	t.Helper()
	clock := NewClock(time.Unix(0, base))
	lim, err := limiter.New(alg, limiter.WithStore(s), limiter.WithClock(clock.Now), limiter.WithPrefix(namespace(t)))
	if err != nil {
		t.Fatalf("limiter.New: %v", err)
	}
	for i, st := range steps {
		clock.Set(time.Unix(0, base).Add(st.at))
		res, err := lim.AllowN(t.Context(), "caller", st.n)
		if err != nil {
			t.Fatalf("step %d: AllowN(caller, %d) at +%v: %v", i, st.n, st.at, err)
		}
		if res.Allowed != st.wantAllowed || res.Remaining != st.wantRemain ||
			(!st.wantAllowed && res.RetryAfter != st.wantRetry) || (st.wantAllowed && res.RetryAfter != 0) {
			t.Fatalf("step %d: AllowN(caller, %d) at +%v = {Allowed %v, Remaining %d, RetryAfter %v}; want {%v, %d, %v}",
				i, st.n, st.at, res.Allowed, res.Remaining, res.RetryAfter, st.wantAllowed, st.wantRemain, st.wantRetry)
		}
	}
}

func testFixedWindow(t *testing.T, s store.Store) {
	const w = 10 * time.Second // base is aligned to 10 s windows
	runSteps(t, s, algorithms.FixedWindow(limiter.Per(3, w)), []step{
		{0, 1, true, 0, 2},
		{time.Second, 2, true, 0, 0},
		{2 * time.Second, 1, false, 8 * time.Second, 0},
		{w - 1, 1, false, 1, 0},
		{w, 3, true, 0, 0}, // a new window
		{w + time.Second, 1, false, 9 * time.Second, 0},
		{3 * w, 2, true, 0, 1},
	})
}

func testFixedWindowTwoLimits(t *testing.T, s store.Store) {
	// 3 per minute and 5 per hour: the 4th request of the first minute is
	// denied by the minute and must not be charged to the hour, so the
	// second minute admits exactly 2 more.
	runSteps(t, s, algorithms.FixedWindow(limiter.PerMinute(3), limiter.PerHour(5)), []step{
		{0, 1, true, 0, 2},
		{time.Second, 1, true, 0, 1},
		{2 * time.Second, 1, true, 0, 0},
		{3 * time.Second, 1, false, 57 * time.Second, 0},
		{4 * time.Second, 1, false, 56 * time.Second, 0},
		{time.Minute, 1, true, 0, 1},     // minute: 2 left, hour: 1 left
		{time.Minute + 1, 1, true, 0, 0}, // hour: 0 left
		{time.Minute + 2, 1, false, time.Hour - time.Minute - 2, 0},
		{2 * time.Minute, 1, false, time.Hour - 2*time.Minute, 0},
		{time.Hour, 3, true, 0, 0},
	})
}

func testSlidingWindow(t *testing.T, s store.Store) {
	const w = 10 * time.Second
	runSteps(t, s, algorithms.SlidingWindow(limiter.Per(10, w)), []step{
		{0, 10, true, 0, 0},
		// Full; in the next window the previous count weighs (1 − f):
		// at +w+5s, 10 × 0.5 = 5 are used, so 5 fit.
		{time.Second, 1, false, w - time.Second + 1, 0},
		{w, 1, false, 1, 0},
		{w + 5*time.Second, 5, true, 0, 0},
		// The weighted count is rounded down: 1 ns later 10 × 0.499999 = 4.
		{w + 5*time.Second + 1, 1, true, 0, 0},
		{w + 5*time.Second + 2, 1, false, time.Second - 1, 0},
		{3 * w, 10, true, 0, 0},
	})
}

func testTokenBucket(t *testing.T, s store.Store) {
	ms := time.Millisecond
	// 10 per second (a token every 100 ms), burst 5, starting full.
	runSteps(t, s, algorithms.TokenBucket(limiter.PerSecond(10).WithBurst(5)), []step{
		{0, 5, true, 0, 0},
		{0, 1, false, 100 * ms, 0},
		{50 * ms, 1, false, 50 * ms, 0},
		{100 * ms, 1, true, 0, 0},
		{300 * ms, 3, false, 100 * ms, 2},
		{400 * ms, 3, true, 0, 0},
		{time.Second, 5, true, 0, 0}, // full again by 900 ms
		{time.Second, 1, false, 100 * ms, 0},
		{10 * time.Second, 5, true, 0, 0},
	})
}

func testSlidingLog(t *testing.T, s store.Store) {
	const w = 10 * time.Second
	runSteps(t, s, algorithms.SlidingLog(limiter.Per(3, w)), []step{
		{0, 1, true, 0, 2},
		{time.Second, 1, true, 0, 1},
		{2 * time.Second, 1, true, 0, 0},
		{3 * time.Second, 1, false, 7 * time.Second, 0},
		{w - 1, 2, false, time.Second + 1, 0}, // the entry at +1s must expire too
		{w, 1, true, 0, 0},
		{w + time.Second, 2, false, time.Second, 1},
		{w + time.Second, 1, true, 0, 0},
		{w + time.Second + 1, 1, false, time.Second - 1, 0},
	})
}

func testPrefixes(t *testing.T, s store.Store) {
	clock := NewClock(time.Unix(0, base))
	ns := namespace(t)
	newLim := func(prefix string) *limiter.Limiter {
		lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(2)),
			limiter.WithStore(s), limiter.WithClock(clock.Now), limiter.WithPrefix(prefix))
		if err != nil {
			t.Fatalf("limiter.New: %v", err)
		}
		return lim
	}
	a, a2, b := newLim(ns+"a"), newLim(ns+"a"), newLim(ns+"b")
	ctx := t.Context()
	for i, l := range []*limiter.Limiter{a, a2} {
		if res, err := l.Allow(ctx, "k"); err != nil || !res.Allowed {
			t.Fatalf("request %d on prefix a: (%+v, %v); want allowed", i, res, err)
		}
	}
	if res, _ := a.Allow(ctx, "k"); res.Allowed {
		t.Fatal("two limiters with one prefix did not share the limit")
	}
	if res, err := b.Allow(ctx, "k"); err != nil || !res.Allowed || res.Remaining != 1 {
		t.Fatalf("prefix b = (%+v, %v); want allowed with 1 remaining: prefixes share state", res, err)
	}
}
