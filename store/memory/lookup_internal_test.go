package memory

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

// TestRememberedLookupsChangeNothing runs random batches through two
// stores with the same seed, forgetting the second one's remembered
// lookups before every batch: results, Applied and the keys held must
// agree step for step. Small key bounds keep eviction and the reuse of
// positions frequent; expiry, peeks, prior cells, resets and sweeps are
// mixed in.
func TestRememberedLookupsChangeNothing(t *testing.T) {
	ctx := context.Background()
	for seed := range uint64(150) {
		rng := rand.New(rand.NewPCG(seed, 7))
		opts := []Option{WithMaxKeys(1 + rng.IntN(12)), WithShards(1 + rng.IntN(2))}
		a, b := New(opts...), New(opts...)
		b.seed = a.seed // same shards, same hashes, same eviction order
		per := a.maxKeys / len(a.shards)
		for i := range b.shards {
			sh := &b.shards[i]
			sh.t = keytable.New[cell](per, b.seed)
			sh.t.OnRemove = sh.forget
		}
		now := int64(1e12)
		for step := range 400 {
			now += rng.Int64N(int64(3 * time.Second))
			switch rng.IntN(20) {
			case 0:
				k := store.Key{Namespace: "n" + fmt.Sprint(rng.IntN(3)), Caller: fmt.Sprint("c", rng.IntN(4)), Window: rng.Int64N(2)}
				_, _ = a.Reset(ctx, k), b.Reset(ctx, k)
				continue
			case 1:
				if x, y := a.Sweep(), b.Sweep(); x != y {
					t.Fatalf("seed %d step %d: Sweep freed %d and %d", seed, step, x, y)
				}
				continue
			}
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
				t.Fatalf("seed %d step %d: %d keys held with remembered lookups, %d without", seed, step, a.Len(), b.Len())
			}
		}
	}
}
