package limiter_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

var epoch = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func mustNew(t *testing.T, alg limiter.Algorithm, opts ...limiter.Option) *limiter.Limiter {
	t.Helper()
	lim, err := limiter.New(alg, opts...)
	if err != nil {
		t.Fatalf("limiter.New: %v", err)
	}
	t.Cleanup(func() { _ = lim.Close() })
	return lim
}

func TestMinuteAndDay(t *testing.T) {
	clock := storetest.NewClock(epoch)
	s := memory.New()
	lim := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(120), limiter.PerDay(10_000)),
		limiter.WithStore(s), limiter.WithClock(clock.Now))
	ctx := context.Background()
	dayUsed := int64(0)
	// Every minute of the day: 150 requests, 120 admitted, 30 denied and
	// not charged to the day, until the day's 10,000 are spent.
	for minute := range 100 {
		start := epoch.Add(time.Duration(minute) * time.Minute)
		allowedThisMinute := int64(0)
		for i := range 150 {
			clock.Set(start.Add(time.Duration(i) * 100 * time.Millisecond))
			res, err := lim.Allow(ctx, "tenant-42")
			if err != nil {
				t.Fatal(err)
			}
			want := allowedThisMinute < 120 && dayUsed < 10_000
			if res.Allowed != want {
				t.Fatalf("minute %d request %d: Allow = %v; want %v (minute %d/120, day %d/10000)", minute, i+1, res.Allowed, want, allowedThisMinute, dayUsed)
			}
			if res.Allowed {
				allowedThisMinute++
				dayUsed++
				continue
			}
			// The binding limit tells which one denied.
			wantLimit := limiter.PerMinute(120)
			if dayUsed >= 10_000 {
				wantLimit = limiter.PerDay(10_000)
			}
			if res.Limit != wantLimit {
				t.Fatalf("minute %d request %d denied by %v; want %v", minute, i+1, res.Limit, wantLimit)
			}
		}
	}
	if dayUsed != 10_000 {
		t.Fatalf("day admitted %d; want exactly 10000 (denied requests must not be charged)", dayUsed)
	}
	// The next day starts fresh.
	clock.Set(epoch.Add(24 * time.Hour))
	if res, _ := lim.Allow(ctx, "tenant-42"); !res.Allowed || res.Remaining != 119 {
		t.Fatalf("next day: %+v; want allowed with 119 remaining", res)
	}
}

func TestLimitFuncPlans(t *testing.T) {
	clock := storetest.NewClock(epoch.Add(10 * time.Second))
	var mu sync.Mutex
	plans := map[string]int64{"free": 5, "pro": 50}
	lim := mustNew(t, algorithms.FixedWindow(),
		limiter.WithStore(memory.New()), limiter.WithClock(clock.Now),
		limiter.WithLimitFunc(func(ctx context.Context, key string) ([]limiter.Limit, error) {
			mu.Lock()
			defer mu.Unlock()
			return []limiter.Limit{limiter.PerMinute(plans[key])}, nil
		}))
	ctx := context.Background()
	count := func(key string) int64 {
		var n int64
		for range 100 {
			if res, err := lim.Allow(ctx, key); err != nil {
				t.Fatal(err)
			} else if res.Allowed {
				n++
			}
		}
		return n
	}
	if got := count("free"); got != 5 {
		t.Fatalf("free plan admitted %d; want 5", got)
	}
	if got := count("pro"); got != 50 {
		t.Fatalf("pro plan admitted %d; want 50", got)
	}
	// Upgrade mid-window: exactly the difference is admitted.
	mu.Lock()
	plans["free"] = 12
	mu.Unlock()
	if got := count("free"); got != 7 {
		t.Fatalf("after raising free from 5 to 12 mid-window, admitted %d more; want 7", got)
	}
	// The next window uses the new plan in full.
	clock.Set(epoch.Add(time.Minute))
	if got := count("free"); got != 12 {
		t.Fatalf("next window admitted %d; want 12", got)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		alg  limiter.Algorithm
		opts []limiter.Option
		want error
	}{
		{"zero count", algorithms.FixedWindow(limiter.PerMinute(0)), nil, limiter.ErrInvalidLimit},
		{"negative count", algorithms.SlidingWindow(limiter.PerMinute(-1)), nil, limiter.ErrInvalidLimit},
		{"zero period", algorithms.FixedWindow(limiter.Per(5, 0)), nil, limiter.ErrInvalidLimit},
		{"negative period", algorithms.SlidingLog(limiter.Per(5, -time.Second)), nil, limiter.ErrInvalidLimit},
		{"negative burst", algorithms.TokenBucket(limiter.PerSecond(5).WithBurst(-1)), nil, limiter.ErrInvalidLimit},
		{"burst on a window", algorithms.FixedWindow(limiter.PerSecond(5).WithBurst(10)), nil, limiter.ErrInvalidLimit},
		{"no limits", algorithms.FixedWindow(), nil, limiter.ErrInvalidLimit},
		{"duplicate period", algorithms.FixedWindow(limiter.PerMinute(5), limiter.PerMinute(9)), nil, limiter.ErrInvalidLimit},
		{"two limits for a bucket", &twoLimitBucket{}, nil, limiter.ErrInvalidLimit},
		{"too fast a bucket", algorithms.TokenBucket(limiter.Per(10, 5)), nil, limiter.ErrInvalidLimit},
		{"huge sliding log", algorithms.SlidingLog(limiter.PerMinute(1 << 22)), nil, limiter.ErrInvalidLimit},
		{"sliding window period too long for its counters' lifetime", algorithms.SlidingWindow(limiter.Per(1, time.Duration(math.MaxInt64))), nil, limiter.ErrInvalidLimit},
		{"sliding log period too long for its entries' expiry (240 years)", algorithms.SlidingLog(limiter.Per(3, 240*365*24*time.Hour)), nil, limiter.ErrInvalidLimit},
		{"fixed window period above 146 years", algorithms.FixedWindow(limiter.PerMinute(5), limiter.Per(1, math.MaxInt64/2+1)), nil, limiter.ErrInvalidLimit},
		{"nil algorithm", nil, nil, limiter.ErrInvalidOption},
		{"nil store", algorithms.FixedWindow(limiter.PerMinute(5)), []limiter.Option{limiter.WithStore(nil)}, limiter.ErrInvalidOption},
		{"nil clock", algorithms.FixedWindow(limiter.PerMinute(5)), []limiter.Option{limiter.WithClock(nil)}, limiter.ErrInvalidOption},
		{"nil limit func", algorithms.FixedWindow(limiter.PerMinute(5)), []limiter.Option{limiter.WithLimitFunc(nil)}, limiter.ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var alg limiter.Algorithm
			if tt.alg != nil {
				alg = tt.alg
			}
			lim, err := limiter.New(alg, tt.opts...)
			if !errors.Is(err, tt.want) || lim != nil {
				t.Fatalf("New = (%v, %v); want (nil, %v)", lim, err, tt.want)
			}
		})
	}

	lim := mustNew(t, algorithms.TokenBucket(limiter.PerSecond(5).WithBurst(10)), limiter.WithStore(memory.New()))
	calls := []struct {
		name string
		key  string
		n    int64
		want error
	}{
		{"empty key", "", 1, limiter.ErrEmptyKey},
		{"key too long", string(make([]byte, limiter.MaxKeyLen+1)), 1, limiter.ErrKeyTooLong},
		{"zero n", "k", 0, limiter.ErrInvalidN},
		{"negative n", "k", -3, limiter.ErrInvalidN},
		{"n above burst", "k", 11, limiter.ErrInvalidN},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			res, err := lim.AllowN(ctx, tt.key, tt.n)
			if !errors.Is(err, tt.want) || res != (limiter.Result{}) {
				t.Fatalf("AllowN(%.10q, %d) = (%+v, %v); want zero Result and %v", tt.key, tt.n, res, err, tt.want)
			}
		})
	}
	// n equal to the capacity is fine, and bad calls changed nothing.
	if res, err := lim.AllowN(ctx, "k", 10); err != nil || !res.Allowed {
		t.Fatalf("AllowN(k, 10) = (%+v, %v); want allowed", res, err)
	}
	// A limit function returning bad limits is an error, not a panic.
	bad := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(memory.New()),
		limiter.WithLimitFunc(func(context.Context, string) ([]limiter.Limit, error) {
			return []limiter.Limit{limiter.PerMinute(-5)}, nil
		}))
	if _, err := bad.Allow(ctx, "k"); !errors.Is(err, limiter.ErrInvalidLimit) {
		t.Fatalf("Allow with a bad plan = %v; want ErrInvalidLimit", err)
	}
	planErr := errors.New("plan lookup failed")
	failing := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(memory.New()),
		limiter.WithLimitFunc(func(context.Context, string) ([]limiter.Limit, error) { return nil, planErr }))
	if _, err := failing.Allow(ctx, "k"); !errors.Is(err, planErr) {
		t.Fatalf("Allow with a failing limit func = %v; want it wrapped", err)
	}
}

// twoLimitBucket is a token bucket given two limits, which it refuses.
type twoLimitBucket struct{ algorithms.Bucket }

func (*twoLimitBucket) Limits() []limiter.Limit {
	return []limiter.Limit{limiter.PerSecond(1), limiter.PerMinute(10)}
}

// failingStore fails every call.
type failingStore struct{ err error }

func (f failingStore) Do(context.Context, *store.Batch) error    { return f.err }
func (f failingStore) Reset(context.Context, ...store.Key) error { return f.err }
func (failingStore) Close() error                                { return nil }

func TestStoreErrorsSurface(t *testing.T) {
	boom := errors.Join(store.ErrUnavailable, errors.New("connection refused"))
	lim := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(failingStore{boom}))
	res, err := lim.Allow(context.Background(), "k")
	if !errors.Is(err, store.ErrUnavailable) || res.Allowed {
		t.Fatalf("Allow on a failing store = (%+v, %v); want not allowed, ErrUnavailable", res, err)
	}
	if err := lim.Reset(context.Background(), "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Reset on a failing store = %v; want ErrUnavailable", err)
	}
}

func TestPeekAndReset(t *testing.T) {
	clock := storetest.NewClock(epoch)
	lim := mustNew(t, algorithms.SlidingWindow(limiter.PerMinute(3), limiter.PerHour(10)),
		limiter.WithStore(memory.New()), limiter.WithClock(clock.Now))
	ctx := context.Background()
	for range 3 {
		if res, _ := lim.Peek(ctx, "k"); !res.Allowed || res.Remaining != 3 {
			t.Fatalf("Peek on a fresh key = %+v; want allowed, 3 remaining, nothing spent", res)
		}
	}
	for range 3 {
		lim.Allow(ctx, "k")
	}
	if res, _ := lim.Peek(ctx, "k"); res.Allowed || res.Remaining != 0 || res.RetryAfter <= 0 {
		t.Fatalf("Peek on a spent key = %+v; want denied with a RetryAfter", res)
	}
	if err := lim.Reset(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if res, _ := lim.Allow(ctx, "k"); !res.Allowed || res.Remaining != 2 {
		t.Fatalf("Allow after Reset = %+v; want allowed, 2 remaining", res)
	}
}

func TestClosedStore(t *testing.T) {
	s := memory.New()
	lim := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(s))
	if err := lim.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := lim.Allow(context.Background(), "k"); err != nil {
		t.Fatalf("Close closed a store passed by WithStore: %v", err)
	}
	s.Close()
	if _, err := lim.Allow(context.Background(), "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Allow on a closed store = %v; want ErrClosed", err)
	}
	// The default store is the limiter's own, and Close closes it.
	own := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)))
	own.Close()
	if _, err := own.Allow(context.Background(), "k"); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Allow after Close of the default store = %v; want ErrClosed", err)
	}
}

func TestTimeGoingBackwards(t *testing.T) {
	clock := storetest.NewClock(epoch.Add(time.Hour))
	lim := mustNew(t, algorithms.TokenBucket(limiter.PerSecond(1).WithBurst(2)),
		limiter.WithStore(memory.New()), limiter.WithClock(clock.Now))
	ctx := context.Background()
	lim.AllowN(ctx, "k", 2)
	clock.Set(epoch) // an hour back: the bucket must not refill
	if res, _ := lim.Allow(ctx, "k"); res.Allowed {
		t.Fatal("a clock jumping back refilled the bucket")
	}
}

// TestClockOutOfRange: a clock before 1970 or past 2116 (the zero
// time.Time, a fake clock left unset) is refused with ErrClockRange by
// every algorithm, on every call, and charges nothing; at the edges of the
// range decisions are made.
func TestClockOutOfRange(t *testing.T) {
	ctx := context.Background()
	algs := []limiter.Algorithm{
		algorithms.FixedWindow(limiter.PerMinute(2)),
		algorithms.SlidingWindow(limiter.PerMinute(2)),
		algorithms.TokenBucket(limiter.PerMinute(2)),
		algorithms.SlidingLog(limiter.PerMinute(2)),
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"zero time.Time", time.Time{}, false},
		{"1960", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"1 ns before 1970", time.Unix(0, -1), false},
		{"1970", time.Unix(0, 0), true},
		{"2116-02-20, the last ns", time.Unix(0, math.MaxInt64/2-1), true},
		{"2116-02-20, the end", time.Unix(0, math.MaxInt64/2), false},
		{"2262", time.Unix(math.MaxInt64/int64(time.Second), 0), false},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		for _, alg := range algs {
			t.Run(tc.name+"/"+alg.Name(), func(t *testing.T) {
				st := memory.New()
				clock := storetest.NewClock(tc.at)
				lim := mustNew(t, alg, limiter.WithStore(st), limiter.WithClock(clock.Now))
				res, err := lim.Allow(ctx, "k")
				_, perr := lim.Peek(ctx, "k")
				rerr := lim.Reset(ctx, "k")
				if tc.ok {
					if err != nil || !res.Allowed || perr != nil || rerr != nil {
						t.Fatalf("at %v: Allow = (%+v, %v), Peek error %v, Reset error %v; want a decision", tc.at, res, err, perr, rerr)
					}
					return
				}
				for _, e := range []error{err, perr, rerr} {
					if !errors.Is(e, limiter.ErrClockRange) {
						t.Fatalf("at %v: error %v; want ErrClockRange", tc.at, e)
					}
				}
				if res != (limiter.Result{}) || st.Len() != 0 {
					t.Fatalf("at %v: Allow returned %+v and the store holds %d keys; want nothing decided or charged", tc.at, res, st.Len())
				}
			})
		}
	}
}

func TestDefaultStoreIsHybrid(t *testing.T) {
	lim := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)))
	if _, ok := lim.Store().(*hybrid.Store); !ok {
		t.Fatalf("default store is %T; want *hybrid.Store", lim.Store())
	}
}

// A plan above the algorithm's default limit takes n up to the plan's
// capacity.
func TestPlanAboveDefault(t *testing.T) {
	lim := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(memory.New()),
		limiter.WithLimitFunc(func(ctx context.Context, key string) ([]limiter.Limit, error) {
			if key == "gold" {
				return []limiter.Limit{limiter.PerMinute(10)}, nil
			}
			return nil, nil
		}))
	ctx := context.Background()
	if res, err := lim.AllowN(ctx, "gold", 8); err != nil || !res.Allowed {
		t.Fatalf("AllowN(gold, 8) under a 10/minute plan = (%+v, %v); want allowed", res, err)
	}
	if _, err := lim.AllowN(ctx, "basic", 8); !errors.Is(err, limiter.ErrInvalidN) {
		t.Fatalf("AllowN(basic, 8) under the 5/minute default = %v; want ErrInvalidN", err)
	}
	if _, err := lim.AllowN(ctx, "gold", 11); !errors.Is(err, limiter.ErrInvalidN) {
		t.Fatalf("AllowN(gold, 11) = %v; want ErrInvalidN", err)
	}
}

// partialAlg decides like the fixed window but, for callers other than
// "full", fills only Allowed: the limiter must not hand such a caller the
// fields of an earlier decision.
type partialAlg struct{ *algorithms.Fixed }

func (a partialAlg) Decide(b *store.Batch, r *limiter.Request, res *limiter.Result) {
	if r.Caller == "full" {
		a.Fixed.Decide(b, r, res)
		return
	}
	res.Allowed = b.Applied
}

func TestDecideStartsFromZero(t *testing.T) {
	lim, err := limiter.New(partialAlg{algorithms.FixedWindow(limiter.PerMinute(10))}, limiter.WithStore(memory.New()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 20 { // the scratch is pooled: repeat so that it is reused
		if res, err := lim.Allow(ctx, "full"); err != nil || res.Limit.Count != 10 {
			t.Fatalf("Allow(full) = %+v, %v; want the fixed window's result", res, err)
		}
		res, err := lim.Allow(ctx, "partial")
		if err != nil {
			t.Fatal(err)
		}
		if want := (limiter.Result{Allowed: res.Allowed}); res != want {
			t.Fatalf("Allow(partial) = %+v; want only Allowed set, nothing left from the previous decision", res)
		}
	}
}

// TestPlanChange: what a caller has spent when its plan changes mid-window,
// as docs/algorithms.md states it. The window algorithms keep the count
// spent; the token bucket keeps the instant up to which it is spent, which
// the new plan re-values at its own rate.
func TestPlanChange(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name               string
		alg                func(limiter.Limit) limiter.Algorithm
		afterUp, afterDown int // admitted after spending 10 and moving 10→20, and 20→10
	}{
		{"fixed", func(l limiter.Limit) limiter.Algorithm { return algorithms.FixedWindow(l) }, 10, 0},
		{"sliding", func(l limiter.Limit) limiter.Algorithm { return algorithms.SlidingWindow(l) }, 10, 0},
		{"log", func(l limiter.Limit) limiter.Algorithm { return algorithms.SlidingLog(l) }, 10, 0},
		{"bucket", func(l limiter.Limit) limiter.Algorithm { return algorithms.TokenBucket(l) }, 0, 5},
	} {
		for _, move := range []struct {
			name     string
			from, to int64
		}{{"up", 10, 20}, {"down", 20, 10}} {
			t.Run(tc.name+"/"+move.name, func(t *testing.T) {
				var plan atomic.Int64
				plan.Store(move.from)
				clock := storetest.NewClock(epoch.Add(10 * time.Second))
				lim := mustNew(t, tc.alg(limiter.PerMinute(20)), limiter.WithStore(memory.New()), limiter.WithClock(clock.Now),
					limiter.WithLimitFunc(func(context.Context, string) ([]limiter.Limit, error) {
						return []limiter.Limit{limiter.PerMinute(plan.Load())}, nil
					}))
				count := func(n int) int {
					ok := 0
					for range n {
						res, err := lim.Allow(ctx, "k")
						if err != nil {
							t.Fatal(err)
						}
						if res.Allowed {
							ok++
						}
					}
					return ok
				}
				if got := count(10); got != 10 {
					t.Fatalf("admitted %d of 10 on a plan of %d", got, move.from)
				}
				plan.Store(move.to)
				want := tc.afterUp
				if move.to < move.from {
					want = tc.afterDown
				}
				if got := count(30); got != want {
					t.Fatalf("after spending 10 and moving from %d to %d a minute, admitted %d more; want %d", move.from, move.to, got, want)
				}
			})
		}
	}
}
