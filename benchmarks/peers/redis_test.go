package peers

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/goredisstore.v9"
	ulule "github.com/ulule/limiter/v3"
	ulredis "github.com/ulule/limiter/v3/drivers/store/redis"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	fgredis "github.com/floodgate-go/floodgate/store/redis"
)

// redisPeer builds a Redis-backed limiter of one library over client, its
// keys under prefix.
type redisPeer struct {
	name string
	new  func(tb testing.TB, c goredis.UniversalClient, prefix string) func(ctx context.Context, key string) bool
}

func redisPeers() []redisPeer {
	floodgate := func(alg limiter.Algorithm) func(testing.TB, goredis.UniversalClient, string) func(context.Context, string) bool {
		return func(tb testing.TB, c goredis.UniversalClient, prefix string) func(context.Context, string) bool {
			st := fgredis.New(c, fgredis.WithPrefix(prefix))
			tb.Cleanup(func() { _ = st.Close() })
			lim, err := limiter.New(alg, limiter.WithStore(st))
			if err != nil {
				tb.Fatal(err)
			}
			return func(ctx context.Context, key string) bool {
				res, err := lim.Allow(ctx, key)
				return err == nil && res.Allowed
			}
		}
	}
	return []redisPeer{
		{"floodgate-fixed", floodgate(algorithms.FixedWindow(limiter.PerMinute(huge)))},
		{"floodgate-fixed-2limits", floodgate(algorithms.FixedWindow(limiter.PerMinute(huge), limiter.PerDay(huge)))},
		{"floodgate-gcra", floodgate(algorithms.TokenBucket(limiter.PerSecond(huge)))},
		{"redis_rate", func(_ testing.TB, c goredis.UniversalClient, prefix string) func(context.Context, string) bool {
			l := redis_rate.NewLimiter(c)
			limit := redis_rate.Limit{Rate: huge, Burst: huge, Period: time.Second}
			return func(ctx context.Context, key string) bool {
				res, err := l.Allow(ctx, prefix+key, limit)
				return err == nil && res.Allowed > 0
			}
		}},
		{"ulule-limiter", func(tb testing.TB, c goredis.UniversalClient, prefix string) func(context.Context, string) bool {
			st, err := ulredis.NewStoreWithOptions(c, ulule.StoreOptions{Prefix: prefix, MaxRetry: 3})
			if err != nil {
				tb.Fatal(err)
			}
			l := ulule.New(st, ulule.Rate{Period: time.Minute, Limit: huge})
			return func(ctx context.Context, key string) bool {
				res, err := l.Get(ctx, key)
				return err == nil && !res.Reached
			}
		}},
		{"throttled", func(tb testing.TB, c goredis.UniversalClient, prefix string) func(context.Context, string) bool {
			st, err := goredisstore.NewCtx(c, prefix)
			if err != nil {
				tb.Fatal(err)
			}
			rl, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerSec(huge), MaxBurst: huge})
			if err != nil {
				tb.Fatal(err)
			}
			return func(ctx context.Context, key string) bool {
				limited, _, err := rl.RateLimitCtx(ctx, key, 1)
				return err == nil && !limited
			}
		}},
	}
}

// BenchmarkRedis runs the Redis-backed libraries on one key and on
// 100,000 keys against miniredis, or the Redis at REDIS_ADDR, and reports
// the commands each decision sends (redis-cmds/op, go-redis hook), its
// round trips, and, with REDIS_ADDR, the commands the server executed,
// those run inside scripts included (server-cmds/op, INFO commandstats; the
// server is shared, so run it alone).
func BenchmarkRedis(b *testing.B) {
	for _, nk := range []int{1, numKeys} {
		keys := testKeys(nk)
		for _, p := range redisPeers() {
			b.Run("keys="+strconv.Itoa(nk)+"/lib="+p.name, func(b *testing.B) {
				c, cnt, _ := redistest.Client(b)
				prefix := redistest.Prefix(b)
				redistest.CleanupPrefix(b, c, prefix)
				allow := p.new(b, c, prefix)
				ctx := context.Background()
				if !allow(ctx, keys[0]) { // warm the connection and load scripts
					b.Fatal("first decision denied or failed")
				}
				var before map[string]int64
				if redistest.Addr() != "" {
					var err error
					if before, err = redisstats.CommandStats(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
				cnt.Reset() // after the INFO above, which is no decision's
				var failed atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					if !allow(ctx, keys[i]) {
						failed.Add(1)
					}
					if i++; i == len(keys) {
						i = 0
					}
				}
				b.StopTimer()
				if n := failed.Load(); n > 0 {
					b.Errorf("%d decisions denied or failed; the allowed path is under test", n)
				}
				ops := float64(max(b.N, 1))
				b.ReportMetric(float64(cnt.Commands())/ops, "redis-cmds/op")
				b.ReportMetric(float64(cnt.RoundTrips())/ops, "round-trips/op")
				if before != nil {
					after, err := redisstats.CommandStats(ctx, c)
					if err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(redisstats.Total(redisstats.Delta(before, after)))/ops, "server-cmds/op")
				}
			})
		}
	}
}
