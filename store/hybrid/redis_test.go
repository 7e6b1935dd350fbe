package hybrid_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// newRedis returns a Redis store for one test (miniredis, or the real Redis
// at REDIS_ADDR) under a unique prefix, and the client's command counter.
func newRedis(t testing.TB) (*redis.Store, *redisstats.Counter) {
	t.Helper()
	c, cnt, _ := redistest.Client(t)
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	return redis.New(c, redis.WithPrefix(prefix)), cnt
}

func TestConformanceRedis(t *testing.T) {
	for _, strict := range []bool{false, true} {
		name := "mode=relaxed"
		if strict {
			name = "mode=strict"
		}
		opts := manualOpts(strict)
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				r, _ := newRedis(t)
				return hybrid.New(r, opts...)
			})
		})
	}
}

// TestConformanceCluster runs the suite on a Redis Cluster
// (REDIS_CLUSTER_ADDRS), where a flush is one command per slot group.
func TestConformanceCluster(t *testing.T) {
	c, _ := redistest.ClusterClient(t)
	for _, strict := range []bool{false, true} {
		opts := manualOpts(strict)
		t.Run("strict="+strconv.FormatBool(strict), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				prefix := redistest.Prefix(t)
				redistest.CleanupPrefix(t, c, prefix)
				return hybrid.New(redis.New(c, redis.WithPrefix(prefix)), opts...)
			})
		})
	}
}

// TestClusterSlotGroups: on a Redis Cluster, one flush of many callers'
// deltas is one command per slot group, with no CROSSSLOT, and lands once.
func TestClusterSlotGroups(t *testing.T) {
	c, cnt := redistest.ClusterClient(t)
	ctx := context.Background()
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	r := redis.New(c, redis.WithPrefix(prefix))
	h := hybrid.New(r, hybrid.WithoutFlusher())
	defer h.Close()
	const callers = 300
	b := &store.Batch{}
	slots := map[int64]bool{}
	for i := range callers {
		caller := "c" + strconv.Itoa(i)
		slot, err := c.ClusterKeySlot(ctx, store.HashTag(caller)).Result() // the server's own answer
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
		for range 3 {
			b.Reset()
			decision(b, caller, hotStart, 100)
			b.Ops = b.Ops[:1]
			if err := h.Do(ctx, b); err != nil || !b.Applied {
				t.Fatalf("Do(%s) = (applied %v, %v)", caller, b.Applied, err)
			}
		}
	}
	cnt.Reset()
	if err := h.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := cnt.Commands(); got < int64(len(slots)) || got > int64(len(slots))+3 {
		t.Fatalf("flush of %d callers in %d slots sent %d commands; want one per slot group (+ script loads)", callers, len(slots), got)
	}
	for i := range callers {
		k := minuteKey("c"+strconv.Itoa(i), hotStart)
		pb := &store.Batch{Now: hotStart, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k, Ceil: 1 << 62, TTL: time.Hour}}}
		if err := r.Do(ctx, pb); err != nil || pb.Results[0].Value != 3 {
			t.Fatalf("Redis count of %v = (%d, %v); want 3", k, pb.Results[0].Value, err)
		}
	}
}

// TestSyncReplay: a sync batch sent twice with one id is applied once; the
// repeat reports the cells as they are and the grants of the first time.
func TestSyncReplay(t *testing.T) {
	ctx := context.Background()
	r, cnt := newRedis(t)
	k := func(c string) store.Key { return store.Key{Namespace: "replay", Caller: c} }
	sb := &store.SyncBatch{ID: "p:1", IDTTL: time.Minute, Process: "p", HeartbeatTTL: time.Second, Now: hotStart,
		Items: []store.SyncItem{
			{Kind: store.SyncAdd, Key: k("a"), N: 5, TTL: time.Minute},
			{Kind: store.SyncTake, Key: k("b"), N: 7, Ceil: 10, TTL: time.Minute},
			{Kind: store.SyncTake, Key: k("c"), N: 30, Ceil: 10, TTL: time.Minute},
		}}
	want := []store.SyncResult{{Value: 5}, {Value: 7, Granted: 7}, {Value: 10, Granted: 10}}
	for round := range 2 {
		cnt.Reset()
		if err := r.Sync(ctx, sb); err != nil {
			t.Fatalf("round %d: Sync: %v", round, err)
		}
		for i, w := range want {
			if sb.Results[i] != w {
				t.Fatalf("round %d: item %d = %+v; want %+v", round, i, sb.Results[i], w)
			}
		}
		if sb.Processes != 1 || sb.Commands != 1 {
			t.Fatalf("round %d: Processes %d, Commands %d; want 1, 1", round, sb.Processes, sb.Commands)
		}
	}
	// A new id applies again: the take finds the cell full.
	sb.ID = "p:2"
	if err := r.Sync(ctx, sb); err != nil {
		t.Fatal(err)
	}
	if got := sb.Results[1]; got != (store.SyncResult{Value: 10, Granted: 3}) {
		t.Fatalf("take under a new id = %+v; want value 10, granted 3", got)
	}
}

// TestLargeFlush: a flush of more cells than one script carries is sent in
// chunks of redis.MaxSyncItems, and every delta lands.
func TestLargeFlush(t *testing.T) {
	ctx := context.Background()
	r, cnt := newRedis(t)
	h := hybrid.New(r, hybrid.WithoutFlusher())
	defer h.Close()
	const callers = 2*redis.MaxSyncItems + 500
	b := &store.Batch{}
	for i := range callers {
		decision(b, "c"+strconv.Itoa(i), hotStart, 100)
		b.Ops = b.Ops[:1]
		if err := h.Do(ctx, b); err != nil || !b.Applied {
			t.Fatalf("Do = (applied %v, %v)", b.Applied, err)
		}
	}
	before := h.Stats().RemoteCommands
	cnt.Reset()
	if err := h.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// The hook also sees what go-redis sends on its own (NOSCRIPT fallback,
	// connection setup); the store counts the scripts it ran.
	if got := h.Stats().RemoteCommands - before; got != 3 || cnt.Commands() < 3 {
		t.Fatalf("flush of %d cells ran %d scripts (hook: %d commands); want 3 chunks", callers, got, cnt.Commands())
	}
	for _, i := range []int{0, callers / 2, callers - 1} {
		pb := &store.Batch{Now: hotStart, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: minuteKey("c"+strconv.Itoa(i), hotStart), Ceil: 1 << 62, TTL: time.Hour}}}
		if err := r.Do(ctx, pb); err != nil || pb.Results[0].Value != 1 {
			t.Fatalf("Redis count of caller %d = (%d, %v); want 1", i, pb.Results[0].Value, err)
		}
	}
}
