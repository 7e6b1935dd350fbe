// Package store defines the contract between floodgate's algorithms and the
// places that keep rate-limit state.
//
// An algorithm never talks to Redis or to a map: it compiles one decision into
// a [Batch] of a few primitive operations on keyed cells, and a [Store] applies
// the batch atomically. The primitives are deliberately few:
//
//   - bounded add ([Add]) on an int64 cell: v = max(v, Floor); the op fits when
//     v + N + weight×prior <= Ceil. With Floor 0 and Ceil = limit it is a
//     fixed-window counter that never charges a denied request; with Floor = now
//     and Ceil = now + burst×interval over a theoretical-arrival-time cell it is
//     GCRA, an exact token bucket; with a weighted prior cell it is the
//     sliding-window counter.
//   - log append ([Log]) on a time-ordered log: entries at or before
//     now − Window are dropped; the op fits when count + N <= Ceil, and then N
//     entries are appended at now.
//   - peek (a [Batch] with Peek set) and [Store.Reset].
//
// A batch is all or nothing: either every op fits and every op is applied, or
// nothing is written at all. A request denied by one limit is therefore never
// charged to another, and a denied request changes no state.
//
// Every store in this repository passes the conformance suite in
// [github.com/floodgate-go/floodgate/store/storetest].
package store

import (
	"context"
	"errors"
	"math/bits"
	"time"
)

// Errors returned by stores. Stores wrap backend errors with %w so that
// errors.Is works on these sentinels.
var (
	// ErrUnavailable reports that the backend could not be reached or could
	// not serve the request (connection refused, timeout, OOM, CLUSTERDOWN).
	// A store never turns such a failure into a silent allow or deny.
	ErrUnavailable = errors.New("store: backend unavailable")

	// ErrClosed is returned by every method of a store after Close.
	ErrClosed = errors.New("store: closed")

	// ErrInvalidBatch reports a batch that breaks the contract: no ops, ops of
	// several callers, an empty caller, an unknown kind or inconsistent fields.
	ErrInvalidBatch = errors.New("store: invalid batch")

	// ErrBadKey is returned by [ParseKey] for a string that no Key encodes to.
	ErrBadKey = errors.New("store: malformed encoded key")
)

// Kind selects the primitive an [Op] runs.
type Kind uint8

const (
	// Add is the bounded add on an int64 cell.
	Add Kind = iota + 1
	// Log is the append to a time-ordered log.
	Log
)

// String returns "add" or "log".
func (k Kind) String() string {
	switch k {
	case Add:
		return "add"
	case Log:
		return "log"
	}
	return "unknown"
}

// Op is one primitive operation of a [Batch].
//
// For an [Add] op on cell v (0 when absent or expired):
//
//	base := max(v, Floor)
//	used := 0; if PriorWeight > 0 { used = Prior × PriorWeight / 1e6 (rounded down) }
//	fits := base + N + used <= Ceil
//
// When the whole batch fits and is not a peek, the cell becomes base + N and
// expires TTL after the batch's Now. N may be negative to return quota.
//
// Expiry is hygiene, not semantics: a store may forget a cell or log once its
// TTL has passed (the memory store measures it in batch time, Redis in server
// time), and the algorithms never depend on the moment it does: windowed
// counters use one key per window, the token bucket's Floor and the log's
// Window make stale state harmless.
//
// For a [Log] op the store drops the entries at or before Now − Window; with
// count the number of live entries, fits := count + N <= Ceil. When the batch
// fits and is not a peek, N entries stamped max(Now, newest entry) are
// appended, and the log expires Window after its newest entry.
type Op struct {
	// Kind is what the op does: Add (a bounded add) or Log (a log append).
	Kind Kind
	// Key is the cell the op writes (or reads, in a peek).
	Key Key

	// N is the delta (Add) or the number of entries to append (Log).
	N int64
	// Floor is the value the cell is raised to before the check (Add only).
	Floor int64
	// Ceil is the largest value the cell may reach (Add) or the largest
	// number of live entries (Log).
	Ceil int64

	// Prior names a second cell whose weighted value counts against Ceil
	// (Add only, when PriorWeight > 0). It must have the same caller as Key.
	// The prior cell is read, never written.
	Prior Key
	// PriorWeight is the prior cell's weight in parts per million, 0 to 1e6.
	PriorWeight int64

	// TTL is how long an Add cell lives after a write (Add only). It must be
	// positive.
	TTL time.Duration
	// Window is the span of a Log (Log only). It must be positive.
	Window time.Duration

	// Period is the period of the limit the op enforces (a day for a
	// PerDay window). Stores may use it as a hint: the hybrid store reads
	// long-lived state from its remote before a key's first decision.
	// Zero means unknown.
	Period time.Duration
}

// Result is what the store reports for one [Op].
type Result struct {
	// Value is, for Add, max(v, Floor) plus N when the batch was applied; for
	// Log, the number of live entries, including the appended ones when the
	// batch was applied.
	Value int64
	// Prior is the value of the Add op's prior cell (0 without one).
	Prior int64
	// Oldest is, for Log, the Unix time in nanoseconds of the entry whose
	// expiry lets the op fit: the (count+N−Ceil)-th oldest live entry when the
	// op does not fit, else the oldest live entry; 0 when the log is empty.
	Oldest int64
	// Newest is, for Log, the Unix time in nanoseconds of the newest live
	// entry; 0 when the log is empty.
	Newest int64
}

// MaxOps is the largest number of ops in one batch.
const MaxOps = 8

// MaxLogAppend is the most entries one Log op may append.
const MaxLogAppend = 1 << 20

// Batch is one atomic decision: the ops of one caller, evaluated at one
// instant, applied all together or not at all.
type Batch struct {
	// Now is the instant of the decision, in Unix nanoseconds.
	Now int64
	// Peek asks for the results without writing anything.
	Peek bool
	// Ops are the operations, at most MaxOps, all with the same Key.Caller
	// and no Key twice. Each op is evaluated against the state from before
	// the batch.
	Ops []Op

	// Results receives one Result per op, in order. The store sets its
	// length to len(Ops), reusing its capacity.
	Results []Result
	// Applied is set by the store: true when every op fit and, unless Peek,
	// every op was written.
	Applied bool
}

// Reset clears b for reuse, keeping the capacity of its slices.
func (b *Batch) Reset() {
	b.Now, b.Peek, b.Applied = 0, false, false
	b.Ops = b.Ops[:0]
	b.Results = b.Results[:0]
}

// NewOp appends a zero Op to b.Ops and returns it for the caller to fill:
// cheaper than appending an Op value, which is built aside and then copied
// into the slice.
func (b *Batch) NewOp() *Op {
	n := len(b.Ops)
	if n < cap(b.Ops) {
		b.Ops = b.Ops[:n+1]
		op := &b.Ops[n]
		*op = Op{}
		return op
	}
	b.Ops = append(b.Ops, Op{})
	return &b.Ops[n]
}

// Validate reports whether b honours the contract, as an error wrapping
// ErrInvalidBatch. Stores call it before touching any state.
func (b *Batch) Validate() error {
	// The common decision, one plain Add, is checked inline.
	if len(b.Ops) == 1 {
		if op := &b.Ops[0]; op.Kind == Add && op.Key.Caller != "" && op.TTL > 0 && op.PriorWeight == 0 {
			return nil
		}
	}
	return b.validate()
}

func (b *Batch) validate() error {
	if len(b.Ops) == 0 {
		return errInvalid("batch has no ops")
	}
	if len(b.Ops) > MaxOps {
		return errInvalid("batch has more than MaxOps ops")
	}
	caller := b.Ops[0].Key.Caller
	if caller == "" {
		return errInvalid("empty caller")
	}
	for i := range b.Ops {
		op := &b.Ops[i]
		if i > 0 {
			if op.Key.Caller != caller {
				return errInvalid("ops of several callers in one batch")
			}
			for j := range i {
				if b.Ops[j].Key == op.Key {
					return errInvalid("one key in two ops of a batch")
				}
			}
		}
		switch op.Kind {
		case Add:
			if op.TTL <= 0 {
				return errInvalid("add op with non-positive TTL")
			}
			if op.PriorWeight < 0 || op.PriorWeight > 1e6 {
				return errInvalid("prior weight outside 0..1e6")
			}
			if op.PriorWeight > 0 && op.Prior.Caller != caller {
				return errInvalid("prior cell of another caller")
			}
		case Log:
			if op.Window <= 0 {
				return errInvalid("log op with non-positive window")
			}
			if op.N < 0 || op.Ceil < 0 {
				return errInvalid("log op with negative N or Ceil")
			}
			if op.N > MaxLogAppend {
				return errInvalid("log op appending more than MaxLogAppend entries")
			}
		default:
			return errInvalid("unknown op kind")
		}
	}
	return nil
}

func errInvalid(msg string) error {
	return &invalidError{msg: "store: invalid batch: " + msg}
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalidBatch }

// Store keeps rate-limit state and applies batches atomically.
//
// Implementations are safe for concurrent use. Every method takes a context
// first; a store that does I/O honours its deadline and cancellation.
type Store interface {
	// Do validates b, then evaluates every op at b.Now and, when all fit and
	// b.Peek is false, applies them all; nothing is written otherwise. It
	// fills b.Results and b.Applied. The evaluation and the writes are atomic
	// with respect to every other call on the same caller.
	//
	// Errors: a contract violation wraps ErrInvalidBatch; a backend failure
	// wraps ErrUnavailable; after Close, ErrClosed. On error b.Applied is
	// false and the state of the batch's keys is unchanged.
	Do(ctx context.Context, b *Batch) error

	// Reset deletes the given cells and logs, as if they had never been
	// written. Missing keys are not an error.
	Reset(ctx context.Context, keys ...Key) error

	// Close releases what the store owns (goroutines, buffers; never a client
	// the caller passed in). It is idempotent; later calls of other methods
	// return ErrClosed.
	Close() error
}

// Weighted returns ⌊v × ppm / 1e6⌋ for v ≥ 0 and ppm in 0..1e6, without
// overflow for any int64 v; it is 0 for v ≤ 0. Stores use it for the prior
// cell of an Add op, so that every store computes the same integer.
func Weighted(v, ppm int64) int64 {
	if v <= 0 {
		return 0
	}
	return v/1_000_000*ppm + v%1_000_000*ppm/1_000_000
}

// Fits reports whether v + n + used <= ceil, computed exactly: sums beyond
// the int64 range never wrap around into a yes. Stores use it for the
// bounded add.
func Fits(v, n, used, ceil int64) bool {
	var hi int64
	var lo uint64
	for _, x := range [3]int64{v, n, used} {
		var carry uint64
		lo, carry = bits.Add64(lo, uint64(x), 0)
		hi += int64(carry) + x>>63 // x>>63 sign-extends x to 128 bits
	}
	chi, clo := ceil>>63, uint64(ceil)
	return hi < chi || (hi == chi && lo <= clo)
}
