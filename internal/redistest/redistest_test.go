package redistest

import (
	"context"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// TestCleanupPrefix checks that a test's keys are gone once it ends, and
// that keys of others are not.
func TestCleanupPrefix(t *testing.T) {
	c, _, _ := Client(t)
	ctx := context.Background()
	prefix, other := Prefix(t), Prefix(t)
	CleanupPrefix(t, c, other)
	t.Run("writer", func(t *testing.T) {
		CleanupPrefix(t, c, prefix)
		for _, k := range []string{prefix + "a", prefix + "b", other + "a"} {
			if err := c.Set(ctx, k, "1", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if n := c.Exists(ctx, prefix+"a", prefix+"b").Val(); n != 0 {
		t.Errorf("%d keys under %q left after the test that wrote them", n, prefix)
	}
	if n := c.Exists(ctx, other+"a").Val(); n != 1 {
		t.Errorf("a key under another prefix, %q, was deleted", other)
	}
}

// TestServer starts, kills and restarts a throwaway redis-server.
func TestServer(t *testing.T) {
	NeedAddr(t) // an integration test: runs where redis-server is installed
	s := StartServer(t, 7150)
	c := goredis.NewClient(Options(s.Addr))
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered after Stop")
	}
	s.Start()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}
	if n, _ := c.Exists(ctx, "k").Result(); n != 0 {
		t.Fatal("a restarted server kept data; want none (no persistence)")
	}
}
