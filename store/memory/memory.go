// Package memory is an in-process [store.Store]: state lives in this
// process's memory, sharded by caller key, bounded in the number of keys
// (the least recently used give way, by the CLOCK approximation of LRU),
// and dropped when it expires.
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
	"unsafe"

	"github.com/floodgate-go/floodgate/internal/keytable"
	"github.com/floodgate-go/floodgate/internal/onecell"
	"github.com/floodgate-go/floodgate/internal/timelog"
	"github.com/floodgate-go/floodgate/store"
)

var _ store.Store = (*Store)(nil)

// DefaultMaxKeys is the default bound on the number of keys a Store holds.
const DefaultMaxKeys = 1 << 20

// Store keeps rate-limit state in process memory.
//
// Keys are spread over shards by a hash of their caller, one mutex per shard,
// so a batch (always of one caller) locks one shard. Together the shards
// hold at most WithMaxKeys keys. A full shard forgets a key to make room,
// chosen by CLOCK (second chance), an approximation of least recently used:
// a key in use survives while an idle one remains, the keys of the batch
// being run are never the ones forgotten unless the shard holds nothing
// else, and a shard whose keys are all among the last 16 used forgets
// exactly its least recently used.
// Expired state is treated as absent and freed when next touched, when it
// is evicted, or by the optional sweeper.
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
	shardState
	// Padding to a multiple of 64 bytes, so that two shards never share a
	// cache line and goroutines on different shards do not contend.
	_ [(64 - unsafe.Sizeof(shardState{})%64) % 64]byte
}

type shardState struct {
	mu      sync.Mutex
	t       keytable.Table[cell]
	last    [2]lookup // the shard's two latest lookups, newest first
	lastNow int64     // latest batch instant seen, for Sweep

	// logs holds the time-ordered logs of Log keys, by position. Add keys,
	// the common case, pay nothing for it.
	logs map[uint32]*timelog.Log

	decisions, allowed int64 // batches run, and those that fit
}

// lookup remembers where a key was found: its position, and the hash of
// its caller, which rules out another caller's key without reading its
// entry.
type lookup struct {
	p  uint32
	hc uint64
}

// cell is the state of an Add key (a Log key's log is in its shard's logs).
type cell struct {
	value   int64
	expires int64 // Unix ns; the key is absent from then on
}

// Option configures a Store.
type Option func(*options)

type options struct {
	maxKeys int
	shards  int
	sweep   time.Duration
}

// WithMaxKeys bounds the number of keys held; the least recently used go
// first (by CLOCK, an approximation of LRU; see Store). The default is
// DefaultMaxKeys. n must be positive.
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
		sh.t = keytable.New[cell](per, s.seed)
		sh.t.OnRemove = sh.forget
	}
	if o.sweep > 0 {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.sweeper(o.sweep)
	}
	return s, nil
}

// shardOf returns caller's shard and the hash of caller that picked it.
func (s *Store) shardOf(caller string) (*shard, uint64) {
	hc := maphash.String(s.seed, caller)
	return &s.shards[hc&s.mask], hc
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

	sh, hc := s.shardOf(b.Ops[0].Key.Caller)
	sh.mu.Lock()
	sh.lastNow = max(sh.lastNow, b.Now)
	var fits bool
	if len(b.Ops) == 1 {
		fits = sh.one(b, hc)
	} else {
		fits = sh.many(b, hc)
	}
	sh.decisions++
	if fits {
		sh.allowed++
	}
	sh.mu.Unlock()
	b.Applied = fits
	return nil
}

// one runs a batch of one op, the common decision, and reports whether it
// fits: many without the per-op bookkeeping.
func (sh *shard) one(b *store.Batch, hc uint64) bool {
	return sh.oneOp(&b.Ops[0], &b.Results[0], b.Now, b.Peek, hc)
}

// oneOp runs op alone, as a batch of that op, and reports whether it fits.
func (sh *shard) oneOp(op *store.Op, r *store.Result, now int64, peek bool, hc uint64) bool {
	p, h, fits := sh.eval(op, hc, now, r)
	if fits {
		settle(op, now, r)
		if !peek {
			if p == 0 {
				p, _ = sh.t.Insert(&op.Key, h, cell{})
				if l := (lookup{p, hc}); sh.last[0] != l { // an expired key may come back where it was
					sh.last[0], sh.last[1] = l, sh.last[0]
				}
			}
			sh.apply(op, p, now, r)
		}
	}
	return fits
}

// cells is the Store as a onecell.Store: the limiter's short path.
type cells Store

func init() {
	onecell.RegisterStore(func(s any) (onecell.Store, bool) {
		if m, ok := s.(*Store); ok {
			return (*cells)(m), true
		}
		return nil, false
	})
}

// AddCell implements onecell.Store: Do with a batch of one Add op, without
// the batch. It repeats Do's few lines of locking and counting instead of
// building a one-op batch on the stack for Do's code, as the hybrid store
// does: that measured 11 ns more per decision (least thread CPU time,
// BenchmarkMemoryVsXTimeRateInterleaved), enough to lose the comparison
// with x/time/rate.
func (c *cells) AddCell(ns, caller string, window, weight, n, floor, ceil, ttl, period, now int64, peek bool) (int64, int64, bool, bool, error) {
	s := (*Store)(c)
	if s.closed.Load() {
		return 0, 0, false, true, store.ErrClosed
	}
	var op store.Op
	onecell.Fill(&op, ns, caller, window, weight, n, floor, ceil, ttl, period)
	var r store.Result
	sh, hc := s.shardOf(caller)
	sh.mu.Lock()
	sh.lastNow = max(sh.lastNow, now)
	fits := sh.oneOp(&op, &r, now, peek, hc)
	sh.decisions++
	if fits {
		sh.allowed++
	}
	sh.mu.Unlock()
	return r.Value, r.Prior, fits, true, nil
}

// many runs a batch of several ops and reports whether they all fit.
func (sh *shard) many(b *store.Batch, hc uint64) bool {
	// Each op's position (0 when absent) and, for an absent key, its hash.
	var pos [store.MaxOps]uint32
	var hashes [store.MaxOps]uint64
	fits := true
	for i := range b.Ops {
		var ok bool
		pos[i], hashes[i], ok = sh.eval(&b.Ops[i], hc, b.Now, &b.Results[i])
		fits = fits && ok
	}
	if !fits {
		return false
	}
	for i := range b.Ops {
		settle(&b.Ops[i], b.Now, &b.Results[i])
	}
	if !b.Peek {
		// Keys already held first: adding an absent key may evict a
		// key, which must not be a key of this batch that is still to be
		// written. (Eviction spares the batch's keys; a shard too small
		// to hold them all forgets one that is already written.)
		for i := range b.Ops {
			if pos[i] != 0 {
				sh.apply(&b.Ops[i], pos[i], b.Now, &b.Results[i])
			}
		}
		for i := range b.Ops {
			if pos[i] == 0 {
				p, _ := sh.t.Insert(&b.Ops[i].Key, hashes[i], cell{})
				sh.apply(&b.Ops[i], p, b.Now, &b.Results[i])
			}
		}
	}
	return true
}

// forget drops the log of the key at position p, which leaves the table.
func (sh *shard) forget(p uint32, _ *keytable.Entry[cell]) {
	if len(sh.logs) > 0 {
		delete(sh.logs, p)
	}
}

// live returns the position of key if it is held and not expired at now,
// marking it used; otherwise 0 and the key's hash. hc is the hash of
// key.Caller.
func (sh *shard) live(key *store.Key, hc uint64, now int64) (uint32, uint64) {
	t := &sh.t
	// A hot caller's next decision skips the index: its key is one of the
	// two latest looked up (two, for a minute and a day counter).
	var p uint32
	var h uint64
	switch l := &sh.last; {
	case l[0].hc == hc && t.At(l[0].p).Holds(key):
		p = l[0].p
	case l[1].hc == hc && t.At(l[1].p).Holds(key):
		p = l[1].p
		l[0], l[1] = l[1], l[0]
	default:
		h = t.HashKey(hc, key)
		if p = t.Find(key, h); p == 0 {
			return 0, h
		}
		l[0], l[1] = lookup{p, hc}, l[0]
	}
	if t.At(p).Val.expires <= now {
		if h == 0 {
			h = t.HashKey(hc, key)
		}
		t.Remove(p, h)
		return 0, h
	}
	// Only a live key counts as used: an op then marks at most two keys
	// (its prior and its own, or the insert of its own), which the table
	// spares for the rest of the batch.
	t.Touch(p)
	return p, 0
}

// eval fills r with op's result before the batch (N not included) and
// reports whether op fits, with the op's live position (0 when absent, and
// then the key's hash).
func (sh *shard) eval(op *store.Op, hc uint64, now int64, r *store.Result) (uint32, uint64, bool) {
	*r = store.Result{}
	if op.Kind == store.Add {
		used := int64(0)
		if op.PriorWeight > 0 {
			// The prior first, so that the op's own key is the latest
			// used (a hot key's next decision finds it without the index).
			if q, _ := sh.live(&op.Prior, hc, now); q != 0 {
				r.Prior = sh.t.At(q).Val.value
				used = store.Weighted(r.Prior, op.PriorWeight)
			}
		}
		p, h := sh.live(&op.Key, hc, now)
		var v int64
		if p != 0 {
			v = sh.t.At(p).Val.value
		}
		r.Value = max(v, op.Floor)
		return p, h, store.Fits(r.Value, op.N, used, op.Ceil)
	}
	// store.Log
	p, h := sh.live(&op.Key, hc, now)
	var l *timelog.Log
	if p != 0 {
		l = sh.logs[p]
	}
	return p, h, timelog.Eval(l, op, now, r)
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

// apply writes op, which eval found to fit, to its key at position p.
func (sh *shard) apply(op *store.Op, p uint32, now int64, r *store.Result) {
	c := &sh.t.At(p).Val
	if op.Kind == store.Add {
		c.value = r.Value
		c.expires = now + int64(op.TTL)
		return
	}
	if sh.logs == nil {
		sh.logs = make(map[uint32]*timelog.Log)
	}
	sh.logs[p], c.expires = timelog.Append(sh.logs[p], op, now)
}

// Reset implements store.Store.
func (s *Store) Reset(_ context.Context, keys ...store.Key) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	for i := range keys {
		k := &keys[i]
		sh, hc := s.shardOf(k.Caller)
		sh.mu.Lock()
		h := sh.t.HashKey(hc, k)
		if p := sh.t.Find(k, h); p != 0 {
			sh.t.Remove(p, h)
		}
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
		n += sh.t.Len()
		sh.mu.Unlock()
	}
	return n
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	// Keys is the number of keys held, as Len reports it.
	Keys int
	// Decisions is the number of batches run (peeks included); Allowed
	// those in which every op fit, Denied the others.
	Decisions, Allowed, Denied int64
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Keys += sh.t.Len()
		st.Decisions += sh.decisions
		st.Allowed += sh.allowed
		sh.mu.Unlock()
	}
	st.Denied = st.Decisions - st.Allowed
	return st
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
		t := &sh.t
		for p := t.Next(0); p != 0; p = t.Next(p) {
			if e := t.At(p); e.Val.expires <= now {
				t.Remove(p, t.HashOf(e))
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
