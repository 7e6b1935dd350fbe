package hybrid

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/floodgate-go/floodgate/internal/keytable"
	"github.com/floodgate-go/floodgate/internal/onecell"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
)

var _ store.Store = (*Store)(nil)

// The limiter's short path for one-cell decisions (internal/onecell). A
// Store with no remote is its memory store, so the path goes straight to
// it (Close closes that store first, so the path sees the Store closed
// when Do does). A relaxed Store over a remote that syncs (a store.Syncer,
// such as the Redis store) runs the op through the same code as a batch of
// it. Strict mode keeps the batch path: it takes leases on the decision
// path.
func init() {
	onecell.RegisterStore(func(s any) (onecell.Store, bool) {
		h, ok := s.(*Store)
		switch {
		case !ok:
			return nil, false
		case h.local != nil:
			return onecell.StoreOf(h.local)
		case h.strict || h.passAll:
			return nil, false
		}
		return (*relaxedCells)(h), true
	})
}

// relaxedCells is a relaxed Store as a onecell.Store.
type relaxedCells Store

// AddCell implements onecell.Store: Do with a batch of one Add op, kept on
// the stack. It is not done when the cell must first be read from the
// remote: Do, on the batch path, makes that call. It has then changed no
// more than Do's first attempt would (an expired cell freed, the shard's
// latest instant), nothing a decision counts or sends.
func (c *relaxedCells) AddCell(ns, caller string, window, weight, n, floor, ceil, ttl, period, now int64, peek bool) (int64, int64, bool, bool, error) {
	s := (*Store)(c)
	if s.closed.Load() {
		return 0, 0, false, true, store.ErrClosed
	}
	var ops [1]store.Op
	var res [1]store.Result
	onecell.Fill(&ops[0], ns, caller, window, weight, n, floor, ceil, ttl, period)
	b := store.Batch{Now: now, Peek: peek, Ops: ops[:], Results: res[:]}
	sh, hc := s.shardHash(caller)
	sh.mu.Lock()
	if s.closed.Load() { // under the lock: see Do
		sh.mu.Unlock()
		return 0, 0, false, true, store.ErrClosed
	}
	if now > sh.now {
		sh.now = now
	}
	need := s.evalRelaxed(sh, &b, hc, !peek) // fetch as Do's first attempt does
	sh.mu.Unlock()
	if need != needNothing {
		return 0, 0, false, false, nil
	}
	return res[0].Value, res[0].Prior, b.Applied, true, nil
}

// Store is the hybrid write-behind store: decisions from process memory,
// deltas written behind to a remote store in one batched call per flush.
//
// Per-cell state lives in shards keyed by a hash of the caller, one mutex
// per shard, each shard bounded like the memory store's (least recently
// used first, by CLOCK); together they hold at most WithMaxKeys cells. With
// a remote, one flusher goroutine per Store syncs every sync interval
// (unless WithoutFlusher); Close stops it, waits for it and flushes what is
// pending.
//
// A Store is safe for concurrent use. Its zero value is not usable; call New.
type Store struct {
	remote  store.Store   // nil: local only
	local   *memory.Store // without a remote, the store it delegates to
	syncer  store.Syncer  // remote as a Syncer; nil when remote is nil or cannot sync
	passAll bool          // remote cannot sync: every batch goes to it

	strict        bool
	interval      time.Duration
	clock         func() time.Time
	longPeriod    time.Duration
	remoteTimeout time.Duration
	flushTimeout  time.Duration
	process       string

	shards []shard
	mask   uint64 // len(shards) − 1; len(shards) is a power of two
	seed   maphash.Seed

	seq      atomic.Uint64 // flush and lease ids
	procs    atomic.Int64  // live processes sharing the remote, from the last flush
	down     atomic.Bool   // the last remote call failed: skip first-sight reads
	resetSeq atomic.Int64  // Reset calls completed at the remote so far

	resetMu     sync.Mutex
	resetKeys   map[store.Key]resetMark // keys reset lately: see resetSince
	resetPruned time.Time               // when resetKeys was last pruned
	closed      atomic.Bool

	callMu   sync.Mutex
	calls    map[string]*call        // remote calls in flight on decision paths, by caller
	inflight int                     // len(calls), counted down only once a call's answer is folded in
	idle     chan struct{}           // closed when inflight drops to 0, for Close (nil when none waits)
	lost     map[string][]*lostLease // strict: lease requests with no answer, by caller
	nLost    int                     // how many lost holds

	flushMu sync.Mutex // one flush at a time
	fl      flushState // guarded by flushMu

	// Counters kept outside shards (not on the hot path).
	flushes, flushFailures, commands atomic.Int64
	leaseRequests, passThrough       atomic.Int64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// shard is one lock domain: a bounded table of cells, the cells to visit at the next
// flush, and the counters of the decisions it took.
type shard struct {
	shardState
	// Padding to a multiple of 64 bytes, so that two shards never share a
	// cache line.
	_ [(64 - unsafe.Sizeof(shardState{})%64) % 64]byte
}

type shardState struct {
	mu         sync.Mutex
	t          keytable.Table[*cell]
	last       [2]lookup // the latest lookups of decisions, newest first (see find)
	dirty      []*cell   // cells to visit at the next flush (cell.dirty set)
	orphans    int       // evicted cells still in dirty, their state unsent
	maxOrphans int
	now        int64 // latest batch instant seen

	decisions, allowed, denied int64
	dropped                    int64 // units of pending state lost to eviction
}

// cell is the local state of one key.
//
// Relaxed (write-behind) cells: view is the value decisions use; synced is
// the global value at the last sync; pend the units added here since the
// last flush was built; fly the units of the flush in flight. Strict (lease)
// cells: view is the global value at the last remote answer, lease the
// units granted to this process and not yet spent.
type cell struct {
	key     store.Key
	expires int64 // Unix ns; absent from then on
	view    int64
	synced  int64
	pend    int64
	fly     int64
	syncs   int32 // syncs folded into the cell
	shared  bool  // a sync showed other processes adding to the cell
	lease   int64
	epoch   int64 // the remote cell's reset epoch, as of the last sync answer
	heard   bool  // a sync answer told epoch (Do's answers carry none)
	ceil    int64 // Ceil of the last op, for lease takes
	used    int64 // units admitted here since the last flush
	last    int64 // units admitted here in the previous flush interval
	total   int64 // units admitted here over the cell's life (strict)
	period  time.Duration
	idle    int32 // flushes without a decision on the cell
	active  bool  // a decision touched the cell since the last flush
	dirty   bool  // in its shard's dirty list
	known   bool  // the value has been learned from the remote
	exhaust bool  // strict: the remote had nothing left to grant
	next    bool  // strict: a lease for the next window was taken
	gone    bool  // removed on purpose (expired, reset): nothing to send
	evicted bool  // evicted by the key bound while dirty
	floored bool  // written by ops with a floor (a token bucket's cell)
}

// hear folds in the reset epoch of an answer about c to an item built
// while c knew epoch built (unheard when c was absent or had never heard
// one). It reports whether the answer is current: its epoch is the one c
// now holds. An answer at a new epoch, to an item built on what c still
// holds, means a reset happened since: a lease c holds was taken before
// it, the reset voided it, and the remote no longer counts it, so it is
// dropped, neither spent nor given back (a strict process may have spent
// some of it until this answer). An answer at another epoch, when c has
// heard of another since the item was built, is late: an older answer
// folded late; it changes nothing, and what it granted was voided.
//
// A cell that never heard an epoch (new, or known only from Do's answers,
// which carry none) takes the answer's. For an item built unheard, the
// epochs are compared by age: Redis advances a cell's epoch and never
// moves it back while the cell lives, so the larger is the newer.
func (c *cell) hear(built, epoch int64) (current bool) {
	switch {
	case c.heard && c.epoch == epoch:
	case !c.heard || c.epoch == built || (built == unheard && epoch > c.epoch):
		c.lease = 0
		c.epoch = epoch
	default:
		return false
	}
	c.known, c.heard = true, true
	return true
}

// unheard is the built epoch of an item whose cell was absent, or had
// never heard an epoch, when the item was built.
const unheard = -1

// builtEpoch is the epoch an item built now from c assumes, for hear: c's
// epoch, or unheard.
func builtEpoch(c *cell) int64 {
	if c == nil || !c.heard {
		return unheard
	}
	return c.epoch
}

// floorEpoch is the reset epoch of a floor computed from the cell's view:
// the epoch last heard of, or, for a cell that never heard one,
// store.AnyEpoch: its view is this process's own arithmetic, or a value
// Do answered, not a view the process holds across a reset it missed.
func (c *cell) floorEpoch() int64 {
	if !c.heard {
		return store.AnyEpoch
	}
	return c.epoch
}

// call is a remote call in flight for one caller, which concurrent
// decisions on that caller wait for instead of sending their own.
type call struct {
	done chan struct{}
	err  error
}

// New returns a hybrid store over remote; remote may be nil for a store that
// keeps everything in process memory: it then hands every batch to a
// memory.Store (WithMaxKeys and WithShards apply to it), starts no
// goroutine, and its Stats count decisions only.
//
// A remote that does not implement store.Syncer cannot serve write-behind:
// New then returns a Store that sends every batch to the remote as is (no
// local decisions). NewChecked reports that case as an error instead.
// An invalid option falls back to its default, the others still apply;
// NewChecked reports it.
func New(remote store.Store, opts ...Option) *Store {
	s, _ := newStore(remote, opts, false) // lenient: cannot fail
	return s
}

// NewChecked is New, returning an error wrapping ErrInvalidOption for an
// invalid option or a non-nil remote that does not implement store.Syncer.
func NewChecked(remote store.Store, opts ...Option) (*Store, error) {
	return newStore(remote, opts, true)
}

func newStore(remote store.Store, opts []Option, checked bool) (*Store, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if !checked {
		o.fix()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.longPeriod == 0 {
		o.longPeriod = 100 * o.interval
	}
	s := &Store{
		remote:        remote,
		strict:        o.strict,
		interval:      o.interval,
		clock:         o.clock,
		longPeriod:    o.longPeriod,
		remoteTimeout: o.remoteTimeout,
		flushTimeout:  o.flushTimeout,
		process:       o.process,
		seed:          maphash.MakeSeed(),
		calls:         make(map[string]*call),
		lost:          make(map[string][]*lostLease),
	}
	if remote != nil {
		sy, ok := remote.(store.Syncer)
		if !ok {
			if checked {
				return nil, fmt.Errorf("%w: remote %T does not implement store.Syncer", ErrInvalidOption, remote)
			}
			s.passAll = true
		}
		s.syncer = sy
	}
	if s.process == "" {
		s.process = strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(rand.Uint64(), 36)
	}
	s.procs.Store(1)
	if remote == nil {
		// Nothing to write behind: the memory store decides alone.
		s.local = memory.New(memory.WithMaxKeys(o.maxKeys), memory.WithShards(o.shards))
		return s, nil
	}
	// A power of two, so that picking a shard is a mask, not a division.
	n := 1
	for n*2 <= min(o.shards, o.maxKeys) {
		n *= 2
	}
	per := o.maxKeys / n
	s.shards, s.mask = make([]shard, n), uint64(n-1)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.maxOrphans = max(per/8, 16)
		sh.t = keytable.New[*cell](per, s.seed)
		sh.t.OnRemove = func(_ uint32, e *keytable.Entry[*cell]) { sh.evicted(e.Val) }
	}
	if s.syncer != nil && !o.noFlusher {
		s.stop, s.done = make(chan struct{}), make(chan struct{})
		go s.run()
	}
	return s, nil
}

// evicted is run under the shard lock for every cell that leaves the
// table; cells removed on purpose are marked gone first. A cell pushed out
// by the key bound while listed for the next flush stays in the dirty list,
// so its pending delta or lease is still sent; at most maxOrphans such cells
// per shard, beyond which their pending units are counted in dropped.
func (sh *shard) evicted(c *cell) {
	if c.gone || !c.dirty || c.evicted {
		return
	}
	if c.expires <= sh.now {
		c.gone = true
		return
	}
	if sh.orphans >= sh.maxOrphans {
		sh.dropped += c.pend + c.lease
		c.pend, c.lease = 0, 0
		c.gone = true
		return
	}
	c.evicted = true
	sh.orphans++
}

// shardHash returns caller's shard and the hash of caller that picked it
// (with one shard, the hash all the same: the table's lookups use it).
func (s *Store) shardHash(caller string) (*shard, uint64) {
	hc := maphash.String(s.seed, caller)
	return &s.shards[hc&s.mask], hc
}

func (s *Store) shardOf(caller string) *shard {
	if s.mask == 0 {
		return &s.shards[0]
	}
	return &s.shards[maphash.String(s.seed, caller)&s.mask]
}

// live returns key's cell if present and not expired at now.
func (sh *shard) live(key store.Key, now int64) *cell {
	h := sh.t.Hash(&key)
	p := sh.t.Find(&key, h)
	if p == 0 {
		return nil
	}
	c := sh.t.At(p).Val
	if c.expires <= now {
		c.gone = true
		sh.t.Remove(p, h)
		return nil
	}
	sh.t.Touch(p)
	return c
}

// find is live for the keys of a decision, whose caller hashes to hc (see
// shardHash). It remembers the shard's two latest lookups, newest first: a
// busy caller's keys (a minute and a day counter) are then found without
// the index, and the caller's hash rules out another caller's key without
// reading its entry.
func (sh *shard) find(key *store.Key, hc uint64, now int64) *cell {
	t := &sh.t
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
			return nil
		}
		l[0], l[1] = lookup{p, hc}, l[0]
	}
	c := t.At(p).Val
	if c.expires <= now {
		if h == 0 {
			h = t.HashKey(hc, key)
		}
		c.gone = true
		t.Remove(p, h)
		return nil
	}
	t.Touch(p)
	return c
}

// lookup remembers where a decision found a key: its position, and the
// hash of its caller.
type lookup struct {
	p  uint32
	hc uint64
}

// touch marks the cells of b's keys and prior cells that are held as used,
// before cells are created for the others: a creation then evicts none of
// them. (The shard's lock was released while the remote answered, so the
// marks of the decision's own lookups may be gone.)
func (sh *shard) touch(b *store.Batch, now int64) {
	for i := range b.Ops {
		op := &b.Ops[i]
		sh.live(op.Key, now)
		if op.PriorWeight > 0 {
			sh.live(op.Prior, now)
		}
	}
}

// create adds a fresh cell for key, which is absent.
func (sh *shard) create(key store.Key, expires int64) *cell {
	c := &cell{key: key, expires: expires}
	sh.put(c)
	return c
}

// put adds c under its key, which is absent.
func (sh *shard) put(c *cell) {
	sh.t.Insert(&c.key, sh.t.Hash(&c.key), c)
}

// markDirty lists c for the next flush.
func (sh *shard) markDirty(c *cell) {
	if !c.dirty {
		c.dirty = true
		sh.dirty = append(sh.dirty, c)
	}
}

// leased reports whether op is served by leases in strict mode: a plain
// counter (no floor, no prior) that is not a refund. Other Add ops go to the
// remote as they are.
func leased(op *store.Op) bool {
	return op.Kind == store.Add && op.Floor == 0 && op.PriorWeight == 0 && op.N >= 0
}

// need says what a decision is waiting for from the remote.
type need uint8

const (
	needNothing need = iota
	needRead         // relaxed: long-lived cells never seen here
	needLease        // strict: lease too small for the request
)

// Do implements store.Store. Relaxed and local-only decisions touch only
// process memory, except the first decision on a caller's long-lived cells
// (one read). Strict decisions call the remote only when the local lease is
// too small. Log ops, and in strict mode Add ops that are not plain
// counters, go to the remote synchronously (see the package doc).
func (s *Store) Do(ctx context.Context, b *store.Batch) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if s.local != nil {
		return s.local.Do(ctx, b)
	}
	b.Applied = false
	if err := b.Validate(); err != nil {
		return err
	}
	if s.passAll || s.direct(b) {
		return s.passBatch(ctx, b)
	}
	if cap(b.Results) < len(b.Ops) {
		b.Results = make([]store.Result, len(b.Ops))
	}
	b.Results = b.Results[:len(b.Ops)]
	sh, hc := s.shardHash(b.Ops[0].Key.Caller)
	fetch := !b.Peek
	for attempt := 0; ; attempt++ {
		sh.mu.Lock()
		// Checked again under the shard's lock: Close marks the store
		// closed before its final flush takes each shard's lock, so a
		// decision either lands in that flush or is refused, never
		// counted after it.
		if s.closed.Load() {
			sh.mu.Unlock()
			return store.ErrClosed
		}
		if b.Now > sh.now {
			sh.now = b.Now
		}
		var n need
		if s.strict {
			n = s.evalStrict(sh, b, hc, fetch)
		} else {
			n = s.evalRelaxed(sh, b, hc, fetch)
		}
		sh.mu.Unlock()
		if n == needNothing {
			return nil
		}
		if err := s.fetch(ctx, sh, b, n); err != nil {
			if n == needLease {
				return fmt.Errorf("hybrid: lease: %w", err)
			}
			fetch = false // fail-local: decide on what is known
		}
		if attempt >= 15 { // no livelock: another goroutine keeps spending what arrives
			fetch = false
		}
	}
}

// direct reports whether b goes to the remote as is.
func (s *Store) direct(b *store.Batch) bool {
	for i := range b.Ops {
		op := &b.Ops[i]
		if op.Kind == store.Log || (s.strict && !leased(op)) {
			return true
		}
	}
	return false
}

// passBatch sends b to the remote as is. The local state of its Add cells
// is settled first — a relaxed cell's pending delta sent, a strict cell's
// lease given back, in one Sync call — so the remote sees the global
// count, and the remote's answer is then folded into the local cells.
func (s *Store) passBatch(ctx context.Context, b *store.Batch) error {
	if s.passAll {
		s.passThrough.Add(1)
		s.commands.Add(1)
		err := s.remote.Do(ctx, b)
		sh := s.shardOf(b.Ops[0].Key.Caller)
		sh.mu.Lock()
		sh.count(err == nil, b.Applied)
		sh.mu.Unlock()
		return err
	}
	sh := s.shardOf(b.Ops[0].Key.Caller)
	if err := s.settle(ctx, sh, b); err != nil {
		return fmt.Errorf("hybrid: %w", err)
	}
	s.passThrough.Add(1)
	s.commands.Add(1)
	err := s.remote.Do(ctx, b)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if b.Now > sh.now {
		sh.now = b.Now
	}
	sh.count(err == nil, b.Applied)
	if err != nil || b.Peek {
		return err
	}
	for i := range b.Ops {
		op, r := &b.Ops[i], &b.Results[i]
		if op.Kind != store.Add {
			continue
		}
		c := sh.live(op.Key, b.Now)
		if c == nil {
			if !b.Applied {
				continue
			}
			c = sh.create(op.Key, 0)
		}
		// Do's answer carries no reset epoch: c.heard stays as it was
		// (see cell.hear).
		c.synced, c.known = r.Value, true
		c.view = r.Value + c.pend + c.fly
		if s.strict {
			c.view = r.Value + c.lease
		}
		if b.Applied {
			c.expires = max(c.expires, b.Now+int64(op.TTL))
		}
	}
	return nil
}

// settle sends the local pending state of b's Add cells (and their prior
// cells) to the remote before b goes there as is.
func (s *Store) settle(ctx context.Context, sh *shard, b *store.Batch) error {
	var items [2 * store.MaxOps]store.SyncItem
	var cells [2 * store.MaxOps]*cell
	var builtSettle [2 * store.MaxOps]int64
	n := 0
	now := b.Now
	sh.mu.Lock()
	take := func(k store.Key) {
		c := sh.live(k, now)
		if c == nil {
			return
		}
		for _, d := range cells[:n] {
			if d == c {
				return
			}
		}
		ttl := time.Duration(c.expires - now)
		switch {
		case s.strict && c.lease > 0:
			items[n] = store.SyncItem{Kind: store.SyncAdd, Key: k, N: -c.lease, TTL: ttl, Epoch: c.floorEpoch()}
			c.lease = 0
		case !s.strict && c.pend > 0:
			items[n] = store.SyncItem{Kind: store.SyncAdd, Key: k, N: c.pend, Floor: c.view - c.pend, TTL: ttl, Epoch: c.floorEpoch()}
			c.fly += c.pend
			c.pend = 0
		case !s.strict && c.pend < 0:
			items[n] = store.SyncItem{Kind: store.SyncAdd, Key: k, N: c.pend, TTL: ttl, Epoch: c.floorEpoch()}
			c.fly += c.pend
			c.pend = 0
		default:
			return
		}
		cells[n], builtSettle[n] = c, builtEpoch(c)
		n++
	}
	for i := range b.Ops {
		op := &b.Ops[i]
		if op.Kind != store.Add {
			continue
		}
		take(op.Key)
		if op.PriorWeight > 0 {
			take(op.Prior)
		}
	}
	sh.mu.Unlock()
	if n == 0 {
		return nil
	}
	sb := &store.SyncBatch{ID: s.nextID(), IDTTL: s.idTTL(), Now: now, Items: items[:n]}
	cctx, cancel := context.WithTimeout(ctx, s.remoteTimeout)
	err := s.syncer.Sync(cctx, sb)
	cancel()
	s.commands.Add(int64(sb.Commands))
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for j, c := range cells[:n] {
		it := &items[j]
		if err != nil { // put the state back for the flusher
			if s.strict {
				c.lease -= it.N
			} else {
				c.fly -= it.N
				c.pend += it.N
			}
			continue
		}
		r := sb.Results[j]
		if !c.hear(builtSettle[j], r.Epoch) {
			continue
		}
		c.synced = r.Value
		if s.strict {
			c.view = r.Value + c.lease
		} else {
			c.fly -= it.N
			c.view = max(c.view, r.Value+c.pend+c.fly)
		}
	}
	return err
}

// count records one decision. Peeks count as decisions too.
func (sh *shard) count(ok, applied bool) {
	if !ok {
		return
	}
	sh.decisions++
	if applied {
		sh.allowed++
	} else {
		sh.denied++
	}
}

// evalRelaxed decides b from local state, as the memory store does, with
// the fair-share cap near a limit. It returns needRead, having written
// nothing, when a long-lived cell must first be read from the remote.
func (s *Store) evalRelaxed(sh *shard, b *store.Batch, hc uint64, fetch bool) need {
	now := b.Now
	procs := s.procs.Load()
	// Every key of the batch, and every prior cell, is looked up before
	// any cell is created: a lookup marks the key used, and a key used by
	// the batch being run is not the one a creation evicts.
	var cells, priors [store.MaxOps]*cell // looked up once, written below
	for i := range b.Ops {
		op := &b.Ops[i]
		c := sh.find(&op.Key, hc, now)
		if c == nil && fetch && op.Period >= s.longPeriod && !s.down.Load() {
			return needRead // nothing written yet
		}
		cells[i] = c
		if op.PriorWeight > 0 {
			priors[i] = sh.live(op.Prior, now)
		}
	}
	fits := true
	for i := range b.Ops {
		op, r := &b.Ops[i], &b.Results[i]
		*r = store.Result{}
		c := cells[i]
		var v int64
		if c != nil {
			v = c.view
		}
		base := max(v, op.Floor)
		used := int64(0)
		if op.PriorWeight > 0 {
			p := priors[i]
			if p == nil && !b.Peek {
				// Learn the prior window at the next flush.
				p = sh.create(op.Prior, now+int64(op.TTL))
				sh.markDirty(p)
			}
			if p != nil {
				r.Prior = p.view
				used = store.Weighted(p.view, op.PriorWeight)
			}
		}
		r.Value = base + op.N
		if !store.Fits(base, op.N, used, op.Ceil) {
			fits = false
			continue
		}
		if procs > 1 && op.N > 0 && op.Period >= 10*s.interval && !s.share(c, op, used, procs) {
			fits = false
		}
	}
	if fits && !b.Peek {
		for i := range b.Ops {
			op, r := &b.Ops[i], &b.Results[i]
			c := cells[i]
			if c == nil || c.gone {
				if c = sh.live(op.Key, now); c == nil {
					c = sh.create(op.Key, 0)
				}
			}
			c.view = r.Value
			c.expires = now + int64(op.TTL)
			if op.Floor != 0 {
				c.floored = true
			}
			c.pend += op.N
			c.used += op.N
			c.period = op.Period
			c.idle = 0
			c.active = true
			sh.markDirty(c)
		}
	} else if !b.Peek {
		// Denied: nothing written, but the cells are active, so the next
		// flush refreshes them.
		for i := range b.Ops {
			if c := cells[i]; c != nil && !c.gone {
				c.active = true
				sh.markDirty(c)
			}
		}
	}
	finish(sh, b, fits)
	return needNothing
}

// share reports whether op fits this process's fair share of what is left
// of the cell's limit in this sync interval. Each process learns from its
// flushes how much the others add; while others are active on the key, a
// process takes at most (Ceil − synced) / 2P per interval, so that
// what the others admitted but have not flushed yet, plus what everyone
// admits in the interval, stays within what was left.
func (s *Store) share(c *cell, op *store.Op, prior, procs int64) bool {
	var synced, usedHere int64
	if c != nil {
		synced, usedHere = c.synced, c.used
		if c.syncs >= 2 && !c.shared {
			return true // alone on this key as far as its syncs tell
		}
	}
	left := op.Ceil - max(synced, op.Floor) - prior
	share := left / (2 * procs)
	if share < op.N && left >= procs*op.N {
		share = op.N // the last units: one request per process and interval, while each can have one
	}
	return usedHere+op.N <= share
}

// evalStrict decides b from the local leases. It returns needLease, having
// written nothing, when a lease is too small and the remote may still have
// quota. An op whose cell is known to be exhausted denies the batch locally,
// with no remote call; the flusher rechecks such cells.
func (s *Store) evalStrict(sh *shard, b *store.Batch, hc uint64, fetch bool) need {
	now := b.Now
	fits, lacking, final := true, false, false
	var cells [store.MaxOps]*cell // looked up once, written below
	for i := range b.Ops {
		op, r := &b.Ops[i], &b.Results[i]
		*r = store.Result{}
		c := sh.find(&op.Key, hc, now)
		cells[i] = c
		var view, lease int64
		if c != nil {
			view, lease = c.view, c.lease
		}
		// The global count as known here, our unspent lease aside.
		base := max(view-lease, op.Floor)
		r.Value = base + op.N
		if op.N <= lease {
			continue
		}
		fits = false
		if b.Peek {
			continue
		}
		if c != nil && c.known && (c.exhaust || !store.Fits(base, op.N, 0, op.Ceil)) {
			final = true
		} else {
			lacking = true
		}
	}
	if b.Peek {
		// A peek never asks the remote: it fits when the known global count
		// leaves room.
		fits = true
		for i := range b.Ops {
			if b.Results[i].Value > b.Ops[i].Ceil {
				fits = false
			}
		}
	}
	if !fits && lacking && !final && fetch {
		return needLease
	}
	if fits && !b.Peek {
		for i := range b.Ops {
			op := &b.Ops[i]
			c := cells[i]
			if c == nil || c.gone {
				if c = sh.live(op.Key, now); c == nil { // N <= 0 on a cell never leased
					c = sh.create(op.Key, 0)
				}
			}
			c.expires = max(c.expires, now+int64(op.TTL))
			c.ceil, c.period = op.Ceil, op.Period
			c.used += op.N
			c.total += op.N
			c.idle = 0
			c.lease -= op.N
			c.active = true
			sh.markDirty(c)
		}
	} else if !fits && !b.Peek {
		for i := range b.Ops {
			if c := cells[i]; c != nil && !c.gone {
				c.ceil = b.Ops[i].Ceil
				c.active = true
				sh.markDirty(c)
			}
		}
	}
	finish(sh, b, fits)
	return needNothing
}

// finish records the outcome: values exclude N unless the batch fits.
// Only Add ops are decided locally (Log ops go to the remote).
func finish(sh *shard, b *store.Batch, fits bool) {
	b.Applied = fits
	if !fits {
		for i := range b.Ops {
			b.Results[i].Value -= b.Ops[i].N
		}
	}
	sh.count(true, fits)
}

// fetch runs the remote call a decision needs — a first-sight read or a
// lease request — or waits for the one already in flight for the caller.
func (s *Store) fetch(ctx context.Context, sh *shard, b *store.Batch, n need) error {
	caller := b.Ops[0].Key.Caller
	s.callMu.Lock()
	if c, ok := s.calls[caller]; ok {
		s.callMu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", store.ErrUnavailable, ctx.Err())
		}
	}
	if s.closed.Load() {
		// Close waits for the calls in flight, so that the leases they
		// bring are in its final flush; it starts none after that.
		s.callMu.Unlock()
		return store.ErrClosed
	}
	c := &call{done: make(chan struct{})}
	s.calls[caller] = c
	s.inflight++
	s.callMu.Unlock()

	c.err = s.remoteCall(ctx, sh, b, n)

	s.callMu.Lock()
	delete(s.calls, caller)
	if s.inflight--; s.inflight == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
	s.callMu.Unlock()
	close(c.done)
	return c.err
}

// waitCalls waits until no remote call of a decision is in flight, for at
// most the remote timeout (what a call takes at worst when the remote
// honours its context) and half the time left on ctx, so that the final
// flush keeps the other half. Close calls it once the store is marked
// closed, when no new call can start.
func (s *Store) waitCalls(ctx context.Context) {
	s.callMu.Lock()
	if s.inflight == 0 {
		s.callMu.Unlock()
		return
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.callMu.Unlock()
	wait := s.remoteTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-ctx.Done():
	}
}

func (s *Store) remoteCall(ctx context.Context, sh *shard, b *store.Batch, n need) error {
	now := b.Now
	if n == needLease {
		// A lease request of this caller's that got no answer may have
		// been granted: learn what it got first, and ask only for the rest.
		if err := s.recoverLease(ctx, b.Ops[0].Key.Caller); err != nil {
			return err
		}
	}
	sb := &store.SyncBatch{Now: now}
	idx := make([]int, 0, len(b.Ops))
	var built []int64 // per item, the cell's epoch when the item was built
	resets := s.resetSeq.Load()
	sh.mu.Lock()
	procs := s.procs.Load()
	for i := range b.Ops {
		op := &b.Ops[i]
		c := sh.live(op.Key, now)
		e := builtEpoch(c)
		switch n {
		case needRead:
			if op.Kind == store.Add && op.Period >= s.longPeriod && c == nil {
				sb.Items = append(sb.Items, store.SyncItem{Kind: store.SyncAdd, Key: op.Key, Floor: op.Floor, Epoch: store.AnyEpoch})
				idx, built = append(idx, i), append(built, e)
			}
		case needLease:
			if c != nil && c.lease >= op.N {
				continue
			}
			want := s.leaseSize(c, op.N, op.Ceil, procs)
			sb.Items = append(sb.Items, store.SyncItem{Kind: store.SyncTake, Key: op.Key, N: want, Ceil: op.Ceil, TTL: op.TTL})
			idx, built = append(idx, i), append(built, e)
		}
	}
	sh.mu.Unlock()
	if len(sb.Items) == 0 {
		return nil
	}
	if n == needLease {
		s.leaseRequests.Add(1)
		sb.ID = s.nextID()
		sb.IDTTL = s.idTTL()
	}
	cctx, cancel := context.WithTimeout(ctx, s.remoteTimeout)
	start := time.Now()
	err := s.syncer.Sync(cctx, sb)
	cancel()
	s.commands.Add(int64(sb.Commands))
	if err != nil {
		if remoteFailed(ctx, time.Since(start)) {
			s.down.Store(true)
		}
		if n == needLease {
			s.loseLease(b, sh, sb, idx, built)
		}
		if n == needRead {
			// Fail-local: start from what is known here; the next flush
			// learns the global value.
			sh.mu.Lock()
			sh.touch(b, now)
			for _, i := range idx {
				op := &b.Ops[i]
				if sh.live(op.Key, now) == nil {
					c := sh.create(op.Key, now+int64(op.TTL))
					sh.markDirty(c)
				}
			}
			sh.mu.Unlock()
		}
		return err
	}
	s.down.Store(false)
	sh.mu.Lock()
	sh.touch(b, now)
	for j, i := range idx {
		op, res := &b.Ops[i], sb.Results[j]
		c := sh.live(op.Key, now)
		if n == needLease && s.resetSince(op.Key, resets) {
			// This store reset the key while the request was out: the
			// reset voided the grant if the grant came first, and
			// nothing tells which did. Dropped: at worst quota stays
			// taken until the window ends.
			sh.dropped += res.Granted
			continue
		}
		if c == nil {
			c = sh.create(op.Key, now+int64(op.TTL))
		}
		if !c.hear(built[j], res.Epoch) {
			continue // a late answer: what it granted a reset voided
		}
		switch n {
		case needRead:
			c.synced = max(c.synced, res.Value)
			c.view = max(c.view, res.Value+c.pend+c.fly)
		case needLease:
			c.view, c.synced = res.Value, res.Value
			c.lease += res.Granted
			c.ceil, c.period = op.Ceil, op.Period
			c.exhaust = res.Granted < sb.Items[j].N && res.Value >= op.Ceil
			if c.lease > 0 {
				sh.markDirty(c)
			}
		}
	}
	sh.mu.Unlock()
	return nil
}

// remoteFailed reports whether a remote call on ctx that failed after
// waiting for waited tells that the remote is down or too slow: when ctx
// is still live (the remote failed, or the store's own timeout fired), or
// when the caller's deadline expired while the call had waited at least
// slowWait for the remote. Until a call succeeds again (the next flush, at
// the latest), relaxed decisions then skip first-sight reads rather than
// each wait out their deadline. A caller that cancels, or whose deadline
// was (nearly) gone before the call, says nothing about the remote.
func remoteFailed(ctx context.Context, waited time.Duration) bool {
	err := ctx.Err()
	return err == nil || (errors.Is(err, context.DeadlineExceeded) && waited >= slowWait)
}

// slowWait is how long a call must have waited for the remote, when the
// caller's deadline ends it, for the remote to count as too slow.
const slowWait = 5 * time.Millisecond

// lostLease is a lease request made on a decision path that got no answer
// (an error, a timeout): the remote may have granted it all the same. It
// is sent again as it was, with its id, so that the remote grants it at
// most once and says what it granted, which then joins the cells' leases:
// before the caller's next lease request, or by a flush. A caller may have
// several (one lost while an earlier one is being sent again). Without that, a
// grant whose reply was lost would stay taken in the remote, unspent, until
// its window ended.
type lostLease struct {
	caller  string
	sh      *shard
	sb      *store.SyncBatch
	periods []time.Duration // the items' limit periods, for the cells they create
	built   []int64         // the items' cells' epochs when the request was built
}

// maxLost bounds the lease requests kept for sending again: beyond it (a
// long outage over very many callers), a lost grant stays taken in the
// remote until its window ends.
const maxLost = 1024

// keepLost keeps ls, lost lease requests, within maxLost. The caller
// holds callMu.
func (s *Store) keepLost(ls ...*lostLease) {
	for _, l := range ls {
		if s.nLost >= maxLost {
			return
		}
		s.lost[l.caller] = append(s.lost[l.caller], l)
		s.nLost++
	}
}

// takeLost removes caller's lost lease requests and returns them. The
// caller holds callMu.
func (s *Store) takeLost(caller string) []*lostLease {
	ls := s.lost[caller]
	delete(s.lost, caller)
	s.nLost -= len(ls)
	return ls
}

// loseLease keeps sb, a lease request for the ops idx of b that failed, to
// be sent again.
func (s *Store) loseLease(b *store.Batch, sh *shard, sb *store.SyncBatch, idx []int, built []int64) {
	l := &lostLease{caller: b.Ops[0].Key.Caller, sh: sh, sb: sb, periods: make([]time.Duration, len(idx)), built: built}
	for j, i := range idx {
		l.periods[j] = b.Ops[i].Period
	}
	s.callMu.Lock()
	s.keepLost(l)
	s.callMu.Unlock()
}

// recoverLease sends caller's lost lease requests again, if it has any,
// and folds in what they were granted. On failure the requests not yet
// answered stay lost.
func (s *Store) recoverLease(ctx context.Context, caller string) error {
	s.callMu.Lock()
	ls := s.takeLost(caller)
	s.callMu.Unlock()
	if len(ls) == 0 {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.remoteTimeout)
	defer cancel()
	return s.resendAll(cctx, ls)
}

// resendAll sends ls again in turn; at the first failure it keeps the
// requests not yet answered and returns the error.
func (s *Store) resendAll(ctx context.Context, ls []*lostLease) error {
	for i, l := range ls {
		if err := s.resend(ctx, l); err != nil {
			s.callMu.Lock()
			s.keepLost(ls[i:]...)
			s.callMu.Unlock()
			return err
		}
	}
	return nil
}

// recoverLeases sends about limit lost lease requests again, for a flush:
// those of callers with no remote call in flight. It stops at the first
// failure.
func (s *Store) recoverLeases(ctx context.Context, limit int) error {
	s.callMu.Lock()
	var batch []*lostLease
	for caller := range s.lost {
		if len(batch) >= limit {
			break
		}
		if _, busy := s.calls[caller]; busy {
			continue // its own decision is recovering them
		}
		batch = append(batch, s.takeLost(caller)...)
	}
	s.callMu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.flushTimeout)
	defer cancel()
	return s.resendAll(ctx, batch)
}

// resend sends a lost lease request again and folds what it granted into
// the cells (created if they are gone and their window is not over).
func (s *Store) resend(ctx context.Context, l *lostLease) error {
	sb := l.sb
	sb.Commands = 0
	resets := s.resetSeq.Load()
	start := time.Now()
	err := s.syncer.Sync(ctx, sb)
	s.commands.Add(int64(sb.Commands))
	if err != nil {
		if remoteFailed(ctx, time.Since(start)) {
			s.down.Store(true)
		}
		return fmt.Errorf("hybrid: lease: %w", err)
	}
	s.down.Store(false)
	sh := l.sh
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := max(sh.now, sb.Now)
	for j, it := range sb.Items {
		res := sb.Results[j]
		if res.Granted <= 0 {
			continue
		}
		if s.resetSince(it.Key, resets) {
			sh.dropped += res.Granted // see remoteCall
			continue
		}
		c := sh.live(it.Key, now)
		if c == nil {
			expires := sb.Now + int64(it.TTL)
			if expires <= now {
				continue // the window is over: the remote cell expires with it
			}
			c = sh.create(it.Key, expires)
			c.ceil, c.period = it.Ceil, l.periods[j]
		}
		if !c.hear(l.built[j], res.Epoch) {
			continue // a late answer: what it granted a reset voided
		}
		c.synced, c.view = max(c.synced, res.Value), max(c.view, res.Value)
		c.lease += res.Granted
		sh.markDirty(c)
	}
	return nil
}

// leaseSize is how much a strict cell asks for: about two sync intervals of
// the traffic seen here, at least need, at most a fair share of what the
// remote had left at the last answer.
func (s *Store) leaseSize(c *cell, need, ceil, procs int64) int64 {
	var view, lease, demand int64
	if c != nil {
		view, lease, demand = c.view, c.lease, max(c.used, c.last)
	}
	left := ceil - view
	fair := left / procs
	var want int64
	if c == nil || !c.known {
		want = ceil / (2 * procs) // first lease of a window: the traffic is unknown
	} else {
		want = 2*(demand+need) - lease
	}
	want = min(want, fair)
	return max(want, need-lease, 1)
}

// Reset implements store.Store: the remote's cells first, then the local
// ones, pending deltas and leases of those keys included.
func (s *Store) Reset(ctx context.Context, keys ...store.Key) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if s.local != nil {
		return s.local.Reset(ctx, keys...)
	}
	s.commands.Add(1)
	if err := s.remote.Reset(ctx, keys...); err != nil {
		return fmt.Errorf("hybrid: reset: %w", err)
	}
	s.markReset(keys)
	defer s.voidRetry(keys) // after the local cells go: a flush failing meanwhile is voided too
	for _, k := range keys {
		sh := s.shardOf(k.Caller)
		sh.mu.Lock()
		h := sh.t.Hash(&k)
		if p := sh.t.Find(&k, h); p != 0 {
			c := sh.t.At(p).Val
			c.gone = true
			c.pend, c.lease = 0, 0
			sh.t.Remove(p, h)
		}
		sh.mu.Unlock()
	}
	return nil
}

// resetMark records when this store reset a key: the value of resetSeq
// once the remote had reset it, and the time, for pruning.
type resetMark struct {
	seq int64
	at  time.Time
}

// markReset records keys as reset by this store, once the remote has reset
// them. Marks older than any remote call can be (twice the remote and
// flush timeouts) are pruned when many have gathered.
func (s *Store) markReset(keys []store.Key) {
	now := time.Now()
	s.resetMu.Lock()
	defer s.resetMu.Unlock()
	seq := s.resetSeq.Add(1) // under resetMu: marks only ever grow
	if s.resetKeys == nil {
		s.resetKeys = make(map[store.Key]resetMark)
	}
	horizon := 2 * (s.remoteTimeout + s.flushTimeout)
	if len(s.resetKeys) >= 1024 && now.Sub(s.resetPruned) > horizon/4 {
		s.resetPruned = now
		old := now.Add(-horizon)
		for k, m := range s.resetKeys {
			if m.at.Before(old) {
				delete(s.resetKeys, k)
			}
		}
	}
	for _, k := range keys {
		s.resetKeys[k] = resetMark{seq: seq, at: now}
	}
}

// resetSince reports whether this store reset k after resetSeq read start:
// a lease granted by a call that started then may have been voided by the
// reset, or taken after it; nothing tells which.
func (s *Store) resetSince(k store.Key, start int64) bool {
	if s.resetSeq.Load() == start {
		return false // no reset at all since: the common case, no lock
	}
	s.resetMu.Lock()
	m, ok := s.resetKeys[k]
	s.resetMu.Unlock()
	return ok && m.seq > start
}

// voidRetry turns the items on keys of a flush waiting to be sent again
// into reads: if that flush never reached the remote, sending its deltas
// and lease takes after the reset would bring back what the reset forgot
// (had it been applied, the reset came after and its record answers the
// retry). Safe either way: a retry applied before replays its record,
// whatever its items say.
func (s *Store) voidRetry(keys []store.Key) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	fb := s.fl.retry
	if fb == nil {
		return
	}
	for i := range fb.sb.Items {
		it := &fb.sb.Items[i]
		if slices.Contains(keys, it.Key) {
			*it = store.SyncItem{Kind: store.SyncAdd, Key: it.Key, Epoch: store.AnyEpoch}
		}
	}
}

// Remote returns the remote store, or nil for a local-only store.
func (s *Store) Remote() store.Store { return s.remote }

// Len returns the number of cells held, expired ones not yet freed included.
func (s *Store) Len() int {
	if s.local != nil {
		return s.local.Len()
	}
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += sh.t.Len()
		sh.mu.Unlock()
	}
	return n
}
