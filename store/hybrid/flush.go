package hybrid

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/floodgate-go/floodgate/store"
)

// flushState is the flusher's own state, guarded by Store.flushMu.
type flushState struct {
	retry *flushBatch // a flush whose outcome is unknown, to send again as is
	spare []*cell
}

// flushBatch is one flush: the sync batch and, per item, the cell it folds
// into.
type flushBatch struct {
	sb     store.SyncBatch
	refs   []flushRef
	resets int64 // the store's resetSeq when the batch was built
}

type flushRef struct {
	sh    *shard
	c     *cell
	want  int64 // N of the item
	next  *cell // a prefetched cell, added to the shard when its lease lands
	epoch int64 // c's epoch when the item was built
}

// now returns the store's notion of the current instant: the clock when
// WithClock was given, else the latest decision instant seen.
func (s *Store) now() int64 {
	if s.clock != nil {
		return s.clock().UnixNano()
	}
	var now int64
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		now = max(now, sh.now)
		sh.mu.Unlock()
	}
	return now
}

func (s *Store) nextID() string {
	return s.process + ":" + strconv.FormatUint(s.seq.Add(1), 36)
}

// idTTL is how long the remote remembers a flush id: long enough to cover
// the retries of a flush across an outage.
func (s *Store) idTTL() time.Duration { return max(time.Hour, 100*s.interval) }

// Flush sends the pending deltas of every dirty cell to the remote now, in
// one batched call, and folds the global totals of the reply into local
// state; in strict mode it also tops up, rechecks and returns leases. A flush
// that failed earlier is sent again first, as is (same id), so that a flush
// whose reply was lost is applied once; while it fails, new deltas wait.
//
// Flush on a local-only store does nothing. After Close it returns
// store.ErrClosed.
func (s *Store) Flush(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return s.flush(ctx, false)
}

func (s *Store) flush(ctx context.Context, final bool) error {
	if s.syncer == nil {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	retried := false
	if s.fl.retry != nil {
		if err := s.send(ctx, s.fl.retry); err != nil {
			return err
		}
		s.fold(s.fl.retry)
		s.fl.retry = nil
		retried = true
	}
	if s.strict {
		// Lost lease requests first, so that what they were granted is in
		// this flush's cells (a final flush gives it back). A final flush
		// goes on without them if they fail.
		limit := lostPerFlush
		if final {
			limit = maxLost // all of them: their grants go back with this flush
		}
		if err := s.recoverLeases(ctx, limit); err != nil && !final {
			s.flushFailures.Add(1)
			return err
		}
	}
	fb := s.build(s.now(), final)
	if retried && len(fb.sb.Items) == 0 {
		return nil // the retry carried the heartbeat
	}
	if err := s.send(ctx, fb); err != nil {
		s.fl.retry = fb
		return err
	}
	s.fold(fb)
	return nil
}

// lostPerFlush is how many lost lease requests a flush sends again, each
// one call, before its own batch: they are rare (one per caller whose
// request failed), and a flush must stay short.
const lostPerFlush = 32

// send runs one flush batch against the remote.
func (s *Store) send(ctx context.Context, fb *flushBatch) error {
	cctx, cancel := context.WithTimeout(ctx, s.flushTimeout)
	defer cancel()
	fb.sb.Commands = 0
	err := s.syncer.Sync(cctx, &fb.sb)
	s.commands.Add(int64(fb.sb.Commands))
	if err != nil {
		s.flushFailures.Add(1)
		s.down.Store(true)
		return fmt.Errorf("hybrid: flush: %w", err)
	}
	s.flushes.Add(1)
	s.down.Store(false)
	s.procs.Store(int64(max(fb.sb.Processes, 1)))
	return nil
}

// build collects the work of one flush from every shard's dirty list.
func (s *Store) build(now int64, final bool) *flushBatch {
	fb := &flushBatch{resets: s.resetSeq.Load(), sb: store.SyncBatch{
		ID:           s.nextID(),
		IDTTL:        s.idTTL(),
		Process:      s.process,
		HeartbeatTTL: 3 * s.interval,
		Now:          now,
	}}
	procs := s.procs.Load()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		old := sh.dirty
		sh.dirty = s.fl.spare[:0]
		for _, c := range old {
			c.dirty = false
			keep := false
			if s.strict {
				keep = s.buildStrict(fb, sh, c, now, final, procs)
			} else {
				s.buildRelaxed(fb, sh, c, now)
			}
			if c.evicted {
				sh.orphans--
				c.evicted, keep = false, false
				c.gone = true
			}
			if keep && !c.gone {
				c.dirty = true
				sh.dirty = append(sh.dirty, c)
			}
		}
		clear(old)
		s.fl.spare = old[:0]
		sh.mu.Unlock()
	}
	return fb
}

func (fb *flushBatch) add(sh *shard, c *cell, it store.SyncItem) {
	fb.sb.Items = append(fb.sb.Items, it)
	fb.refs = append(fb.refs, flushRef{sh: sh, c: c, want: it.N, epoch: builtEpoch(c)})
}

// buildRelaxed sends a cell's pending delta, or reads it when it is active
// or not yet known. Floor is chosen so that the remote computes
// max(v, view − pend) + pend: for a counter that is v + pend; for a GCRA
// cell it reproduces this process's own arithmetic when no other process
// wrote in between.
func (s *Store) buildRelaxed(fb *flushBatch, sh *shard, c *cell, now int64) {
	active := c.active
	c.last, c.used, c.active = c.used, 0, false
	if c.gone || c.expires <= now {
		c.gone = true
		return
	}
	ttl := time.Duration(c.expires - now)
	switch {
	case c.pend > 0:
		fb.add(sh, c, store.SyncItem{Kind: store.SyncAdd, Key: c.key, Epoch: c.floorEpoch(), N: c.pend, Floor: c.view - c.pend, TTL: ttl})
		c.fly, c.pend = c.pend, 0
	case c.pend < 0: // refunds
		fb.add(sh, c, store.SyncItem{Kind: store.SyncAdd, Key: c.key, Epoch: c.floorEpoch(), N: c.pend, TTL: ttl})
		c.fly, c.pend = c.pend, 0
	case active || !c.known:
		fb.add(sh, c, store.SyncItem{Kind: store.SyncAdd, Key: c.key, Epoch: c.epoch})
	}
}

// buildStrict returns idle or surplus leases, tops up the leases of active
// cells, and rechecks active exhausted cells. It reports whether the cell
// stays listed for the next flush.
func (s *Store) buildStrict(fb *flushBatch, sh *shard, c *cell, now int64, final bool, procs int64) bool {
	active := c.active
	c.last, c.used, c.active = c.used, 0, false
	if !active {
		c.idle++
	}
	if c.gone || c.expires <= now {
		c.gone = true
		return false // the remote cell expires with ours: nothing to return
	}
	ttl := time.Duration(c.expires - now)
	near := c.ceil-c.view < procs*c.lease
	switch {
	case c.lease > 0 && (final || c.evicted || (c.idle >= 2 && near) || c.idle >= 30):
		fb.add(sh, c, store.SyncItem{Kind: store.SyncAdd, Key: c.key, Epoch: c.floorEpoch(), N: -c.lease, TTL: ttl})
		c.lease = 0
		return false
	case final || c.evicted:
		return false
	case active && (c.exhaust || c.lease < c.last):
		want := s.leaseSize(c, 1, c.ceil, procs)
		if c.exhaust {
			want = max(min(c.last, (c.ceil-c.view+c.lease)/procs), 1)
		}
		fb.add(sh, c, store.SyncItem{Kind: store.SyncTake, Key: c.key, Epoch: c.epoch, N: want, Ceil: c.ceil, TTL: ttl})
	case c.lease > 2*(c.last+1) && near:
		// Near the limit, holding much more than the traffic here needs:
		// give the surplus back for the other processes.
		back := c.lease - 2*(c.last+1)
		fb.add(sh, c, store.SyncItem{Kind: store.SyncAdd, Key: c.key, Epoch: c.floorEpoch(), N: -back, TTL: ttl})
		c.lease -= back
	case c.lease > 0:
		// Refresh the global count of a cell this process holds quota of,
		// so that idle quota goes back when the others near the limit, and
		// so that a reset by another process reaches this one by the next
		// flush (the answer's epoch: the lease is then dropped, see
		// dropVoided). A read in the flush's one command.
		fb.add(sh, c, store.SyncItem{Kind: store.SyncAdd, Key: c.key, Epoch: c.epoch})
	}
	s.prefetch(fb, sh, c, now, procs)
	return c.lease > 0 || active
}

// prefetch takes, in the flush, the first lease of the window that follows
// an active fixed-window cell whose window ends before the next flush or
// the one after: its Key.Window is the index of its aligned window (as the
// fixed-window algorithm numbers them), so the next window's key is known.
// The lease covers what this process admitted in the ending window, at most
// a fair share, so a steady caller's first decision in the new window needs
// no remote call.
func (s *Store) prefetch(fb *flushBatch, sh *shard, c *cell, now, procs int64) {
	p := int64(c.period)
	if c.next || c.total == 0 || p <= 0 || c.key.Window != now/p {
		return
	}
	end := (c.key.Window + 1) * p
	if end-now > 2*int64(s.interval) || end+p <= now {
		return
	}
	c.next = true
	k := c.key
	k.Window++
	if sh.live(k, now) != nil {
		return
	}
	want := max(min(c.total, c.ceil/(2*procs)), 1)
	fb.sb.Items = append(fb.sb.Items, store.SyncItem{Kind: store.SyncTake, Key: k, N: want, Ceil: c.ceil, TTL: time.Duration(end + p - now)})
	fb.refs = append(fb.refs, flushRef{sh: sh, c: nil, want: want, epoch: unheard,
		next: &cell{key: k, expires: end + p, ceil: c.ceil, period: c.period}})
}

// fold merges the reply of a successful flush into the cells.
func (s *Store) fold(fb *flushBatch) {
	for j, ref := range fb.refs {
		it, res := &fb.sb.Items[j], fb.sb.Results[j]
		sh, c := ref.sh, ref.c
		sh.mu.Lock()
		if it.Kind == store.SyncTake && s.resetSince(it.Key, fb.resets) {
			sh.dropped += res.Granted // see remoteCall
			sh.mu.Unlock()
			continue
		}
		if ref.next != nil {
			c = sh.live(ref.next.key, fb.sb.Now)
			if c == nil {
				c = ref.next
				sh.put(c)
			}
		}
		was := c.epoch
		if !c.hear(ref.epoch, res.Epoch) {
			sh.mu.Unlock()
			continue // a late answer: what it granted a reset voided
		}
		reset := was != c.epoch // reset since this process last heard of the cell
		switch {
		case it.Kind == store.SyncTake:
			c.view, c.synced, c.known = res.Value, res.Value, true
			c.exhaust = res.Granted < it.N && res.Value >= it.Ceil
			if c.gone {
				sh.dropped += res.Granted // a lease granted to a forgotten cell
			} else {
				c.lease += res.Granted
				if c.lease > 0 {
					sh.markDirty(c)
				}
			}
		case s.strict:
			c.view, c.synced, c.known = res.Value, res.Value, true
			if it.N < 0 {
				c.exhaust = false
			}
		default:
			if res.Value-c.synced-it.N > 0 {
				c.shared = true
			}
			c.syncs++
			c.synced = res.Value
			if c.floored && !reset {
				// The floors raised the view locally: never go below it.
				c.view = max(c.view, res.Value+c.pend)
			} else {
				// A counter: the global total and what was admitted here
				// since, exactly (resets and refunds by others included).
				// A reset cell of either kind starts over from the remote.
				c.view = res.Value + c.pend
			}
			c.fly = 0
			c.known = true
		}
		sh.mu.Unlock()
	}
}

// Stats is a snapshot of a Store's counters.
type Stats struct {
	// Decisions is the number of batches decided (peeks included);
	// Allowed and Denied split them.
	Decisions, Allowed, Denied int64
	// Flushes and FlushFailures count flush calls to the remote.
	Flushes, FlushFailures int64
	// RemoteCommands is the number of commands sent to the remote: flushes
	// (one per slot group), first-sight reads, lease requests, resets and
	// batches passed through.
	RemoteCommands int64
	// LeaseRequests counts lease requests made on a decision path (strict).
	LeaseRequests int64
	// PassThrough counts batches sent to the remote as they are.
	PassThrough int64
	// PendingKeys is the number of cells with a delta or a lease not yet
	// settled with the remote.
	PendingKeys int
	// Leased is the sum of the unspent leases held (strict).
	Leased int64
	// DroppedDeltas is the number of units of pending state lost because
	// the key bound forced their cells out before a flush could send them.
	DroppedDeltas int64
	// Processes is the number of live processes sharing the remote, as of
	// the last flush (1 before the first one). In Redis Cluster, where
	// processes register per slot group, it is the most found in one of
	// the groups the flush wrote to: the processes sharing keys with this
	// one.
	Processes int
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Flushes:        s.flushes.Load(),
		FlushFailures:  s.flushFailures.Load(),
		RemoteCommands: s.commands.Load(),
		LeaseRequests:  s.leaseRequests.Load(),
		PassThrough:    s.passThrough.Load(),
		Processes:      int(s.procs.Load()),
	}
	if s.local != nil {
		ls := s.local.Stats()
		st.Decisions, st.Allowed, st.Denied = ls.Decisions, ls.Allowed, ls.Denied
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Decisions += sh.decisions
		st.Allowed += sh.allowed
		st.Denied += sh.denied
		st.DroppedDeltas += sh.dropped
		for _, c := range sh.dirty {
			if c.pend != 0 || c.fly != 0 || c.lease != 0 {
				st.PendingKeys++
			}
			st.Leased += c.lease
		}
		sh.mu.Unlock()
	}
	return st
}

// run is the flusher: one flush per sync interval, with backoff after
// failures (skipping 1, 3, 7, … up to 31 intervals).
func (s *Store) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	ctx := stopContext{done: s.stop}
	skip, fails := 0, 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if skip > 0 {
			skip--
			continue
		}
		if err := s.flush(ctx, false); err != nil {
			fails++
			skip = 1<<min(fails-1, 5) - 1
			continue
		}
		fails = 0
	}
}

// Close stops the flusher, waits for it, and flushes what is pending —
// deltas, and in strict mode every lease given back — within the flush
// timeout. It is idempotent and returns the final flush's error, if any;
// afterwards Do, Reset and Flush return store.ErrClosed. A decision racing
// with Close is either in the final flush or refused with store.ErrClosed,
// never admitted and then lost; Close waits for the lease requests and
// first-sight reads in flight, for at most the remote timeout. It never
// closes the remote, which belongs to the caller.
func (s *Store) Close() error {
	// Room for the calls in flight (at most the remote timeout) and then
	// the final flush (the flush timeout).
	ctx, cancel := context.WithTimeout(stopContext{}, s.remoteTimeout+s.flushTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Shutdown is Close with the caller's context bounding it: the wait for
// the calls in flight takes at most half the time left on ctx, the final
// flush the rest.
func (s *Store) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if s.local != nil {
			// No remote: nothing to flush. Closing the memory store first
			// closes the limiter's short path, which goes straight to it,
			// at the same instant as Do.
			s.local.Close()
		}
		s.closed.Store(true)
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
		// A decision that passed the closed check may still be waiting
		// for a lease or a first-sight read: its answer lands in a cell,
		// and the final flush must see it (strict: to give the lease back).
		// Decisions check closed again under their shard's lock, so none
		// counts anything after the final flush has visited its shard.
		s.waitCalls(ctx)
		s.closeErr = s.flush(ctx, true)
	})
	return s.closeErr
}

// stopContext is a context done when its channel is closed, never when
// its channel is nil: the root of the flusher's and Close's contexts.
type stopContext struct{ done <-chan struct{} }

func (stopContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c stopContext) Done() <-chan struct{}     { return c.done }
func (c stopContext) Value(any) any             { return nil }
func (c stopContext) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}
