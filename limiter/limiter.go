package limiter

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/floodgate-go/floodgate/internal/cowmap"
	"github.com/floodgate-go/floodgate/internal/onecell"
	"github.com/floodgate-go/floodgate/store"
)

// Limiter decides whether requests are allowed: one [Algorithm] over one
// [store.Store].
//
// A Limiter is safe for concurrent use. It holds no per-key state of its
// own; all of it lives in the store, so limiters that share a store and a
// prefix share their limits. Call Close when done if the limiter created its
// own store (no WithStore).
type Limiter struct {
	alg       Algorithm
	store     store.Store
	ownsStore bool
	now       func() time.Time // nil: the monotonic default clock
	clockBase time.Time        // the default clock's origin
	baseNano  int64            // clockBase in Unix ns
	limitFunc LimitFunc

	limits     []Limit  // static limits
	maxN       int64    // the largest n decide takes without a closer look
	namespaces []string // one per static limit
	nsPrefix   string   // escape(prefix) + ":" + alg.Name() + ":"
	nsCache    cowmap.Map[time.Duration, string]

	pool sync.Pool // *scratch

	// The short path (internal/onecell): set when a decision is one Add to
	// one cell of a store in process memory.
	cellAlg onecell.Algorithm
	cells   onecell.Store
}

type scratch struct {
	batch store.Batch
	ops   [store.MaxOps]store.Op
	res   [store.MaxOps]store.Result
	ns    [store.MaxOps]string
	req   Request
	out   Result
}

// New returns a limiter enforcing alg's limits (or those of WithLimitFunc).
// It validates every limit once and returns an error wrapping
// ErrInvalidLimit or ErrInvalidOption on bad input.
func New(alg Algorithm, opts ...Option) (*Limiter, error) {
	if alg == nil {
		return nil, fmt.Errorf("%w: nil algorithm", ErrInvalidOption)
	}
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.bad != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalidOption, c.bad)
	}
	l := &Limiter{alg: alg, now: c.now, limitFunc: c.limitFunc, store: c.store}
	if l.now == nil {
		l.clockBase = time.Now()
		l.baseNano = l.clockBase.UnixNano()
	}
	l.nsPrefix = alg.Name() + ":"
	if c.prefix != "" {
		l.nsPrefix = store.Escape(c.prefix) + ":" + l.nsPrefix
	}
	limits := alg.Limits()
	if c.limitFunc != nil {
		l.maxN = math.MaxInt64 // checked per call against the function's limits
	}
	if len(limits) == 0 && c.limitFunc == nil {
		return nil, fmt.Errorf("%w: no limits and no limit function", ErrInvalidLimit)
	}
	if len(limits) > 0 {
		if err := checkLimits(alg, limits); err != nil {
			return nil, err
		}
		l.limits = append([]Limit(nil), limits...)
		if c.limitFunc == nil { // else a plan may allow more than the default
			l.maxN = math.MaxInt64
			for _, lim := range l.limits {
				l.maxN = min(l.maxN, lim.Capacity())
			}
		}
		for _, lim := range l.limits {
			l.namespaces = append(l.namespaces, l.nsPrefix+lim.Period.String())
		}
	}
	if l.store == nil {
		l.store = defaultStore()
		l.ownsStore = true
	}
	if c.limitFunc == nil && len(l.limits) == 1 {
		ca, okAlg := onecell.AlgorithmOf(alg)
		cs, okStore := onecell.StoreOf(l.store)
		if okAlg && okStore {
			l.cellAlg, l.cells = ca, cs
		}
	}
	l.pool.New = func() any {
		s := new(scratch)
		s.batch.Ops = s.ops[:0]
		s.batch.Results = s.res[:0]
		return s
	}
	return l, nil
}

func checkLimits(alg Algorithm, limits []Limit) error {
	if len(limits) > store.MaxOps {
		return fmt.Errorf("%w: %d limits, at most %d", ErrInvalidLimit, len(limits), store.MaxOps)
	}
	for i, lim := range limits {
		if err := lim.Validate(); err != nil {
			return err
		}
		for _, prev := range limits[:i] {
			if prev.Period == lim.Period {
				return fmt.Errorf("%w: two limits with period %v", ErrInvalidLimit, lim.Period)
			}
		}
	}
	return alg.Check(limits)
}

// Allow reports whether one request by key may happen now. It is AllowN(ctx, key, 1).
func (l *Limiter) Allow(ctx context.Context, key string) (res Result, err error) {
	err = l.decide(ctx, key, 1, false, &res)
	return res, err
}

// AllowN reports whether n units for key may be spent now, and spends them
// if so. A denied request is charged to none of the limits.
//
// Errors: an empty or overlong key (ErrEmptyKey, ErrKeyTooLong), n <= 0 or n
// above what a limit can ever admit (ErrInvalidN), invalid limits from the
// limit function (ErrInvalidLimit), and store failures, wrapped (see
// store.ErrUnavailable). On error the Result is the zero Result: deciding
// what to do then (fail open or closed) is the caller's choice.
func (l *Limiter) AllowN(ctx context.Context, key string, n int64) (res Result, err error) {
	err = l.decide(ctx, key, n, false, &res)
	return res, err
}

// Peek reports key's state without spending anything: Allowed says whether
// one more request would be admitted now, Remaining how much is left now
// (not counting that request), and RetryAfter, when not allowed, how long
// until one would be.
func (l *Limiter) Peek(ctx context.Context, key string) (Result, error) {
	var res Result
	err := l.decide(ctx, key, 1, true, &res)
	if err == nil && res.Allowed {
		res.Remaining++ // the would-be request is not spent
	}
	return res, err
}

// Reset forgets key's state, as if it had never made a request: operators
// use it to unblock a tenant.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	s := l.pool.Get().(*scratch)
	defer l.pool.Put(s)
	r := &s.req
	r.Caller, r.N, r.Limits, r.Namespaces = key, 1, l.limits, l.namespaces
	if l.limitFunc != nil {
		if err := l.planLimits(ctx, s); err != nil {
			return err
		}
	}
	now, err := l.nowNano()
	if err != nil {
		return err
	}
	r.Now = now
	keys := l.alg.Keys(make([]store.Key, 0, 2*len(r.Limits)), r)
	if err := l.store.Reset(ctx, keys...); err != nil {
		return fmt.Errorf("limiter: reset %q: %w", key, err)
	}
	return nil
}

// Now returns the limiter's current time: its clock (WithClock), or the
// default monotonic clock. Adapters use it so that time enters in one place.
func (l *Limiter) Now() time.Time {
	if l.now != nil {
		return l.now()
	}
	now, _ := l.nowNano() // the default clock never fails
	return time.Unix(0, now)
}

// Store returns the store the limiter keeps its state in.
func (l *Limiter) Store() store.Store { return l.store }

// Close closes the store if the limiter created it (no WithStore); a store
// passed with WithStore belongs to the caller and is left open.
func (l *Limiter) Close() error {
	if l.ownsStore {
		return l.store.Close()
	}
	return nil
}

func checkKey(key string) error {
	if key == "" {
		return ErrEmptyKey
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrKeyTooLong, len(key), MaxKeyLen)
	}
	return nil
}

func (l *Limiter) decide(ctx context.Context, key string, n int64, peek bool, res *Result) error {
	if key == "" || len(key) > MaxKeyLen || n <= 0 || n > l.maxN {
		return l.inputError(key, n)
	}
	var now int64 // read once: a decision handed back by the short path keeps its instant
	if l.cellAlg != nil {
		var err error
		if now, err = l.nowNano(); err != nil {
			return err
		}
		if done, err := l.decideCell(key, n, now, peek, res); done {
			return err
		}
	}
	s := l.pool.Get().(*scratch)
	r := &s.req
	r.Caller, r.N, r.Limits, r.Namespaces = key, n, l.limits, l.namespaces
	if l.limitFunc != nil {
		if err := l.planLimits(ctx, s); err != nil {
			l.pool.Put(s)
			return err
		}
	}
	if l.cellAlg == nil {
		var err error
		if now, err = l.nowNano(); err != nil {
			l.pool.Put(s)
			return err
		}
	}
	r.Now = now
	b := &s.batch
	b.Reset()
	b.Now, b.Peek = r.Now, peek
	l.alg.Plan(b, r)
	err := l.store.Do(ctx, b)
	if err != nil {
		err = fmt.Errorf("limiter: %w", err)
	} else {
		// Through the scratch: res itself would escape to the heap through
		// the interface call. Cleared first, so that an algorithm that
		// leaves a field unset never passes on an earlier decision's.
		s.out = Result{}
		l.alg.Decide(b, r, &s.out)
		res.copyFrom(&s.out)
	}
	l.pool.Put(s)
	return err
}

// decideCell is decide for a one-cell decision: the same store op and
// Result, passed as integers instead of through a batch. It reports false,
// having written nothing, when the batch path must run the decision: for an
// op the batch path would refuse (which valid limits never produce), so
// that it reports it, and when the store needs a remote call first.
func (l *Limiter) decideCell(key string, n, now int64, peek bool, res *Result) (bool, error) {
	window, weight, delta, floor, ceil, ttl := l.cellAlg.CellOp(now, n)
	if ttl <= 0 || uint64(weight) > 1e6 {
		return false, nil
	}
	lim := &l.limits[0]
	v, prior, applied, done, err := l.cells.AddCell(l.namespaces[0], key, window, weight, delta, floor, ceil, ttl, int64(lim.Period), now, peek)
	if err != nil {
		return true, fmt.Errorf("limiter: %w", err)
	}
	if !done {
		return false, nil
	}
	remaining, reset, retry := l.cellAlg.CellResult(now, n, weight, ttl, v, prior, applied)
	res.Allowed, res.Remaining = applied, remaining
	res.Limit = *lim
	res.ResetAfter, res.RetryAfter = time.Duration(reset), time.Duration(retry)
	return true, nil
}

// inputError explains why key or n was refused by decide's quick check.
func (l *Limiter) inputError(key string, n int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("%w: n = %d, must be at least 1", ErrInvalidN, n)
	}
	return l.checkN(l.limits, n)
}

// checkN reports an n above what one of limits can ever admit.
func (l *Limiter) checkN(limits []Limit, n int64) error {
	for _, lim := range limits {
		if c := lim.Capacity(); n > c {
			return fmt.Errorf("%w: n = %d exceeds the %v limit's capacity %d", ErrInvalidN, n, lim, c)
		}
	}
	return nil
}

// planLimits asks the limit function for s.req's limits and namespaces.
func (l *Limiter) planLimits(ctx context.Context, s *scratch) error {
	r := &s.req
	limits, err := l.limitFunc(ctx, r.Caller)
	if err != nil {
		return fmt.Errorf("limiter: limit function for %q: %w", r.Caller, err)
	}
	if len(limits) > 0 {
		if err := checkLimits(l.alg, limits); err != nil {
			return err
		}
		for i, lim := range limits {
			s.ns[i] = l.namespace(lim.Period)
		}
		r.Limits, r.Namespaces = limits, s.ns[:len(limits)]
	}
	if len(r.Limits) == 0 {
		return fmt.Errorf("%w: no limits for key %q", ErrInvalidLimit, r.Caller)
	}
	return l.checkN(r.Limits, r.N)
}

// namespace returns the store namespace for state of the given period,
// caching it so that limit functions cost no allocation per decision.
func (l *Limiter) namespace(period time.Duration) string {
	// Plans mostly use the algorithm's own periods (a minute and a day
	// with other counts): those namespaces are at hand.
	for i := range l.limits {
		if l.limits[i].Period == period {
			return l.namespaces[i]
		}
	}
	if ns, ok := l.nsCache.Load(period); ok {
		return ns
	}
	// Past the cache's bound, a caller inventing periods gets fresh strings.
	return l.nsCache.Add(period, l.nsPrefix+period.String())
}

// nowNano returns the current instant in Unix ns. The default clock reads
// the monotonic clock once, from a wall-clock origin taken at New: it never
// goes backwards and costs one clock read instead of time.Now's two.
func (l *Limiter) nowNano() (int64, error) {
	if l.now != nil {
		return clockNano(l.now())
	}
	return l.baseNano + int64(time.Since(l.clockBase)), nil
}

// maxClock is the end of the clock's range in Unix ns (2116-02-20): an
// instant plus the longest period an algorithm takes (as long again) still
// fits in int64.
const maxClock = math.MaxInt64 / 2

// clockNano returns t in Unix ns, or an error wrapping ErrClockRange when t
// is before 1970 (window and bucket arithmetic counts from the epoch) or
// from maxClock on.
func clockNano(t time.Time) (int64, error) {
	if s := t.Unix(); s < 0 || s > maxClock/int64(time.Second) || t.UnixNano() >= maxClock { // UnixNano fits when s does
		return 0, fmt.Errorf("%w: the clock read %s; use instants from 1970 to 2116, e.g. a fake clock starting at time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)",
			ErrClockRange, t.Format(time.RFC3339Nano))
	}
	return t.UnixNano(), nil
}
