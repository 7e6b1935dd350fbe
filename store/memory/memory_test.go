package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New() })
}

func TestConformanceOneShard(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memory.New(memory.WithShards(1)) })
}

func TestMaxKeysBound(t *testing.T) {
	s := memory.New(memory.WithMaxKeys(10_000))
	defer s.Close()
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(5)), limiter.WithStore(s))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 100_000 {
		if _, err := lim.Allow(ctx, "tenant-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Len(); n > 10_000 || n < 9_000 {
		t.Fatalf("after 100,000 keys with WithMaxKeys(10000), the store holds %d keys; want at most 10000 (and close to it)", n)
	}
	// The most recent keys are the ones kept.
	if res, _ := lim.Peek(ctx, "tenant-99999"); res.Remaining != 4 {
		t.Fatalf("the newest key lost its state: remaining %d; want 4", res.Remaining)
	}
}

func TestExpiryInBatchTime(t *testing.T) {
	s := memory.New()
	defer s.Close()
	k := store.Key{Namespace: "n", Caller: "c"}
	op := store.Op{Kind: store.Add, Key: k, N: 1, Ceil: 10, TTL: time.Second}
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixNano()
	if err := s.Do(ctx, &store.Batch{Now: now, Ops: []store.Op{op}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		after time.Duration
		want  int64
	}{
		{time.Second - 1, 1},
		{time.Second, 0},
	}
	for _, tt := range tests {
		b := &store.Batch{Now: now + int64(tt.after), Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k, Ceil: 10, TTL: time.Second}}}
		if err := s.Do(ctx, b); err != nil {
			t.Fatal(err)
		}
		if b.Results[0].Value != tt.want {
			t.Fatalf("cell %v after a write with TTL 1s = %d; want %d", tt.after, b.Results[0].Value, tt.want)
		}
	}
	if n := s.Len(); n != 0 {
		t.Fatalf("expired key still held: Len = %d; want 0", n)
	}
}

func TestSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := memory.New(memory.WithSweepInterval(time.Minute))
		ctx := context.Background()
		now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixNano()
		for i := range 100 {
			op := store.Op{Kind: store.Add, Key: store.Key{Namespace: "n", Caller: strconv.Itoa(i)}, N: 1, Ceil: 10, TTL: time.Second}
			if err := s.Do(ctx, &store.Batch{Now: now, Ops: []store.Op{op}}); err != nil {
				t.Fatal(err)
			}
		}
		// A later batch moves the store's notion of now past the expiries.
		late := store.Op{Kind: store.Add, Key: store.Key{Namespace: "n", Caller: "late"}, N: 1, Ceil: 10, TTL: time.Hour}
		if err := s.Do(ctx, &store.Batch{Now: now + int64(time.Minute), Ops: []store.Op{late}}); err != nil {
			t.Fatal(err)
		}
		if n := s.Len(); n != 101 {
			t.Fatalf("Len before the sweep = %d; want 101", n)
		}
		time.Sleep(time.Minute) // virtual time: the sweeper's ticker fires
		synctest.Wait()
		if n := s.Len(); n != 1 {
			t.Fatalf("Len after the sweep = %d; want 1", n)
		}
		s.Close()
		s.Close() // idempotent
	})
}

func TestBadOptions(t *testing.T) {
	for _, opt := range []memory.Option{memory.WithMaxKeys(0), memory.WithShards(-1), memory.WithSweepInterval(-time.Second)} {
		if _, err := memory.NewChecked(opt); err == nil {
			t.Error("NewChecked accepted an invalid option")
		}
	}
	if s := memory.New(memory.WithMaxKeys(-5)); s.MaxKeys() != memory.DefaultMaxKeys {
		t.Errorf("New with a bad option: MaxKeys = %d; want the default", s.MaxKeys())
	}
	// One bad option does not discard the good ones.
	if s := memory.New(memory.WithMaxKeys(500), memory.WithSweepInterval(-time.Second)); s.MaxKeys() != 500 {
		t.Errorf("New(WithMaxKeys(500), a bad sweep interval): MaxKeys = %d; want 500", s.MaxKeys())
	}
}

// TestEvictionInsideABatch fills a one-key store, then runs batches whose
// new key evicts the batch's other key: whatever is forgotten, no key may
// end up with another key's count.
func TestEvictionInsideABatch(t *testing.T) {
	ctx := context.Background()
	add := func(k store.Key, n int64) store.Op {
		return store.Op{Kind: store.Add, Key: k, N: n, Ceil: 1000, TTL: time.Hour}
	}
	peek := func(s *memory.Store, k store.Key) int64 {
		t.Helper()
		b := &store.Batch{Now: 1, Peek: true, Ops: []store.Op{add(k, 0)}}
		if err := s.Do(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b.Results[0].Value
	}
	a := store.Key{Namespace: "n", Caller: "c", Window: 1}
	b := store.Key{Namespace: "n", Caller: "c", Window: 2}
	for _, order := range [][2]store.Key{{a, b}, {b, a}} {
		s := memory.New(memory.WithMaxKeys(1), memory.WithShards(1))
		if err := s.Do(ctx, &store.Batch{Now: 1, Ops: []store.Op{add(a, 5)}}); err != nil {
			t.Fatal(err)
		}
		batch := &store.Batch{Now: 1, Ops: []store.Op{add(order[0], 1), add(order[1], 1)}}
		if err := s.Do(ctx, batch); err != nil || !batch.Applied {
			t.Fatalf("batch %v: applied %v, error %v", order, batch.Applied, err)
		}
		if got := peek(s, b); got != 0 && got != 1 {
			t.Errorf("batch %v: new key holds %d; want 1 (or 0 once forgotten)", order, got)
		}
		if got := peek(s, a); got != 0 && got != 6 {
			t.Errorf("batch %v: old key holds %d; want 6 (or 0 once forgotten)", order, got)
		}
		if n := s.Len(); n != 1 {
			t.Errorf("batch %v: Len = %d; want 1", order, n)
		}
	}
}

// TestFullShardSparesTheBatch: in a full shard whose keys are all in use, a
// decision that adds a new window's key must evict some other caller's key,
// never the key its own batch just read and wrote (here a day counter
// beside a new minute): forgetting it would let the day limit be exceeded.
func TestFullShardSparesTheBatch(t *testing.T) {
	ctx := context.Background()
	const limit = 40
	s := memory.New(memory.WithMaxKeys(limit), memory.WithShards(1))
	defer s.Close()
	day := store.Key{Namespace: "day", Caller: "tenant"}
	minute := func(w int64) store.Key { return store.Key{Namespace: "minute", Caller: "tenant", Window: w} }
	decide := func(keys ...store.Key) {
		t.Helper()
		b := &store.Batch{Now: 1}
		for _, k := range keys {
			b.Ops = append(b.Ops, store.Op{Kind: store.Add, Key: k, N: 1, Ceil: 1 << 40, TTL: time.Hour})
		}
		if err := s.Do(ctx, b); err != nil || !b.Applied {
			t.Fatalf("batch on %v: applied %v, error %v", keys, b.Applied, err)
		}
	}
	// The day key first, so that it sits where eviction looks first.
	decide(day, minute(0))
	for i := range limit - 2 {
		decide(store.Key{Namespace: "minute", Caller: "other-" + strconv.Itoa(i)})
	}
	for w := int64(1); w <= 3*limit; w++ {
		// Every other key in use again, the tenant's last minute included,
		// so that none is an easy victim.
		for i := range limit - 2 {
			decide(store.Key{Namespace: "minute", Caller: "other-" + strconv.Itoa(i)})
		}
		decide(minute(w - 1))
		decide(day, minute(w))
		if n := s.Len(); n > limit {
			t.Fatalf("window %d: Len = %d; want at most %d", w, n, limit)
		}
		b := &store.Batch{Now: 1, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: day, Ceil: 1 << 40, TTL: time.Hour}}}
		if err := s.Do(ctx, b); err != nil {
			t.Fatal(err)
		}
		if got := b.Results[0].Value; got != w+1 {
			t.Fatalf("after %d decisions the day counter holds %d: the batch's own key was evicted", w+1, got)
		}
	}
}

// TestExpiredKeysDoNotCrowdOutTheBatch: a full batch of eight ops with
// prior cells, three of whose keys have expired, must still keep its first
// key when its inserts evict: an expired key met by the batch is not a key
// in use, and must not push the batch's own keys out of the set eviction
// spares.
func TestExpiredKeysDoNotCrowdOutTheBatch(t *testing.T) {
	ctx := context.Background()
	s := memory.New(memory.WithMaxKeys(20), memory.WithShards(1))
	defer s.Close()
	k := func(ns string) store.Key { return store.Key{Namespace: ns, Caller: "c"} }
	now := int64(1e12)
	put := func(ns string, ttl time.Duration) {
		t.Helper()
		b := &store.Batch{Now: now, Ops: []store.Op{{Kind: store.Add, Key: k(ns), N: 1, Ceil: 1 << 40, TTL: ttl}}}
		if err := s.Do(ctx, b); err != nil || !b.Applied {
			t.Fatalf("put %s: applied %v, error %v", ns, b.Applied, err)
		}
	}
	for i := 1; i <= 7; i++ {
		put(fmt.Sprint("P", i), time.Hour)
	}
	for i := 1; i <= 3; i++ {
		put(fmt.Sprint("K", i), time.Millisecond) // expired by the batch below
	}
	for _, ns := range []string{"F1", "F2", "F3", "K0", "P0", "F4", "F5", "F6", "F7", "F8"} {
		put(ns, time.Hour)
	}
	for _, ns := range []string{"F4", "F5", "F6", "F7", "F8"} {
		put(ns, time.Hour) // in use: not the easy victims
	}
	now += int64(time.Second)
	b := &store.Batch{Now: now}
	for i := range 8 {
		b.Ops = append(b.Ops, store.Op{Kind: store.Add, Key: k(fmt.Sprint("K", i)), N: 1, Ceil: 1 << 40,
			TTL: time.Hour, Prior: k(fmt.Sprint("P", i)), PriorWeight: 500_000})
	}
	if err := s.Do(ctx, b); err != nil || !b.Applied {
		t.Fatalf("batch: applied %v, error %v", b.Applied, err)
	}
	peek := &store.Batch{Now: now, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k("K0"), Ceil: 1 << 40, TTL: time.Hour}}}
	if err := s.Do(ctx, peek); err != nil {
		t.Fatal(err)
	}
	if got := peek.Results[0].Value; got != 2 {
		t.Fatalf("K0 holds %d after the batch; want 2 (it was evicted by its own batch)", got)
	}
}

func TestStats(t *testing.T) {
	s := memory.New()
	defer s.Close()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(2)), limiter.WithStore(s),
		limiter.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, key := range []string{"a", "a", "a", "b"} {
		if _, err := lim.Allow(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lim.Peek(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	want := memory.Stats{Keys: 2, Decisions: 5, Allowed: 3, Denied: 2}
	if got := s.Stats(); got != want {
		t.Fatalf("Stats() = %+v; want %+v", got, want)
	}
}

// TestIdleStoreIsSmall guards the cost of a store that holds nothing yet:
// every limiter without WithStore makes one, so it must not reserve room
// for keys it may never see.
func TestIdleStoreIsSmall(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := memory.New()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("memory.New() allocated %d bytes; want at most 64 KiB", got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
