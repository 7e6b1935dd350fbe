package hybrid

import (
	"github.com/floodgate-go/floodgate/internal/timelog"
	"github.com/floodgate-go/floodgate/store"
)

// Log ops in a local-only store are kept in process memory, on the same
// time-ordered log as the memory store's (internal/timelog); with a remote,
// Log ops go to the remote synchronously.

// evalLog fills r with the Log op's result before the batch (N not
// included) and reports whether the op fits; settleLog adds N once the whole
// batch is known to fit.
func (sh *shard) evalLog(op *store.Op, now int64, r *store.Result) bool {
	var l *timelog.Log
	if c := sh.live(op.Key, now); c != nil {
		l = c.log
	}
	return timelog.Eval(l, op, now, r)
}

// settleLog turns evalLog's result into the result after the op.
func settleLog(op *store.Op, now int64, r *store.Result) { timelog.Settle(op, now, r) }

// applyLog writes the Log op, which evalLog found to fit.
func (sh *shard) applyLog(op *store.Op, now int64, _ *store.Result) {
	c := sh.live(op.Key, now)
	if c == nil {
		c = sh.create(op.Key, 0)
	}
	c.log, c.expires = timelog.Append(c.log, op, now)
}
