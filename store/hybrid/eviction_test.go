package hybrid_test

import (
	"context"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
)

// TestCreationsSpareTheBatch: in a full shard, the cells a decision
// creates (a prior cell seen for the first time, a long-lived cell just
// read from the remote) must not evict the cells of that same decision.
// Evicting one forgets its count, and the decision is then let through
// over its limit.
func TestCreationsSpareTheBatch(t *testing.T) {
	ctx := context.Background()
	key := func(ns string, window int64) store.Key { return store.Key{Namespace: ns, Caller: "c", Window: window} }
	add := func(k store.Key, n, ceil int64, period time.Duration) store.Op {
		return store.Op{Kind: store.Add, Key: k, N: n, Ceil: ceil, TTL: time.Hour, Period: period}
	}
	const now = int64(1e18)
	do := func(t *testing.T, s *hybrid.Store, ops ...store.Op) *store.Batch {
		t.Helper()
		b := &store.Batch{Now: now, Ops: ops}
		if err := s.Do(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	newStore := func(t *testing.T) *hybrid.Store {
		s := hybrid.New(newFakeRemote(), hybrid.WithMaxKeys(3), hybrid.WithShards(1), hybrid.WithoutFlusher(),
			hybrid.WithSyncInterval(time.Second), hybrid.WithLongPeriod(time.Hour))
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	t.Run("a new prior cell", func(t *testing.T) {
		s := newStore(t)
		do(t, s, add(key("a", 0), 5, 5, 0)) // a is full
		do(t, s, add(key("x", 0), 1, 100, 0))
		do(t, s, add(key("k", 0), 1, 100, 0))
		// k's prior window has never been seen: creating it fills the shard
		// again, and must not push out a, the batch's second key.
		withPrior := add(key("k", 0), 1, 100, 0)
		withPrior.Prior, withPrior.PriorWeight = key("p", 0), 1
		if b := do(t, s, withPrior, add(key("a", 0), 1, 5, 0)); b.Applied {
			t.Fatalf("a batch charging a full counter was applied (results %+v): the counter was evicted by the batch's own prior cell", b.Results)
		}
	})

	t.Run("a cell read from the remote", func(t *testing.T) {
		s := newStore(t)
		day := 24 * time.Hour
		do(t, s, add(key("day", 0), 5, 5, day)) // yesterday: 5
		do(t, s, add(key("x", 0), 1, 100, 0))
		do(t, s, add(key("y", 0), 1, 100, 0))
		// Today's cell is read from the remote first; creating it must not
		// push out yesterday's, the batch's prior cell (weight 100 %).
		today := add(key("day", 1), 1, 5, day)
		today.Prior, today.PriorWeight = key("day", 0), 1e6
		b := do(t, s, today)
		if b.Applied || b.Results[0].Prior != 5 {
			t.Fatalf("applied %v, prior %d; want denied, prior 5: the prior cell was evicted by the cell read for the batch", b.Applied, b.Results[0].Prior)
		}
	})
}
