package hybrid_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// TestEightStrictStores: eight strict hybrid stores (eight processes, each
// with its own client) on one key of a real Redis, four goroutines each,
// demand well above the limit: every window admits at most the limit, and
// at least 95 % of it; after Close, Redis holds exactly what was admitted.
func TestEightStrictStores(t *testing.T) {
	addr := redistest.NeedAddr(t)
	ctx := context.Background()
	const (
		stores, goroutines, calls = 8, 4, 80 // demand 2560 per window
		limit                     = 1000
		windows                   = 4
	)
	prefix := redistest.Prefix(t)
	start := time.Date(2026, 11, 27, 12, 30, 0, 0, time.UTC)
	clock := storetest.NewClock(start)
	alg := algorithms.FixedWindow(limiter.PerMinute(limit))
	hs := make([]*hybrid.Store, stores)
	lims := make([]*limiter.Limiter, stores)
	var direct *goredis.Client
	for i := range hs {
		c := goredis.NewClient(redistest.Options(addr))
		t.Cleanup(func() { _ = c.Close() })
		direct = c
		hs[i] = hybrid.New(redis.New(c, redis.WithPrefix(prefix)), hybrid.Strict(), hybrid.WithoutFlusher(),
			hybrid.WithClock(clock.Now), hybrid.WithProcessID("p"+strconv.Itoa(i)),
			hybrid.WithRemoteTimeout(10*time.Second)) // lease requests on a loaded machine: see TestIncidentWorkload
		var err error
		if lims[i], err = limiter.New(alg, limiter.WithStore(hs[i]), limiter.WithClock(clock.Now)); err != nil {
			t.Fatal(err)
		}
	}
	flushAll := func() {
		for _, h := range hs {
			if err := h.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
		}
	}
	admitted := make([]int64, windows)
	for w := range windows {
		clock.Set(start.Add(time.Duration(w)*time.Minute + time.Second))
		flushAll() // heartbeats: every store learns there are eight
		flushAll()
		var ok atomic.Int64
		var wg sync.WaitGroup
		begin := make(chan struct{}) // all goroutines start together
		for i := range hs {
			for range goroutines {
				wg.Go(func() {
					<-begin
					for range calls {
						runtime.Gosched() // interleave the processes' traffic
						res, err := lims[i].Allow(ctx, "the-key")
						if err != nil {
							t.Errorf("Allow: %v", err)
							return
						}
						if res.Allowed {
							ok.Add(1)
						}
					}
				})
			}
		}
		close(begin)
		wg.Wait()
		admitted[w] = ok.Load()
		// The processes settle: idle leases go back.
		clock.Set(start.Add(time.Duration(w)*time.Minute + 30*time.Second))
		for range 3 {
			flushAll()
		}
	}
	for _, h := range hs {
		if err := h.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	rs := redis.New(direct, redis.WithPrefix(prefix))
	for w, n := range admitted {
		t.Logf("window %d: admitted %d of limit %d (demand %d)", w, n, limit, stores*goroutines*calls)
		if n > limit {
			t.Errorf("window %d admitted %d; want <= %d", w, n, limit)
		}
		if n < limit*95/100 {
			t.Errorf("window %d admitted %d; want >= 95%% of %d", w, n, limit)
		}
		now := start.Add(time.Duration(w)*time.Minute + 30*time.Second).UnixNano()
		k := store.Key{Namespace: "fixed:1m0s", Caller: "the-key", Window: now / int64(time.Minute)}
		b := &store.Batch{Now: now, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k, Ceil: 1 << 62, TTL: time.Hour}}}
		if err := rs.Do(ctx, b); err != nil {
			t.Fatal(err)
		}
		if got := b.Results[0].Value; got != n {
			t.Errorf("window %d: Redis holds %d after Close; want %d admitted", w, got, n)
		}
	}
	var leases int64
	for _, h := range hs {
		leases += h.Stats().LeaseRequests
	}
	t.Logf("lease requests on decision paths: %d for %d decisions", leases, windows*stores*goroutines*calls)
}

// TestLostLeaseRequest: a strict decision's lease request that fails may
// still have been granted (its reply lost) or not (never applied). Either
// way the grant is learned by sending the request again with its id: before
// the caller's next lease request, or by a flush when the caller makes
// none. The window then admits its whole limit, and after Close the remote
// holds exactly what was admitted.
func TestLostLeaseRequest(t *testing.T) {
	const limit = 100
	for _, tc := range []struct {
		name   string
		lost   func(f *fakeRemote) // arms the fault for the next Sync
		decide bool                // the caller goes on deciding (else it goes quiet)
	}{
		{"reply lost/caller goes on", func(f *fakeRemote) { f.dropNext = 1 }, true},
		{"reply lost/caller quiet", func(f *fakeRemote) { f.dropNext = 1 }, false},
		{"never applied/caller goes on", func(f *fakeRemote) { f.failNext = 1 }, true},
		{"never applied/caller quiet", func(f *fakeRemote) { f.failNext = 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeRemote()
			h := hybrid.New(f, manualOpts(true)...)
			tc.lost(f)
			b := &store.Batch{}
			decision(b, "k", hotStart, limit)
			b.Ops = b.Ops[:1]
			if err := h.Do(ctx, b); err == nil {
				t.Fatal("the decision whose lease request failed returned no error")
			}
			var admitted int64
			if tc.decide {
				admitted = allow(t, h, "k", hotStart, 3*limit, limit)
				if admitted != limit {
					t.Fatalf("admitted %d in the window after one lost lease request; want %d", admitted, limit)
				}
			} else {
				if err := h.Flush(ctx); err != nil {
					t.Fatalf("Flush: %v", err)
				}
				if st := h.Stats(); st.Leased == 0 {
					t.Fatalf("Stats = %+v: the flush did not learn the lost request's grant", st)
				}
			}
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if got := f.value(minuteKey("k", hotStart), hotStart); got != admitted {
				t.Fatalf("the remote holds %d after Close; want %d, the admitted count", got, admitted)
			}
		})
	}
}

// loseReply is a go-redis hook that lets Redis run the next script call
// when armed, then reports its reply lost.
type loseReply struct{ armed atomic.Bool }

func (h *loseReply) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *loseReply) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
func (h *loseReply) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && err == nil && h.armed.CompareAndSwap(true, false) {
			err = errors.Join(store.ErrUnavailable, errors.New("test: reply lost"))
			cmd.SetErr(err)
		}
		return err
	}
}

// TestLostLeaseThenReset: a lease request granted but whose reply was lost,
// then a Reset of the key: the reset voids the grant, so sending the
// request again brings nothing back, and two strict processes admit at
// most the limit after the reset. On the fake remote and on Redis.
func TestLostLeaseThenReset(t *testing.T) {
	const limit = 10
	for _, remoteKind := range []string{"fake", "redis"} {
		t.Run(remoteKind, func(t *testing.T) {
			ctx := context.Background()
			var remote store.Store
			var lose func()
			switch remoteKind {
			case "fake":
				f := newFakeRemote()
				remote, lose = f, func() { f.dropNext = 1 }
			default:
				c, _, _ := redistest.Client(t)
				prefix := redistest.Prefix(t)
				redistest.CleanupPrefix(t, c, prefix)
				h := &loseReply{}
				c.AddHook(h)
				remote, lose = redis.New(c, redis.WithPrefix(prefix)), func() { h.armed.Store(true) }
			}
			clock := storetest.NewClock(time.Unix(0, hotStart))
			alg := algorithms.FixedWindow(limiter.PerMinute(limit))
			var procs [2]*hybrid.Store
			var lims [2]*limiter.Limiter
			for i := range procs {
				procs[i] = hybrid.New(remote, hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithClock(clock.Now),
					hybrid.WithProcessID("p"+strconv.Itoa(i)))
				var err error
				if lims[i], err = limiter.New(alg, limiter.WithStore(procs[i]), limiter.WithClock(clock.Now)); err != nil {
					t.Fatal(err)
				}
			}
			lose()
			if _, err := lims[0].Allow(ctx, "k"); err == nil {
				t.Fatal("the decision whose lease reply was lost returned no error")
			}
			if err := lims[0].Reset(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			admitted := 0
			for i := range 3 * limit {
				res, err := lims[i%2].Allow(ctx, "k")
				if err != nil {
					t.Fatal(err)
				}
				if res.Allowed {
					admitted++
				}
				if i%5 == 4 {
					for _, p := range procs {
						if err := p.Flush(ctx); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if admitted > limit {
				t.Fatalf("strict processes admitted %d after the reset; the limit is %d", admitted, limit)
			}
			for _, p := range procs {
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestCloseGivesBackAllLostLeases: Close sends every lost lease request
// again, not only a flush's share of them, and gives their grants back.
func TestCloseGivesBackAllLostLeases(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	h := hybrid.New(f, manualOpts(true)...)
	const callers = 80 // more than a flush sends again
	for i := range callers {
		f.dropNext = 1
		b := &store.Batch{}
		decision(b, "c"+strconv.Itoa(i), hotStart, 100)
		b.Ops = b.Ops[:1]
		if err := h.Do(ctx, b); err == nil {
			t.Fatal("a decision whose lease reply was lost returned no error")
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range callers {
		if got := f.value(minuteKey("c"+strconv.Itoa(i), hotStart), hotStart); got != 0 {
			t.Fatalf("caller %d: the remote holds %d after Close; want 0 (its lost grant given back)", i, got)
		}
	}
}

// remoteValue peeks at the value of key (a plain counter) in remote.
func remoteValue(t *testing.T, remote store.Store, key store.Key) int64 {
	t.Helper()
	b := &store.Batch{Now: hotStart, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: key, Ceil: math.MaxInt64, TTL: time.Minute}}}
	if err := remote.Do(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return b.Results[0].Value
}

// TestResetVoidsEarlierQuota: quota a process took or counted before
// another process's Reset is not taken off the reset key afterwards: a
// strict lease given back, a relaxed refund, and a strict lease still held
// (dropped when the process hears of the reset, at its next flush). On the
// fake remote and on Redis.
func TestResetVoidsEarlierQuota(t *testing.T) {
	const limit = 100
	key := minuteKey("k", hotStart)
	remotes := []struct {
		name string
		new  func(t *testing.T) store.Store
	}{
		{"fake", func(t *testing.T) store.Store { return newFakeRemote() }},
		{"redis", func(t *testing.T) store.Store { r, _ := newRedis(t); return r }},
	}
	for _, rm := range remotes {
		t.Run(rm.name+"/strict give-back", func(t *testing.T) {
			remote := rm.new(t)
			a, b := hybrid.New(remote, manualOpts(true)...), hybrid.New(remote, manualOpts(true)...)
			defer b.Close()
			allow(t, a, "k", hotStart, 1, limit) // A leases 50, spends 1
			if err := b.Reset(context.Background(), key); err != nil {
				t.Fatal(err)
			}
			allow(t, b, "k", hotStart, 1, limit) // B leases 50 after the reset
			if err := a.Close(); err != nil {    // A gives its 49 back
				t.Fatal(err)
			}
			if got := remoteValue(t, remote, key); got != 50 {
				t.Fatalf("the remote holds %d; want 50, B's lease (A's give-back is from before the reset)", got)
			}
		})
		t.Run(rm.name+"/relaxed refund", func(t *testing.T) {
			ctx := context.Background()
			remote := rm.new(t)
			a, b := hybrid.New(remote, manualOpts(false)...), hybrid.New(remote, manualOpts(false)...)
			defer a.Close()
			defer b.Close()
			allow(t, a, "k", hotStart, 30, limit)
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Reset(ctx, key); err != nil {
				t.Fatal(err)
			}
			allow(t, b, "k", hotStart, 50, limit)
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			refund := &store.Batch{Now: hotStart, Ops: []store.Op{{Kind: store.Add, Key: key, N: -30, Ceil: limit, TTL: time.Minute}}}
			if err := a.Do(ctx, refund); err != nil || !refund.Applied {
				t.Fatalf("refund: (applied %v, %v)", refund.Applied, err)
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := remoteValue(t, remote, key); got != 50 {
				t.Fatalf("the remote holds %d; want 50 (A's refund is of units counted before the reset)", got)
			}
		})
		t.Run(rm.name+"/strict lease held", func(t *testing.T) {
			ctx := context.Background()
			remote := rm.new(t)
			a, b := hybrid.New(remote, manualOpts(true)...), hybrid.New(remote, manualOpts(true)...)
			defer a.Close()
			defer b.Close()
			allow(t, a, "k", hotStart, 1, limit) // A holds 49 of a lease of 50
			if err := b.Reset(ctx, key); err != nil {
				t.Fatal(err)
			}
			for _, h := range []*hybrid.Store{a, b} {
				if err := h.Flush(ctx); err != nil { // A hears of the reset
					t.Fatal(err)
				}
			}
			var admitted int64
			for range 3 * limit {
				admitted += allow(t, a, "k", hotStart, 1, limit) + allow(t, b, "k", hotStart, 1, limit)
			}
			if admitted > limit {
				t.Fatalf("A and B admitted %d after the reset and a flush; the limit is %d (A spent its lease from before the reset)", admitted, limit)
			}
		})
	}
}

// TestRetriedFlushAfterOwnReset: a flush that failed before reaching the
// remote is sent again as it was; a Reset of its keys in between turns
// their items into reads, so the retry does not bring back the deltas
// (relaxed) or take leases for forgotten cells (strict).
func TestRetriedFlushAfterOwnReset(t *testing.T) {
	key := minuteKey("k", hotStart)
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "relaxed", true: "strict"}[strict], func(t *testing.T) {
			ctx := context.Background()
			f := newFakeRemote()
			h := hybrid.New(f, manualOpts(strict)...)
			if got := allow(t, h, "k", hotStart, 30, 100); got != 30 {
				t.Fatalf("admitted %d of 30", got)
			}
			f.failNext = 1
			if err := h.Flush(ctx); err == nil {
				t.Fatal("the flush did not fail")
			}
			if err := h.Reset(ctx, key); err != nil {
				t.Fatal(err)
			}
			if err := h.Close(); err != nil { // sends the failed flush again, then the final one
				t.Fatal(err)
			}
			if got := f.value(key, hotStart); got != 0 {
				t.Fatalf("the remote holds %d after the reset and the retried flush; want 0", got)
			}
		})
	}
}

// TestLostLeasesOfOneCaller: while a flush sends a caller's lost lease
// request again, the caller's next request is lost too, and then the
// flush's attempt fails: the caller keeps both requests, and Close gives
// both grants back.
func TestLostLeasesOfOneCaller(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	h := hybrid.New(f, manualOpts(true)...)
	f.dropNext = 1
	if err := h.Do(ctx, decisionMinute("k")); err == nil {
		t.Fatal("the lease request whose reply was lost gave no error")
	}
	f.onSync = func(b *store.SyncBatch) {
		if b.Process != "" || b.ID == "" { // not a lease request sent again
			return
		}
		f.onSync = nil
		f.dropNext = 1
		if err := h.Do(ctx, decisionMinute("k")); err == nil { // a second request, its reply lost
			t.Error("the second lease request whose reply was lost gave no error")
		}
		f.failNext = 1 // and the flush's attempt at the first fails
	}
	if err := h.Flush(ctx); err == nil {
		t.Fatal("the flush sending the first request again did not fail")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.value(minuteKey("k", hotStart), hotStart); got != 0 {
		t.Fatalf("the remote holds %d after Close; want 0 (both lost grants given back)", got)
	}
}

// decisionMinute is a one-op decision on caller's minute cell (limit 100)
// at hotStart.
func decisionMinute(caller string) *store.Batch {
	b := decision(&store.Batch{}, caller, hotStart, 100)
	b.Ops = b.Ops[:1]
	return b
}
