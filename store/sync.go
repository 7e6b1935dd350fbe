package store

import (
	"context"
	"time"
)

// Syncer is implemented by remote stores that can serve the hybrid store
// (package store/hybrid): it applies many cells' deltas, lease takes and
// reads in one call, with as few round trips as the backend allows (one
// command per Redis Cluster slot group), and registers the calling process
// with an expiring heartbeat in the same command.
//
// Sync is the only method the hybrid store needs beyond [Store]; it is small
// on purpose so that other remotes can implement it.
type Syncer interface {
	// Sync runs every item of b and fills b.Results, b.Processes and
	// b.Commands. Items on one caller are atomic together; items on several
	// callers need not be atomic with respect to each other.
	//
	// When b.ID is not empty the batch is idempotent: a batch sent again
	// with the same ID within b.IDTTL (a retry after a lost reply) is not
	// applied again; its results report the cells' current values and, for
	// SyncTake items, the grants of the first time. A syncer that splits a
	// batch into groups applies each group at most once.
	//
	// Reset epochs: the syncer's Reset of a cell that holds a value
	// advances the cell's epoch, which lives as long as the cell would have
	// and as long as the cell is written again. Each result reports its
	// cell's epoch (0 when it has none), and an item whose Epoch differs
	// from an epoch its cell has is stale: its Floor is ignored (taken as
	// 0), since a floor that a process computed from its view of the cell
	// before someone reset it must not bring the reset value back, and
	// quota it gives back (N < 0) is not taken off the reset cell. A cell with no
	// epoch (never reset, or its epoch lost with the data in a restart)
	// honours every floor. A SyncTake grant reported again for a repeated
	// ID is 0 when the cell was reset since: the reset voided it.
	//
	// Errors: a contract violation wraps ErrInvalidBatch; a backend failure
	// wraps ErrUnavailable, in which case some groups may have been applied
	// (send the same batch, same ID, again to finish it); after Close,
	// ErrClosed.
	Sync(ctx context.Context, b *SyncBatch) error
}

// SyncKind selects what a [SyncItem] does to its cell.
type SyncKind uint8

const (
	// SyncAdd adds N to the cell. With v its value (0 when absent or
	// expired):
	//   - N > 0: v = max(v, Floor) + N, and the cell expires TTL after the
	//     batch's Now;
	//   - N = 0: a read; nothing is written;
	//   - N < 0 (returning quota): on a live cell only, v = max(v+N, Floor),
	//     keeping its expiry; an absent cell stays absent.
	//
	// The result's Value is the cell's value afterwards (max(v, Floor) for a
	// read).
	SyncAdd SyncKind = iota + 1

	// SyncTake reserves up to N (N > 0) from the cell, bounded by Ceil:
	// v = max(v, Floor); Granted = min(N, max(Ceil−v, 0)); v += Granted, and
	// when Granted > 0 the cell expires TTL after the batch's Now. The result
	// holds the new value and Granted.
	SyncTake
)

// SyncItem is one cell operation of a [SyncBatch].
type SyncItem struct {
	// Kind is what the item does (see SyncAdd and SyncTake).
	Kind SyncKind
	// Key is the item's cell.
	Key Key
	// N is the delta added (SyncAdd; 0 reads) or the amount asked
	// (SyncTake).
	N int64
	// Floor is the value the cell is raised to first (see SyncAdd).
	Floor int64
	// Ceil bounds a SyncTake's grant (SyncTake only).
	Ceil int64
	// TTL is the cell's lifetime after a write; it must be positive when
	// the item may write (N != 0).
	TTL time.Duration
	// Epoch is the cell's reset epoch Floor assumes: the Epoch of the last
	// result seen for the cell. When the cell has been reset since, Floor
	// is ignored (see Syncer). AnyEpoch marks a Floor that holds whatever
	// the epoch: one that does not come from a view of the cell.
	Epoch int64
}

// AnyEpoch is the [SyncItem.Epoch] of a Floor that is never ignored.
const AnyEpoch = -1

// SyncResult is the outcome of one [SyncItem].
type SyncResult struct {
	// Value is the cell's value after the item.
	Value int64
	// Granted is what a SyncTake reserved (0 for SyncAdd).
	Granted int64
	// Epoch is the cell's reset epoch: how many times it was reset while
	// it held a value (0 when never, or when that is forgotten).
	Epoch int64
}

// SyncBatch is one call to [Syncer.Sync]: the work of one flush, or one
// lease request or first-sight read.
type SyncBatch struct {
	// ID makes the batch idempotent when not empty (see Syncer). The hybrid
	// store uses a process id and a sequence number.
	ID string
	// IDTTL is how long the remote remembers ID; it must be positive when
	// ID is set.
	IDTTL time.Duration

	// Process, when not empty, registers the caller as a live process until
	// Now + HeartbeatTTL; Sync then reports in Processes how many processes
	// are live, the caller included.
	Process string
	// HeartbeatTTL is how long the registration lasts; it must be positive
	// when Process is set.
	HeartbeatTTL time.Duration

	// Now is the instant of the batch in Unix nanoseconds; TTLs and
	// heartbeats count from it.
	Now int64

	// Items are the cell operations. A batch may have no items when it only
	// registers a heartbeat.
	Items []SyncItem

	// Results receives one SyncResult per item, in order; the syncer sets
	// its length to len(Items), reusing its capacity.
	Results []SyncResult
	// Processes is set by Sync when Process is not empty: the number of
	// live processes (at least 1).
	Processes int
	// Commands is set by Sync: the number of commands it sent to the
	// backend, retries by the client aside.
	Commands int
}

// Validate reports whether b honours the contract, as an error wrapping
// ErrInvalidBatch. Syncers call it before sending anything.
func (b *SyncBatch) Validate() error {
	if b.ID != "" && b.IDTTL <= 0 {
		return errInvalid("sync batch with an ID and a non-positive ID TTL")
	}
	if b.Process != "" && b.HeartbeatTTL <= 0 {
		return errInvalid("sync batch with a process and a non-positive heartbeat TTL")
	}
	for i := range b.Items {
		it := &b.Items[i]
		if it.Key.Caller == "" {
			return errInvalid("sync item with an empty caller")
		}
		switch it.Kind {
		case SyncAdd:
		case SyncTake:
			if it.N <= 0 {
				return errInvalid("sync take of a non-positive amount")
			}
		default:
			return errInvalid("unknown sync item kind")
		}
		if it.N != 0 && it.TTL <= 0 {
			return errInvalid("sync item that writes with a non-positive TTL")
		}
	}
	return nil
}
