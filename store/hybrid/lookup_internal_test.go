package hybrid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/internal/batchtest"
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
			ba := batchtest.Random(rng, fmt.Sprint("c", rng.IntN(4)), now)
			bb := batchtest.Copy(ba)
			for i := range b.shards {
				b.shards[i].last = [2]lookup{}
			}
			errA, errB := a.Do(ctx, &ba), b.Do(ctx, &bb)
			if err := batchtest.Diff(&ba, &bb, errA, errB); err != nil {
				t.Fatalf("seed %d step %d, with remembered lookups against without: %v", seed, step, err)
			}
			if a.Len() != b.Len() {
				t.Fatalf("seed %d step %d: %d cells held with remembered lookups, %d without", seed, step, a.Len(), b.Len())
			}
		}
	}
}
