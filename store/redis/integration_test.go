package redis_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// Ports of the throwaway servers these tests start (this package owns
// 7100-7199).
const (
	portCost = 7101
	portDown = 7102
	portOOM  = 7103
)

// TestEightStores runs 8 stores, each with its own client (half of them
// with WithAutoPipeline), 4 goroutines each, on one caller key in the real Redis at REDIS_ADDR, in rounds at
// fake instants, and checks that together they admit exactly what one
// exact limiter would: the limit per window for fixed window and sliding
// log, x/time/rate's decisions for the token bucket, and, for two fixed
// windows, nothing charged to either key for a request one of them denied.
func TestEightStores(t *testing.T) {
	addr := redistest.NeedAddr(t)
	const stores, perStore, tries = 8, 4, 6 // 192 requests per round

	prefix := redistest.Prefix(t)
	clients := make([]*goredis.Client, stores)
	for i := range clients {
		clients[i] = goredis.NewClient(redistest.Options(addr))
		t.Cleanup(func() { _ = clients[i].Close() })
	}
	redistest.CleanupPrefix(t, clients[0], prefix)
	// round runs every goroutine's tries at the clock's current instant and
	// returns how many were allowed.
	round := func(t *testing.T, lims []*limiter.Limiter, key string) int64 {
		t.Helper()
		var allowed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, stores*perStore)
		for _, lim := range lims {
			for range perStore {
				wg.Go(func() {
					for range tries {
						res, err := lim.Allow(context.Background(), key)
						if err != nil {
							errs <- err
							return
						}
						if res.Allowed {
							allowed.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Allow: %v", err)
		}
		return allowed.Load()
	}
	build := func(t *testing.T, alg limiter.Algorithm, clk *storetest.Clock) []*limiter.Limiter {
		t.Helper()
		lims := make([]*limiter.Limiter, stores)
		for i := range lims {
			opts := []redis.Option{redis.WithPrefix(prefix)}
			if i%2 == 1 { // half the stores share pipelines between decisions
				opts = append(opts, redis.WithAutoPipeline())
			}
			s := redis.New(clients[i], opts...)
			t.Cleanup(func() { _ = s.Close() })
			var err error
			lims[i], err = limiter.New(alg, limiter.WithStore(s), limiter.WithClock(clk.Now), limiter.WithPrefix(t.Name()))
			if err != nil {
				t.Fatal(err)
			}
		}
		return lims
	}
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano()

	t.Run("FixedWindow", func(t *testing.T) {
		clk := storetest.NewClock(time.Unix(0, start+int64(10*time.Second)))
		lims := build(t, algorithms.FixedWindow(limiter.PerMinute(50)), clk)
		for i, step := range []time.Duration{0, 20 * time.Second, 40 * time.Second, time.Minute} {
			clk.Advance(step)
			want := int64(50)
			if i == 1 { // same window as round 0: already full
				want = 0
			}
			if got := round(t, lims, "k"); got != want {
				t.Fatalf("round %d: %d requests allowed; want %d", i, got, want)
			}
		}
	})

	t.Run("SlidingLog", func(t *testing.T) {
		clk := storetest.NewClock(time.Unix(0, start))
		lims := build(t, algorithms.SlidingLog(limiter.PerMinute(50)), clk)
		steps := []struct {
			step time.Duration
			want int64
		}{
			{0, 50},
			{time.Minute - 1, 0}, // the first 50 still inside the window
			{1, 50},              // exactly one period later: all dropped
			{time.Minute / 2, 0},
			{time.Minute / 2, 50},
		}
		for i, st := range steps {
			clk.Advance(st.step)
			if got := round(t, lims, "k"); got != st.want {
				t.Fatalf("round %d: %d requests allowed; want %d", i, got, st.want)
			}
		}
	})

	t.Run("TokenBucket", func(t *testing.T) {
		clk := storetest.NewClock(time.Unix(0, start))
		lim := limiter.PerSecond(10).WithBurst(20)
		lims := build(t, algorithms.TokenBucket(lim), clk)
		model := rate.NewLimiter(rate.Limit(10), 20)
		for i, step := range []time.Duration{0, 350 * time.Millisecond, 50 * time.Millisecond, time.Second, 3 * time.Second, 99 * time.Millisecond} {
			clk.Advance(step)
			var want int64
			for range stores * perStore * tries {
				if model.AllowN(clk.Now(), 1) {
					want++
				}
			}
			if got := round(t, lims, "k"); got != want {
				t.Fatalf("round %d at +%v: %d requests allowed; x/time/rate allows %d", i, time.Duration(clk.Now().UnixNano()-start), got, want)
			}
		}
	})

	t.Run("FixedWindowTwoLimits", func(t *testing.T) {
		clk := storetest.NewClock(time.Unix(0, start+int64(time.Second)))
		lims := build(t, algorithms.FixedWindow(limiter.PerMinute(10), limiter.PerDay(25)), clk)
		key := "tenant:{42}"
		cell := func(period time.Duration) int64 {
			t.Helper()
			k := store.Key{Namespace: store.Escape(t.Name()) + ":fixed:" + period.String(), Caller: key, Window: clk.Now().UnixNano() / int64(period)}
			v, err := clients[0].Get(context.Background(), prefix+k.String()).Int64()
			if errors.Is(err, goredis.Nil) {
				return 0
			}
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		var day int64
		for i, want := range []int64{10, 10, 5, 0} {
			if got := round(t, lims, key); got != want {
				t.Fatalf("minute %d: %d allowed; want %d", i, got, want)
			}
			day += want
			// Denied requests (182 of 192 at best) are charged to neither key.
			if m, d := cell(time.Minute), cell(24*time.Hour); m != want || d != day {
				t.Fatalf("minute %d: Redis holds minute=%d day=%d; want %d, %d", i, m, d, want, day)
			}
			clk.Advance(time.Minute)
		}
	})
}

// TestCost measures what one decision costs, two ways: the hook counts the
// commands and round trips the client sends, and INFO commandstats on a
// redis-server of this test's own (so no one else's traffic counts) counts
// what Redis ran, commands inside the script included. Every algorithm,
// two-limit policies included, must send one command in one round trip.
func TestCost(t *testing.T) {
	redistest.NeedAddr(t) // an integration test: runs where real Redis is
	srv := redistest.StartServer(t, portCost)
	c := goredis.NewClient(redistest.Options(srv.Addr))
	t.Cleanup(func() { _ = c.Close() })
	cnt := new(redisstats.Counter)
	c.AddHook(cnt)
	stores := map[string]*redis.Store{"plain": redis.New(c), "autopipeline": redis.New(c, redis.WithAutoPipeline())}
	ctx := context.Background()

	tests := []struct {
		name      string
		alg       limiter.Algorithm
		maxServer float64 // commands Redis runs per decision, EVALSHA included
	}{
		{"fixed", algorithms.FixedWindow(limiter.PerMinute(50)), 3},
		{"fixed-two-limits", algorithms.FixedWindow(limiter.PerMinute(50), limiter.PerDay(1000)), 4},
		{"sliding", algorithms.SlidingWindow(limiter.PerMinute(50)), 3},
		{"sliding-two-limits", algorithms.SlidingWindow(limiter.PerMinute(50), limiter.PerHour(1000)), 4},
		{"bucket", algorithms.TokenBucket(limiter.PerSecond(10).WithBurst(50)), 3},
		{"log", algorithms.SlidingLog(limiter.PerMinute(50)), 7},
	}
	const decisions = 100 // 50 allowed, then 50 denied

	// Cold: a new store on a server that has never seen the script still
	// spends one command per decision, the first included. (The
	// autopipeliner's first use sets up its own connection, so it is
	// measured warm only, below.)
	t.Run("cold", func(t *testing.T) {
		if err := c.ScriptFlush(ctx).Err(); err != nil { // our own throwaway server
			t.Fatal(err)
		}
		lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(redis.New(c)), limiter.WithPrefix("cold"))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Ping(ctx).Err(); err != nil { // open the connection outside the count
			t.Fatal(err)
		}
		cnt.Reset()
		for i := range 10 {
			if _, err := lim.Allow(ctx, "k"); err != nil {
				t.Fatalf("decision %d: %v", i, err)
			}
		}
		if sent, trips := cnt.Commands(), cnt.RoundTrips(); sent != 10 || trips != 10 {
			t.Fatalf("10 decisions from a cold start sent %d commands in %d round trips; want 10 and 10", sent, trips)
		}
	})

	for _, mode := range []string{"plain", "autopipeline"} {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				clk := storetest.NewClock(time.Unix(0, base))
				lim, err := limiter.New(tt.alg, limiter.WithStore(stores[mode]), limiter.WithClock(clk.Now), limiter.WithPrefix(mode+"/"+tt.name))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := lim.Allow(ctx, "warm-up"); err != nil { // loads the script, opens the connection
					t.Fatal(err)
				}
				before, err := redisstats.CommandStats(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				cnt.Reset()
				allowed := 0
				for i := range decisions {
					clk.Advance(time.Microsecond)
					res, err := lim.Allow(ctx, "k")
					if err != nil {
						t.Fatalf("decision %d: %v", i, err)
					}
					if res.Allowed {
						allowed++
					}
				}
				sent, trips := cnt.Commands(), cnt.RoundTrips()
				after, err := redisstats.CommandStats(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				delta := redisstats.Delta(before, after)
				perDecision := float64(redisstats.Total(delta)) / decisions
				t.Logf("%s %s: %d allowed; per decision: %.2f commands sent, %.2f round trips, %.2f commands run by Redis %v",
					mode, tt.name, allowed, float64(sent)/decisions, float64(trips)/decisions, perDecision, delta)
				if allowed != 50 {
					t.Errorf("%d of %d decisions allowed; want 50", allowed, decisions)
				}
				if sent != decisions || trips != decisions {
					t.Errorf("%d decisions sent %d commands in %d round trips; want %d and %d", decisions, sent, trips, decisions, decisions)
				}
				if delta["evalsha"] != decisions || delta["eval"] != 0 {
					t.Errorf("Redis ran %d EVALSHA and %d EVAL for %d decisions; want %d and 0", delta["evalsha"], delta["eval"], decisions, decisions)
				}
				if perDecision > tt.maxServer {
					t.Errorf("Redis ran %.2f commands per decision; want at most %v", perDecision, tt.maxServer)
				}
			})
		}
	}
}

// TestRedisDown kills (and, separately, freezes) a redis-server this test
// started, and checks that Allow fails with an error wrapping
// store.ErrUnavailable within the caller's deadline plus 50 ms, never
// allowing; and that decisions resume with the same store once the server
// is back on the same port.
func TestRedisDown(t *testing.T) {
	redistest.NeedAddr(t)
	srv := redistest.StartServer(t, portDown)
	configs := map[string]*goredis.Options{
		"recommended": redistest.Options(srv.Addr),
		"default-retries": {
			Addr:                  srv.Addr,
			ContextTimeoutEnabled: true,
		},
	}
	const deadline = 200 * time.Millisecond
	const slack = 50 * time.Millisecond
	// The autopipeliner does not watch a command's context once it is
	// queued (go-redis v9.23); the store stops waiting at the deadline.
	configs["autopipeline"] = redistest.Options(srv.Addr)
	for _, name := range []string{"recommended", "default-retries", "autopipeline"} {
		t.Run(name, func(t *testing.T) {
			c := goredis.NewClient(configs[name])
			t.Cleanup(func() { _ = c.Close() })
			var opts []redis.Option
			if name == "autopipeline" {
				opts = append(opts, redis.WithAutoPipeline())
			}
			s := redis.New(c, opts...)
			clk := storetest.NewClock(time.Unix(0, base))
			lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(1000)), limiter.WithStore(s), limiter.WithClock(clk.Now), limiter.WithPrefix(name))
			if err != nil {
				t.Fatal(err)
			}
			allow := func() (limiter.Result, time.Duration, error) {
				ctx, cancel := context.WithTimeout(context.Background(), deadline)
				defer cancel()
				t0 := time.Now()
				res, err := lim.Allow(ctx, "k")
				return res, time.Since(t0), err
			}
			if _, _, err := allow(); err != nil {
				t.Fatalf("Allow with Redis up: %v", err)
			}
			for _, failure := range []string{"frozen", "killed"} {
				if failure == "frozen" {
					srv.Pause()
				} else {
					srv.Stop()
				}
				for i := range 3 {
					res, took, err := allow()
					if !errors.Is(err, store.ErrUnavailable) || res.Allowed {
						t.Fatalf("%s server, Allow %d = (allowed %v, %v); want ErrUnavailable", failure, i, res.Allowed, err)
					}
					if took > deadline+slack {
						t.Fatalf("%s server, Allow %d took %v; want at most the %v deadline + %v", failure, i, took, deadline, slack)
					}
					t.Logf("%s server: Allow failed in %v: %v", failure, took, err)
				}
				if failure == "frozen" {
					srv.Resume()
				} else {
					srv.Start()
				}
				// Bounded polling: the pool redials in the background.
				var lastErr error
				ok := false
				for range 100 {
					if _, _, lastErr = allow(); lastErr == nil {
						ok = true
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if !ok {
					t.Fatalf("after the %s server came back, Allow still fails: %v", failure, lastErr)
				}
				if res, _, err := allow(); err != nil || !res.Allowed {
					t.Fatalf("after the %s server came back: (allowed %v, %v); want an allowed decision", failure, res.Allowed, err)
				}
			}
		})
	}
}

// TestClusterFuzz sends a few thousand random caller keys (braces, colons,
// newlines, invalid UTF-8) through two-limit fixed-window decisions on the
// Redis Cluster at REDIS_CLUSTER_ADDRS: no CROSSSLOT, every first request
// allowed, every second denied by the minute limit of 1.
func TestClusterFuzz(t *testing.T) {
	c, cnt := redistest.ClusterClient(t)
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	s := redis.New(c, redis.WithPrefix(prefix))
	clk := storetest.NewClock(time.Unix(0, base))
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(1), limiter.PerDay(5)), limiter.WithStore(s), limiter.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte("ab{}:{}\n\r \x00\xff\xfe%*?é")
	seen := map[string]bool{}
	ctx := context.Background()
	slots := map[int64]bool{}
	const keys = 3000
	for len(seen) < keys {
		b := make([]byte, 1+rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		key := string(b) + strconv.Itoa(rng.IntN(1000))
		if seen[key] {
			continue
		}
		seen[key] = true
		for i, want := range []bool{true, false} {
			res, err := lim.Allow(ctx, key)
			if err != nil {
				t.Fatalf("Allow(%q) #%d: %v", key, i, err)
			}
			if res.Allowed != want {
				t.Fatalf("Allow(%q) #%d = %v; want %v", key, i, res.Allowed, want)
			}
		}
		if len(slots) < 3 || len(seen)%100 == 0 {
			slot, err := c.ClusterKeySlot(ctx, store.HashTag(key)).Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[slot] = true
		}
	}
	if len(slots) < 3 {
		t.Fatalf("keys hashed to %d slots; want them spread", len(slots))
	}
	t.Logf("%d caller keys, %d sampled slots, %d commands sent", keys, len(slots), cnt.Commands())
}

// TestOOM fills a redis-server of this test's own up to its maxmemory and
// checks that a decision then fails with an error wrapping
// store.ErrUnavailable that names the cause, and writes nothing: Redis
// refuses a script's first write when it is out of memory, and a denied
// first write is all this script could have done. (A sliding-log decision
// goes through: its XTRIM, a write Redis never refuses, comes first, and
// Redis does not stop a script that has written; docs/stores.md.)
func TestOOM(t *testing.T) {
	redistest.NeedAddr(t)
	srv := redistest.StartServer(t, portOOM)
	c := goredis.NewClient(redistest.Options(srv.Addr))
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	s := redis.New(c)
	two := []store.Op{
		{Kind: store.Add, Key: store.Key{Namespace: "m", Caller: "oom"}, N: 1, Ceil: 10, TTL: time.Minute},
		{Kind: store.Add, Key: store.Key{Namespace: "d", Caller: "oom"}, N: 1, Ceil: 10, TTL: time.Hour},
	}
	if err := s.Do(ctx, &store.Batch{Now: base, Ops: two}); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil { // below what the server already uses
		t.Fatal(err)
	}
	b := &store.Batch{Now: base, Ops: two}
	err := s.Do(ctx, b)
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "OOM") || b.Applied {
		t.Fatalf("Do out of memory = %v, applied %v; want ErrUnavailable naming OOM", err, b.Applied)
	}
	t.Logf("out of memory: %v", err)
	if err := c.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	peek := append([]store.Op(nil), two...)
	peek[0].N, peek[1].N = 0, 0
	b = &store.Batch{Now: base, Peek: true, Ops: peek}
	if err := s.Do(ctx, b); err != nil || b.Results[0].Value != 1 || b.Results[1].Value != 1 {
		t.Fatalf("after the OOM decision: %v, values %+v; want 1 and 1 (nothing written)", err, b.Results)
	}
}
