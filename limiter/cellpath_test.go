package limiter_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// opaque hides a store's type, so that a limiter over it takes the batch
// path: the reference the short path is compared with.
type opaque struct{ store.Store }

// overridden embeds a built-in algorithm and replaces its Decide: the
// short path must not skip the override.
type overridden struct{ *algorithms.Fixed }

func (o overridden) Decide(b *store.Batch, r *limiter.Request, res *limiter.Result) {
	o.Fixed.Decide(b, r, res)
	res.Remaining = 7
}

func TestCellPathTaken(t *testing.T) {
	minute := limiter.PerMinute(10)
	tests := []struct {
		name string
		alg  limiter.Algorithm
		opts []limiter.Option
		want bool
	}{
		{"fixed/memory", algorithms.FixedWindow(minute), []limiter.Option{limiter.WithStore(memory.New())}, true},
		{"sliding/memory", algorithms.SlidingWindow(minute), []limiter.Option{limiter.WithStore(memory.New())}, true},
		{"bucket/memory", algorithms.TokenBucket(minute), []limiter.Option{limiter.WithStore(memory.New())}, true},
		{"fixed/default store", algorithms.FixedWindow(minute), nil, true},
		{"fixed/hybrid without remote", algorithms.FixedWindow(minute), []limiter.Option{limiter.WithStore(hybrid.New(nil))}, true},
		{"two limits", algorithms.FixedWindow(minute, limiter.PerDay(100)), nil, false},
		{"limit function", algorithms.FixedWindow(minute), []limiter.Option{limiter.WithLimitFunc(
			func(context.Context, string) ([]limiter.Limit, error) { return nil, nil })}, false},
		{"sliding log", algorithms.SlidingLog(minute), nil, false},
		{"opaque store", algorithms.FixedWindow(minute), []limiter.Option{limiter.WithStore(opaque{memory.New()})}, false},
		{"embedding algorithm", overridden{algorithms.FixedWindow(minute)}, nil, false},
	}
	c, _, _ := redistest.Client(t)
	passAll := hybrid.New(opaque{memory.New()}) // a remote that cannot sync: every batch goes to it
	t.Cleanup(func() { _ = passAll.Close() })
	remote := func(opts ...hybrid.Option) limiter.Option {
		h := hybrid.New(redis.New(c, redis.WithPrefix(redistest.Prefix(t))), append(opts, hybrid.WithoutFlusher())...)
		t.Cleanup(func() { _ = h.Close() })
		return limiter.WithStore(h)
	}
	tests = append(tests, []struct {
		name string
		alg  limiter.Algorithm
		opts []limiter.Option
		want bool
	}{
		{"fixed/hybrid relaxed over Redis", algorithms.FixedWindow(minute), []limiter.Option{remote()}, true},
		{"fixed/hybrid strict over Redis", algorithms.FixedWindow(minute), []limiter.Option{remote(hybrid.Strict())}, false},
		{"fixed/hybrid over a remote that cannot sync", algorithms.FixedWindow(minute), []limiter.Option{limiter.WithStore(passAll)}, false},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := mustNew(t, tt.alg, tt.opts...)
			if got := limiter.TakesCellPath(lim); got != tt.want {
				t.Fatalf("short path taken = %v; want %v", got, tt.want)
			}
		})
	}

	// The override is honoured: Remaining comes from its Decide.
	lim := mustNew(t, overridden{algorithms.FixedWindow(minute)})
	if res, err := lim.Allow(context.Background(), "k"); err != nil || res.Remaining != 7 {
		t.Fatalf("embedding algorithm: Allow = %+v, %v; want Remaining 7 from its Decide", res, err)
	}
}

// TestCellPathMatchesBatchPath runs random decisions through a limiter on
// the short path and one on the batch path, on one clock, and requires the
// same results and errors step for step, and the same store counters, key
// count and sweeps.
func TestCellPathMatchesBatchPath(t *testing.T) {
	algs := []struct {
		name string
		alg  func() limiter.Algorithm
		span time.Duration // the clock's largest step
	}{
		{"fixed/second", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.PerSecond(5)) }, 400 * time.Millisecond},
		{"fixed/minute", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.PerMinute(50)) }, 10 * time.Second},
		{"fixed/huge count", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.Per(math.MaxInt64, time.Minute)) }, 10 * time.Second},
		{"sliding/second", func() limiter.Algorithm { return algorithms.SlidingWindow(limiter.PerSecond(5)) }, 400 * time.Millisecond},
		{"sliding/day", func() limiter.Algorithm { return algorithms.SlidingWindow(limiter.PerDay(100)) }, 2 * time.Hour},
		{"sliding/large count", func() limiter.Algorithm { return algorithms.SlidingWindow(limiter.PerSecond(3_000_000)) }, 300 * time.Millisecond},
		{"sliding/huge count", func() limiter.Algorithm { return algorithms.SlidingWindow(limiter.Per(math.MaxInt64, time.Minute)) }, 10 * time.Second},
		{"bucket", func() limiter.Algorithm { return algorithms.TokenBucket(limiter.PerSecond(10).WithBurst(4)) }, 300 * time.Millisecond},
		{"bucket/slow", func() limiter.Algorithm { return algorithms.TokenBucket(limiter.PerHour(3)) }, 30 * time.Minute},
	}
	ctx := context.Background()
	for _, a := range algs {
		for seed := range uint64(40) {
			t.Run(fmt.Sprintf("%s/seed=%d", a.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 99))
				start := epoch.Add(time.Duration(rng.Int64N(int64(24 * time.Hour))))
				if seed%4 == 0 {
					start = time.Unix(0, 0).Add(-time.Duration(rng.Int64N(int64(time.Hour)))) // before 1970, crossing it
				}
				clock := storetest.NewClock(start)
				// Small key bounds, so that eviction is part of the run.
				newStore := func() *memory.Store { return memory.New(memory.WithMaxKeys(4), memory.WithShards(1)) }
				shortStore, batchStore := newStore(), newStore()
				short := mustNew(t, a.alg(), limiter.WithClock(clock.Now), limiter.WithStore(shortStore))
				batch := mustNew(t, a.alg(), limiter.WithClock(clock.Now), limiter.WithStore(opaque{batchStore}))
				if !limiter.TakesCellPath(short) || limiter.TakesCellPath(batch) {
					t.Fatal("the limiters do not take the paths compared")
				}
				lim := a.alg().Limits()[0]
				keys := []string{"a", "b", "c", "d", "e", ""}
				for step := range 400 {
					switch rng.IntN(6) {
					case 0:
						clock.Advance(time.Duration(rng.Int64N(int64(a.span))))
					case 1: // onto the next window edge, 1 ns either side, or up to 2 µs before it (the sliding weight's last ppm)
						now := clock.Now().UnixNano()
						p := int64(lim.Period)
						next := (now/p + 1) * p
						if now < 0 {
							next = 0 // windows are clamped to the epoch
						}
						offset := rng.Int64N(3) - 1
						if rng.IntN(2) == 0 {
							offset = -1 - rng.Int64N(2000)
						}
						clock.Set(time.Unix(0, next+offset))
					}
					key := keys[rng.IntN(len(keys))]
					n := int64(1)
					switch rng.IntN(5) {
					case 0:
						n = 1 + rng.Int64N(min(lim.Capacity(), math.MaxInt64-1)+1) // up to capacity + 1: an error
					case 1:
						n = lim.Capacity()
					}
					var got, want limiter.Result
					var gotErr, wantErr error
					decided := true
					switch rng.IntN(10) {
					case 0:
						got, gotErr = short.Peek(ctx, key)
						want, wantErr = batch.Peek(ctx, key)
					case 1:
						gotErr, wantErr = short.Reset(ctx, key), batch.Reset(ctx, key)
						decided = false
					default:
						got, gotErr = short.AllowN(ctx, key, n)
						want, wantErr = batch.AllowN(ctx, key, n)
					}
					if got != want || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
						t.Fatalf("step %d at %v, key %q, n %d: short path %+v, %v; batch path %+v, %v", step, clock.Now(), key, n, got, gotErr, want, wantErr)
					}
					if decided && gotErr == nil && !got.Allowed && got.RetryAfter <= 0 {
						t.Fatalf("step %d: denied with RetryAfter %v; want > 0", step, got.RetryAfter)
					}
					if gs, ws := shortStore.Stats(), batchStore.Stats(); gs != ws {
						t.Fatalf("step %d: short path's store %+v; batch path's %+v", step, gs, ws)
					}
					if step%50 == 49 {
						if g, w := shortStore.Sweep(), batchStore.Sweep(); g != w {
							t.Fatalf("step %d: Sweep freed %d keys after the short path, %d after the batch path", step, g, w)
						}
					}
				}
			})
		}
	}
}

// TestCellPathClosedStore: the short path reports a closed store as the
// batch path does.
func TestCellPathClosedStore(t *testing.T) {
	for _, name := range []string{"memory", "hybrid", "hybrid-relaxed over Redis"} {
		t.Run(name, func(t *testing.T) {
			var s store.Store = memory.New()
			switch name {
			case "hybrid":
				s = hybrid.New(nil)
			case "hybrid-relaxed over Redis":
				c, _, _ := redistest.Client(t)
				s = hybrid.New(redis.New(c, redis.WithPrefix(redistest.Prefix(t))), hybrid.WithoutFlusher())
			}
			lim := mustNew(t, algorithms.FixedWindow(limiter.PerMinute(10)), limiter.WithStore(s))
			if !limiter.TakesCellPath(lim) {
				t.Fatal("short path not taken")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := lim.Allow(context.Background(), "k")
			if want := "limiter: " + store.ErrClosed.Error(); !errors.Is(err, store.ErrClosed) || err.Error() != want {
				t.Fatalf("Allow on a closed store: %v; want %q, wrapping store.ErrClosed", err, want)
			}
		})
	}
}

// TestCellPathMatchesBatchPathHybrid is TestCellPathMatchesBatchPath for
// the relaxed hybrid store over Redis (miniredis, or the Redis at
// REDIS_ADDR): two processes share each side's Redis, the limiter under
// test on one and a batch-path limiter on the other, both flushed at the
// same steps, so that first-sight reads (a day limit), the fair share near
// a limit and folded global counts are all part of the run. Results,
// errors and both processes' Stats must match step for step.
func TestCellPathMatchesBatchPathHybrid(t *testing.T) {
	algs := []struct {
		name string
		alg  func() limiter.Algorithm
		span time.Duration
	}{
		{"fixed/minute", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.PerMinute(30)) }, 5 * time.Second},
		{"fixed/day", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.PerDay(60)) }, 30 * time.Minute},
		{"sliding/minute", func() limiter.Algorithm { return algorithms.SlidingWindow(limiter.PerMinute(30)) }, 5 * time.Second},
		{"bucket", func() limiter.Algorithm { return algorithms.TokenBucket(limiter.PerMinute(30).WithBurst(10)) }, 5 * time.Second},
	}
	ctx := context.Background()
	for _, a := range algs {
		for seed := range uint64(8) {
			t.Run(fmt.Sprintf("%s/seed=%d", a.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				clock := storetest.NewClock(epoch.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))))
				type side struct {
					lim, other *limiter.Limiter
					a, b       *hybrid.Store
				}
				newSide := func(short bool) side {
					c, _, _ := redistest.Client(t)
					prefix := redistest.Prefix(t)
					t.Cleanup(func() { redistest.CleanupPrefix(t, c, prefix) })
					proc := func(id string) *hybrid.Store {
						opts := []hybrid.Option{hybrid.WithoutFlusher(), hybrid.WithProcessID(id), hybrid.WithShards(1), hybrid.WithMaxKeys(8)}
						if seed%2 == 0 { // else flushes go by the latest decision instant the store saw
							opts = append(opts, hybrid.WithClock(clock.Now))
						}
						h := hybrid.New(redis.New(c, redis.WithPrefix(prefix)), opts...)
						t.Cleanup(func() { _ = h.Close() })
						return h
					}
					sd := side{a: proc("a"), b: proc("b")}
					var st store.Store = sd.a
					if !short {
						st = opaque{sd.a}
					}
					sd.lim = mustNew(t, a.alg(), limiter.WithClock(clock.Now), limiter.WithStore(st))
					sd.other = mustNew(t, a.alg(), limiter.WithClock(clock.Now), limiter.WithStore(opaque{sd.b}))
					return sd
				}
				short, batch := newSide(true), newSide(false)
				if !limiter.TakesCellPath(short.lim) || limiter.TakesCellPath(batch.lim) {
					t.Fatal("the limiters do not take the paths compared")
				}
				keys := []string{"a", "b", "c"}
				for step := range 300 {
					switch r := rng.IntN(20); {
					case r == 0:
						clock.Advance(time.Duration(rng.Int64N(int64(a.span))))
					case r <= 2:
						for _, sd := range []side{short, batch} {
							if err := sd.a.Flush(ctx); err != nil {
								t.Fatal(err)
							}
							if err := sd.b.Flush(ctx); err != nil {
								t.Fatal(err)
							}
						}
					}
					key := keys[rng.IntN(len(keys))]
					n := int64(1 + rng.IntN(3))
					which := func(sd side) *limiter.Limiter { return sd.lim }
					if rng.IntN(3) == 0 {
						which = func(sd side) *limiter.Limiter { return sd.other }
					}
					var got, want limiter.Result
					var gotErr, wantErr error
					if rng.IntN(8) == 0 {
						got, gotErr = which(short).Peek(ctx, key)
						want, wantErr = which(batch).Peek(ctx, key)
					} else {
						got, gotErr = which(short).AllowN(ctx, key, n)
						want, wantErr = which(batch).AllowN(ctx, key, n)
					}
					if got != want || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
						t.Fatalf("step %d, key %q, n %d: short path side %+v, %v; batch path side %+v, %v", step, key, n, got, gotErr, want, wantErr)
					}
					if g, w := short.a.Stats(), batch.a.Stats(); g != w {
						t.Fatalf("step %d: the short path's process %+v; the batch path's %+v", step, g, w)
					}
					if g, w := short.b.Stats(), batch.b.Stats(); g != w {
						t.Fatalf("step %d: the other process beside the short path %+v; beside the batch path %+v", step, g, w)
					}
				}
			})
		}
	}
}
