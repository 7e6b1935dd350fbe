package redis_test

import (
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
	storetest.Run(t, func(t *testing.T) store.Store {
		prefix := redistest.Prefix(t)
		redistest.CleanupPrefix(t, c, prefix)
		return redis.New(c, redis.WithPrefix(prefix))
	})
}
