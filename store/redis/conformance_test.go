package redis_test

import (
	"fmt"
	"testing"

	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		c, _, _ := redistest.Client(t)
		prefix := redistest.Prefix(t)
		redistest.CleanupPrefix(t, c, prefix)
		return redis.New(c, redis.WithPrefix(prefix))
	})
}

func TestConformanceCluster(t *testing.T) {
	c, _ := redistest.ClusterClient(t)
	for _, pipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("autopipeline=%v", pipe), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				prefix := redistest.Prefix(t)
				redistest.CleanupPrefix(t, c, prefix)
				opts := []redis.Option{redis.WithPrefix(prefix)}
				if pipe {
					opts = append(opts, redis.WithAutoPipeline())
				}
				return redis.New(c, opts...)
			})
		})
	}
}

// TestConformanceAutoPipeline runs the suite with decisions sent through
// the client's autopipeliner.
func TestConformanceAutoPipeline(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		c, _, _ := redistest.Client(t)
		prefix := redistest.Prefix(t)
		redistest.CleanupPrefix(t, c, prefix)
		return redis.New(c, redis.WithPrefix(prefix), redis.WithAutoPipeline())
	})
}
