package algorithms_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

var epoch = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

func newLimiter(t *testing.T, alg limiter.Algorithm, clock *storetest.Clock) *limiter.Limiter {
	t.Helper()
	lim, err := limiter.New(alg, limiter.WithStore(memory.New()), limiter.WithClock(clock.Now))
	if err != nil {
		t.Fatalf("limiter.New: %v", err)
	}
	return lim
}

// arrival is one request of a random sequence.
type arrival struct {
	at time.Time
	n  int64
}

// arrivals returns a random sequence of count requests whose gaps average
// meanGap, each asking for 1..maxN units (mostly 1).
func arrivals(rng *rand.Rand, start time.Time, count int, meanGap time.Duration, maxN int64) []arrival {
	out := make([]arrival, count)
	t := start.Add(time.Duration(rng.Int64N(int64(time.Hour))))
	for i := range out {
		t = t.Add(time.Duration(rng.ExpFloat64() * float64(meanGap)))
		n := int64(1)
		if maxN > 1 && rng.IntN(4) == 0 {
			n = 1 + rng.Int64N(maxN)
		}
		out[i] = arrival{at: t, n: n}
	}
	return out
}

func TestTokenBucketMatchesXTimeRate(t *testing.T) {
	rates := []struct {
		count  int64
		period time.Duration
	}{
		{1, time.Second}, {10, time.Second}, {100, time.Second}, {5, time.Second},
		{120, time.Minute}, {7, 700 * time.Millisecond}, {1000, time.Second}, {3, 3 * time.Second},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const sequences = 2000
	decisions, allowed := 0, 0
	for seq := range sequences {
		r := rates[seq%len(rates)]
		burst := 1 + rng.Int64N(20)
		interval := r.period / time.Duration(r.count)
		clock := storetest.NewClock(epoch)
		lim := newLimiter(t, algorithms.TokenBucket(limiter.Per(r.count, r.period).WithBurst(burst)), clock)
		ref := rate.NewLimiter(rate.Limit(float64(r.count)/r.period.Seconds()), int(burst))
		for i, a := range arrivals(rng, epoch, 200, interval/2+time.Duration(rng.Int64N(int64(interval))), burst) {
			clock.Set(a.at)
			res, err := lim.AllowN(context.Background(), "k", a.n)
			if err != nil {
				t.Fatalf("seq %d step %d: AllowN: %v", seq, i, err)
			}
			want := ref.AllowN(a.at, int(a.n))
			if res.Allowed != want {
				t.Fatalf("seq %d (%d/%v burst %d) step %d: AllowN(t=%v, n=%d) = %v; x/time/rate says %v",
					seq, r.count, r.period, burst, i, a.at.Format(time.RFC3339Nano), a.n, res.Allowed, want)
			}
			if !want {
				// RetryAfter is when the bucket holds n again: not before,
				// and not more than float rounding after.
				n := float64(a.n)
				if got := ref.TokensAt(a.at.Add(res.RetryAfter + time.Microsecond)); got < n {
					t.Fatalf("seq %d step %d: after RetryAfter %v the bucket holds %.6f tokens; want %d", seq, i, res.RetryAfter, got, a.n)
				}
				if res.RetryAfter > time.Microsecond {
					if got := ref.TokensAt(a.at.Add(res.RetryAfter - time.Microsecond)); got >= n {
						t.Fatalf("seq %d step %d: RetryAfter %v is late: %.6f tokens 1µs before", seq, i, res.RetryAfter, got)
					}
				}
			}
			decisions++
			if want {
				allowed++
			}
		}
	}
	// The sequences must exercise both outcomes, or the comparison is empty.
	if allowed < decisions/5 || allowed > decisions*4/5 {
		t.Fatalf("%d of %d decisions allowed: the workload does not test the boundary", allowed, decisions)
	}
}

func TestFixedWindowExactPerWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for seq := range 300 {
		limit := 1 + rng.Int64N(30)
		period := time.Duration(1+rng.IntN(60)) * time.Second
		clock := storetest.NewClock(epoch)
		lim := newLimiter(t, algorithms.FixedWindow(limiter.Per(limit, period)), clock)
		counts := map[int64]int64{}
		for i, a := range arrivals(rng, epoch, 300, period/time.Duration(2*limit), limit) {
			clock.Set(a.at)
			res, err := lim.AllowN(context.Background(), "k", a.n)
			if err != nil {
				t.Fatal(err)
			}
			w := a.at.UnixNano() / int64(period)
			want := counts[w]+a.n <= limit
			if res.Allowed != want {
				t.Fatalf("seq %d step %d: window %d holds %d of %d; AllowN(%d) = %v, want %v", seq, i, w, counts[w], limit, a.n, res.Allowed, want)
			}
			if want {
				counts[w] += a.n
			}
			if res.Remaining != limit-counts[w] {
				t.Fatalf("seq %d step %d: Remaining = %d; want %d", seq, i, res.Remaining, limit-counts[w])
			}
			if !want {
				end := time.Unix(0, (w+1)*int64(period))
				if res.RetryAfter != end.Sub(a.at) {
					t.Fatalf("seq %d step %d: RetryAfter = %v; want %v (the window's end)", seq, i, res.RetryAfter, end.Sub(a.at))
				}
			}
		}
	}
}

func TestSlidingLogExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for seq := range 300 {
		limit := 1 + rng.Int64N(20)
		period := time.Duration(1+rng.IntN(30)) * time.Second
		clock := storetest.NewClock(epoch)
		lim := newLimiter(t, algorithms.SlidingLog(limiter.Per(limit, period)), clock)
		var admitted []time.Time // one per unit
		inWindow := func(end time.Time) int64 {
			var c int64
			for _, at := range admitted {
				if at.After(end.Add(-period)) && !at.After(end) {
					c++
				}
			}
			return c
		}
		for i, a := range arrivals(rng, epoch, 200, period/time.Duration(2*limit), limit) {
			clock.Set(a.at)
			res, err := lim.AllowN(context.Background(), "k", a.n)
			if err != nil {
				t.Fatal(err)
			}
			// Admitting keeps every interval of one period within the limit
			// iff the interval ending now does (earlier ones are unchanged).
			want := inWindow(a.at)+a.n <= limit
			if res.Allowed != want {
				t.Fatalf("seq %d step %d: %d in the last %v, limit %d: AllowN(%d) = %v, want %v", seq, i, inWindow(a.at), period, limit, a.n, res.Allowed, want)
			}
			if want {
				for range a.n {
					admitted = append(admitted, a.at)
				}
			} else {
				// Retrying after RetryAfter fits; 1 ns earlier does not.
				retry := a.at.Add(res.RetryAfter)
				if inWindow(retry)+a.n > limit || inWindow(retry.Add(-1))+a.n <= limit {
					t.Fatalf("seq %d step %d: RetryAfter %v is not the earliest fitting instant", seq, i, res.RetryAfter)
				}
			}
		}
		// Never more than the limit in any interval of one period.
		for _, at := range admitted {
			if c := inWindow(at); c > limit {
				t.Fatalf("seq %d: %d admitted in the %v ending %v, limit %d", seq, c, period, at, limit)
			}
		}
	}
}

func TestSlidingWindowWithinBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for seq := range 300 {
		limit := 2 + rng.Int64N(40)
		period := time.Duration(1+rng.IntN(30)) * time.Second
		clock := storetest.NewClock(epoch)
		lim := newLimiter(t, algorithms.SlidingWindow(limiter.Per(limit, period)), clock)
		counts := map[int64]int64{}
		var admitted []time.Time
		for i, a := range arrivals(rng, epoch, 300, period/time.Duration(3*limit), limit) {
			clock.Set(a.at)
			res, err := lim.AllowN(context.Background(), "k", a.n)
			if err != nil {
				t.Fatal(err)
			}
			// The documented estimate: previous × weight (ppm, rounded
			// down, product rounded down) + current.
			now := a.at.UnixNano()
			w := now / int64(period)
			estAt := func(now int64) int64 {
				w := now / int64(period)
				elapsed := now - w*int64(period)
				ppm := (int64(period) - elapsed) * 1_000_000 / int64(period)
				prev := counts[w-1]
				return prev/1_000_000*ppm + prev%1_000_000*ppm/1_000_000 + counts[w]
			}
			est := estAt(now)
			want := est+a.n <= limit
			if !want {
				// RetryAfter is never early, and late by at most 1 ms
				// (the weight is rounded to parts per million).
				at := now + int64(res.RetryAfter)
				if estAt(at)+a.n > limit {
					t.Fatalf("seq %d step %d: at RetryAfter %v the estimate is %d; %d do not fit in %d", seq, i, res.RetryAfter, estAt(at), a.n, limit)
				}
				if early := at - int64(time.Millisecond); early > now && estAt(early)+a.n <= limit {
					t.Fatalf("seq %d step %d: RetryAfter %v is more than 1 ms late", seq, i, res.RetryAfter)
				}
			}
			if res.Allowed != want {
				t.Fatalf("seq %d step %d: estimate %d of %d, AllowN(%d) = %v; want %v", seq, i, est, limit, a.n, res.Allowed, want)
			}
			if want {
				counts[w] += a.n
				for range a.n {
					admitted = append(admitted, a.at)
				}
			}
		}
		// The bounds of docs/algorithms.md: at most the limit per aligned
		// window, at most twice the limit in any interval of one period.
		for w, c := range counts {
			if c > limit {
				t.Fatalf("seq %d: window %d admitted %d, limit %d", seq, w, c, limit)
			}
		}
		for i, at := range admitted {
			var c int64
			for _, other := range admitted[i:] {
				if other.Sub(at) < period {
					c++
				}
			}
			if c > 2*limit {
				t.Fatalf("seq %d: %d admitted in the %v from %v, bound %d", seq, c, period, at, 2*limit)
			}
		}
	}
}

// TestConcurrentExact: 16 goroutines × 10,000 calls on one key admit exactly
// the limit.
func TestConcurrentExact(t *testing.T) {
	const goroutines, calls, limit = 16, 10_000, 5_000
	algs := []struct {
		name string
		alg  limiter.Algorithm
	}{
		{"fixed", algorithms.FixedWindow(limiter.PerMinute(limit))},
		{"log", algorithms.SlidingLog(limiter.PerMinute(limit))},
		{"bucket", algorithms.TokenBucket(limiter.PerMinute(limit))},
		{"sliding", algorithms.SlidingWindow(limiter.PerMinute(limit))},
	}
	for _, tt := range algs {
		t.Run(tt.name, func(t *testing.T) {
			clock := storetest.NewClock(epoch.Add(time.Second))
			lim := newLimiter(t, tt.alg, clock)
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range calls {
						res, err := lim.Allow(context.Background(), "hot")
						if err != nil {
							t.Error(err)
							return
						}
						if res.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := allowed.Load(); got != limit {
				t.Fatalf("%d goroutines × %d calls admitted %d; want exactly %d", goroutines, calls, got, limit)
			}
		})
	}
}

// TestBucketRemainingExact checks Remaining against an exact division for
// intervals and spans where a float estimate is off.
func TestBucketRemainingExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 2000 {
		count := 1 + rng.Int64N(1_000)
		period := time.Duration(1+rng.Int64N(int64(time.Hour))) * time.Nanosecond
		if int64(period)/count == 0 {
			continue
		}
		burst := 1 + rng.Int64N(1<<20)
		interval := int64(period) / count
		if burst > (1<<62)/interval {
			continue
		}
		clock := storetest.NewClock(epoch)
		lim := newLimiter(t, algorithms.TokenBucket(limiter.Per(count, period).WithBurst(burst)), clock)
		n := 1 + rng.Int64N(burst)
		res, err := lim.AllowN(context.Background(), "k", n)
		if err != nil {
			t.Fatal(err)
		}
		if want := burst - n; res.Remaining != want {
			t.Fatalf("bucket %d/%v burst %d after %d: Remaining = %d; want %d", count, period, burst, n, res.Remaining, want)
		}
	}
}
