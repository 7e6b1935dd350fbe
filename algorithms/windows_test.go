package algorithms

import (
	"math"
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

// TestSlidingWeightDivider: the previous window's weight comes out the same
// with the precomputed divider of an own limit as with a division.
func TestSlidingWeightDivider(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	periods := []time.Duration{time.Nanosecond, time.Second, time.Minute, 24 * time.Hour, 100 * 24 * time.Hour, 107 * 24 * time.Hour, math.MaxInt64 / 1_000_000}
	for _, p := range periods {
		per := newDivider(int64(p))
		for range 5000 {
			now := rng.Int64N(math.MaxInt64 / 2)
			idx, start := windowOf(now, p)
			got, want := slidingAt(idx, start, now, p, &per), slidingAt(idx, start, now, p, nil)
			if got != want {
				t.Fatalf("period %v, now %d: with divider %+v; want %+v", p, now, got, want)
			}
		}
	}
}
