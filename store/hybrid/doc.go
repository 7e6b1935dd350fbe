// Package hybrid is floodgate's default store: decisions come from process
// memory, and the deltas they produce are written behind to a remote store
// (the Redis store) in one batched call per sync interval, so that a busy
// API costs its Redis a few commands a second while every process still
// enforces one global limit.
//
// # Local state and the hot path
//
// Each cell (one key of one window) is held in a sharded map bounded in
// the number of keys (least recently used first, by CLOCK), like the memory
// store. A decision locks one shard, evaluates the batch all
// or nothing on the local view — the global total at the last sync plus what
// this process admitted since — and returns: no network I/O, no allocation.
//
// # Relaxed mode (the default)
//
// One flusher goroutine sends, every interval, the pending deltas of all the
// dirty cells in one Syncer.Sync call (one command per Redis Cluster slot
// group and per thousand cells), registers the process with an expiring heartbeat in the same
// command, and folds the global totals and the live process count of the
// reply into local state. A caller's long-lived cells (periods of at least
// WithLongPeriod, the day) are read before its first decision in this
// process; shorter windows are learned from the next flush. Near a limit,
// while other processes write to a key, each process admits per interval at
// most its fair share (Ceil − synced)/2P of what is left, P being the
// live process count. Without that cap the over-admission of a key is
// bounded by P × rate × interval; with it, by what the other processes admit
// between two of their flushes near the limit (docs/hybrid.md has the
// formulas and measurements). If the remote is down, decisions go on from
// local state (fail-local) and flushes back off and retry.
//
// # Strict mode (Strict)
//
// For plain counters (fixed windows: Add ops without floor or prior), a
// process reserves a lease — a slice of what is left — from the remote with
// a bounded take (ceiling = limit), spends it locally and gives back what it
// does not use (when the key goes idle, when it holds far more than its
// traffic needs near the limit, and on Close). The remote never grants more
// than the limit, so the global limit holds exactly whatever the number of
// processes. Lease sizes follow the traffic seen here, capped by a fair
// share of what is left; concurrent lease requests for a caller are
// coalesced. A cell whose remote quota is exhausted is denied locally until
// its window ends (the flusher rechecks it, in its batched call, in case
// other processes gave quota back). When no lease can be had because the
// remote is unavailable, Do returns an error wrapping store.ErrUnavailable:
// strict mode never admits beyond the leases it holds, and the limiter's
// caller chooses to fail open or closed. Other Add ops (token bucket,
// sliding window) go to the remote synchronously in strict mode.
//
// # Log ops
//
// Log ops (the sliding log) go to the remote synchronously in both modes:
// an exact log cannot be written behind. A local-only store (no remote)
// keeps them in memory, like everything else: it is a memory.Store.
//
// # Idempotency and failures
//
// Every flush carries an id (process id and sequence); the remote applies a
// flush id once, and answers a repeat with the cells' current values and the
// grants of the first time. A flush that fails
// is sent again as is, with its id, before anything else, so a flush whose
// reply was lost is counted once; deltas admitted meanwhile wait in the
// cells. Memory is bounded by WithMaxKeys; a cell pushed out with pending
// state is still sent, up to a bound per shard beyond which its units are
// counted in Stats.DroppedDeltas.
package hybrid
