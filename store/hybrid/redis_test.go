package hybrid_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
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

// TestResetAcrossProcesses: an operator's Reset through process A is not
// undone by process B, which still holds its view from before the reset
// and flushes a new admission with the floor of that view. After the
// reset the key starts over, whatever B knew: the remote counts only B's
// admission since (a token bucket: at least as many tokens). Run on the
// fake remote and on Redis (miniredis, or REDIS_ADDR).
func TestResetAcrossProcesses(t *testing.T) {
	remotes := []struct {
		name string
		new  func(t *testing.T) store.Store
	}{
		{"fake", func(t *testing.T) store.Store { return newFakeRemote() }},
		{"redis", func(t *testing.T) store.Store { r, _ := newRedis(t); return r }},
	}
	algs := []struct {
		name  string
		alg   limiter.Algorithm
		limit int  // what a fresh key admits at one instant
		exact bool // B's admission after the reset is counted exactly
	}{
		{"fixed", algorithms.FixedWindow(limiter.PerMinute(100)), 100, true},
		// A token bucket's cell holds an instant: a floor from before the
		// reset is dropped whole, and B's one token with it.
		{"bucket", algorithms.TokenBucket(limiter.PerMinute(60).WithBurst(10)), 10, false},
	}
	for _, rm := range remotes {
		for _, al := range algs {
			t.Run(rm.name+"/"+al.name, func(t *testing.T) {
				ctx := context.Background()
				remote := rm.new(t)
				clock := storetest.NewClock(time.Unix(0, hotStart))
				procs := make([]*hybrid.Store, 2)
				lims := make([]*limiter.Limiter, 2)
				for i := range procs {
					procs[i] = hybrid.New(remote, hybrid.WithoutFlusher(), hybrid.WithClock(clock.Now))
					t.Cleanup(func() { _ = procs[i].Close() })
					var err error
					if lims[i], err = limiter.New(al.alg, limiter.WithStore(procs[i]), limiter.WithClock(clock.Now)); err != nil {
						t.Fatal(err)
					}
				}
				a, b := lims[0], lims[1]
				allow := func(l *limiter.Limiter, n int) int { return admit(t, l, "t", n) }
				flush := func(i int) {
					if err := procs[i].Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
				if got := allow(b, al.limit-1); got != al.limit-1 {
					t.Fatalf("B admitted %d of %d on a fresh key", got, al.limit-1)
				}
				flush(1)
				if err := a.Reset(ctx, "t"); err != nil {
					t.Fatal(err)
				}
				if got := allow(b, 1); got != 1 { // B's last unit before it learns of the reset
					t.Fatalf("B admitted %d of 1", got)
				}
				flush(1)
				// What the remote holds now, read by a limiter on it directly.
				direct, err := limiter.New(al.alg, limiter.WithStore(remote), limiter.WithClock(clock.Now))
				if err != nil {
					t.Fatal(err)
				}
				res, err := direct.Peek(ctx, "t")
				if err != nil {
					t.Fatal(err)
				}
				switch got := res.Remaining; {
				case got < int64(al.limit-1):
					t.Fatalf("after the reset and one admission by B, the remote has %d left; want %d: B's flush brought back the state from before the reset",
						got, al.limit-1)
				case al.exact && got != int64(al.limit-1):
					t.Fatalf("after the reset and one admission by B, the remote has %d left; want %d", got, al.limit-1)
				}
				// B has learned the new epoch: its floors count again, and
				// what it spends next is all in the remote.
				allow(b, 2*al.limit)
				flush(1)
				if res, err = direct.Peek(ctx, "t"); err != nil {
					t.Fatal(err)
				}
				if res.Remaining != 0 {
					t.Fatalf("B spent the key after learning of the reset; the remote still has %d left, want 0", res.Remaining)
				}
			})
		}
	}
}

// TestFairShareRefusalRetryAfter: near a limit that two processes share,
// a relaxed process refuses beyond its fair share although the counts
// admit the request. The Result then says to ask again in a second (the
// share is renewed at each sync), not RetryAfter 0, on which a caller that
// waits RetryAfter would spin.
func TestFairShareRefusalRetryAfter(t *testing.T) {
	for _, alg := range []limiter.Algorithm{
		algorithms.FixedWindow(limiter.PerMinute(10)),
		algorithms.SlidingWindow(limiter.PerMinute(10)),
		algorithms.TokenBucket(limiter.PerMinute(10)),
	} {
		t.Run(alg.Name(), func(t *testing.T) {
			ctx := context.Background()
			remote := newFakeRemote()
			clock := storetest.NewClock(time.Unix(0, hotStart).Add(10 * time.Second))
			var procs [2]*hybrid.Store
			var lims [2]*limiter.Limiter
			for i := range procs {
				procs[i] = hybrid.New(remote, hybrid.WithoutFlusher(), hybrid.WithClock(clock.Now))
				t.Cleanup(func() { _ = procs[i].Close() })
				var err error
				if lims[i], err = limiter.New(alg, limiter.WithStore(procs[i]), limiter.WithClock(clock.Now)); err != nil {
					t.Fatal(err)
				}
			}
			a, b := lims[0], lims[1]
			flush := func() {
				for _, p := range append(procs[:], procs[0]) { // A again: it learns what B sent
					if err := p.Flush(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			mustAllow := func(l *limiter.Limiter, n int) {
				for range n {
					if res, err := l.Allow(ctx, "t"); err != nil || !res.Allowed {
						t.Fatalf("Allow = (%+v, %v); want allowed", res, err)
					}
				}
			}
			mustAllow(b, 1)
			mustAllow(a, 7)
			flush()
			refusals := 0
			for range 3 {
				res, err := b.Allow(ctx, "t")
				if err != nil {
					t.Fatal(err)
				}
				if res.Allowed {
					continue
				}
				if res.Remaining == 0 {
					t.Fatalf("denied with nothing remaining: %+v; the test wants a fair-share refusal", res)
				}
				refusals++
				if want := min(time.Second, res.ResetAfter); res.RetryAfter != want {
					t.Fatalf("fair-share refusal %+v: RetryAfter %v; want %v", res, res.RetryAfter, want)
				}
			}
			if refusals == 0 {
				t.Fatal("B was never refused its fair share near the limit")
			}
		})
	}
}

// TestResetThenDataLoss: a key reset once has an epoch in Redis; if Redis
// then loses its data (a restart without persistence: here every key of
// the test deleted), the epoch is gone with it and the process's next flush
// restores the count it knew, as for a key never reset. Run on miniredis,
// or on REDIS_ADDR under the test's prefix.
func TestResetThenDataLoss(t *testing.T) {
	ctx := context.Background()
	c, _, _ := redistest.Client(t)
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	remote := redis.New(c, redis.WithPrefix(prefix))
	clock := storetest.NewClock(time.Unix(0, hotStart))
	h := hybrid.New(remote, hybrid.WithoutFlusher(), hybrid.WithClock(clock.Now))
	t.Cleanup(func() { _ = h.Close() })
	alg := algorithms.FixedWindow(limiter.PerMinute(100))
	lim, err := limiter.New(alg, limiter.WithStore(h), limiter.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	direct, err := limiter.New(alg, limiter.WithStore(remote), limiter.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	allow := func(n int) {
		for range n {
			if res, err := lim.Allow(ctx, "t"); err != nil || !res.Allowed {
				t.Fatalf("Allow = (%+v, %v); want allowed", res, err)
			}
		}
	}
	remaining := func() int64 {
		res, err := direct.Peek(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		return res.Remaining
	}
	allow(50)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lim.Reset(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	allow(51)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := remaining(); got != 49 {
		t.Fatalf("after the reset and 51 admissions the remote has %d left; want 49", got)
	}
	if err := redisstats.DeletePrefix(ctx, c, prefix); err != nil { // Redis loses its data
		t.Fatal(err)
	}
	allow(1)
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := remaining(); got != 48 {
		t.Fatalf("after Redis lost its data, the next flush left %d in the remote; want 48 (52 admitted since the reset)", got)
	}
}
