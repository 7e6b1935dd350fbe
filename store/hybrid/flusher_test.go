package hybrid_test

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// allow runs n single-op decisions (limit per minute) on caller at now and
// returns how many were admitted.
func allow(t *testing.T, s store.Store, caller string, now int64, n int, limit int64) int64 {
	t.Helper()
	var ok int64
	b := &store.Batch{}
	for range n {
		decision(b, caller, now, limit)
		b.Ops = b.Ops[:1] // the minute only
		if err := s.Do(context.Background(), b); err != nil {
			t.Fatalf("Do(%s): %v", caller, err)
		}
		if b.Applied {
			ok++
		}
	}
	return ok
}

// admit makes n Allow calls for key on l and returns how many were
// admitted.
func admit(t *testing.T, l *limiter.Limiter, key string, n int) int {
	t.Helper()
	ok := 0
	for range n {
		res, err := l.Allow(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed {
			ok++
		}
	}
	return ok
}

func minuteKey(caller string, now int64) store.Key {
	return store.Key{Namespace: "hp:1m", Caller: caller, Window: now / int64(time.Minute)}
}

// TestFlusherInterval: the flusher sends pending deltas once per interval,
// one call for all keys, and a heartbeat even when nothing is pending.
func TestFlusherInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRemote()
		h := hybrid.New(f, hybrid.WithSyncInterval(time.Second))
		defer h.Close()
		now := hotStart
		a := allow(t, h, "a", now, 7, 100)
		bb := allow(t, h, "b", now, 5, 100)
		if got := f.value(minuteKey("a", now), now); got != 0 {
			t.Fatalf("remote count before the first flush = %d; want 0 (write-behind)", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got, want := f.value(minuteKey("a", now), now), a; got != want {
			t.Fatalf("remote count of a after one interval = %d; want %d", got, want)
		}
		if got, want := f.value(minuteKey("b", now), now), bb; got != want {
			t.Fatalf("remote count of b after one interval = %d; want %d", got, want)
		}
		if f.calls() != 1 {
			t.Fatalf("one interval made %d Sync calls; want 1 for all keys", f.calls())
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if f.calls() != 4 {
			t.Fatalf("four intervals made %d Sync calls; want 4 (heartbeats)", f.calls())
		}
		if st := h.Stats(); st.Flushes != 4 || st.Allowed != a+bb || st.PendingKeys != 0 {
			t.Fatalf("Stats = %+v; want 4 flushes, %d allowed, 0 pending keys", st, a+bb)
		}
	})
}

// TestFlusherBackoff: failed flushes keep their deltas, are retried with
// backoff, and land once.
func TestFlusherBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRemote()
		h := hybrid.New(f, hybrid.WithSyncInterval(time.Second))
		defer h.Close()
		now := hotStart
		f.failNext = 3
		a := allow(t, h, "a", now, 10, 100)
		// Ticks at 1 s (fail), 2 s (fail, then skip 1), 4 s (fail, skip 3),
		// 8 s (success).
		time.Sleep(7 * time.Second)
		synctest.Wait()
		if f.calls() != 3 {
			t.Fatalf("Sync calls in 7 s with 3 failures = %d; want 3 (backoff)", f.calls())
		}
		if got := f.value(minuteKey("a", now), now); got != 0 {
			t.Fatalf("remote count while failing = %d; want 0", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if got := f.value(minuteKey("a", now), now); got != a {
			t.Fatalf("remote count after recovery = %d; want %d", got, a)
		}
		if st := h.Stats(); st.FlushFailures != 3 || st.Flushes != 1 {
			t.Fatalf("Stats = %+v; want 3 failures then 1 flush", st)
		}
	})
}

// TestLostReplyCountedOnce: a flush applied by the remote whose reply is
// lost is sent again with the same id and not applied twice.
func TestLostReplyCountedOnce(t *testing.T) {
	ctx := context.Background()
	for _, strict := range []bool{false, true} {
		f := newFakeRemote()
		opts := manualOpts(strict)
		h := hybrid.New(f, opts...)
		now := hotStart
		a := allow(t, h, "a", now, 10, 100)
		f.dropNext = 1
		if err := h.Flush(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("strict=%v: Flush with a lost reply = %v; want ErrUnavailable", strict, err)
		}
		a += allow(t, h, "a", now, 5, 100)
		if err := h.Flush(ctx); err != nil {
			t.Fatalf("strict=%v: Flush: %v", strict, err)
		}
		if err := h.Close(); err != nil {
			t.Fatalf("strict=%v: Close: %v", strict, err)
		}
		if got := f.value(minuteKey("a", now), now); got != a {
			t.Fatalf("strict=%v: remote count = %d after a lost reply; want %d (once)", strict, got, a)
		}
	}
}

// TestCloseFlushes: Close sends what is pending (strict: gives leases back),
// is idempotent, and the store is closed afterwards.
func TestCloseFlushes(t *testing.T) {
	for _, strict := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeRemote()
			opts := []hybrid.Option{hybrid.WithSyncInterval(time.Hour)}
			if strict {
				opts = append(opts, hybrid.Strict())
			}
			h := hybrid.New(f, opts...)
			now := hotStart
			var a int64
			for _, c := range []string{"a", "b", "c"} {
				a += allow(t, h, c, now, 40, 100)
			}
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			var got int64
			for _, c := range []string{"a", "b", "c"} {
				got += f.value(minuteKey(c, now), now)
			}
			if got != a {
				t.Fatalf("strict=%v: remote counts after Close = %d; want %d admitted", strict, got, a)
			}
			if err := h.Close(); err != nil {
				t.Fatalf("second Close = %v; want nil", err)
			}
			if err := h.Flush(context.Background()); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Flush after Close = %v; want ErrClosed", err)
			}
		})
	}
}

// TestFailLocal: with the remote down, relaxed decisions go on from local
// state; strict decisions that need a lease fail with ErrUnavailable and
// admit nothing beyond the leases held.
func TestFailLocal(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	f.failNext = 1 << 30
	relaxed := hybrid.New(f, hybrid.WithoutFlusher())
	defer relaxed.Close()
	if got := allow(t, relaxed, "a", hotStart, 10, 5); got != 5 {
		t.Fatalf("relaxed with the remote down admitted %d of 10 (limit 5); want 5", got)
	}
	strict := hybrid.New(f, hybrid.WithoutFlusher(), hybrid.Strict())
	defer strict.Close()
	b := decision(&store.Batch{}, "a", hotStart, 5)
	if err := strict.Do(ctx, b); !errors.Is(err, store.ErrUnavailable) || b.Applied {
		t.Fatalf("strict Do with the remote down = (applied %v, %v); want ErrUnavailable", b.Applied, err)
	}
	f.failNext = 0
}

// TestFirstSight: a caller's long-lived window is read from the remote
// before its first decision here, once for concurrent first decisions.
func TestFirstSight(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	// Another process already spent 995 of the day's 1000.
	other := hybrid.New(f, hybrid.WithoutFlusher())
	b := &store.Batch{}
	for i := range 995 {
		decision(b, "t", hotStart, 10)
		b.Ops[0].Key.Window = int64(i) // a fresh minute cell each time: only the day binds
		if err := other.Do(ctx, b); err != nil || !b.Applied {
			t.Fatalf("other process: Do = (applied %v, %v)", b.Applied, err)
		}
	}
	_ = other.Close()

	h := hybrid.New(f, hybrid.WithoutFlusher())
	defer h.Close()
	syncs := f.calls()
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := range 8 {
		wg.Go(func() {
			b := &store.Batch{}
			for i := range 4 {
				decision(b, "t", hotStart, 10)
				b.Ops[0].Key.Window = int64(1000 + g*4 + i) // minute never binds
				if err := h.Do(ctx, b); err != nil {
					t.Errorf("Do: %v", err)
					return
				}
				if b.Applied {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if admitted != 5 {
		t.Fatalf("new process admitted %d with 5 left of the day; want 5", admitted)
	}
	if got := f.calls() - syncs; got != 1 {
		t.Fatalf("first decisions of 8 goroutines on one caller made %d reads; want 1 (coalesced)", got)
	}
}

// TestDroppedDeltas: when the key bound pushes out cells with pending
// deltas faster than flushes send them, the units lost are counted.
func TestDroppedDeltas(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	h := hybrid.New(f, hybrid.WithoutFlusher(), hybrid.WithMaxKeys(32), hybrid.WithShards(1))
	defer h.Close()
	var admitted int64
	callers := 200
	for i := range callers {
		admitted += allow(t, h, "c"+string(rune('A'+i%26))+string(rune('a'+i/26)), hotStart, 1, 10)
	}
	if err := h.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var remote int64
	for i := range callers {
		remote += f.value(minuteKey("c"+string(rune('A'+i%26))+string(rune('a'+i/26)), hotStart), hotStart)
	}
	st := h.Stats()
	if st.DroppedDeltas == 0 || remote+st.DroppedDeltas != admitted {
		t.Fatalf("remote %d + dropped %d; want %d admitted, with some dropped", remote, st.DroppedDeltas, admitted)
	}
	if h.Len() > 32 {
		t.Fatalf("Len = %d; want <= 32", h.Len())
	}
}

// TestResetElsewhere: a reset made through another process reaches this
// one at its next flush (a counter's view follows the global total).
func TestResetElsewhere(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	a := hybrid.New(f, hybrid.WithoutFlusher())
	defer a.Close()
	op := hybrid.New(f, hybrid.WithoutFlusher())
	defer op.Close()
	if got := allow(t, a, "t", hotStart, 10, 5); got != 5 {
		t.Fatalf("admitted %d of 10 with limit 5; want 5", got)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := op.Reset(ctx, minuteKey("t", hotStart)); err != nil {
		t.Fatal(err)
	}
	if got := allow(t, a, "t", hotStart, 1, 5); got != 0 {
		t.Fatalf("before its flush, process A admitted %d; want 0 (it has not heard of the reset)", got)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := allow(t, a, "t", hotStart, 10, 5); got != 5 {
		t.Fatalf("after the reset and a flush, process A admitted %d; want 5", got)
	}
}

// TestTokenBucketWriteBehind: a token bucket written behind by one process
// is seen by another after their flushes, and refills for both.
func TestTokenBucketWriteBehind(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	clock := storetest.NewClock(time.Unix(0, hotStart))
	var lims [2]*limiter.Limiter
	var stores [2]*hybrid.Store
	for i := range stores {
		stores[i] = hybrid.New(f, hybrid.WithoutFlusher(), hybrid.WithClock(clock.Now))
		defer stores[i].Close()
		var err error
		lims[i], err = limiter.New(algorithms.TokenBucket(limiter.PerSecond(10)), limiter.WithStore(stores[i]), limiter.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(l *limiter.Limiter, n int) int { return admit(t, l, "t", n) }
	flush := func() {
		for _, s := range stores {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := stores[0].Flush(ctx); err != nil { // A learns what B sent
			t.Fatal(err)
		}
	}
	if got := count(lims[0], 15); got != 10 {
		t.Fatalf("A admitted %d of 15 from a full bucket of 10; want 10", got)
	}
	// B has not heard of A: it admits from a full bucket (the write-behind
	// bound, one token here).
	if got := count(lims[1], 1); got != 1 {
		t.Fatalf("B admitted %d of 1 before any flush; want 1", got)
	}
	flush() // the bucket is now 11 tokens in debt everywhere
	if got := count(lims[1], 5); got != 0 {
		t.Fatalf("after the flushes, B admitted %d from the emptied bucket; want 0", got)
	}
	clock.Advance(500 * time.Millisecond) // 5 tokens back, one still owed
	if got := count(lims[1], 10); got != 4 {
		t.Fatalf("half a second later B admitted %d; want 4", got)
	}
	flush()
	// A had no traffic on the key since its last sync, so its flushes did
	// not refresh it: it decides on its own last view (10 tokens in debt,
	// 5 back), again within the write-behind bound.
	if got := count(lims[0], 10); got != 5 {
		t.Fatalf("A, on its last view, admitted %d; want 5", got)
	}
	flush()
	// Every token admitted anywhere is in Redis once: 10 + 1 + 4 + 5 = 20
	// emission intervals from the start.
	k := store.Key{Namespace: "bucket:1s", Caller: "t"}
	if got, want := f.value(k, hotStart), hotStart+20*int64(100*time.Millisecond); got != want {
		t.Fatalf("remote TAT = start + %v; want start + %v", time.Duration(got-hotStart), time.Duration(want-hotStart))
	}
}

// TestCloseRacingDecisions: decisions running while Close makes its final
// flush either land in that flush or are refused with ErrClosed; none is
// admitted and then lost. Both ways in are raced: Do (relaxed and strict)
// and the limiter's one-cell short path (relaxed).
func TestCloseRacingDecisions(t *testing.T) {
	const limit = 1 << 40
	now := time.Unix(0, hotStart)
	for _, tc := range []struct {
		name    string
		strict  bool
		limiter bool
	}{
		{"relaxed/Do", false, false},
		{"strict/Do", true, false},
		{"relaxed/limiter", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 30 {
				f := newFakeRemote()
				h := hybrid.New(f, manualOpts(tc.strict)...)
				decide := func() (bool, error) {
					b := &store.Batch{}
					err := h.Do(context.Background(), decision(b, "k", hotStart, limit))
					return b.Applied, err
				}
				if tc.limiter {
					lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(limit)), limiter.WithStore(h),
						limiter.WithClock(func() time.Time { return now }))
					if err != nil {
						t.Fatal(err)
					}
					decide = func() (bool, error) {
						res, err := lim.Allow(context.Background(), "k")
						return res.Allowed, err
					}
				}
				var admitted atomic.Int64
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for {
							ok, err := decide()
							if err != nil {
								if !errors.Is(err, store.ErrClosed) {
									t.Errorf("decision: %v; want ErrClosed or nil", err)
								}
								return
							}
							if ok {
								admitted.Add(1)
							}
						}
					})
				}
				for admitted.Load() < 200 {
					runtime.Gosched()
				}
				if err := h.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				wg.Wait()
				counted := f.value(minuteKey("k", hotStart), hotStart)
				if tc.limiter {
					// The limiter's own namespace: peek at it on the remote.
					peek, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(limit)), limiter.WithStore(f.Store),
						limiter.WithClock(func() time.Time { return now }))
					if err != nil {
						t.Fatal(err)
					}
					res, err := peek.Peek(context.Background(), "k")
					if err != nil {
						t.Fatal(err)
					}
					counted = limit - res.Remaining
				}
				if got := admitted.Load(); counted != got {
					t.Fatalf("round %d: the remote counts %d after Close; %d were admitted", round, counted, got)
				}
			}
		})
	}
}

// TestCloseWaitsForLeaseInFlight: a strict decision whose lease request is
// in flight when Close starts gets its answer folded in before the final
// flush, which gives the lease back; the decision is refused. Without the
// wait, the lease would land after the final flush and stay taken.
func TestCloseWaitsForLeaseInFlight(t *testing.T) {
	f := newFakeRemote()
	release := make(chan struct{})
	var once sync.Once
	sent := make(chan struct{})
	f.onSync = func(b *store.SyncBatch) {
		if b.Process == "" && len(b.Items) > 0 && b.Items[0].Kind == store.SyncTake { // a decision's lease request
			once.Do(func() { close(sent) })
			<-release
		}
	}
	h := hybrid.New(f, manualOpts(true)...)
	decided := make(chan error, 1)
	go func() {
		b := &store.Batch{}
		decided <- h.Do(context.Background(), decision(b, "k", hotStart, 100))
	}()
	<-sent
	closed := make(chan error, 1)
	go func() { closed <- h.Close() }()
	for !errors.Is(h.Flush(context.Background()), store.ErrClosed) { // Close has marked the store closed
		runtime.Gosched()
	}
	close(release)
	if err := <-decided; !errors.Is(err, store.ErrClosed) {
		t.Fatalf("decision during Close = %v; want ErrClosed", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := f.value(minuteKey("k", hotStart), hotStart); got != 0 {
		t.Fatalf("the remote holds %d after Close; want 0 (the lease in flight given back, nothing admitted)", got)
	}
}

// frozenRemote is a remote that never answers a Sync: each waits for its
// context, as a call to a stopped server does.
type frozenRemote struct{ *fakeRemote }

func (f frozenRemote) Sync(ctx context.Context, b *store.SyncBatch) error {
	<-ctx.Done()
	return errors.Join(store.ErrUnavailable, ctx.Err())
}

// TestFrozenRemoteShortDeadlines: with the remote frozen and callers whose
// deadline is shorter than the store's remote timeout, the first new
// caller's first-sight read waits out its deadline; the store then knows
// the remote is down, and the next new callers decide at once, locally. A
// caller that cancels its context does not mark the remote down.
func TestFrozenRemoteShortDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ctx   func() (context.Context, context.CancelFunc)
		waits int // decisions of the 10 new callers that wait 50 ms
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		}, 1},
		{"cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := hybrid.New(frozenRemote{newFakeRemote()}, hybrid.WithoutFlusher(), hybrid.WithRemoteTimeout(time.Second))
				waited := 0
				for i := range 10 {
					ctx, cancel := tc.ctx()
					start := time.Now()
					b := &store.Batch{}
					err := h.Do(ctx, decision(b, "new-"+strconv.Itoa(i), hotStart, 10))
					cancel()
					if err != nil || !b.Applied {
						t.Fatalf("caller %d: Do = (applied %v, %v); want a local decision", i, b.Applied, err)
					}
					if time.Since(start) >= 50*time.Millisecond {
						waited++
					}
				}
				if waited != tc.waits {
					t.Fatalf("%d of 10 new callers waited for the frozen remote; want %d", waited, tc.waits)
				}
				_ = h.Shutdown(context.Background()) // the final flush fails: the remote is frozen
			})
		})
	}
}

// ctxRemote is the fake remote failing a Sync whose context is done, as a
// network client does.
type ctxRemote struct{ *fakeRemote }

func (r ctxRemote) Sync(ctx context.Context, b *store.SyncBatch) error {
	if err := ctx.Err(); err != nil {
		return errors.Join(store.ErrUnavailable, err)
	}
	return r.fakeRemote.Sync(ctx, b)
}

// TestSpentDeadlineDoesNotMarkDown: a caller whose deadline is gone before
// its first-sight read fails at once; that says nothing about the remote,
// so the next new caller's read still happens: a caller whose day another
// process spent is denied, not admitted from an empty local view.
func TestSpentDeadlineDoesNotMarkDown(t *testing.T) {
	ctx := context.Background()
	f := newFakeRemote()
	other := hybrid.New(f, hybrid.WithoutFlusher())
	b := &store.Batch{}
	for i := range 100 { // spend the day (100 × the minute's 1) through fresh minutes
		decision(b, "spent", hotStart, 1)
		b.Ops[0].Key.Window = int64(1000 + i)
		if err := other.Do(ctx, b); err != nil || !b.Applied {
			t.Fatalf("other process: Do = (applied %v, %v)", b.Applied, err)
		}
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}

	h := hybrid.New(ctxRemote{f}, hybrid.WithoutFlusher())
	defer h.Close()
	gone, cancel := context.WithDeadline(ctx, time.Unix(0, 0))
	defer cancel()
	b = &store.Batch{}
	if err := h.Do(gone, decision(b, "someone", hotStart, 1)); err != nil {
		t.Fatalf("Do with a spent deadline = %v; want a local decision", err)
	}
	b = &store.Batch{}
	decision(b, "spent", hotStart, 1)
	b.Ops[0].Key.Window = 5000
	if err := h.Do(ctx, b); err != nil {
		t.Fatal(err)
	}
	if b.Applied {
		t.Fatal("a caller whose day is spent was admitted: its first-sight read was skipped after another caller's spent deadline")
	}
}

// TestCloseBoundedWhileReadHangs: Close waits for a first-sight read in
// flight for at most half the time its context leaves (here the remote
// ignores contexts and never answers the read), then still flushes what
// is pending within the other half.
func TestCloseBoundedWhileReadHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeRemote()
		release := make(chan struct{})
		f.onSync = func(b *store.SyncBatch) {
			if b.Process == "" && b.ID == "" { // a decision's first-sight read
				<-release
			}
		}
		h := hybrid.New(f, hybrid.WithoutFlusher(), hybrid.WithRemoteTimeout(time.Hour))
		pending := allow(t, h, "p", hotStart, 10, 100) // minute cells: no read
		decided := make(chan error, 1)
		go func() {
			b := &store.Batch{}
			decided <- h.Do(context.Background(), decision(b, "new", hotStart, 100)) // reads its day first
		}()
		synctest.Wait() // the read is in flight
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown = %v; want the pending deltas flushed", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Shutdown took %v with a 1 s context", took)
		}
		if got := f.value(minuteKey("p", hotStart), hotStart); got != pending {
			t.Fatalf("the remote holds %d after Shutdown; want the %d pending", got, pending)
		}
		close(release)
		if err := <-decided; err != nil && !errors.Is(err, store.ErrClosed) {
			t.Fatalf("the decision whose read hung = %v; want nil or ErrClosed", err)
		}
	})
}
