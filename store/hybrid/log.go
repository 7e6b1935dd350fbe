package hybrid

import "github.com/floodgate-go/floodgate/store"

// timeLog is a time-ordered log of entries, run-length encoded: runs of
// entries stamped with the same instant share one slot. It serves Log ops in
// a local-only store (with a remote, Log ops go to the remote). Not safe for
// concurrent use; the shard lock guards it.
type timeLog struct {
	runs  []run // oldest first, from head
	head  int
	count int64 // live entries
}

type run struct {
	at int64 // Unix ns
	n  int64
}

// trim drops the entries stamped at or before cutoff.
func (l *timeLog) trim(cutoff int64) {
	for l.head < len(l.runs) && l.runs[l.head].at <= cutoff {
		l.count -= l.runs[l.head].n
		l.head++
	}
	if l.head == len(l.runs) {
		l.runs, l.head = l.runs[:0], 0
		return
	}
	if l.head > 32 && l.head*2 > len(l.runs) {
		n := copy(l.runs, l.runs[l.head:])
		l.runs, l.head = l.runs[:n], 0
	}
}

// push appends n entries stamped at, which is not before the newest entry.
func (l *timeLog) push(at, n int64) {
	if last := len(l.runs) - 1; last >= l.head && l.runs[last].at == at {
		l.runs[last].n += n
	} else {
		l.runs = append(l.runs, run{at: at, n: n})
	}
	l.count += n
}

// nth returns the stamp of the k-th oldest live entry (k from 1), or 0.
func (l *timeLog) nth(k int64) int64 {
	for i := l.head; i < len(l.runs); i++ {
		k -= l.runs[i].n
		if k <= 0 {
			return l.runs[i].at
		}
	}
	return 0
}

// newest returns the stamp of the newest live entry, or 0.
func (l *timeLog) newest() int64 {
	if len(l.runs) > l.head {
		return l.runs[len(l.runs)-1].at
	}
	return 0
}

// evalLog fills r with the Log op's result before the batch (N not
// included) and reports whether the op fits; settleLog adds N once the whole
// batch is known to fit.
func (sh *shard) evalLog(op *store.Op, now int64, r *store.Result) bool {
	c := sh.live(op.Key, now)
	if c == nil || c.log == nil {
		return op.N <= op.Ceil
	}
	l := c.log
	l.trim(now - int64(op.Window))
	r.Value = l.count
	fits := l.count+op.N <= op.Ceil
	k := int64(1)
	if !fits {
		k = l.count + op.N - op.Ceil
	}
	r.Oldest, r.Newest = l.nth(k), l.newest()
	return fits
}

// settleLog turns evalLog's result into the result after the op.
func settleLog(op *store.Op, now int64, r *store.Result) {
	if op.N > 0 {
		r.Value += op.N
		r.Newest = max(now, r.Newest)
		if r.Oldest == 0 {
			r.Oldest = r.Newest
		}
	}
}

// applyLog writes the Log op, which evalLog found to fit.
func (sh *shard) applyLog(op *store.Op, now int64, _ *store.Result) {
	c := sh.live(op.Key, now)
	if c == nil {
		c = sh.create(op.Key, 0)
	}
	if c.log == nil {
		c.log = &timeLog{}
	}
	if op.N > 0 {
		c.log.push(max(now, c.log.newest()), op.N)
	}
	c.expires = c.log.newest() + int64(op.Window)
	if c.log.count == 0 {
		c.expires = now + int64(op.Window)
	}
}
