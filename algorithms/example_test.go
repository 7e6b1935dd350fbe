package algorithms_test

import (
	"context"
	"fmt"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// The token bucket admits a burst, then one request per refill interval.
func ExampleTokenBucket() {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	lim, err := limiter.New(
		algorithms.TokenBucket(limiter.PerSecond(2).WithBurst(3)),
		limiter.WithStore(memory.New()),
		limiter.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		panic(err)
	}
	for i := range 5 {
		res, _ := lim.Allow(context.Background(), "k")
		fmt.Printf("t=%v allowed=%v remaining=%d retry=%v\n", time.Duration(i)*250*time.Millisecond, res.Allowed, res.Remaining, res.RetryAfter)
		now = now.Add(250 * time.Millisecond)
	}
	// Output:
	// t=0s allowed=true remaining=2 retry=0s
	// t=250ms allowed=true remaining=1 retry=0s
	// t=500ms allowed=true remaining=1 retry=0s
	// t=750ms allowed=true remaining=0 retry=0s
	// t=1s allowed=true remaining=0 retry=0s
}

// The sliding log is exact over any interval of one period: a request is
// admitted again exactly one period after the oldest one.
func ExampleSlidingLog() {
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	now := start
	lim, err := limiter.New(
		algorithms.SlidingLog(limiter.PerMinute(2)),
		limiter.WithStore(memory.New()),
		limiter.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		panic(err)
	}
	for _, at := range []time.Duration{0, 20 * time.Second, 40 * time.Second, time.Minute, 70 * time.Second} {
		now = start.Add(at)
		res, _ := lim.Allow(context.Background(), "k")
		fmt.Printf("t=%v allowed=%v retry=%v\n", at, res.Allowed, res.RetryAfter)
	}
	// Output:
	// t=0s allowed=true retry=0s
	// t=20s allowed=true retry=0s
	// t=40s allowed=false retry=20s
	// t=1m0s allowed=true retry=0s
	// t=1m10s allowed=false retry=10s
}

// The sliding window weighs the previous window's count by how much of it
// still overlaps the last period, rounded down: at 1m45s, 10 × 0.25 = 2.5
// counts as 2.
func ExampleSlidingWindow() {
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	now := start
	lim, err := limiter.New(
		algorithms.SlidingWindow(limiter.PerMinute(10)),
		limiter.WithStore(memory.New()),
		limiter.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		panic(err)
	}
	lim.AllowN(context.Background(), "k", 10) // the whole first minute
	for _, at := range []time.Duration{time.Minute, 90 * time.Second, 105 * time.Second} {
		now = start.Add(at)
		res, _ := lim.Peek(context.Background(), "k")
		fmt.Printf("t=%v remaining=%d\n", at, res.Remaining)
	}
	// Output:
	// t=1m0s remaining=0
	// t=1m30s remaining=5
	// t=1m45s remaining=8
}

// Several limits in one decision are all or nothing.
func ExampleFixedWindow() {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	lim, err := limiter.New(
		algorithms.FixedWindow(limiter.PerMinute(120), limiter.PerDay(10_000)),
		limiter.WithStore(memory.New()),
		limiter.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		panic(err)
	}
	var last limiter.Result
	for range 121 {
		last, _ = lim.Allow(context.Background(), "tenant-42")
	}
	fmt.Printf("121st: allowed=%v, denied by %v, retry after %v\n", last.Allowed, last.Limit, last.RetryAfter)
	now = now.Add(time.Minute)
	res, _ := lim.Peek(context.Background(), "tenant-42")
	fmt.Printf("next minute: %d left this minute\n", res.Remaining)
	// Output:
	// 121st: allowed=false, denied by 120/1m0s, retry after 1m0s
	// next minute: 120 left this minute
}
