package hybrid_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/redis"
)

// Two processes share one Redis through hybrid stores: each decides from
// its own memory, and a flush makes each process's admissions count in the
// other's decisions.
func Example() {
	mr, _ := miniredis.Run() // an embedded Redis for the example
	defer mr.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	var stores [2]*hybrid.Store
	var lims [2]*limiter.Limiter
	for i := range stores {
		client := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
		defer client.Close()
		// WithoutFlusher: this example flushes by hand; a service keeps the
		// default background flusher (every second).
		stores[i] = hybrid.New(redis.New(client), hybrid.WithoutFlusher(), hybrid.WithClock(clock))
		defer stores[i].Close()
		lims[i], _ = limiter.New(algorithms.FixedWindow(limiter.PerMinute(10)),
			limiter.WithStore(stores[i]), limiter.WithClock(clock))
	}

	for range 6 {
		lims[0].Allow(ctx, "tenant-42")
	}
	res, _ := lims[1].Allow(ctx, "tenant-42")
	fmt.Println("process B before the flush: remaining", res.Remaining)

	stores[0].Flush(ctx) // A's 6 reach Redis
	stores[1].Flush(ctx) // B learns the global count
	res, _ = lims[1].Allow(ctx, "tenant-42")
	fmt.Println("process B after the flushes: remaining", res.Remaining)
	fmt.Println("commands sent by A:", stores[0].Stats().RemoteCommands)
	// Output:
	// process B before the flush: remaining 9
	// process B after the flushes: remaining 2
	// commands sent by A: 1
}

// A hybrid store without a remote keeps everything in process memory, like
// the memory store; it is the limiter's default store.
func ExampleNew_localOnly() {
	s := hybrid.New(nil)
	defer s.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	lim, _ := limiter.New(algorithms.FixedWindow(limiter.PerMinute(2)),
		limiter.WithStore(s), limiter.WithClock(func() time.Time { return now }))
	for range 3 {
		res, _ := lim.Allow(context.Background(), "tenant-1")
		fmt.Println(res.Allowed, res.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}

// In strict mode a process spends quota leased from Redis, so the global
// limit holds exactly whatever the number of processes.
func ExampleStrict() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	client := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
	defer client.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := hybrid.New(redis.New(client), hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithClock(clock))
	lim, _ := limiter.New(algorithms.FixedWindow(limiter.PerMinute(100)),
		limiter.WithStore(s), limiter.WithClock(clock))
	admitted := 0
	for range 150 {
		if res, _ := lim.Allow(context.Background(), "tenant-7"); res.Allowed {
			admitted++
		}
	}
	st := s.Stats()
	fmt.Println("admitted:", admitted)
	fmt.Println("lease requests:", st.LeaseRequests)
	s.Close() // gives the unused lease back
	// Output:
	// admitted: 100
	// lease requests: 2
}
