package redisstats_test

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
)

// miniClient returns a client of a fresh miniredis, closed in t.Cleanup.
func miniClient(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(redistest.Options(miniredis.RunT(t).Addr()))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clusterClient returns a client of the Redis Cluster at
// REDIS_CLUSTER_ADDRS, closed in t.Cleanup, or skips the test.
func clusterClient(t *testing.T) *goredis.ClusterClient {
	t.Helper()
	addrs := redistest.ClusterAddrs()
	if len(addrs) == 0 {
		t.Skip("REDIS_CLUSTER_ADDRS not set: skipping test against a Redis Cluster")
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestCounter checks the hook's counts on miniredis: one command alone is
// one command and one round trip; a pipeline of three is three commands,
// one round trip; a script is one command whatever it runs.
func TestCounter(t *testing.T) {
	ctx := context.Background()
	c := miniClient(t)
	cnt := new(redisstats.Counter)
	c.AddHook(cnt)
	if got := cnt.ByName(); got == nil || len(got) != 0 {
		t.Fatalf("ByName of a new Counter = %#v; want an empty map", got)
	}
	// Warm up both the main and the pipeline connections, and load the
	// script.
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error { p.Ping(ctx); return nil }); err != nil {
		t.Fatal(err)
	}
	script := goredis.NewScript(`redis.call('SET', KEYS[1], '1'); redis.call('GET', KEYS[1]); return 1`)
	if err := script.Run(ctx, c, []string{"s"}).Err(); err != nil {
		t.Fatal(err)
	}
	if cnt.Commands() == 0 || cnt.RoundTrips() == 0 || cnt.ByName()["ping"] != 2 {
		t.Fatalf("warm-up counted %d commands, %d round trips, by name %v; want some, with ping 2", cnt.Commands(), cnt.RoundTrips(), cnt.ByName())
	}
	tests := []struct {
		name         string
		do           func() error
		cmds, rounds int64
		byName       map[string]int64
	}{
		{"one command", func() error { return c.Set(ctx, "a", "1", 0).Err() }, 1, 1, map[string]int64{"set": 1}},
		{"pipeline of three", func() error {
			_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				p.Incr(ctx, "a")
				p.Incr(ctx, "a")
				p.Get(ctx, "a")
				return nil
			})
			return err
		}, 3, 1, map[string]int64{"incr": 2, "get": 1}},
		{"transaction", func() error {
			_, err := c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.Incr(ctx, "a")
				return nil
			})
			return err
		}, 3, 1, map[string]int64{"multi": 1, "incr": 1, "exec": 1}},
		{"script", func() error { return script.Run(ctx, c, []string{"s"}).Err() }, 1, 1, map[string]int64{"evalsha": 1}},
		{"empty pipeline", func() error {
			_, err := c.Pipelined(ctx, func(goredis.Pipeliner) error { return nil })
			return err
		}, 0, 0, map[string]int64{}},
	}
	for _, tt := range tests {
		cnt.Reset()
		if err := tt.do(); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if cnt.Commands() != tt.cmds || cnt.RoundTrips() != tt.rounds {
			t.Errorf("%s: counted %d commands, %d round trips; want %d, %d", tt.name, cnt.Commands(), cnt.RoundTrips(), tt.cmds, tt.rounds)
		}
		if got := cnt.ByName(); !maps.Equal(got, tt.byName) {
			t.Errorf("%s: ByName = %v; want %v", tt.name, got, tt.byName)
		}
	}
}

// TestCounterEmptyPipeline calls the pipeline hook with no commands, which
// go-redis does not do today: nothing is sent, so nothing is counted.
func TestCounterEmptyPipeline(t *testing.T) {
	var cnt redisstats.Counter
	called := false
	next := func(context.Context, []goredis.Cmder) error { called = true; return nil }
	if err := cnt.ProcessPipelineHook(next)(context.Background(), nil); err != nil || !called {
		t.Fatalf("hook = %v, next called %v; want nil, true", err, called)
	}
	if cnt.Commands() != 0 || cnt.RoundTrips() != 0 {
		t.Errorf("empty pipeline: counted %d commands, %d round trips; want 0, 0", cnt.Commands(), cnt.RoundTrips())
	}
}

// TestCounterConcurrent counts from several goroutines at once (run it
// with -race).
func TestCounterConcurrent(t *testing.T) {
	ctx := context.Background()
	c := miniClient(t)
	if err := c.Ping(ctx).Err(); err != nil { // warm up
		t.Fatal(err)
	}
	cnt := new(redisstats.Counter)
	c.AddHook(cnt)
	const workers, each = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range each {
				if err := c.Incr(ctx, "w"+strconv.Itoa(w)).Err(); err != nil {
					errs <- err
					return
				}
				_ = cnt.ByName()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := cnt.ByName()["incr"]; got != workers*each {
		t.Errorf("counted %d INCRs; want %d", got, workers*each)
	}
	// Connections opened for the extra workers send their handshake too.
	if cnt.Commands() < workers*each || cnt.RoundTrips() < workers*each {
		t.Errorf("counted %d commands, %d round trips; want at least %d each", cnt.Commands(), cnt.RoundTrips(), workers*each)
	}
}

// strlens sends one STRLEN per key and returns how many it sent. STRLEN is
// a command nothing else in this project sends, so that the tests below
// can expect its exact count on a shared server.
func strlens(t *testing.T, c goredis.UniversalClient, keys []string) int64 {
	t.Helper()
	ctx := context.Background()
	for _, k := range keys {
		if err := c.StrLen(ctx, k).Err(); err != nil {
			t.Fatalf("STRLEN %s: %v", k, err)
		}
	}
	return int64(len(keys))
}

// TestCommandStats reads the stats of the real Redis at REDIS_ADDR around
// a few commands.
func TestCommandStats(t *testing.T) {
	addr := redistest.NeedAddr(t)
	ctx := context.Background()
	c := goredis.NewClient(redistest.Options(addr))
	t.Cleanup(func() { _ = c.Close() })
	prefix := redistest.Prefix(t)
	before, err := redisstats.CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	sent := strlens(t, c, []string{prefix + "a", prefix + "b", prefix + "c"})
	after, err := redisstats.CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	d := redisstats.Delta(before, after)
	if d["strlen"] != sent {
		t.Errorf("Delta = %v; want strlen %d", d, sent)
	}
	if _, ok := d["info"]; ok {
		t.Errorf("Delta = %v; want INFO left out", d)
	}
}

// TestCommandStatsCluster checks that the stats of a cluster client are
// the sums over every master: the commands go to keys on all of them.
func TestCommandStatsCluster(t *testing.T) {
	c := clusterClient(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	masters := countMasters(t, c)
	// Keys until every master holds some.
	var keys []string
	on := map[string]int{}
	for i := 0; len(on) < masters || len(keys) < 10; i++ {
		if i == 1000 {
			t.Fatalf("1000 keys hash to %d of %d masters", len(on), masters)
		}
		k := prefix + strconv.Itoa(i)
		node, err := c.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		on[node.Options().Addr]++
		keys = append(keys, k)
	}
	if masters < 2 {
		t.Logf("the cluster has %d master; the sum is not put to the test", masters)
	}
	before, err := redisstats.CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	sent := strlens(t, c, keys)
	after, err := redisstats.CommandStats(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if d := redisstats.Delta(before, after); d["strlen"] != sent {
		t.Errorf("Delta = %v; want strlen %d (keys per master: %v)", d, sent, on)
	}
	// Each master counts the INFO of the first reading (a server counts a
	// command once it has run, so not the one reading it; others may send
	// INFO to a shared cluster too).
	if got := after["info"] - before["info"]; got < int64(masters) {
		t.Errorf("INFO calls between the readings = %d; want at least one per master, %d", got, masters)
	}
}

// countMasters returns the number of masters of c.
func countMasters(t *testing.T, c *goredis.ClusterClient) int {
	t.Helper()
	var n atomic.Int64 // ForEachMaster calls concurrently
	if err := c.ForEachMaster(context.Background(), func(context.Context, *goredis.Client) error { n.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	return int(n.Load())
}

// TestDeletePrefix writes more than a SCAN page of keys under a prefix with
// glob characters in it, beside keys that the unescaped glob would match,
// and deletes the first: on miniredis, and on the real Redis at REDIS_ADDR
// and the cluster at REDIS_CLUSTER_ADDRS when they are set.
func TestDeletePrefix(t *testing.T) {
	servers := []struct {
		name string
		new  func(t *testing.T) goredis.UniversalClient
	}{
		{"server=miniredis", func(t *testing.T) goredis.UniversalClient { return miniClient(t) }},
		{"server=redis", func(t *testing.T) goredis.UniversalClient {
			c := goredis.NewClient(redistest.Options(redistest.NeedAddr(t)))
			t.Cleanup(func() { _ = c.Close() })
			return c
		}},
		{"server=cluster", func(t *testing.T) goredis.UniversalClient { return clusterClient(t) }},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			c := srv.new(t)
			ctx := context.Background()
			base := redistest.Prefix(t)
			prefix := base + `[ab]*?\`
			// Matched by the glob base+"[ab]*?\*" read unescaped, or by a
			// prefix cut short; not under prefix.
			others := []string{base + "a", base + "b-x", base + `[ab]*`, base + `[ab]*!\`}
			t.Cleanup(func() { _ = c.Del(context.Background(), others...) })
			const n = 2500
			_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i := range n {
					p.Set(ctx, prefix+strconv.Itoa(i), "1", 0)
				}
				for _, k := range others {
					p.Set(ctx, k, "1", 0)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := redisstats.DeletePrefix(ctx, c, prefix); err != nil {
				t.Fatalf("DeletePrefix: %v", err)
			}
			exists := make([]*goredis.IntCmd, n)
			_, err = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i := range exists {
					exists[i] = p.Exists(ctx, prefix+strconv.Itoa(i))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var left int64
			for _, e := range exists {
				left += e.Val()
			}
			if left != 0 {
				t.Errorf("%d of %d keys under the prefix left", left, n)
			}
			for _, k := range others {
				if c.Exists(ctx, k).Val() != 1 {
					t.Errorf("key %q, not under the prefix, was deleted", k)
				}
			}
		})
	}
}

func TestDeletePrefixEmpty(t *testing.T) {
	c := miniClient(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := redisstats.DeletePrefix(ctx, c, ""); !errors.Is(err, redisstats.ErrEmptyPrefix) {
		t.Errorf(`DeletePrefix("") = %v; want ErrEmptyPrefix`, err)
	}
	if c.Exists(ctx, "k").Val() != 1 {
		t.Error(`DeletePrefix("") deleted a key`)
	}
}
