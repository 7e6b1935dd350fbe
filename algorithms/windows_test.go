package algorithms

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
)

// TestWindowCache checks the cached window index against windowOf on
// instants that move forward, jump back, cross window edges, sit exactly on
// them and go below zero, for the algorithm's own periods and for periods
// of a limit function's limits (not cached, whatever the slot holds).
func TestWindowCache(t *testing.T) {
	own := []limiter.Limit{limiter.PerMinute(10), limiter.PerDay(100), limiter.Per(1, 7*time.Nanosecond)}
	others := []time.Duration{time.Second, time.Hour, 3 * time.Nanosecond, math.MaxInt64 / 3}
	var w windows
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC).UnixNano()
	for step := range 200_000 {
		switch rng.IntN(6) {
		case 0:
			now -= rng.Int64N(int64(48 * time.Hour)) // back, possibly below zero on repeated draws
		case 1:
			_, start := windowOf(now, own[rng.IntN(len(own))].Period)
			now = start // exactly on an edge
		case 2:
			now = -rng.Int64N(1e9)
		default:
			now += rng.Int64N(int64(2 * time.Minute))
		}
		now = max(now, math.MinInt64/2)
		i := rng.IntN(len(own))
		period := own[i].Period
		if rng.IntN(4) == 0 {
			period = others[rng.IntN(len(others))]
		}
		gotIdx, gotStart := w.of(i, own, now, period)
		wantIdx, wantStart := windowOf(now, period)
		if gotIdx != wantIdx || gotStart != wantStart {
			t.Fatalf("step %d: of(%d, now=%d, %v) = (%d, %d); want (%d, %d)", step, i, now, period, gotIdx, gotStart, wantIdx, wantStart)
		}
	}
}

// TestDivider checks the multiplicative division against the division
// instruction on random and edge-case dividends and divisors.
func TestDivider(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	divisors := []int64{1, 2, 3, 7, 10, 1000, 1_000_000_007, 1 << 32, 1<<32 + 1, math.MaxInt64 / 3, math.MaxInt64 - 1, math.MaxInt64}
	for range 200 {
		divisors = append(divisors, rng.Int64N(math.MaxInt64)+1, rng.Int64N(1<<20)+1)
	}
	for _, d := range divisors {
		v := newDivider(d)
		xs := []int64{0, 1, d - 1, d, d + 1, math.MaxInt64, math.MaxInt64 - 1, math.MaxInt64 - d + 1}
		for range 2000 {
			xs = append(xs, rng.Int64N(math.MaxInt64), rng.Int64N(1<<40))
		}
		for k := int64(1); k < 5 && k <= math.MaxInt64/d; k++ {
			xs = append(xs, k*d, k*d-1) // around exact multiples
		}
		for _, x := range xs {
			if x < 0 {
				continue
			}
			if got, want := v.div(x), x/d; got != want {
				t.Fatalf("div(%d) by %d = %d; want %d", x, d, got, want)
			}
		}
	}
}

// TestSlidingWeightExact: the previous window's weight is ⌊(p−e)×1e6/p⌋
// exactly, computed with big integers here, for periods drawn across the
// divider's range (up to 2^63/1e6 ns, about 2 h 34 min) and beyond it
// (128-bit arithmetic), with and without an own limit's divider.
func TestSlidingWeightExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	edge := int64(math.MaxInt64 / 1_000_000)
	periods := []int64{1, 2, 3, int64(time.Second), int64(time.Minute), edge - 1, edge, edge + 1, int64(3 * time.Hour), int64(24 * time.Hour), int64(7 * 24 * time.Hour), math.MaxInt64 / 2}
	for range 300 {
		periods = append(periods, 1+rng.Int64N(edge), edge+1+rng.Int64N(math.MaxInt64/2-edge),
			1_000_000*(1+rng.Int64N(math.MaxInt64/2/1_000_000))) // whole ppm steps
	}
	for _, p := range periods {
		per := newDivider(p)
		for k := range 200 {
			var e int64
			switch {
			case k == 0:
				e = 0
			case k == 1:
				e = p - 1
			case k%2 == 0 && p >= 1_000_000:
				// Where the weight is a whole number of ppm, or one ns
				// either side: rounding errors show there.
				e = min(rng.Int64N(1_000_000)*(p/1_000_000)+rng.Int64N(3)-1, p-1)
				e = max(e, 0)
			default:
				e = rng.Int64N(p)
			}
			start := 3 * p // windows far from 0, within range for every period here
			if p > math.MaxInt64/4 {
				start = p
			}
			now := start + e
			want := new(big.Int).Mul(big.NewInt(p-e), big.NewInt(1_000_000))
			want.Quo(want, big.NewInt(p))
			for _, d := range []*divider{&per, nil} {
				got := slidingAt(start/p, start, now, time.Duration(p), d)
				if got.weight != want.Int64() || got.elapsed != e {
					t.Fatalf("period %d ns, elapsed %d, divider %v: weight %d, elapsed %d; want %d, %d", p, e, d != nil, got.weight, got.elapsed, want.Int64(), e)
				}
			}
		}
	}
}

// TestLimitsIsACopy: changing what Limits returns changes nothing in the
// algorithm, so that the limiter's copy and the algorithm's own limits
// (and what was precomputed from them) always agree.
func TestLimitsIsACopy(t *testing.T) {
	algs := []limiter.Algorithm{
		FixedWindow(limiter.PerMinute(5)), SlidingWindow(limiter.PerMinute(5)),
		TokenBucket(limiter.PerMinute(5)), SlidingLog(limiter.PerMinute(5)),
	}
	for _, a := range algs {
		a.Limits()[0] = limiter.PerHour(1)
		if got := a.Limits()[0]; got != limiter.PerMinute(5) {
			t.Errorf("%s: after changing what Limits returned, Limits()[0] = %v; want 5/1m", a.Name(), got)
		}
	}
}
