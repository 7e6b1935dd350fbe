package hybrid_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/memory"
)

// fakeRemote is an in-process remote implementing store.Store and
// store.Syncer with the contract's semantics, for testing the hybrid
// mechanics without Redis. Faults are injected with failNext and dropNext.
type fakeRemote struct {
	*memory.Store

	mu       sync.Mutex
	ids      map[string][]store.SyncResult
	beats    map[string]int64
	epochs   map[store.Key]int64 // reset epochs (see store.Syncer)
	syncs    int
	applied  int                    // batches applied (not answered from the id cache)
	failNext int                    // fail this many Sync calls before applying
	dropNext int                    // apply, then fail this many Sync calls (lost reply)
	onSync   func(*store.SyncBatch) // called at the start of each Sync, unlocked
}

var (
	_ store.Store  = (*fakeRemote)(nil)
	_ store.Syncer = (*fakeRemote)(nil)
)

var errFake = errors.New("fake: connection refused")

func newFakeRemote() *fakeRemote {
	return &fakeRemote{Store: memory.New(), ids: map[string][]store.SyncResult{}, beats: map[string]int64{},
		epochs: map[store.Key]int64{}}
}

func (f *fakeRemote) Sync(ctx context.Context, b *store.SyncBatch) error {
	if f.onSync != nil {
		f.onSync(b)
	}
	if err := b.Validate(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncs++
	b.Commands = 1
	if f.failNext > 0 {
		f.failNext--
		return errors.Join(store.ErrUnavailable, errFake)
	}
	if b.Process != "" {
		f.beats[b.Process] = b.Now + int64(b.HeartbeatTTL)
		n := 0
		for p, exp := range f.beats {
			if exp > b.Now {
				n++
			} else {
				delete(f.beats, p)
			}
		}
		b.Processes = n
	}
	if cached, ok := f.ids[b.ID]; ok && b.ID != "" {
		b.Results = append(b.Results[:0], cached...)
		for i := range b.Results {
			r := &b.Results[i]
			if e := f.epochs[b.Items[i].Key]; e != r.Epoch {
				r.Granted = 0 // the cell was reset since: the grant is void
				r.Epoch = e
			}
		}
		return nil
	}
	b.Results = b.Results[:0]
	for _, it := range b.Items {
		b.Results = append(b.Results, f.apply(ctx, b.Now, it))
	}
	f.applied++
	if b.ID != "" {
		f.ids[b.ID] = append([]store.SyncResult(nil), b.Results...)
	}
	if f.dropNext > 0 {
		f.dropNext--
		return errors.Join(store.ErrUnavailable, errFake)
	}
	return nil
}

func (f *fakeRemote) peek(ctx context.Context, now int64, k store.Key) int64 {
	b := &store.Batch{Now: now, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k, Ceil: math.MaxInt64, TTL: 1}}}
	_ = f.Store.Do(ctx, b)
	return b.Results[0].Value
}

func (f *fakeRemote) add(ctx context.Context, now int64, it store.SyncItem, n, floor int64) int64 {
	b := &store.Batch{Now: now, Ops: []store.Op{{Kind: store.Add, Key: it.Key, N: n, Floor: floor, Ceil: math.MaxInt64, TTL: it.TTL}}}
	_ = f.Store.Do(ctx, b)
	return b.Results[0].Value
}

func (f *fakeRemote) apply(ctx context.Context, now int64, it store.SyncItem) store.SyncResult {
	r := f.applyAt(ctx, now, it)
	r.Epoch = f.epochs[it.Key]
	return r
}

func (f *fakeRemote) applyAt(ctx context.Context, now int64, it store.SyncItem) store.SyncResult {
	if e := f.epochs[it.Key]; e != 0 && it.Epoch != store.AnyEpoch && it.Epoch != e {
		if it.N < 0 {
			return store.SyncResult{Value: f.peek(ctx, now, it.Key)} // quota from before a reset: voided
		}
		it.Floor = 0 // a floor from before a reset
	}
	v := f.peek(ctx, now, it.Key)
	switch {
	case it.Kind == store.SyncTake:
		base := max(v, it.Floor)
		g := min(it.N, max(it.Ceil-base, 0))
		if g > 0 {
			return store.SyncResult{Value: f.add(ctx, now, it, g, it.Floor), Granted: g}
		}
		return store.SyncResult{Value: base}
	case it.N > 0:
		return store.SyncResult{Value: f.add(ctx, now, it, it.N, it.Floor)}
	case it.N < 0:
		if v == 0 {
			return store.SyncResult{Value: max(0, it.Floor)}
		}
		nv := max(v+it.N, it.Floor)
		return store.SyncResult{Value: f.add(ctx, now, it, nv-v, 0)}
	}
	return store.SyncResult{Value: max(v, it.Floor)}
}

// Reset resets keys as the Redis store does: the cells are deleted and
// their reset epochs advance (the Redis store advances only those of cells
// that held a value, a difference no test here sees).
func (f *fakeRemote) Reset(ctx context.Context, keys ...store.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		f.epochs[k]++
	}
	return f.Store.Reset(ctx, keys...)
}

// value returns the remote's value of k at now.
func (f *fakeRemote) value(k store.Key, now int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peek(context.Background(), now, k)
}

// calls returns the number of Sync calls so far.
func (f *fakeRemote) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncs
}

// manualOpts are the options of a store that flushes only when a test calls
// Flush, in strict or relaxed mode.
func manualOpts(strict bool) []hybrid.Option {
	if strict {
		return []hybrid.Option{hybrid.WithoutFlusher(), hybrid.Strict()}
	}
	return []hybrid.Option{hybrid.WithoutFlusher()}
}

// TestBadOptionKeepsOthers: a bad option falls back to its default without
// discarding the good ones (Strict stays strict, no flusher stays off).
func TestBadOptionKeepsOthers(t *testing.T) {
	h := hybrid.New(newFakeRemote(), hybrid.Strict(), hybrid.WithoutFlusher(), hybrid.WithFlushTimeout(0), hybrid.WithMaxKeys(-1))
	defer h.Close()
	if _, err := hybrid.NewChecked(newFakeRemote(), hybrid.WithFlushTimeout(0)); err == nil {
		t.Fatal("NewChecked accepted a zero flush timeout")
	}
	b := &store.Batch{}
	if err := h.Do(t.Context(), decision(b, "k", hotStart, 100)); err != nil || !b.Applied {
		t.Fatalf("Do = (applied %v, %v)", b.Applied, err)
	}
	if got := h.Stats().LeaseRequests; got == 0 {
		t.Fatal("no lease taken: the bad option turned a strict store relaxed")
	}
}
