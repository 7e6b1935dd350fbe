package peers

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/httprate"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
	ulule "github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/memory"
)

// numKeys is the key count of the many-keys workload.
const numKeys = 100_000

// huge is a quota no benchmark exhausts: every decision takes the allowed
// path.
const huge = 1_000_000_000

// instance is one configured limiter of one library.
type instance struct {
	// allow decides one request for key: allowed, or an error (throttled
	// gives up on a key after a bounded number of compare-and-swap
	// conflicts, which many goroutines on one key cause).
	allow func(ctx context.Context, key string) (bool, error)
	// held reports whether the limiter holds state for key (nil when the
	// library offers no way to tell).
	held func(ctx context.Context, key string) bool
	// size returns the number of keys held (nil when unknown).
	size  func() int
	close func()
}

// peer builds instances of one library. Every library is configured for a
// limit it never reaches, and with its own clock (time.Now), as users run it.
type peer struct {
	name string
	new  func(tb testing.TB) instance
}

// inProcessPeers are the libraries that decide from process memory.
func inProcessPeers() []peer {
	return []peer{
		{"floodgate-fixed", func(testing.TB) instance {
			return floodgateInstance(algorithms.FixedWindow(limiter.PerMinute(huge)))
		}},
		{"floodgate-gcra", func(testing.TB) instance {
			return floodgateInstance(algorithms.TokenBucket(limiter.PerSecond(huge)))
		}},
		{"floodgate-fixed-default", func(tb testing.TB) instance {
			// No WithStore: the default store, the hybrid store with no
			// remote (local memory only).
			lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(huge)))
			if err != nil {
				tb.Fatal(err)
			}
			h, ok := lim.Store().(*hybrid.Store)
			if !ok {
				tb.Fatalf("default store is %T; want *hybrid.Store", lim.Store())
			}
			return instance{
				allow: func(ctx context.Context, key string) (bool, error) {
					res, err := lim.Allow(ctx, key)
					return res.Allowed, err
				},
				size:  h.Len,
				close: func() { _ = lim.Close() },
			}
		}},
		{"x-time-rate", func(testing.TB) instance {
			// x/time/rate limits one thing; keyed use wraps it in a map under
			// a mutex, the usual pattern.
			var mu sync.Mutex
			m := map[string]*rate.Limiter{}
			get := func(key string) *rate.Limiter {
				mu.Lock()
				l, ok := m[key]
				if !ok {
					l = rate.NewLimiter(huge, huge)
					m[key] = l
				}
				mu.Unlock()
				return l
			}
			return instance{
				allow: func(_ context.Context, key string) (bool, error) { return get(key).Allow(), nil },
				held: func(_ context.Context, key string) bool {
					mu.Lock()
					defer mu.Unlock()
					_, ok := m[key]
					return ok
				},
				size:  func() int { mu.Lock(); defer mu.Unlock(); return len(m) },
				close: func() {},
			}
		}},
		{"sethvargo-go-limiter", func(tb testing.TB) instance {
			// Its refill adds Interval/Tokens tokens per elapsed interval;
			// one interval longer than any run keeps it on the allowed path.
			s, err := memorystore.New(&memorystore.Config{Tokens: huge, Interval: 1000 * time.Hour})
			if err != nil {
				tb.Fatal(err)
			}
			return instance{
				allow: func(ctx context.Context, key string) (bool, error) {
					_, _, _, ok, err := s.Take(ctx, key)
					return ok, err
				},
				held: func(ctx context.Context, key string) bool {
					_, remaining, err := s.Get(ctx, key)
					return err == nil && remaining < huge
				},
				close: func() { _ = s.Close(context.Background()) },
			}
		}},
		{"ulule-limiter", func(tb testing.TB) instance {
			l := ulule.New(ulmemory.NewStore(), ulule.Rate{Period: time.Minute, Limit: huge})
			return instance{
				allow: func(ctx context.Context, key string) (bool, error) {
					c, err := l.Get(ctx, key)
					return !c.Reached, err
				},
				held: func(ctx context.Context, key string) bool {
					c, err := l.Peek(ctx, key)
					return err == nil && c.Remaining < huge
				},
				close: func() {},
			}
		}},
		{"throttled", func(tb testing.TB) instance { return throttledInstance(tb, 0) }},
		{"throttled-lru", func(tb testing.TB) instance { return throttledInstance(tb, 1<<17) }},
		{"go-chi-httprate", func(testing.TB) instance {
			// The counter API behind the middleware; no response headers.
			rl := httprate.NewRateLimiter(huge, time.Minute, httprate.WithResponseHeaders(httprate.ResponseHeaders{}))
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			return instance{
				allow: func(_ context.Context, key string) (bool, error) { return !rl.OnLimit(w, r, key), nil },
				held: func(_ context.Context, key string) bool {
					_, rate, err := rl.Status(key)
					return err == nil && rate > 0
				},
				close: func() {},
			}
		}},
	}
}

// throttledInstance is throttled's GCRA over its memory store, unbounded
// (maxKeys 0, its fastest setting) or bounded by an LRU of maxKeys keys.
func throttledInstance(tb testing.TB, maxKeys int) instance {
	st, err := memstore.NewCtx(maxKeys)
	if err != nil {
		tb.Fatal(err)
	}
	rl, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerSec(huge), MaxBurst: huge})
	if err != nil {
		tb.Fatal(err)
	}
	return instance{
		allow: func(ctx context.Context, key string) (bool, error) {
			limited, _, err := rl.RateLimitCtx(ctx, key, 1)
			return !limited, err
		},
		held: func(ctx context.Context, key string) bool {
			v, _, err := st.GetWithTime(ctx, key)
			return err == nil && v != -1
		},
		close: func() {},
	}
}

func floodgateInstance(alg limiter.Algorithm) instance {
	// The LRU bound is on, sized to hold the many-keys workload.
	st := memory.New(memory.WithMaxKeys(1 << 17))
	lim, err := limiter.New(alg, limiter.WithStore(st))
	if err != nil {
		panic(err)
	}
	return instance{
		allow: func(ctx context.Context, key string) (bool, error) {
			res, err := lim.Allow(ctx, key)
			return res.Allowed, err
		},
		size:  st.Len,
		close: func() { _ = st.Close() },
	}
}

// testKeys returns n distinct caller keys.
func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
	}
	return keys
}

// fill makes one decision per key and fails tb unless every one was
// allowed and the instance then holds every key.
func fill(tb testing.TB, in instance, keys []string) {
	tb.Helper()
	ctx := context.Background()
	for _, k := range keys {
		if ok, err := in.allow(ctx, k); !ok || err != nil {
			tb.Fatalf("first decision for %q: allowed %v, error %v; the allowed path is under test", k, ok, err)
		}
	}
	if in.size != nil {
		if got := in.size(); got != len(keys) {
			tb.Fatalf("fixture holds %d keys; want %d", got, len(keys))
		}
	}
	if in.held != nil {
		for i := 0; i < len(keys); i += max(len(keys)/97, 1) {
			if !in.held(ctx, keys[i]) {
				tb.Fatalf("fixture holds no state for %q", keys[i])
			}
		}
	}
}

// BenchmarkInProcess runs every in-process library on one key and on
// 100,000 keys, serially and with b.RunParallel, all on the allowed path.
// The many-keys workload walks the keys in the order they were first seen,
// which lets hardware prefetchers help libraries that lay out state in
// arrival order; BenchmarkInProcessRandomOrder walks them shuffled.
func BenchmarkInProcess(b *testing.B) {
	for _, nk := range []int{1, numKeys} {
		keys := testKeys(nk)
		inProcess(b, "keys="+strconv.Itoa(nk), keys, keys)
	}
}

// BenchmarkInProcessRandomOrder is the many-keys workload of
// BenchmarkInProcess with the keys walked in a fixed shuffled order, as
// requests of many tenants arrive: every decision then finds its key's
// state, and the key itself, out of cache.
func BenchmarkInProcessRandomOrder(b *testing.B) {
	keys := testKeys(numKeys)
	walk := slices.Clone(keys)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(walk), func(i, j int) { walk[i], walk[j] = walk[j], walk[i] })
	inProcess(b, "keys="+strconv.Itoa(numKeys), keys, walk)
}

// inProcess fills each library with keys, then decides for the keys of
// walk in turn, serially and in parallel.
func inProcess(b *testing.B, name string, keys, walk []string) {
	for _, mode := range []string{"serial", "parallel"} {
		for _, p := range inProcessPeers() {
			b.Run(name+"/mode="+mode+"/lib="+p.name, func(b *testing.B) {
				in := p.new(b)
				defer in.close()
				fill(b, in, keys)
				ctx := context.Background()
				var denied, failed atomic.Int64
				decide := func(key string) {
					ok, err := in.allow(ctx, key)
					switch {
					case err != nil:
						failed.Add(1)
					case !ok:
						denied.Add(1)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				if mode == "serial" {
					i := 0
					for b.Loop() {
						decide(walk[i])
						if i++; i == len(walk) {
							i = 0
						}
					}
				} else {
					var seed atomic.Int64
					b.RunParallel(func(pb *testing.PB) {
						// Each goroutine walks the keys from its own offset.
						i := int(seed.Add(7919)) % len(walk)
						for pb.Next() {
							decide(walk[i])
							if i++; i == len(walk) {
								i = 0
							}
						}
					})
				}
				b.StopTimer()
				if d := denied.Load(); d > 0 {
					b.Errorf("%d decisions denied; the benchmark measures the allowed path", d)
				}
				// Errors are the library's answer under contention, not a
				// fault of the benchmark: report them.
				b.ReportMetric(float64(failed.Load())/float64(max(b.N, 1)), "errors/op")
			})
		}
	}
}

// BenchmarkHeapPerKey fills a fresh limiter with 100,000 keys and reports
// the heap it grew by per key (B/key), measured with runtime.MemStats after
// a full collection on each side.
func BenchmarkHeapPerKey(b *testing.B) {
	keys := testKeys(numKeys)
	for _, p := range inProcessPeers() {
		b.Run("keys=100000/lib="+p.name, func(b *testing.B) {
			b.ReportAllocs()
			var perKey float64
			for b.Loop() {
				before := heapInUse()
				in := p.new(b)
				fill(b, in, keys)
				after := heapInUse()
				perKey = float64(int64(after)-int64(before)) / numKeys
				runtime.KeepAlive(in)
				in.close()
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
