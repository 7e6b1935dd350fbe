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
