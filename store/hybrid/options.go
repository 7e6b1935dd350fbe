package hybrid

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of the options.
const (
	// DefaultSyncInterval is how often the flusher syncs with the remote.
	DefaultSyncInterval = time.Second
	// DefaultMaxKeys bounds the number of cells a Store holds.
	DefaultMaxKeys = 1 << 20
	// DefaultRemoteTimeout bounds a remote call made on a decision path (a
	// first-sight read, a lease request) on top of the caller's context.
	DefaultRemoteTimeout = 250 * time.Millisecond
	// DefaultFlushTimeout bounds one flush, and Close's final flush.
	DefaultFlushTimeout = 5 * time.Second
)

// ErrInvalidOption reports an option value New cannot use, or a remote that
// cannot serve a hybrid store (see NewChecked).
var ErrInvalidOption = errors.New("hybrid: invalid option")

// Option configures a Store.
type Option func(*options)

type options struct {
	interval      time.Duration
	clock         func() time.Time
	strict        bool
	maxKeys       int
	shards        int
	longPeriod    time.Duration
	remoteTimeout time.Duration
	flushTimeout  time.Duration
	process       string
	noFlusher     bool
}

func defaults() options {
	return options{
		interval:      DefaultSyncInterval,
		maxKeys:       DefaultMaxKeys,
		shards:        64,
		remoteTimeout: DefaultRemoteTimeout,
		flushTimeout:  DefaultFlushTimeout,
	}
}

// WithSyncInterval sets how often the flusher sends pending deltas to the
// remote (default 1 s). Shorter intervals tighten the relaxed bound and cost
// proportionally more commands; see docs/hybrid.md.
func WithSyncInterval(d time.Duration) Option { return func(o *options) { o.interval = d } }

// WithClock sets the source of time the store uses between decisions: the
// instant of a flush (for TTLs and heartbeats) and idle detection of leases.
// Without it the store uses the latest decision instant it has seen
// (store.Batch.Now), so time enters only through the limiter's clock.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// Strict selects strict mode: quota leases reserved from the remote, so that
// the global limit holds exactly whatever the number of processes. See the
// package documentation for its rules.
func Strict() Option { return func(o *options) { o.strict = true } }

// WithMaxKeys bounds the number of cells held (default DefaultMaxKeys); the
// least recently used go first (by CLOCK, an approximation of LRU). Pending
// deltas of an evicted cell are kept for the next flush up to a bound, and
// counted in Stats.DroppedDeltas beyond it.
func WithMaxKeys(n int) Option { return func(o *options) { o.maxKeys = n } }

// WithShards sets the number of lock shards (default 64), rounded down to a
// power of two and to at most the key bound.
func WithShards(n int) Option { return func(o *options) { o.shards = n } }

// WithLongPeriod sets the period from which a limit's state is read from the
// remote before a caller's first decision in this process (default 100 ×
// the sync interval: the day, not the minute). Shorter windows are learned
// from the next flush.
func WithLongPeriod(d time.Duration) Option { return func(o *options) { o.longPeriod = d } }

// WithRemoteTimeout bounds each remote call made on a decision path: the
// first-sight read and, in strict mode, a lease request (default
// DefaultRemoteTimeout). The caller's context deadline applies as well.
func WithRemoteTimeout(d time.Duration) Option { return func(o *options) { o.remoteTimeout = d } }

// WithFlushTimeout bounds each flush, and the final flush of Close (default
// DefaultFlushTimeout).
func WithFlushTimeout(d time.Duration) Option { return func(o *options) { o.flushTimeout = d } }

// WithProcessID sets the id under which this store registers its heartbeat
// and numbers its flushes (default: random). Two live stores must never
// share one.
func WithProcessID(id string) Option { return func(o *options) { o.process = id } }

// WithoutFlusher starts no background flusher: the remote is synced only by
// explicit Flush calls and by Close. Simulations that drive time themselves
// use it.
func WithoutFlusher() Option { return func(o *options) { o.noFlusher = true } }

// fix resets each invalid setting to its default, keeping the valid ones:
// the lenient New never lets one bad option discard the others.
func (o *options) fix() {
	d := defaults()
	if o.interval <= 0 {
		o.interval = d.interval
	}
	if o.maxKeys <= 0 {
		o.maxKeys = d.maxKeys
	}
	if o.shards <= 0 {
		o.shards = d.shards
	}
	if o.longPeriod < 0 {
		o.longPeriod = 0
	}
	if o.remoteTimeout <= 0 {
		o.remoteTimeout = d.remoteTimeout
	}
	if o.flushTimeout <= 0 {
		o.flushTimeout = d.flushTimeout
	}
}

func (o *options) validate() error {
	switch {
	case o.interval <= 0:
		return fmt.Errorf("%w: sync interval %v must be positive", ErrInvalidOption, o.interval)
	case o.maxKeys <= 0:
		return fmt.Errorf("%w: max keys %d must be positive", ErrInvalidOption, o.maxKeys)
	case o.shards <= 0:
		return fmt.Errorf("%w: shard count %d must be positive", ErrInvalidOption, o.shards)
	case o.longPeriod < 0:
		return fmt.Errorf("%w: long period %v must not be negative", ErrInvalidOption, o.longPeriod)
	case o.remoteTimeout <= 0:
		return fmt.Errorf("%w: remote timeout %v must be positive", ErrInvalidOption, o.remoteTimeout)
	case o.flushTimeout <= 0:
		return fmt.Errorf("%w: flush timeout %v must be positive", ErrInvalidOption, o.flushTimeout)
	}
	return nil
}
