// Package onecell is the limiter's short path for the commonest decision:
// one limit, kept in one counter cell, decided from process memory.
//
// The general path builds a [store.Batch], runs it through the store's Do
// and reads the result back through the algorithm. When the algorithm's
// decision is a single Add (fixed window, sliding window, token bucket)
// and the store decides it in this process (the memory store, and the
// hybrid store with no remote or in relaxed mode), the same decision can
// pass as a handful of integers instead, which saves most of the work
// besides the clock read and the lock. The two paths must give identical
// results: the limiter's tests run both on random decisions, on the memory
// store and on the relaxed hybrid store over Redis, and compare them step
// by step.
package onecell

import (
	"time"

	"github.com/floodgate-go/floodgate/store"
)

// Store runs a single Add op, as a batch of that one op would run through
// the store's Do.
type Store interface {
	// AddCell adds n to the cell (ns, caller, window) if it fits: if
	// max(value, floor) + n, plus the prior cell (ns, caller, window−1)
	// weighted by weight ppm when weight > 0, is at most ceil. When it fits
	// and peek is false it writes the sum, to live ttl ns from now. It
	// returns the cell's value (max(value, floor), plus n when it fits), the
	// prior cell's value (0 when weight is 0) and whether n fit. caller is
	// not empty, n and ttl are positive, weight is at most 1e6, period is
	// the limit's (a hint, as store.Op.Period), and now is the decision's
	// instant in Unix ns.
	//
	// done is false, with nothing written, when the store cannot decide
	// here and now (the hybrid store must first read the cell from its
	// remote): the caller then runs the decision as a batch.
	AddCell(ns, caller string, window, weight, n, floor, ceil, ttl, period, now int64, peek bool) (value, prior int64, applied, done bool, err error)
}

// Fill sets *op to the Add op of AddCell's arguments, for stores that run
// it through their batch code.
func Fill(op *store.Op, ns, caller string, window, weight, n, floor, ceil, ttl, period int64) {
	op.Kind = store.Add
	op.Key.Namespace, op.Key.Caller, op.Key.Window = ns, caller, window
	op.N, op.Floor, op.Ceil = n, floor, ceil
	op.TTL, op.Period = time.Duration(ttl), time.Duration(period)
	if weight > 0 {
		op.Prior.Namespace, op.Prior.Caller, op.Prior.Window = ns, caller, window-1
		op.PriorWeight = weight
	}
}

// Algorithm is an algorithm that decides under its single static limit
// with one Add op.
type Algorithm interface {
	// CellOp returns the op deciding n units at now: the cell's window,
	// the prior cell's weight (0: no prior), and the op's delta, floor,
	// ceiling and time to live.
	CellOp(now, n int64) (window, weight, delta, floor, ceil, ttl int64)

	// CellResult returns the Result's remaining units, reset and retry
	// times (ns), as the algorithm's Decide would: from the decision, the
	// op's weight and time to live, and AddCell's answer.
	CellResult(now, n, weight, ttl, value, prior int64, applied bool) (remaining, reset, retry int64)
}

// The registered recognisers. Package initialisation runs one package at
// a time, so the Register functions, called from init only, need no lock.
var (
	storeFinds []func(any) (Store, bool)
	algFinds   []func(any) (Algorithm, bool)
)

// RegisterStore adds a function recognising stores that can run AddCell.
// Store packages call it from init, and from nowhere else.
func RegisterStore(find func(any) (Store, bool)) { storeFinds = append(storeFinds, find) }

// RegisterAlgorithm adds a function recognising algorithms that decide
// with one Add. It must match exact types: a type that embeds a built-in
// algorithm may override Plan or Decide, which the short path would skip.
// Algorithm packages call it from init, and from nowhere else.
func RegisterAlgorithm(find func(any) (Algorithm, bool)) { algFinds = append(algFinds, find) }

// StoreOf returns the cell store behind s, if s keeps its state in this
// process and its package registered.
func StoreOf(s any) (Store, bool) { return first(storeFinds, s) }

// AlgorithmOf returns alg's cell methods, if its package registered them.
func AlgorithmOf(alg any) (Algorithm, bool) { return first(algFinds, alg) }

func first[T any](finds []func(any) (T, bool), x any) (T, bool) {
	for _, f := range finds {
		if v, ok := f(x); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}
