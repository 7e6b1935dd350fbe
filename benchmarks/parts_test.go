package benchmarks

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
)

// BenchmarkDecisionParts times the steps of one allowed decision on one
// key of the memory store (fixed window), each alone, beside the whole
// Limiter.Allow: where a decision's time goes (docs/benchmarks.md).
//
// The steps are those of the batch path, which every decision took before
// the one-cell short path: part=allow-batch runs the whole decision on it
// (the store hidden behind a wrapper, as any store but the memory and
// default stores is), part=allow on the short path that one limit on the
// memory store takes.
func BenchmarkDecisionParts(b *testing.B) {
	ctx := context.Background()
	alg := algorithms.FixedWindow(limiter.PerMinute(huge))
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano()
	req := &limiter.Request{Now: now, Caller: "tenant-42", N: 1, Limits: alg.Limits(), Namespaces: []string{"fg:fixed:1m0s"}}
	newBatch := func() *store.Batch {
		return &store.Batch{Ops: make([]store.Op, 0, store.MaxOps), Results: make([]store.Result, 0, store.MaxOps)}
	}

	b.Run("part=clock", func(b *testing.B) { // the limiter's default clock: one monotonic read
		base := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			_ = time.Since(base)
		}
	})
	b.Run("part=time.Now", func(b *testing.B) { // what x/time/rate's Allow reads
		b.ReportAllocs()
		for b.Loop() {
			_ = time.Now()
		}
	})
	b.Run("part=pool", func(b *testing.B) { // a sync.Pool get and put, as the limiter does for its scratch batch
		p := sync.Pool{New: func() any { return newBatch() }}
		b.ReportAllocs()
		for b.Loop() {
			p.Put(p.Get())
		}
	})
	b.Run("part=plan", func(b *testing.B) {
		bt := newBatch()
		b.ReportAllocs()
		for b.Loop() {
			bt.Reset()
			alg.Plan(bt, req)
		}
	})
	b.Run("part=validate", func(b *testing.B) {
		bt := newBatch()
		alg.Plan(bt, req)
		b.ReportAllocs()
		for b.Loop() {
			if err := bt.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("part=store", func(b *testing.B) { // memory.Store.Do: hash, shard lock, lookup, bounded add
		st := memory.New()
		bt := newBatch()
		alg.Plan(bt, req)
		b.ReportAllocs()
		for b.Loop() {
			if err := st.Do(ctx, bt); err != nil || !bt.Applied {
				b.Fatal("denied", err)
			}
		}
	})
	b.Run("part=decide", func(b *testing.B) {
		st := memory.New()
		bt := newBatch()
		alg.Plan(bt, req)
		if err := st.Do(ctx, bt); err != nil {
			b.Fatal(err)
		}
		var res limiter.Result
		b.ReportAllocs()
		for b.Loop() {
			alg.Decide(bt, req, &res)
		}
		if !res.Allowed {
			b.Fatal("denied")
		}
	})
	for _, path := range []struct {
		name string
		st   store.Store
	}{
		{"allow", memory.New()},                              // the whole decision, on the short path
		{"allow-batch", struct{ store.Store }{memory.New()}}, // the whole decision, on the batch path
	} {
		b.Run("part="+path.name, func(b *testing.B) {
			lim, err := limiter.New(alg, limiter.WithStore(path.st))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if res, err := lim.Allow(ctx, "tenant-42"); err != nil || !res.Allowed {
					b.Fatal("denied", err)
				}
			}
		})
	}
}
