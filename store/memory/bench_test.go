package memory_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
)

// BenchmarkDo times the memory store alone: one fixed-window op per batch,
// the allowed path, on one key and on 100,000 keys walked in the order
// they were added and shuffled. It isolates the store's table (lookup,
// eviction bookkeeping, cache misses) from the limiter's fixed costs.
func BenchmarkDo(b *testing.B) {
	for _, tc := range []struct {
		name    string
		keys    int
		shuffle bool
	}{
		{"keys=1", 1, false},
		{"keys=100000/order=added", 100_000, false},
		{"keys=100000/order=shuffled", 100_000, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			keys := make([]string, tc.keys)
			for i := range keys {
				keys[i] = "tenant-" + strconv.Itoa(i)
			}
			s := memory.New(memory.WithMaxKeys(1 << 17))
			defer s.Close()
			ctx := context.Background()
			var batch store.Batch
			do := func(caller string) {
				batch.Reset()
				batch.Now = 1e18
				op := batch.NewOp()
				op.Kind, op.N, op.Ceil, op.TTL = store.Add, 1, 1<<62, time.Hour
				op.Key.Namespace, op.Key.Caller, op.Key.Window = "fixed:1m0s", caller, 7
				if err := s.Do(ctx, &batch); err != nil || !batch.Applied {
					b.Fatalf("Do(%q): applied %v, error %v", caller, batch.Applied, err)
				}
			}
			for _, k := range keys {
				do(k)
			}
			walk := keys
			if tc.shuffle {
				walk = slices.Clone(keys)
				rand.New(rand.NewPCG(1, 2)).Shuffle(len(walk), func(i, j int) { walk[i], walk[j] = walk[j], walk[i] })
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				do(walk[i])
				if i++; i == len(walk) {
					i = 0
				}
			}
		})
	}
}
