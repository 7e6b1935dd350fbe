package hybrid_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/memory"
)

// decision returns a batch shaped like FixedWindow(PerMinute(limit),
// PerDay(limit×100)) plans for caller at now.
func decision(b *store.Batch, caller string, now, limit int64) *store.Batch {
	minute, day := int64(time.Minute), int64(24*time.Hour)
	b.Reset()
	b.Now = now
	b.Ops = append(b.Ops,
		store.Op{Kind: store.Add, Key: store.Key{Namespace: "hp:1m", Caller: caller, Window: now / minute}, N: 1, Ceil: limit,
			TTL: time.Duration(minute - now%minute), Period: time.Minute},
		store.Op{Kind: store.Add, Key: store.Key{Namespace: "hp:24h", Caller: caller, Window: now / day}, N: 1, Ceil: 100 * limit,
			TTL: time.Duration(day - now%day), Period: 24 * time.Hour},
	)
	return b
}

// hotStart is the start of a minute, so a whole minute of decisions stays
// in one window.
var hotStart = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC).UnixNano()

// TestHotPathNoRemote: once a key is warm, decisions send nothing to Redis
// until the next flush, and allocate nothing.
func TestHotPathNoRemote(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run("strict="+strconv.FormatBool(strict), func(t *testing.T) {
			ctx := context.Background()
			r, cnt := newRedis(t)
			opts := manualOpts(strict)
			h := hybrid.New(r, opts...)
			t.Cleanup(func() { _ = h.Close() })
			b := &store.Batch{Ops: make([]store.Op, 0, 2), Results: make([]store.Result, 0, 2)}
			now := hotStart
			if err := h.Do(ctx, decision(b, "warm", now, 1<<40)); err != nil || !b.Applied {
				t.Fatalf("first Do = (applied %v, %v); want applied", b.Applied, err)
			}
			if err := h.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			cnt.Reset()
			const runs = 1000
			allocs := testing.AllocsPerRun(runs, func() {
				now += 1000
				if err := h.Do(ctx, decision(b, "warm", now, 1<<40)); err != nil || !b.Applied {
					t.Fatalf("Do = (applied %v, %v); want applied", b.Applied, err)
				}
			})
			if got := cnt.Commands(); got != 0 {
				t.Errorf("%d warm decisions sent %d commands to Redis; want 0 between flushes", runs+1, got)
			}
			if allocs != 0 {
				t.Errorf("warm Do allocates %v times per call; want 0", allocs)
			}
			if err := h.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			if got := cnt.Commands(); got != 1 {
				t.Errorf("one flush sent %d commands; want 1", got)
			}
		})
	}
}

// BenchmarkHotPath compares a warm decision (two limits) on the hybrid
// store, which has a Redis remote, with the memory store. The hybrid goal
// is at most 1.5× the memory store's ns/op, and 0 redis-cmds/op.
func BenchmarkHotPath(b *testing.B) {
	ctx := context.Background()
	for _, keys := range []int{1, 1000} {
		callers := make([]string, keys)
		for i := range callers {
			callers[i] = "caller-" + strconv.Itoa(i)
		}
		stores := []struct {
			name string
			make func(b *testing.B) (store.Store, func() int64)
		}{
			{"memory", func(b *testing.B) (store.Store, func() int64) {
				return memory.New(), func() int64 { return 0 }
			}},
			{"hybrid", func(b *testing.B) (store.Store, func() int64) {
				r, cnt := newRedis(b)
				h := hybrid.New(r, hybrid.WithoutFlusher())
				return h, cnt.Commands
			}},
			{"hybrid-strict", func(b *testing.B) (store.Store, func() int64) {
				r, cnt := newRedis(b)
				h := hybrid.New(r, hybrid.WithoutFlusher(), hybrid.Strict())
				return h, cnt.Commands
			}},
		}
		for _, st := range stores {
			b.Run("store="+st.name+"/keys="+strconv.Itoa(keys), func(b *testing.B) {
				s, cmds := st.make(b)
				defer s.Close()
				batch := &store.Batch{Ops: make([]store.Op, 0, 2), Results: make([]store.Result, 0, 2)}
				now := hotStart
				for _, c := range callers { // warm every key
					if err := s.Do(ctx, decision(batch, c, now, 1<<40)); err != nil {
						b.Fatal(err)
					}
				}
				if h, ok := s.(*hybrid.Store); ok {
					if err := h.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					if n := h.Len(); n != 2*keys {
						b.Fatalf("hybrid holds %d cells; want %d", n, 2*keys)
					}
				}
				before := cmds()
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					now++
					if err := s.Do(ctx, decision(batch, callers[i%keys], now, 1<<40)); err != nil {
						b.Fatal(err)
					}
					i++
				}
				b.ReportMetric(float64(cmds()-before)/float64(i), "redis-cmds/op")
			})
		}
	}
}

// TestOverLimitLocal: a key over its limit is denied from local state until
// its window ends, with no remote call, in both modes.
func TestOverLimitLocal(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run("strict="+strconv.FormatBool(strict), func(t *testing.T) {
			ctx := context.Background()
			r, cnt := newRedis(t)
			opts := manualOpts(strict)
			h := hybrid.New(r, opts...)
			t.Cleanup(func() { _ = h.Close() })
			b := &store.Batch{}
			admitted := 0
			for range 20 {
				if err := h.Do(ctx, decision(b, "hot", hotStart, 10)); err != nil {
					t.Fatal(err)
				}
				if b.Applied {
					admitted++
				}
			}
			if admitted != 10 {
				t.Fatalf("admitted %d of 20 with limit 10; want 10", admitted)
			}
			cnt.Reset()
			for i := range 1000 {
				if err := h.Do(ctx, decision(b, "hot", hotStart+int64(i), 10)); err != nil || b.Applied {
					t.Fatalf("Do over the limit = (applied %v, %v); want denied", b.Applied, err)
				}
			}
			if got := cnt.Commands(); got != 0 {
				t.Fatalf("1000 decisions on a key over its limit sent %d commands; want 0", got)
			}
		})
	}
}

// TestRemoteWithoutSync: a remote that cannot sync is refused by
// NewChecked; New sends every batch to it as is.
func TestRemoteWithoutSync(t *testing.T) {
	m := memory.New()
	defer m.Close()
	if _, err := hybrid.NewChecked(m); !errors.Is(err, hybrid.ErrInvalidOption) {
		t.Fatalf("NewChecked(memory store) = %v; want ErrInvalidOption", err)
	}
	if _, err := hybrid.NewChecked(nil, hybrid.WithSyncInterval(0)); !errors.Is(err, hybrid.ErrInvalidOption) {
		t.Fatalf("NewChecked(WithSyncInterval(0)) = %v; want ErrInvalidOption", err)
	}
	h := hybrid.New(m)
	defer h.Close()
	b := &store.Batch{}
	for range 3 {
		if err := h.Do(context.Background(), decision(b, "x", hotStart, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if b.Applied {
		t.Fatal("third decision with limit 2 applied")
	}
	pb := decision(&store.Batch{Peek: true}, "x", hotStart, 2)
	pb.Peek = true
	if err := m.Do(context.Background(), pb); err != nil || pb.Results[0].Value != 2 {
		t.Fatalf("the memory remote holds %d (%v); want 2: batches went to it", pb.Results[0].Value, err)
	}
	if st := h.Stats(); st.PassThrough != 3 {
		t.Fatalf("Stats.PassThrough = %d; want 3", st.PassThrough)
	}
}

// BenchmarkHotPathParallel is BenchmarkHotPath with concurrent callers,
// each goroutine on its own key.
func BenchmarkHotPathParallel(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"memory", "hybrid", "hybrid-strict"} {
		b.Run("store="+name, func(b *testing.B) {
			var s store.Store
			switch name {
			case "memory":
				s = memory.New()
			case "hybrid":
				r, _ := newRedis(b)
				s = hybrid.New(r, hybrid.WithoutFlusher())
			default:
				r, _ := newRedis(b)
				s = hybrid.New(r, hybrid.WithoutFlusher(), hybrid.Strict())
			}
			defer s.Close()
			var seq atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				caller := "caller-" + strconv.FormatInt(seq.Add(1), 10)
				batch := &store.Batch{Ops: make([]store.Op, 0, 2), Results: make([]store.Result, 0, 2)}
				now := hotStart
				for pb.Next() {
					now++
					_ = s.Do(ctx, decision(batch, caller, now, 1<<40))
				}
			})
			if h, ok := s.(*hybrid.Store); ok {
				if st := h.Stats(); st.Decisions != int64(b.N) || st.RemoteCommands > seq.Load() {
					b.Fatalf("Stats = %+v after %d decisions by %d goroutines; want every decision local but the first-sight reads", st, b.N, seq.Load())
				}
			}
		})
	}
}
