// Package batchtest generates random store batches and compares two runs
// of one, for the stores' differential tests: a store is run beside a copy
// of itself with one mechanism disabled, and the two must agree.
package batchtest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/floodgate-go/floodgate/store"
)

// Random returns a batch at now of one to three distinct Add ops of caller,
// some peeking and some with a prior cell: namespaces n0–n2 and windows 0–1
// for the ops' keys, namespace p for priors, small counts and ceilings, TTLs
// of one to five seconds, so that a few steps of a second or so see keys
// fill up, expire and come back.
func Random(rng *rand.Rand, caller string, now int64) store.Batch {
	var b store.Batch
	b.Now, b.Peek = now, rng.IntN(6) == 0
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
		b.Ops = append(b.Ops, op)
	}
	return b
}

// Copy returns b with ops of its own, to run beside b through another store.
func Copy(b store.Batch) store.Batch {
	c := b
	c.Ops = append([]store.Op(nil), b.Ops...)
	c.Results = nil
	return c
}

// Diff describes how the runs of a and b differ (their errors, Applied and
// results), or returns nil when they agree.
func Diff(a, b *store.Batch, errA, errB error) error {
	if (errA == nil) != (errB == nil) || a.Applied != b.Applied {
		return fmt.Errorf("applied %v (%v), against %v (%v)", a.Applied, errA, b.Applied, errB)
	}
	if len(a.Results) != len(b.Results) {
		return fmt.Errorf("%d results, against %d", len(a.Results), len(b.Results))
	}
	var errs []error
	for i := range a.Results {
		if a.Results[i] != b.Results[i] {
			errs = append(errs, fmt.Errorf("op %d: result %+v, against %+v", i, a.Results[i], b.Results[i]))
		}
	}
	return errors.Join(errs...)
}
