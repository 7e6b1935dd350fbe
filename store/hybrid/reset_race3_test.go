package hybrid_test

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
)

// TestAnswerToRequestBuiltWithoutCell: another process resets the
// next-window key twice; this process's lease request for it was built
// while it had no cell, and its answer (epoch 2, after the second reset)
// folds after a prefetch's answer (epoch 1) created the cell. The newer
// answer is current: its grant is the lease, the prefetched one (voided by
// the second reset) is dropped, at most the limit is admitted in the
// window, and Redis ends holding what was.
func TestAnswerToRequestBuiltWithoutCell(t *testing.T) {
	ctx := context.Background()
	now := hotStart + int64(59900*time.Millisecond)
	next := minuteKey("k", hotStart)
	next.Window++
	nextStart := next.Window * int64(time.Minute)
	f := newFakeRemote()
	if err := f.Reset(ctx, next); err != nil { // earlier reset by another process: epoch 1
		t.Fatal(err)
	}
	clock := now
	a := hybrid.New(f, hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithClock(func() time.Time { return time.Unix(0, clock) }))
	if got := allow(t, a, "k", now, 10, 100); got != 10 {
		t.Fatalf("admitted %d", got)
	}
	fired := false
	f.onSync = func(sb *store.SyncBatch) {
		f.onSync = nil
		fired = true
		// B (this Sync) was built with next's cell absent. A flush now
		// prefetches next's lease at epoch 1 and folds it.
		if err := a.Flush(ctx); err != nil {
			t.Error(err)
		}
		// another process resets next: epoch 2, A's grant voided
		if err := f.Reset(ctx, next); err != nil {
			t.Error(err)
		}
	}
	after := allow(t, a, "k", nextStart+int64(time.Second), 1, 100)
	if !fired {
		t.Fatal("hook did not fire")
	}
	for range 300 {
		after += allow(t, a, "k", nextStart+int64(time.Second), 1, 100)
	}
	clock = nextStart + int64(2*time.Second)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := f.value(next, nextStart+int64(2*time.Second)); v != after {
		t.Errorf("remote holds %d after Close; admitted %d in the next window", v, after)
	}
	if after > 100 {
		t.Errorf("admitted %d > 100", after)
	}
}

// beforeRedis is hookRedis that also runs before, if set, at the start of
// the next Sync.
type beforeRedis struct {
	hookRedis
	before func()
}

func (h *beforeRedis) Sync(ctx context.Context, b *store.SyncBatch) error {
	if f := h.before; f != nil {
		h.before = nil
		f()
	}
	return h.hookRedis.Sync(ctx, b)
}

// TestAnswerToRequestBuiltWithoutCellRedis is
// TestAnswerToRequestBuiltWithoutCell on Redis (miniredis, or REDIS_ADDR).
func TestAnswerToRequestBuiltWithoutCellRedis(t *testing.T) {
	ctx := context.Background()
	now := hotStart + int64(59900*time.Millisecond)
	next := minuteKey("k", hotStart)
	next.Window++
	nextStart := next.Window * int64(time.Minute)
	r, _ := newRedis(t)
	other := hybrid.New(r, hybrid.Strict(), hybrid.WithoutFlusher())
	allow(t, other, "k", nextStart, 1, 100)
	if err := other.Reset(ctx, next); err != nil { // epoch 1
		t.Fatal(err)
	}
	h := &beforeRedis{hookRedis: hookRedis{Store: r}}
	clock := now
	a := hybrid.New(h, hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithClock(func() time.Time { return time.Unix(0, clock) }))
	if got := allow(t, a, "k", now, 10, 100); got != 10 {
		t.Fatalf("admitted %d", got)
	}
	fired := false
	h.before = func() {
		fired = true
		if err := a.Flush(ctx); err != nil { // prefetch of next at epoch 1
			t.Error(err)
		}
		if err := other.Reset(ctx, next); err != nil { // epoch 2
			t.Error(err)
		}
	}
	after := allow(t, a, "k", nextStart+int64(time.Second), 1, 100)
	if !fired {
		t.Fatal("hook did not fire")
	}
	for range 300 {
		after += allow(t, a, "k", nextStart+int64(time.Second), 1, 100)
	}
	clock = nextStart + int64(2*time.Second)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if v := remoteValue(t, r, next); v != after {
		t.Errorf("redis holds %d after Close; admitted %d in the next window", v, after)
	}
}
