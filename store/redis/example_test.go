package redis_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/redis"
)

// Example limits a tenant to 2 requests a minute and 3 a day, with the
// state in Redis (here an embedded miniredis) and a fake clock. The client
// honours context deadlines and does not retry a command whose reply was
// lost, as docs/stores.md recommends.
func Example() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	client := goredis.NewClient(&goredis.Options{
		Addr:                  mr.Addr(),
		ContextTimeoutEnabled: true, // Allow honours the caller's deadline
		MaxRetries:            -1,   // a lost reply is an error, never a second charge
		DialerRetries:         1,
	})
	defer client.Close() // the store never closes it

	s := redis.New(client, redis.WithPrefix("myapp:"))
	defer s.Close()

	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	lim, err := limiter.New(
		algorithms.FixedWindow(limiter.PerMinute(2), limiter.PerDay(3)),
		limiter.WithStore(s),
		limiter.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, step := range []time.Duration{0, 0, 0, time.Minute, time.Minute} {
		now = now.Add(step)
		res, err := lim.Allow(ctx, "tenant-42")
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Printf("%s allowed=%v remaining=%d limit=%v\n", now.Format("15:04"), res.Allowed, res.Remaining, res.Limit)
	}
	// Output:
	// 12:00 allowed=true remaining=1 limit=2/1m0s
	// 12:00 allowed=true remaining=0 limit=2/1m0s
	// 12:00 allowed=false remaining=0 limit=2/1m0s
	// 12:01 allowed=true remaining=0 limit=3/24h0m0s
	// 12:02 allowed=false remaining=0 limit=3/24h0m0s
}

// ExampleWithServerTime decides on the Redis server's clock rather than the
// local one: this process's clock is an hour and ten seconds behind. The
// first decision, made before any reply, uses the local clock; from the
// first reply on, the store's Now (the limiter's clock) follows the server's.
func ExampleWithServerTime() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	server := time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)
	mr.SetTime(server) // the clock miniredis answers TIME with
	client := goredis.NewClient(&goredis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()

	local := func() time.Time { return server.Add(-time.Hour - 10*time.Second) } // skewed
	s := redis.New(client, redis.WithServerTime(local))
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(10)),
		limiter.WithStore(s), limiter.WithClock(s.Now))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for range 2 {
		res, err := lim.Allow(ctx, "tenant-42")
		if err != nil {
			panic(err)
		}
		fmt.Printf("store clock %s, window resets in %v\n", s.Now().Format("15:04:05"), res.ResetAfter.Round(time.Second))
	}
	// Output:
	// store clock 12:00:30, window resets in 40s
	// store clock 12:00:30, window resets in 30s
}
