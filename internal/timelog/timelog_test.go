package timelog

import (
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
)

func TestLog(t *testing.T) {
	var l Log
	l.Push(10, 2)
	l.Push(10, 1) // same instant: one run
	l.Push(20, 3)
	if len(l.runs) != 2 || l.Count() != 6 {
		t.Fatalf("after pushes: %d runs, count %d; want 2 runs, count 6", len(l.runs), l.Count())
	}
	tests := []struct{ k, want int64 }{{1, 10}, {3, 10}, {4, 20}, {6, 20}, {7, 0}}
	for _, tt := range tests {
		if got := l.Nth(tt.k); got != tt.want {
			t.Errorf("Nth(%d) = %d; want %d", tt.k, got, tt.want)
		}
	}
	l.Trim(10)
	if l.Count() != 3 || l.Nth(1) != 20 || l.Newest() != 20 {
		t.Fatalf("after Trim(10): count %d, oldest %d, newest %d; want 3, 20, 20", l.Count(), l.Nth(1), l.Newest())
	}
	l.Trim(20)
	if l.Count() != 0 || l.Newest() != 0 {
		t.Fatalf("after Trim(20): count %d, newest %d; want empty", l.Count(), l.Newest())
	}
}

func TestEvalSettleAppend(t *testing.T) {
	op := &store.Op{Kind: store.Log, N: 2, Ceil: 3, Window: 100 * time.Nanosecond}
	var r store.Result
	if !Eval(nil, op, 1000, &r) || r.Value != 0 {
		t.Fatalf("Eval on no log = (%+v); want fits, count 0", r)
	}
	Settle(op, 1000, &r)
	if r.Value != 2 || r.Oldest != 1000 || r.Newest != 1000 {
		t.Fatalf("Settle = %+v; want count 2 at 1000", r)
	}
	l, exp := Append(nil, op, 1000)
	if l.Count() != 2 || exp != 1100 {
		t.Fatalf("Append = (count %d, expires %d); want (2, 1100)", l.Count(), exp)
	}
	r = store.Result{}
	if Eval(l, op, 1050, &r) || r.Value != 2 || r.Oldest != 1000 {
		t.Fatalf("Eval over the ceiling = %+v; want no fit, count 2, oldest 1000", r)
	}
	// A clock that went back appends at the newest entry.
	one := &store.Op{Kind: store.Log, N: 1, Ceil: 3, Window: 100 * time.Nanosecond}
	if _, exp := Append(l, one, 900); l.Newest() != 1000 || exp != 1100 {
		t.Fatalf("Append at an earlier instant: newest %d, expires %d; want 1000, 1100", l.Newest(), exp)
	}
}
