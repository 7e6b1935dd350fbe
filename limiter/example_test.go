package limiter_test

import (
	"context"
	"fmt"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// A tenant limited to 3 requests a minute and 5 an hour; the fourth request
// of the minute is denied and says when to retry.
func Example() {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	lim, err := limiter.New(
		algorithms.FixedWindow(limiter.PerMinute(3), limiter.PerHour(5)),
		limiter.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		panic(err)
	}
	defer lim.Close()

	for i := 1; i <= 4; i++ {
		res, err := lim.Allow(context.Background(), "tenant-42")
		if err != nil {
			panic(err)
		}
		fmt.Printf("request %d: allowed=%v remaining=%d retry after %v\n", i, res.Allowed, res.Remaining, res.RetryAfter)
	}
	// Output:
	// request 1: allowed=true remaining=2 retry after 0s
	// request 2: allowed=true remaining=1 retry after 0s
	// request 3: allowed=true remaining=0 retry after 0s
	// request 4: allowed=false remaining=0 retry after 1m0s
}

// Per-tenant plans: the limit function picks each key's limits.
func ExampleWithLimitFunc() {
	plans := map[string]int64{"tenant-free": 2, "tenant-pro": 4}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	lim, err := limiter.New(
		algorithms.FixedWindow(limiter.PerMinute(1)), // for keys without a plan
		limiter.WithStore(memory.New()),
		limiter.WithClock(func() time.Time { return now }),
		limiter.WithLimitFunc(func(ctx context.Context, key string) ([]limiter.Limit, error) {
			if n, ok := plans[key]; ok {
				return []limiter.Limit{limiter.PerMinute(n)}, nil
			}
			return nil, nil // the algorithm's own limit
		}),
	)
	if err != nil {
		panic(err)
	}
	for _, tenant := range []string{"tenant-free", "tenant-pro", "anonymous"} {
		admitted := 0
		for range 10 {
			if res, _ := lim.Allow(context.Background(), tenant); res.Allowed {
				admitted++
			}
		}
		fmt.Printf("%s: %d of 10 admitted\n", tenant, admitted)
	}
	// Output:
	// tenant-free: 2 of 10 admitted
	// tenant-pro: 4 of 10 admitted
	// anonymous: 1 of 10 admitted
}

// Bad input is an error, never a panic or a silent deny.
func ExampleLimiter_AllowN() {
	lim, err := limiter.New(algorithms.TokenBucket(limiter.PerSecond(10).WithBurst(20)), limiter.WithStore(memory.New()))
	if err != nil {
		panic(err)
	}
	_, err = lim.AllowN(context.Background(), "tenant-42", 50)
	fmt.Println(err)
	_, err = lim.AllowN(context.Background(), "", 1)
	fmt.Println(err)
	// Output:
	// limiter: invalid n: n = 50 exceeds the 10/1s burst 20 limit's capacity 20
	// limiter: empty key
}
