package redis_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redis"
)

// benchAlgorithms are the policies the benchmarks decide with; limits are
// high so that most decisions write.
func benchAlgorithms() []struct {
	name string
	alg  limiter.Algorithm
} {
	return []struct {
		name string
		alg  limiter.Algorithm
	}{
		{"algo=fixed/limits=1", algorithms.FixedWindow(limiter.PerMinute(1e9))},
		{"algo=fixed/limits=2", algorithms.FixedWindow(limiter.PerMinute(1e9), limiter.PerDay(1e12))},
		{"algo=sliding/limits=1", algorithms.SlidingWindow(limiter.PerMinute(1e9))},
		{"algo=gcra/limits=1", algorithms.TokenBucket(limiter.PerSecond(1e6).WithBurst(1e9))},
		{"algo=log/limits=1", algorithms.SlidingLog(limiter.PerHour(store.MaxLogAppend))},
	}
}

// benchClient returns a client for benchmarks (REDIS_ADDR, else miniredis)
// with a pool for poolSize concurrent callers, a Counter hooked in, and the
// store's name for sub-benchmark names.
func benchClient(b *testing.B, poolSize int) (*goredis.Client, *redisstats.Counter, string) {
	b.Helper()
	addr, name := redistest.Addr(), "redis"
	if addr == "" {
		addr, name = miniredis.RunT(b).Addr(), "miniredis"
	}
	opt := redistest.Options(addr)
	opt.PoolSize = poolSize
	c := goredis.NewClient(opt)
	b.Cleanup(func() { _ = c.Close() })
	cnt := new(redisstats.Counter)
	c.AddHook(cnt)
	return c, cnt, name
}

// benchClock is a fake clock that moves 1 µs per reading.
func benchClock() func() time.Time {
	var ns atomic.Int64
	ns.Store(base)
	return func() time.Time { return time.Unix(0, ns.Add(1000)) }
}

// BenchmarkDecision measures one decision at a time through the Redis store
// (miniredis, or the real Redis at REDIS_ADDR) and reports what each costs
// on the wire: redis-cmds/op and round-trips/op, and with REDIS_ADDR the
// commands the server executed, scripts' inner commands included
// (server-cmds/op; the server may be shared, so other clients' commands in
// the same interval count too).
func BenchmarkDecision(b *testing.B) {
	for _, tt := range benchAlgorithms() {
		c, cnt, storeName := benchClient(b, 10)
		b.Run(tt.name+"/store="+storeName+"/keys=1000", func(b *testing.B) {
			s := redis.New(c, redis.WithPrefix(redistest.Prefix(b)))
			lim, err := limiter.New(tt.alg, limiter.WithStore(s), limiter.WithClock(benchClock()))
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = "tenant-" + strconv.Itoa(i)
			}
			ctx := context.Background()
			if _, err := lim.Allow(ctx, keys[0]); err != nil { // loads the script
				b.Fatal(err)
			}
			cnt.Reset()
			// On a real Redis, what the server ran too (scripts count the
			// commands inside them): INFO commandstats before and after.
			var before map[string]int64
			if redistest.Addr() != "" {
				if before, err = redisstats.CommandStats(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			allowed, i := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				res, err := lim.Allow(ctx, keys[i%len(keys)])
				if err != nil {
					b.Fatal(err)
				}
				if res.Allowed {
					allowed++
				}
				i++
			}
			if allowed != i {
				b.Fatalf("%d of %d decisions allowed; the fixture's limits should admit all", allowed, i)
			}
			b.ReportMetric(float64(cnt.Commands())/float64(i), "redis-cmds/op")
			b.ReportMetric(float64(cnt.RoundTrips())/float64(i), "round-trips/op")
			if before != nil {
				b.StopTimer()
				after, err := redisstats.CommandStats(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(redisstats.Total(redisstats.Delta(before, after)))/float64(i), "server-cmds/op")
			}
		})
	}
}

// BenchmarkParallel runs 64 concurrent callers (b.SetParallelism) over one
// store, with and without WithAutoPipeline, and reports decisions/s.
func BenchmarkParallel(b *testing.B) {
	const callers = 64
	for _, tt := range benchAlgorithms() {
		for _, pipe := range []bool{false, true} {
			c, cnt, storeName := benchClient(b, callers)
			b.Run(tt.name+"/store="+storeName+"/autopipeline="+strconv.FormatBool(pipe)+"/callers=64", func(b *testing.B) {
				opts := []redis.Option{redis.WithPrefix(redistest.Prefix(b))}
				if pipe {
					opts = append(opts, redis.WithAutoPipeline())
				}
				s := redis.New(c, opts...)
				lim, err := limiter.New(tt.alg, limiter.WithStore(s), limiter.WithClock(benchClock()))
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				if _, err := lim.Allow(ctx, "warm-up"); err != nil {
					b.Fatal(err)
				}
				cnt.Reset()
				var failed, seq atomic.Int64
				var firstErr atomic.Value
				b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					key := "tenant-" + strconv.FormatInt(seq.Add(1), 10)
					for pb.Next() {
						if _, err := lim.Allow(ctx, key); err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err)
						}
					}
				})
				if n := failed.Load(); n > 0 {
					b.Fatalf("%d decisions failed; the first: %v", n, firstErr.Load())
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
				b.ReportMetric(float64(cnt.Commands())/float64(b.N), "redis-cmds/op")
				b.ReportMetric(float64(cnt.RoundTrips())/float64(b.N), "round-trips/op")
			})
		}
	}
}
