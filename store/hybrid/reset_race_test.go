package hybrid_test

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
)

// hookRemote runs after, if set, once a Sync has been applied and before it
// returns (the reply "in flight").
type hookRemote struct {
	*fakeRemote
	after func(*store.SyncBatch)
}

func (h *hookRemote) Sync(ctx context.Context, b *store.SyncBatch) error {
	err := h.fakeRemote.Sync(ctx, b)
	if h.after != nil && err == nil {
		f := h.after
		h.after = nil
		f(b)
	}
	return err
}

// TestRefundOfUnsyncedCellAfterEarlierReset: a key was reset earlier in
// the window (its epoch key exists). A relaxed process whose cell for the
// key has never heard from the remote refunds units: the refund is its own
// arithmetic (store.AnyEpoch), not a stale view, and is taken off.
func TestRefundOfUnsyncedCellAfterEarlierReset(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	remotes := map[string]func(t *testing.T) store.Store{
		"fake":  func(t *testing.T) store.Store { return newFakeRemote() },
		"redis": func(t *testing.T) store.Store { r, _ := newRedis(t); return r },
	}
	for name, mk := range remotes {
		t.Run(name, func(t *testing.T) {
			remote := mk(t)
			b := hybrid.New(remote, manualOpts(false)...)
			a := hybrid.New(remote, manualOpts(false)...)
			defer a.Close()
			defer b.Close()
			allow(t, b, "k", hotStart, 5, 100)
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Reset(ctx, key); err != nil { // an admin reset, early in the window
				t.Fatal(err)
			}
			// Normal operation after the reset.
			allow(t, b, "k", hotStart, 40, 100)
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			// A refunds 10 units admitted after the reset.
			refund := &store.Batch{Now: hotStart, Ops: []store.Op{{Kind: store.Add, Key: key, N: -10, Ceil: 100, TTL: time.Minute}}}
			if err := a.Do(ctx, refund); err != nil || !refund.Applied {
				t.Fatalf("refund: (applied %v, %v)", refund.Applied, err)
			}
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if got := remoteValue(t, remote, key); got != 30 {
				t.Fatalf("remote holds %d; want 30 (40 admitted after the reset, 10 refunded after it)", got)
			}
		})
	}
}

// TestLateFlushAnswerAfterReset: a flush applied before another process's
// reset answers after a lease request made after that reset. The late
// answer changes nothing: it neither drops the lease taken after the reset
// nor moves the cell's epoch back, and its top-up, voided by the reset, is
// not added. At most the limit is admitted after the reset, and Redis ends
// holding what was.
func TestLateFlushAnswerAfterReset(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	hr := &hookRemote{fakeRemote: newFakeRemote()}
	a := hybrid.New(hr, manualOpts(true)...)
	b := hybrid.New(hr.fakeRemote, manualOpts(true)...)
	defer b.Close()
	if got := allow(t, a, "k", hotStart, 50, 100); got != 50 { // A leases 50 at epoch 0, spends them all
		t.Fatalf("admitted %d", got)
	}
	var after int64
	hr.after = func(sb *store.SyncBatch) {
		// A's flush was applied at epoch 0; its reply is in flight.
		if err := b.Reset(ctx, key); err != nil {
			t.Error(err)
		}
		after += allow(t, a, "k", hotStart, 1, 100) // a lease request after the reset (epoch 1)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if after != 1 {
		t.Fatalf("admitted %d after the reset", after)
	}
	total := after
	for range 300 {
		total += allow(t, a, "k", hotStart, 1, 100) + allow(t, b, "k", hotStart, 1, 100)
	}
	if total > 100 {
		t.Errorf("A and B admitted %d after the reset; the limit is 100", total)
	}
	after = total
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hr.value(key, hotStart); got != after {
		t.Fatalf("the remote holds %d after Close; want %d, what A admitted after the reset", got, after)
	}
}

// TestLateFlushReadAfterReset: as TestLateFlushAnswerAfterReset, with the
// flush's item a read (a strict flush reads every leased cell): the late
// read does not drop the lease taken after the reset, so Redis does not
// keep quota nobody spends.
func TestLateFlushReadAfterReset(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	hr := &hookRemote{fakeRemote: newFakeRemote()}
	a := hybrid.New(hr, manualOpts(true)...)
	b := hybrid.New(hr.fakeRemote, manualOpts(true)...)
	allow(t, a, "k", hotStart, 1, 100) // lease 50, 49 left: the flush reads the cell
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var admitted int64
	hr.after = func(sb *store.SyncBatch) {
		if err := b.Reset(ctx, key); err != nil {
			t.Error(err)
		}
		// 49 from the lease taken before the reset (allowed by the docs, once), then a
		// lease request after it: 50 granted at epoch 1, 1 spent.
		admitted += allow(t, a, "k", hotStart, 50, 100)
	}
	allow(t, a, "k", hotStart, 0, 100)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Of A's post-reset admissions, 1 was from the lease taken after the reset.
	if got := hr.value(key, hotStart); got != 1 {
		t.Fatalf("the remote holds %d after Close; want 1 (the one unit A admitted from its post-reset lease)", got)
	}
}

// TestOwnResetDuringLeaseRequest: a lease request applied by the remote
// before this process's own Reset answers after it. The grant, which the
// reset voided, is not added to a cell created afterwards: the process
// admits at most the limit after its own reset, and Redis ends holding what
// was admitted.
func TestOwnResetDuringLeaseRequest(t *testing.T) {
	ctx := context.Background()
	key := minuteKey("k", hotStart)
	hr := &hookRemote{fakeRemote: newFakeRemote()}
	a := hybrid.New(hr, manualOpts(true)...)
	hr.after = func(sb *store.SyncBatch) {
		if err := a.Reset(ctx, key); err != nil { // the reply of the lease request is in flight
			t.Error(err)
		}
	}
	// The lease request is granted 50 before the reset; the decision then
	// asks again, after it.
	after := allow(t, a, "k", hotStart, 1, 100)
	for range 300 {
		after += allow(t, a, "k", hotStart, 1, 100)
	}
	if after > 100 {
		t.Errorf("admitted %d after its own Reset; the limit is 100", after)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := hr.value(key, hotStart); got != after {
		t.Errorf("the remote holds %d after Close; want %d", got, after)
	}
}
