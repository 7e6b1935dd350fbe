// Package timelog is the time-ordered log behind Log ops in floodgate's
// in-process stores (the memory store and the hybrid store's local state),
// and the evaluation of a Log op on it, so that both stores answer alike.
package timelog

import "github.com/floodgate-go/floodgate/store"

// Log is a time-ordered log of entries, run-length encoded: runs of entries
// stamped with the same instant share one slot. The zero Log is empty. It is
// not safe for concurrent use; the store's shard lock guards it.
type Log struct {
	runs  []run // oldest first, from head
	head  int
	count int64 // live entries
}

type run struct {
	at int64 // Unix ns
	n  int64
}

// Count returns the number of entries held.
func (l *Log) Count() int64 { return l.count }

// Trim drops the entries stamped at or before cutoff.
func (l *Log) Trim(cutoff int64) {
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

// Push appends n entries stamped at, which is not before the newest entry.
func (l *Log) Push(at, n int64) {
	if last := len(l.runs) - 1; last >= l.head && l.runs[last].at == at {
		l.runs[last].n += n
	} else {
		l.runs = append(l.runs, run{at: at, n: n})
	}
	l.count += n
}

// Nth returns the stamp of the k-th oldest entry (k from 1), or 0.
func (l *Log) Nth(k int64) int64 {
	for i := l.head; i < len(l.runs); i++ {
		k -= l.runs[i].n
		if k <= 0 {
			return l.runs[i].at
		}
	}
	return 0
}

// Newest returns the stamp of the newest entry, or 0.
func (l *Log) Newest() int64 {
	if len(l.runs) > l.head {
		return l.runs[len(l.runs)-1].at
	}
	return 0
}

// Eval trims l (nil: an empty log) to op's window at now, fills r with the
// op's result before the batch (N not included, as the store contract has
// it for a batch that is not applied) and reports whether the op fits.
func Eval(l *Log, op *store.Op, now int64, r *store.Result) bool {
	if l == nil {
		return op.N <= op.Ceil
	}
	l.Trim(now - int64(op.Window))
	r.Value = l.count
	fits := l.count+op.N <= op.Ceil
	k := int64(1)
	if !fits {
		k = l.count + op.N - op.Ceil
	}
	r.Oldest, r.Newest = l.Nth(k), l.Newest()
	return fits
}

// Settle turns Eval's result into the result after the op, for a batch
// that fits.
func Settle(op *store.Op, now int64, r *store.Result) {
	if op.N > 0 {
		r.Value += op.N
		r.Newest = max(now, r.Newest)
		if r.Oldest == 0 {
			r.Oldest = r.Newest
		}
	}
}

// Append writes op, which Eval found to fit, to l (nil: a new log) and
// returns the log and the instant it expires: one window after its newest
// entry. Entries are stamped max(now, newest), so a clock that went back
// never reorders the log.
func Append(l *Log, op *store.Op, now int64) (*Log, int64) {
	if l == nil {
		l = &Log{}
	}
	if op.N > 0 {
		l.Push(max(now, l.Newest()), op.N)
	}
	if l.count == 0 {
		return l, now + int64(op.Window)
	}
	return l, l.Newest() + int64(op.Window)
}
