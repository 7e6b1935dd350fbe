package benchmarks

import (
	"context"
	"strconv"
	"testing"

	"golang.org/x/time/rate"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// huge is a limit that never denies in a benchmark, so the allowed path is
// what is measured.
const huge = 1 << 50

// BenchmarkMemoryVsXTimeRate measures floodgate's memory store on one key's
// allowed path beside golang.org/x/time/rate's Limiter.Allow, in the same
// run, both reading the real clock. Goal: 0 allocs/op and ns/op at most
// x/time/rate's.
func BenchmarkMemoryVsXTimeRate(b *testing.B) {
	b.Run("impl=xtimerate", func(b *testing.B) {
		l := rate.NewLimiter(rate.Limit(huge), huge)
		b.ReportAllocs()
		for b.Loop() {
			if !l.Allow() {
				b.Fatal("denied")
			}
		}
	})
	algs := []struct {
		name string
		alg  limiter.Algorithm
	}{
		{"gcra", algorithms.TokenBucket(limiter.PerSecond(1e9).WithBurst(huge))},
		{"fixed", algorithms.FixedWindow(limiter.PerMinute(huge))},
		{"sliding", algorithms.SlidingWindow(limiter.PerMinute(huge))},
	}
	for _, a := range algs {
		b.Run("impl=floodgate/algo="+a.name, func(b *testing.B) {
			lim, err := limiter.New(a.alg, limiter.WithStore(memory.New()))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if res, err := lim.Allow(ctx, "tenant-42"); err != nil || !res.Allowed {
					b.Fatal("denied", err)
				}
			}
		})
	}
}

// BenchmarkMemoryManyKeys spreads decisions over 100,000 keys with the LRU
// bound at 10,000 keys.
func BenchmarkMemoryManyKeys(b *testing.B) {
	const keys = 100_000
	names := make([]string, keys)
	for i := range names {
		names[i] = "tenant-" + strconv.Itoa(i)
	}
	s := memory.New(memory.WithMaxKeys(10_000))
	lim, err := limiter.New(algorithms.TokenBucket(limiter.PerSecond(1e9).WithBurst(huge)), limiter.WithStore(s))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		lim.Allow(ctx, names[i%keys])
		i++
	}
	b.StopTimer()
	if n := s.Len(); n > 10_000 {
		b.Fatalf("store holds %d keys; bound is 10000", n)
	}
	b.ReportMetric(float64(s.Len()), "keys-held")
}
