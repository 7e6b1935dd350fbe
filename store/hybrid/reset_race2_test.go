package hybrid_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
)

// TestUnrelatedResetKeepsLease: a Reset of another key while k's first
// lease request is in flight leaves k's grant alone: Redis ends holding
// what was admitted.
func TestUnrelatedResetKeepsLease(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	other := minuteKey("zzz-other", hotStart)
	hr := &hookRemote{fakeRemote: newFakeRemote()}
	a := hybrid.New(hr, manualOpts(true)...)
	hr.after = func(sb *store.SyncBatch) {
		if err := a.Reset(ctx, other); err != nil {
			t.Error(err)
		}
	}
	got := allow(t, a, "k", hotStart, 1, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := hr.value(key, hotStart); v != got {
		t.Errorf("remote holds %d after Close; want %d (admitted)", v, got)
	}
}

// TestUnrelatedResetKeepsLeaseRedis: the same on Redis (miniredis, or
// REDIS_ADDR), the other key of another caller.
func TestUnrelatedResetKeepsLeaseRedis(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	other := minuteKey("someone-else", hotStart)
	r, _ := newRedis(t)
	hr := &hookRedis{Store: r}
	a := hybrid.New(hr, manualOpts(true)...)
	hr.after = func() {
		if err := a.Reset(ctx, other); err != nil {
			t.Error(err)
		}
	}
	got := allow(t, a, "k", hotStart, 1, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := remoteValue(t, r, key); v != got {
		t.Errorf("redis holds %d after Close; want %d (admitted)", v, got)
	}
}

// redisSyncer is a remote store that syncs: the Redis store.
type redisSyncer interface {
	store.Store
	store.Syncer
}

// hookRedis runs after, if set, once a Sync has been applied and before it
// returns.
type hookRedis struct {
	Store redisSyncer
	after func()
}

func (h *hookRedis) Do(ctx context.Context, b *store.Batch) error { return h.Store.Do(ctx, b) }
func (h *hookRedis) Reset(ctx context.Context, k ...store.Key) error {
	return h.Store.Reset(ctx, k...)
}
func (h *hookRedis) Close() error { return h.Store.Close() }
func (h *hookRedis) Sync(ctx context.Context, b *store.SyncBatch) error {
	err := h.Store.Sync(ctx, b)
	if h.after != nil && err == nil {
		f := h.after
		h.after = nil
		f()
	}
	return err
}

// gatedReset is a remote whose Reset blocks until released, so that a
// lease request can be applied before a reset that began before it.
type gatedReset struct {
	*hookRemote
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedReset) Reset(ctx context.Context, keys ...store.Key) error {
	close(g.entered)
	<-g.gate
	return g.fakeRemote.Reset(ctx, keys...)
}

// TestOwnResetStartedBeforeLeaseRequest: this process's Reset begins
// before a lease request is built, reaches the remote after the lease is
// granted (voiding it), and ends before the answer is folded: the grant is
// not added, and at most the limit is admitted after the reset.
func TestOwnResetStartedBeforeLeaseRequest(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	g := &gatedReset{hookRemote: &hookRemote{fakeRemote: newFakeRemote()}, gate: make(chan struct{}), entered: make(chan struct{})}
	a := hybrid.New(g, manualOpts(true)...)
	var wg sync.WaitGroup
	wg.Add(1)
	done := make(chan struct{})
	go func() {
		defer wg.Done()
		defer close(done)
		if err := a.Reset(ctx, key); err != nil {
			t.Error(err)
		}
	}()
	<-g.entered // Reset has bumped the counter, not yet reached the remote
	g.after = func(*store.SyncBatch) {
		close(g.gate) // the reset now reaches the remote, after the lease
		<-done        // and finishes locally before the answer is folded
	}
	after := allow(t, a, "k", hotStart, 1, 100)
	wg.Wait()
	for range 300 {
		after += allow(t, a, "k", hotStart, 1, 100)
	}
	if after > 100 {
		t.Errorf("admitted %d after its own Reset; the limit is 100", after)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := g.value(key, hotStart); v != after {
		t.Errorf("remote holds %d after Close; want %d", v, after)
	}
}

// TestOwnResetDuringResend: a lost lease request sent again is applied,
// then this process resets the key, then the answer is folded: the voided
// grant is not added.
func TestOwnResetDuringResend(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	hr := &hookRemote{fakeRemote: newFakeRemote()}
	a := hybrid.New(hr, manualOpts(true)...)
	hr.failNext = 1 // the first lease request never reaches the remote: lost
	b := &store.Batch{}
	decision(b, "k", hotStart, 100)
	b.Ops = b.Ops[:1]
	if err := a.Do(ctx, b); err == nil {
		t.Fatal("expected the lease request to fail")
	}
	hr.after = func(sb *store.SyncBatch) { // the resend is applied; its reply in flight
		if err := a.Reset(ctx, key); err != nil {
			t.Error(err)
		}
	}
	after := allow(t, a, "k", hotStart, 1, 100) // recoverLease: resend, then the decision
	for range 300 {
		after += allow(t, a, "k", hotStart, 1, 100)
	}
	if after > 100 {
		t.Errorf("admitted %d after its own Reset; the limit is 100", after)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := hr.value(key, hotStart); v != after {
		t.Errorf("remote holds %d after Close; want %d", v, after)
	}
}

type signalReset struct {
	*hookRemote
	reset chan struct{}
}

func (g *signalReset) Reset(ctx context.Context, keys ...store.Key) error {
	err := g.fakeRemote.Reset(ctx, keys...)
	close(g.reset)
	return err
}

// TestOwnResetDuringPrefetch: a flush takes the next window's first lease;
// it is applied, then this process resets the next window's key, then the
// flush folds: the voided grant does not become a lease.
func TestOwnResetDuringPrefetch(t *testing.T) {
	ctx := context.Background()
	now := hotStart + int64(59900*time.Millisecond)
	next := minuteKey("k", hotStart)
	next.Window++
	g := &signalReset{hookRemote: &hookRemote{fakeRemote: newFakeRemote()}, reset: make(chan struct{})}
	a := hybrid.New(g, hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithClock(func() time.Time { return time.Unix(0, now) }))
	if got := allow(t, a, "k", now, 10, 100); got != 10 {
		t.Fatalf("admitted %d", got)
	}
	var wg sync.WaitGroup
	g.after = func(*store.SyncBatch) {
		wg.Go(func() {
			if err := a.Reset(ctx, next); err != nil {
				t.Error(err)
			}
		})
		<-g.reset // the remote has reset the key; the fold may run before or after the
		// Reset removes its local cells: either way the voided grant must not
		// become a lease
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	nextStart := next.Window * int64(time.Minute)
	var after int64
	for range 300 {
		after += allow(t, a, "k", nextStart+int64(time.Second), 1, 100)
	}
	if after > 100 {
		t.Errorf("admitted %d in the next window after its own Reset; the limit is 100", after)
	}
	now = nextStart + int64(2*time.Second)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := g.value(next, nextStart); v != after {
		t.Errorf("remote holds %d after Close; want %d", v, after)
	}
}

// TestEvictedCellRecreatedByPassThrough: the key was reset once, earlier
// in the window (epoch 1), and A's cell knows it; A's lease request is in
// flight when the cell is evicted and recreated by a refund sent to the
// remote as is (whose answer carries no epoch). The answer is current, not
// late: the grant becomes A's lease, and Redis ends holding what was
// admitted.
func TestEvictedCellRecreatedByPassThrough(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	hr := &hookRemote{fakeRemote: newFakeRemote()}
	if err := hr.fakeRemote.Reset(ctx, key); err != nil { // an earlier reset: epoch 1
		t.Fatal(err)
	}
	a := hybrid.New(hr, hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithShards(1), hybrid.WithMaxKeys(4),
		hybrid.WithClock(func() time.Time { return time.Unix(0, hotStart) }))
	adm := allow(t, a, "k", hotStart, 50, 100) // first lease, 50 at epoch 1, all spent
	hr.after = func(sb *store.SyncBatch) {
		for i := range 8 { // evict k's cell
			allow(t, a, fmt.Sprint("x", i), hotStart, 1, 100)
		}
		refund := &store.Batch{Now: hotStart, Ops: []store.Op{{Kind: store.Add, Key: key, N: -1, Ceil: 100, TTL: time.Minute}}}
		if err := a.Do(ctx, refund); err != nil || !refund.Applied {
			t.Errorf("refund: (applied %v, %v)", refund.Applied, err)
		}
		adm--
	}
	adm += allow(t, a, "k", hotStart, 1, 100)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := hr.value(key, hotStart); v != adm {
		t.Errorf("remote holds %d after Close; want %d admitted", v, adm)
	}
}
