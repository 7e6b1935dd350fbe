package benchmarks

import (
	"context"
	"strconv"
	"testing"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// BenchmarkPlans measures the incident's policy, a per-minute and a
// per-day limit, on one tenant and on 100 taking turns: once as the
// algorithm's static limits, once through WithLimitFunc, each tenant's
// plan looked up in a map as a middleware would. The difference is what
// per-tenant plans cost a decision.
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
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				res, err := lim.Allow(ctx, keys[i])
				if err != nil || !res.Allowed {
					b.Fatalf("Allow(%q) = %+v, %v; want allowed", keys[i], res, err)
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}
