package benchmarks

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/cputime"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// BenchmarkPlans measures the incident's policy, a per-minute and a
// per-day limit, on one tenant and on 100 taking turns: once as the
// algorithm's static limits, once through WithLimitFunc, each tenant's
// plan looked up in a map as a middleware would. The difference is what
// per-tenant plans cost a decision. Beside ns/op it reports, on Linux, the
// least thread CPU time per decision over blocks of 1,000 (cpu-min-ns/op).
func BenchmarkPlans(b *testing.B) {
	for _, tenants := range []int{1, 100} {
		plans(b, tenants)
	}
}

func plans(b *testing.B, tenants int) {
	keys := make([]string, tenants)
	plans := make(map[string][]limiter.Limit, tenants)
	for i := range keys {
		keys[i] = "tenant-" + strconv.Itoa(i)
		plans[keys[i]] = []limiter.Limit{limiter.PerMinute(huge), limiter.PerDay(huge)}
	}
	for _, tc := range []struct {
		name string
		opts []limiter.Option
	}{
		{"limits=static", nil},
		{"limits=func", []limiter.Option{limiter.WithLimitFunc(func(_ context.Context, key string) ([]limiter.Limit, error) {
			return plans[key], nil
		})}},
	} {
		b.Run(tc.name+"/tenants="+strconv.Itoa(tenants), func(b *testing.B) {
			st := memory.New()
			defer st.Close()
			lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(huge), limiter.PerDay(huge)),
				append([]limiter.Option{limiter.WithStore(st)}, tc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			// The least thread CPU time per decision over blocks of 1,000
			// decisions, beside ns/op: a figure a noisy machine does not move.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			const block = 1000
			var best time.Duration
			cpuOK := true
			c0, ok := cputime.Thread()
			cpuOK = cpuOK && ok
			b.ReportAllocs()
			i, n := 0, 0
			for b.Loop() {
				res, err := lim.Allow(ctx, keys[i])
				if err != nil || !res.Allowed {
					b.Fatalf("Allow(%q) = %+v, %v; want allowed", keys[i], res, err)
				}
				if i++; i == len(keys) {
					i = 0
				}
				if n++; n == block {
					c1, ok := cputime.Thread()
					cpuOK = cpuOK && ok
					if d := c1 - c0; best == 0 || d < best {
						best = d
					}
					c0, n = c1, 0
				}
			}
			if cpuOK && best > 0 {
				b.ReportMetric(float64(best.Nanoseconds())/block, "cpu-min-ns/op")
			}
		})
	}
}
