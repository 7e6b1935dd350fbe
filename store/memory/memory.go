// Package memory is an in-process [store.Store]: state lives in this
// process's memory, sharded by caller key, bounded by an LRU, and dropped
// when it expires.
//
// It is the store for a single process, for tests, and the local half of
// the hybrid store. It starts no goroutine unless WithSweepInterval asks for
// one, which Close stops.
package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/floodgate-go/floodgate/internal/timelog"
	"github.com/floodgate-go/floodgate/store"
)

var _ store.Store = (*Store)(nil)

// DefaultMaxKeys is the default bound on the number of keys a Store holds.
const DefaultMaxKeys = 1 << 20

// Store keeps rate-limit state in process memory.
//
// Keys are spread over shards by a hash of their caller, one mutex per shard,
// so a batch (always of one caller) locks one shard. Each shard is an LRU;
// together they hold at most WithMaxKeys keys, and the least recently used
// key of a full shard is forgotten to make room. Expired state is treated as
// absent and freed when next touched, by the LRU, or by the optional sweeper.
//
// A Store is safe for concurrent use. Its zero value is not usable; call New.
type Store struct {
	shards  []shard
	mask    uint64 // len(shards) − 1; len(shards) is a power of two
	seed    maphash.Seed
	maxKeys int

	closed atomic.Bool

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type shard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[store.Key, *cell]
	// mru caches the most recently used key's cell: a hot key's next
	// decision skips the map lookup, and it is already the LRU's front.
	// Every path that adds or removes keys keeps it true.
	mruKey  store.Key
	mru     *cell
	lastNow int64 // latest batch instant seen, for Sweep
}

// cell is the state behind one key: a counter, or a log when log != nil.
type cell struct {
	expires int64 // Unix ns; the cell is absent from then on
	value   int64
	log     *timelog.Log
}

// Option configures a Store.
type Option func(*options)

type options struct {
	maxKeys int
	shards  int
	sweep   time.Duration
}

// WithMaxKeys bounds the number of keys held; the least recently used go
// first. The default is DefaultMaxKeys. n must be positive.
func WithMaxKeys(n int) Option { return func(o *options) { o.maxKeys = n } }

// WithShards sets the number of lock shards (default 64), rounded down to a
// power of two and to at most the key bound. More shards mean less
// contention between callers.
func WithShards(n int) Option { return func(o *options) { o.shards = n } }

// WithSweepInterval starts a goroutine that frees expired state every d;
// Close stops it. Without it, expired state is freed lazily.
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweep = d } }

// New returns an empty Store. An invalid option (a non-positive key bound
// or shard count, a negative sweep interval) falls back to its default and
// the others still apply; use NewChecked to get an error instead.
func New(opts ...Option) *Store {
	s, _ := newStore(opts, false) // lenient: cannot fail
	return s
}

// NewChecked is New, returning an error for invalid options.
func NewChecked(opts ...Option) (*Store, error) { return newStore(opts, true) }

func newStore(opts []Option, checked bool) (*Store, error) {
	o := options{maxKeys: DefaultMaxKeys, shards: 64}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.maxKeys <= 0 && checked:
		return nil, fmt.Errorf("memory: max keys %d must be positive", o.maxKeys)
	case o.shards <= 0 && checked:
		return nil, fmt.Errorf("memory: shard count %d must be positive", o.shards)
	case o.sweep < 0 && checked:
		return nil, fmt.Errorf("memory: sweep interval %v must not be negative", o.sweep)
	}
	if o.maxKeys <= 0 {
		o.maxKeys = DefaultMaxKeys
	}
	if o.shards <= 0 {
		o.shards = 64
	}
	o.sweep = max(o.sweep, 0)
	// A power of two, so that picking a shard is a mask, not a division.
	n := 1
	for n*2 <= min(o.shards, o.maxKeys) {
		n *= 2
	}
	s := &Store{shards: make([]shard, n), mask: uint64(n - 1), seed: maphash.MakeSeed(), maxKeys: o.maxKeys}
	per := o.maxKeys / n // floor, so the shards together never exceed maxKeys
	for i := range s.shards {
		sh := &s.shards[i]
		sh.lru, _ = simplelru.NewLRU(per, sh.evicted)
	}
	if o.sweep > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweeper(o.sweep)
	}
	return s, nil
}

func (s *Store) shardOf(caller string) *shard {
	if s.mask == 0 {
		return &s.shards[0]
	}
	return &s.shards[maphash.String(s.seed, caller)&s.mask]
}

// Do implements store.Store.
func (s *Store) Do(_ context.Context, b *store.Batch) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	b.Applied = false
	if err := b.Validate(); err != nil {
		return err
	}
	if cap(b.Results) < len(b.Ops) {
		b.Results = make([]store.Result, len(b.Ops))
	}
	b.Results = b.Results[:len(b.Ops)]

	sh := s.shardOf(b.Ops[0].Key.Caller)
	var cells [store.MaxOps]*cell // each op's cell, looked up once
	fits := true
	sh.mu.Lock()
	sh.lastNow = max(sh.lastNow, b.Now)
	for i := range b.Ops {
		c, ok := sh.eval(&b.Ops[i], b.Now, &b.Results[i])
		cells[i] = c
		fits = fits && ok
	}
	if fits {
		for i := range b.Ops {
			settle(&b.Ops[i], b.Now, &b.Results[i])
			if !b.Peek {
				sh.apply(&b.Ops[i], cells[i], b.Now, &b.Results[i])
			}
		}
	}
	sh.mu.Unlock()
	b.Applied = fits
	return nil
}

// live returns the cell of key if present and not expired at now.
func (sh *shard) live(key store.Key, now int64) *cell {
	c := sh.mru
	if c == nil || sh.mruKey != key {
		var ok bool
		if c, ok = sh.lru.Get(key); !ok {
			return nil
		}
		sh.mruKey, sh.mru = key, c
	}
	if c.expires <= now {
		sh.lru.Remove(key) // the eviction callback clears mru
		return nil
	}
	return c
}

// evicted is the LRU's eviction callback, run under the shard lock for
// every key removed, whatever the reason.
func (sh *shard) evicted(key store.Key, c *cell) {
	if sh.mru == c {
		sh.mruKey, sh.mru = store.Key{}, nil
	}
}

// eval fills r with op's result before the batch (N not included) and
// reports whether op fits, with the op's live cell (nil when absent).
func (sh *shard) eval(op *store.Op, now int64, r *store.Result) (*cell, bool) {
	*r = store.Result{}
	c := sh.live(op.Key, now)
	if op.Kind == store.Add {
		var v int64
		if c != nil {
			v = c.value
		}
		r.Value = max(v, op.Floor)
		used := int64(0)
		if op.PriorWeight > 0 {
			if p := sh.live(op.Prior, now); p != nil {
				r.Prior = p.value
				used = store.Weighted(p.value, op.PriorWeight)
			}
		}
		return c, store.Fits(r.Value, op.N, used, op.Ceil)
	}
	// store.Log
	var l *timelog.Log
	if c != nil {
		l = c.log
	}
	return c, timelog.Eval(l, op, now, r)
}

// settle turns the result eval computed into the result after op, for a
// batch that fits.
func settle(op *store.Op, now int64, r *store.Result) {
	if op.Kind == store.Add {
		r.Value += op.N
		return
	}
	timelog.Settle(op, now, r)
}

// apply writes op, which eval found to fit, to its live cell c (nil when
// absent).
func (sh *shard) apply(op *store.Op, c *cell, now int64, r *store.Result) {
	if c == nil {
		c = &cell{}
		sh.lru.Add(op.Key, c)
		sh.mruKey, sh.mru = op.Key, c
	}
	if op.Kind == store.Add {
		c.value = r.Value
		c.expires = now + int64(op.TTL)
		return
	}
	c.log, c.expires = timelog.Append(c.log, op, now)
}

// Reset implements store.Store.
func (s *Store) Reset(_ context.Context, keys ...store.Key) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	for _, k := range keys {
		sh := s.shardOf(k.Caller)
		sh.mu.Lock()
		sh.lru.Remove(k)
		sh.mu.Unlock()
	}
	return nil
}

// Len returns the number of keys held, expired ones not yet freed included.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}

// MaxKeys returns the bound on the number of keys held.
func (s *Store) MaxKeys() int { return s.maxKeys }

// Sweep frees the state that has expired by the latest instant the store
// has seen in a batch, and returns how many keys it freed.
func (s *Store) Sweep() int {
	now := int64(0)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now = max(now, sh.lastNow)
		sh.mu.Unlock()
	}
	freed := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, k := range sh.lru.Keys() {
			if c, ok := sh.lru.Peek(k); ok && c.expires <= now {
				sh.lru.Remove(k)
				freed++
			}
		}
		sh.mu.Unlock()
	}
	return freed
}

func (s *Store) sweeper(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep()
		}
	}
}

// Close stops the sweeper, if any, and waits for it. It is idempotent;
// afterwards Do and Reset return store.ErrClosed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
	})
	return nil
}
