package limiter

import "github.com/floodgate-go/floodgate/store"

// Algorithm turns a decision into store operations and the store's answers
// into a [Result]. Implementations hold no per-key state and never do I/O:
// the store does both. The algorithms package provides fixed window, sliding
// window, token bucket and sliding log.
type Algorithm interface {
	// Name identifies the algorithm in store keys, e.g. "fixed". Two
	// algorithms with different names never share state.
	Name() string

	// Limits returns the limits the algorithm was built with; they apply to
	// every key unless a limit function supplies others.
	Limits() []Limit

	// Check reports whether the algorithm can enforce limits, which have
	// each passed Limit.Validate, as an error wrapping ErrInvalidLimit.
	Check(limits []Limit) error

	// Plan appends to b.Ops the operations that decide r. It is called with
	// r.N between 1 and the capacity of every limit.
	Plan(b *store.Batch, r *Request)

	// Decide sets *res to the Result of r, from b after the store ran it.
	// *res is zero on entry.
	Decide(b *store.Batch, r *Request, res *Result)

	// Keys appends the store keys that hold r.Caller's state at r.Now, for
	// resetting them.
	Keys(dst []store.Key, r *Request) []store.Key
}

// Request is one decision as an [Algorithm] sees it.
type Request struct {
	// Now is the decision's instant in Unix nanoseconds.
	Now int64
	// Caller is the caller's key.
	Caller string
	// N is the number of units asked for.
	N int64
	// Limits are the limits in force for this caller.
	Limits []Limit
	// Namespaces holds, for each limit, the store namespace of its state.
	Namespaces []string
}
