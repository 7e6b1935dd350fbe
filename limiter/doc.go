// Package limiter is floodgate's core: a [Limiter] runs one [Algorithm]
// (package algorithms) over one store (package store) and answers, for a
// caller key, whether a request may happen now.
//
//	lim, err := limiter.New(
//		algorithms.FixedWindow(limiter.PerMinute(120), limiter.PerDay(10_000)),
//		limiter.WithStore(s), // default: the hybrid store, process memory only
//	)
//	res, err := lim.Allow(ctx, "tenant-42")
//
// A decision is one atomic batch of store primitives: several limits are
// checked and charged together, and a denied request changes no state. Time
// enters only through WithClock, so tests drive it; limits can differ per
// key with WithLimitFunc; WithPrefix keeps limiters on one store apart.
//
// Bad input — invalid limits, n <= 0 or above what a limit can ever admit, an
// empty or overlong key — is an error wrapping one of the sentinels below,
// never a panic or a silent deny; store failures come back wrapped too, for
// the caller (or an HTTP adapter) to fail open or closed.
package limiter
