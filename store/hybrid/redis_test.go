package hybrid_test

import (
	"testing"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// newRedis returns a Redis store for one test (miniredis, or the real Redis
// at REDIS_ADDR) under a unique prefix, and the client's command counter.
func newRedis(t testing.TB) (*redis.Store, *redistest.Counter) {
	t.Helper()
	c, cnt, _ := redistest.Client(t)
	return redis.New(c, redis.WithPrefix(redistest.Prefix(t))), cnt
}

func TestConformanceRedis(t *testing.T) {
	for _, strict := range []bool{false, true} {
		name := "mode=relaxed"
		opts := []hybrid.Option{hybrid.WithoutFlusher()}
		if strict {
			name = "mode=strict"
			opts = append(opts, hybrid.Strict())
		}
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				r, _ := newRedis(t)
				return hybrid.New(r, opts...)
			})
		})
	}
}
