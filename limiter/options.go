package limiter

import (
	"context"
	"time"

	"github.com/floodgate-go/floodgate/store"
)

// Option configures a [Limiter].
type Option func(*config)

type config struct {
	store     store.Store
	now       func() time.Time
	prefix    string
	limitFunc LimitFunc
	bad       string
}

// LimitFunc returns the limits in force for one caller key, for per-tenant
// plans. It is called on every decision, so it should answer from memory.
// An empty result means the algorithm's own limits. State is kept per
// period, not per count: with a window algorithm, a caller whose limit
// changes mid-window keeps the count already spent in it; a token bucket
// keeps the time up to which it is spent, which the new limit re-values at
// its own rate (docs/algorithms.md).
type LimitFunc func(ctx context.Context, key string) ([]Limit, error)

// WithStore sets where state is kept. Without it the limiter creates the
// default store, the hybrid store with no remote (process memory only),
// owned by the limiter and closed by [Limiter.Close]. A store passed here
// belongs to the caller: Limiter.Close leaves it open.
func WithStore(s store.Store) Option {
	return func(c *config) {
		if s == nil {
			c.bad = "nil store"
		}
		c.store = s
	}
}

// WithClock sets the source of time; tests pass a fake clock. It is the only
// place time enters floodgate. The default is the wall clock read at New
// advanced by the monotonic clock: it never goes backwards, and it does not
// follow steps of the system clock made after New. A decision whose clock
// reads an instant before 1970 or from 2116-02-20 on (the zero time.Time,
// for one) fails with ErrClockRange: start a fake clock at a real date,
// such as time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now == nil {
			c.bad = "nil clock"
		}
		c.now = now
	}
}

// WithPrefix namespaces the limiter's state: limiters with different
// prefixes on one store never share state. The default is empty.
func WithPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithLimitFunc sets a function that picks the limits for each key, for
// per-tenant plans.
func WithLimitFunc(f LimitFunc) Option {
	return func(c *config) {
		if f == nil {
			c.bad = "nil limit function"
		}
		c.limitFunc = f
	}
}
