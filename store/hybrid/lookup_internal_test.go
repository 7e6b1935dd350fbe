package hybrid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/internal/keytable"
	"github.com/floodgate-go/floodgate/store"
)

// quietRemote is a remote the decisions below never need: they use no
// long-lived windows (no first-sight reads) and run with no flusher.
type quietRemote struct{}

func (quietRemote) Do(context.Context, *store.Batch) error       { return store.ErrUnavailable }
func (quietRemote) Reset(context.Context, ...store.Key) error    { return nil }
func (quietRemote) Close() error                                 { return nil }
func (quietRemote) Sync(context.Context, *store.SyncBatch) error { return store.ErrUnavailable }

// TestRememberedLookupsChangeNothing runs random relaxed batches, with
// prior cells and peeks, through two hybrid stores with the same seed,
// forgetting the second one's remembered lookups before every batch:
// results, Applied and the cells held must agree step for step, under
// small key bounds that keep eviction and the reuse of positions frequent.
func TestRememberedLookupsChangeNothing(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 11))
		maxKeys, shards := 1+rng.IntN(12), 1+rng.IntN(2)
		opts := []Option{WithMaxKeys(maxKeys), WithShards(shards), WithoutFlusher()}
		a, b := New(quietRemote{}, opts...), New(quietRemote{}, opts...)
		b.seed = a.seed // same shards, same hashes, same eviction order
		per := maxKeys / len(b.shards)
		for i := range b.shards {
			sh := &b.shards[i]
			sh.t = keytable.New[*cell](per, b.seed)
			sh.t.OnRemove = func(_ uint32, e *keytable.Entry[*cell]) { sh.evicted(e.Val) }
		}
		now := int64(1e12)
		for step := range 300 {
			now += rng.Int64N(int64(3 * time.Second))
			caller := fmt.Sprint("c", rng.IntN(4))
			var ba store.Batch
			ba.Now, ba.Peek = now, rng.IntN(6) == 0
			used := map[store.Key]bool{}
			for range 1 + rng.IntN(3) {
				op := store.Op{Kind: store.Add, N: 1 + rng.Int64N(2), Ceil: 3 + rng.Int64N(5), TTL: time.Duration(1+rng.IntN(5)) * time.Second}
				op.Key = store.Key{Namespace: "n" + fmt.Sprint(rng.IntN(3)), Caller: caller, Window: rng.Int64N(2)}
				if used[op.Key] {
					continue
				}
				used[op.Key] = true
				if rng.IntN(3) == 0 {
					op.Prior, op.PriorWeight = store.Key{Namespace: "p", Caller: caller, Window: rng.Int64N(2)}, 500_000
				}
				ba.Ops = append(ba.Ops, op)
			}
			bb := ba
			bb.Ops = append([]store.Op(nil), ba.Ops...)
			for i := range b.shards {
				b.shards[i].last = [2]lookup{}
			}
			errA, errB := a.Do(ctx, &ba), b.Do(ctx, &bb)
			if (errA == nil) != (errB == nil) || ba.Applied != bb.Applied {
				t.Fatalf("seed %d step %d: applied %v (%v) with remembered lookups, %v (%v) without", seed, step, ba.Applied, errA, bb.Applied, errB)
			}
			for i := range ba.Results {
				if ba.Results[i] != bb.Results[i] {
					t.Fatalf("seed %d step %d op %d: result %+v with remembered lookups, %+v without", seed, step, i, ba.Results[i], bb.Results[i])
				}
			}
			if a.Len() != b.Len() {
				t.Fatalf("seed %d step %d: %d cells held with remembered lookups, %d without", seed, step, a.Len(), b.Len())
			}
		}
	}
}
