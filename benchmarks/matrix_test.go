package benchmarks

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/memory"
	fgredis "github.com/floodgate-go/floodgate/store/redis"
)

// matrixLimit is a count no benchmark reaches: every decision below takes
// the allowed path.
const matrixLimit = 1 << 40

// matrixKeys is the key count of the many-keys benchmarks.
const matrixKeys = 100_000

// matrixAlgos are the four algorithms, each with a limit it never reaches.
// The sliding log keeps one entry per admitted request for a period, and its
// limit is at most store.MaxLogAppend, so its period is short: 2^20 per
// 10 ms is more than any store here decides, and its state stays small.
func matrixAlgos() []struct {
	name string
	alg  limiter.Algorithm
} {
	return []struct {
		name string
		alg  limiter.Algorithm
	}{
		{"fixed", algorithms.FixedWindow(limiter.PerMinute(matrixLimit))},
		{"sliding", algorithms.SlidingWindow(limiter.PerMinute(matrixLimit))},
		{"gcra", algorithms.TokenBucket(limiter.PerSecond(1e9).WithBurst(matrixLimit))},
		{"log", algorithms.SlidingLog(limiter.Per(store.MaxLogAppend, 10*time.Millisecond))},
	}
}

// matrixFixture is one store under benchmark, with what it takes to count
// its Redis traffic and check what it holds.
type matrixFixture struct {
	store store.Store
	// counter counts the commands and round trips sent to Redis; nil for
	// the memory store.
	counter *redisstats.Counter
	client  goredis.UniversalClient
	// len returns the keys (cells) held in process memory; nil for the
	// Redis store.
	len func() int
	// cheapFill tells whether filling 100,000 keys before timing is cheap
	// (no remote call per new key).
	cheapFill bool
}

// matrixStores lists the stores: memory; redis (miniredis, or the Redis at
// REDIS_ADDR); hybrid relaxed and strict over the Redis store, with their
// flushers off — the benchmark measures decisions, and at millions of
// decisions a second a flush per second weighs nothing per decision (the
// incident replay, benchmarks/replay, measures commands per request).
func matrixStores() []struct {
	name string
	new  func(b *testing.B) matrixFixture
} {
	redisStore := func(b *testing.B) (*fgredis.Store, goredis.UniversalClient, *redisstats.Counter) {
		c, cnt, _ := redistest.Client(b)
		prefix := redistest.Prefix(b)
		redistest.CleanupPrefix(b, c, prefix)
		rs := fgredis.New(c, fgredis.WithPrefix(prefix))
		b.Cleanup(func() { _ = rs.Close() })
		return rs, c, cnt
	}
	hybridStore := func(b *testing.B, opts ...hybrid.Option) matrixFixture {
		rs, c, cnt := redisStore(b)
		h, err := hybrid.NewChecked(rs, append([]hybrid.Option{hybrid.WithoutFlusher(), hybrid.WithMaxKeys(1 << 18)}, opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		return matrixFixture{store: h, counter: cnt, client: c, len: h.Len}
	}
	return []struct {
		name string
		new  func(b *testing.B) matrixFixture
	}{
		{"memory", func(b *testing.B) matrixFixture {
			m := memory.New(memory.WithMaxKeys(1 << 18))
			b.Cleanup(func() { _ = m.Close() })
			return matrixFixture{store: m, len: m.Len, cheapFill: true}
		}},
		{"redis", func(b *testing.B) matrixFixture {
			rs, c, cnt := redisStore(b)
			return matrixFixture{store: rs, counter: cnt, client: c}
		}},
		{"hybrid-relaxed", func(b *testing.B) matrixFixture {
			f := hybridStore(b)
			f.cheapFill = true
			return f
		}},
		{"hybrid-strict", func(b *testing.B) matrixFixture { return hybridStore(b, hybrid.Strict()) }},
	}
}

// BenchmarkMatrix runs every algorithm over every store, on one key and on
// 100,000 keys, serially and with b.RunParallel, on the allowed path. It
// reports redis-cmds/op and round-trips/op for stores that talk to Redis
// (and server-cmds/op, from INFO commandstats, when REDIS_ADDR is set; the
// server's count includes the commands scripts run).
//
// With 100,000 keys, stores whose first decision on a key is local
// (memory; hybrid relaxed, except for the sliding log, which it sends to
// Redis) are filled before timing, and the benchmark checks that they hold
// every key; the others make a remote call on a key's first decision, so
// they are not filled (that would take minutes on miniredis) and their
// first pass over the keys is part of what is timed.
func BenchmarkMatrix(b *testing.B) {
	keys := make([]string, matrixKeys)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	for _, a := range matrixAlgos() {
		for _, s := range matrixStores() {
			for _, nk := range []int{1, matrixKeys} {
				for _, mode := range []string{"serial", "parallel"} {
					name := "algo=" + a.name + "/store=" + s.name + "/keys=" + strconv.Itoa(nk) + "/mode=" + mode
					b.Run(name, func(b *testing.B) {
						f := s.new(b)
						lim, err := limiter.New(a.alg, limiter.WithStore(f.store))
						if err != nil {
							b.Fatal(err)
						}
						runMatrix(b, lim, f, keys[:nk], mode == "parallel", localState(s.name, a.name))
					})
				}
			}
		}
	}
}

// localState reports whether a decision of algorithm algo leaves its state
// in the process memory of store (else the store passes it to Redis): the
// hybrid store sends sliding-log ops to the remote in both modes, and in
// strict mode every op but a plain counter's (fixed window).
func localState(store, algo string) bool {
	switch store {
	case "memory":
		return true
	case "hybrid-relaxed":
		return algo != "log"
	case "hybrid-strict":
		return algo == "fixed"
	}
	return false
}

func runMatrix(b *testing.B, lim *limiter.Limiter, f matrixFixture, keys []string, parallel, local bool) {
	ctx := context.Background()
	if len(keys) == 1 || (local && f.cheapFill) {
		for _, k := range keys {
			if res, err := lim.Allow(ctx, k); err != nil || !res.Allowed {
				b.Fatalf("fill: Allow(%q) = %+v, %v; want allowed", k, res, err)
			}
		}
		if local && f.len != nil {
			if n := f.len(); n < len(keys) {
				b.Fatalf("fixture holds %d keys; want at least %d", n, len(keys))
			}
		}
	}
	var before map[string]int64
	if f.counter != nil {
		if redistest.Addr() != "" {
			var err error
			if before, err = redisstats.CommandStats(ctx, f.client); err != nil {
				b.Fatal(err)
			}
		}
		f.counter.Reset() // after the INFO above, which is no decision's
	}
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		var seed atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(seed.Add(7919)) % len(keys) // each goroutine from its own offset
			for pb.Next() {
				if res, err := lim.Allow(ctx, keys[i]); err != nil || !res.Allowed {
					failed.Add(1)
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	} else {
		i := 0
		for b.Loop() {
			if res, err := lim.Allow(ctx, keys[i]); err != nil || !res.Allowed {
				failed.Add(1)
			}
			if i++; i == len(keys) {
				i = 0
			}
		}
	}
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Errorf("%d decisions denied or failed; the benchmark measures the allowed path", n)
	}
	if f.counter != nil {
		ops := float64(max(b.N, 1))
		b.ReportMetric(float64(f.counter.Commands())/ops, "redis-cmds/op")
		b.ReportMetric(float64(f.counter.RoundTrips())/ops, "round-trips/op")
		if before != nil {
			after, err := redisstats.CommandStats(ctx, f.client)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(redisstats.Total(redisstats.Delta(before, after)))/ops, "server-cmds/op")
		}
	}
}
