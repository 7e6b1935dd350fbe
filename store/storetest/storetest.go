// Package storetest is the conformance suite every floodgate store passes.
//
// A store's tests call Run with a constructor; the suite drives every
// primitive of the store contract (bounded add, prior-weighted add, log
// append, peek, reset, all-or-nothing batches) and every algorithm of the
// algorithms package through it with a fake clock: exact counts, reset,
// concurrency, hostile keys, invalid batches and closed stores.
//
// Each subtest works under its own random namespace, so the suite can run
// against a shared Redis without touching anyone else's keys.
package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/store"
)

// Factory returns a new, empty store for one subtest. The suite closes it.
// A factory may register its own cleanup with t.Cleanup.
type Factory func(t *testing.T) store.Store

// base is the suite's reference instant: a realistic Unix time, so that
// token-bucket cells hold values near 1.8e18 and exactness is tested.
var base = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano()

var runID = rand.Uint64()

var nsSeq atomic.Uint64

// namespace returns a namespace no other subtest or run uses.
func namespace(t *testing.T) string {
	return fmt.Sprintf("storetest:%x:%d", runID, nsSeq.Add(1))
}

// Run runs the conformance suite against the stores newStore makes.
//
// The stores must hold every key a subtest writes: at least MinKeys of
// them, in each shard when the store is sharded (a store bounded below
// that forgets keys the suite then reads back).
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Add", testAdd},
		{"AddExactInt64", testAddExact},
		{"AddPrior", testAddPrior},
		{"AddRefund", testAddRefund},
		{"AllOrNothing", testAllOrNothing},
		{"Peek", testPeek},
		{"Log", testLog},
		{"LogPartial", testLogOldest},
		{"Reset", testReset},
		{"HostileKeys", testHostileKeys},
		{"InvalidBatch", testInvalidBatch},
		{"ConcurrentAdd", testConcurrentAdd},
		{"ConcurrentLog", testConcurrentLog},
		{"FixedWindow", testFixedWindow},
		{"FixedWindowTwoLimits", testFixedWindowTwoLimits},
		{"SlidingWindow", testSlidingWindow},
		{"TokenBucket", testTokenBucket},
		{"SlidingLog", testSlidingLog},
		{"Prefixes", testPrefixes},
		{"Closed", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			if tt.fn == nil {
				testClosed(t, s)
				return
			}
			t.Cleanup(func() { _ = s.Close() })
			tt.fn(t, s)
		})
	}
}

// do runs one batch and fails the test on error.
func do(t *testing.T, s store.Store, now int64, peek bool, ops ...store.Op) *store.Batch {
	t.Helper()
	b := &store.Batch{Now: now, Peek: peek, Ops: ops}
	if err := s.Do(t.Context(), b); err != nil {
		t.Fatalf("Do(%+v) error: %v", ops, err)
	}
	if len(b.Results) != len(ops) {
		t.Fatalf("Do returned %d results for %d ops", len(b.Results), len(ops))
	}
	return b
}

func add(k store.Key, n, floor, ceil int64) store.Op {
	return store.Op{Kind: store.Add, Key: k, N: n, Floor: floor, Ceil: ceil, TTL: time.Minute, Period: time.Minute}
}

func logOp(k store.Key, n, ceil int64, window time.Duration) store.Op {
	return store.Op{Kind: store.Log, Key: k, N: n, Ceil: ceil, Window: window, Period: window}
}

func testAdd(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	steps := []struct {
		n, floor, ceil int64
		wantApplied    bool
		wantValue      int64
	}{
		{1, 0, 3, true, 1},
		{2, 0, 3, true, 3},
		{1, 0, 3, false, 3},   // full: denied, value unchanged
		{0, 0, 3, true, 3},    // zero delta fits at the ceiling
		{1, 10, 12, true, 11}, // floor raises the cell first
		{2, 10, 12, false, 11},
		{1, 5, 12, true, 12}, // a lower floor changes nothing
		{3, 0, 2, false, 12}, // above ceil already
	}
	for i, st := range steps {
		b := do(t, s, base, false, add(k, st.n, st.floor, st.ceil))
		if b.Applied != st.wantApplied || b.Results[0].Value != st.wantValue {
			t.Fatalf("step %d: add(n=%d, floor=%d, ceil=%d) = (applied %v, value %d); want (%v, %d)",
				i, st.n, st.floor, st.ceil, b.Applied, b.Results[0].Value, st.wantApplied, st.wantValue)
		}
	}
}

func testAddExact(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "gcra"}
	floor := base + 123 // ~1.8e18: beyond float64's exact integers
	for i := range int64(3) {
		b := do(t, s, base, false, add(k, 1, floor, floor+2))
		want, applied := floor+i+1, i < 2
		if !applied {
			want = floor + 2
		}
		if b.Applied != applied || b.Results[0].Value != want {
			t.Fatalf("add %d near 1.8e18 = (applied %v, value %d); want (%v, %d)", i, b.Applied, b.Results[0].Value, applied, want)
		}
	}
	// Sums beyond int64 never wrap around into an admission.
	k3 := store.Key{Namespace: namespace(t), Caller: "huge"}
	const top = math.MaxInt64 - 5
	if b := do(t, s, base, false, add(k3, top, 0, top)); !b.Applied || b.Results[0].Value != top {
		t.Fatalf("add of MaxInt64-5 = (applied %v, value %d); want (true, %d)", b.Applied, b.Results[0].Value, int64(top))
	}
	if b := do(t, s, base, false, add(k3, 10, 0, top)); b.Applied || b.Results[0].Value != top {
		t.Fatalf("add of 10 at MaxInt64-5 = (applied %v, value %d); want (false, %d): the sum must not wrap", b.Applied, b.Results[0].Value, int64(top))
	}
	// A large delta that lands exactly on the ceiling.
	k2 := store.Key{Namespace: namespace(t), Caller: "gcra"}
	b := do(t, s, base, false, add(k2, 999_999_937, base, base+999_999_937))
	if !b.Applied || b.Results[0].Value != base+999_999_937 {
		t.Fatalf("add to exact ceiling = (applied %v, value %d); want (true, %d)", b.Applied, b.Results[0].Value, base+999_999_937)
	}
}

func testAddPrior(t *testing.T, s store.Store) {
	ns := namespace(t)
	prior := store.Key{Namespace: ns, Caller: "c", Window: 1}
	cur := store.Key{Namespace: ns, Caller: "c", Window: 2}
	do(t, s, base, false, add(prior, 10, 0, 100))
	tests := []struct {
		weight, n, ceil int64
		applied         bool
	}{
		{500_000, 5, 10, true},   // 10×0.5 + 5 = 10 <= 10
		{500_000, 1, 10, false},  // 5 + 5 + 1 > 10
		{250_000, 3, 10, true},   // floor(2.5) = 2; 5 + 2 + 3 = 10
		{0, 5, 10, true},         // no weight: prior ignored
		{1_000_000, 1, 20, true}, // 10 + 13 + 1 = 24 > 20? value is 13 now
	}
	want := int64(0)
	for i, tt := range tests {
		op := add(cur, tt.n, 0, tt.ceil)
		op.Prior, op.PriorWeight = prior, tt.weight
		b := do(t, s, base, false, op)
		used := store.Weighted(10, tt.weight)
		applied := want+tt.n+used <= tt.ceil
		if applied {
			want += tt.n
		}
		if b.Applied != applied || b.Results[0].Value != want {
			t.Fatalf("step %d: prior-weighted add = (applied %v, value %d); want (%v, %d)", i, b.Applied, b.Results[0].Value, applied, want)
		}
		if tt.weight > 0 && b.Results[0].Prior != 10 {
			t.Fatalf("step %d: Prior = %d; want 10", i, b.Results[0].Prior)
		}
	}
	// A missing prior cell counts as 0.
	op := add(store.Key{Namespace: ns, Caller: "c", Window: 9}, 10, 0, 10)
	op.Prior, op.PriorWeight = store.Key{Namespace: ns, Caller: "c", Window: 8}, 1_000_000
	if b := do(t, s, base, false, op); !b.Applied || b.Results[0].Prior != 0 {
		t.Fatalf("add with missing prior = (applied %v, prior %d); want (true, 0)", b.Applied, b.Results[0].Prior)
	}
}

func testAddRefund(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	do(t, s, base, false, add(k, 5, 0, 5))
	b := do(t, s, base, false, add(k, -2, 0, 5))
	if !b.Applied || b.Results[0].Value != 3 {
		t.Fatalf("refund of 2 = (applied %v, value %d); want (true, 3)", b.Applied, b.Results[0].Value)
	}
	if b := do(t, s, base, false, add(k, 2, 0, 5)); !b.Applied || b.Results[0].Value != 5 {
		t.Fatalf("after refund, add 2 = (applied %v, value %d); want (true, 5)", b.Applied, b.Results[0].Value)
	}
	// Negative values are values: an absent cell refunded goes below zero.
	k2 := store.Key{Namespace: namespace(t), Caller: "c"}
	if b := do(t, s, base, false, add(k2, -3, 0, 10)); !b.Applied || b.Results[0].Value != -3 {
		t.Fatalf("refund on an absent cell = (applied %v, value %d); want (true, -3)", b.Applied, b.Results[0].Value)
	}
	if b := do(t, s, base, false, add(k2, 14, 0, 10)); b.Applied || b.Results[0].Value != 0 {
		t.Fatalf("add 14 on -3 with floor 0, ceil 10 = (applied %v, value %d); want (false, 0): the floor raises -3 to 0", b.Applied, b.Results[0].Value)
	}
	if b := do(t, s, base, false, add(k2, 13, -100, 10)); !b.Applied || b.Results[0].Value != 10 {
		t.Fatalf("add 13 on -3 with floor -100, ceil 10 = (applied %v, value %d); want (true, 10)", b.Applied, b.Results[0].Value)
	}
	// A GCRA-style refund near 1.9e18 stays exact.
	k3 := store.Key{Namespace: namespace(t), Caller: "c"}
	do(t, s, base, false, add(k3, 7, base, base+10))
	if b := do(t, s, base, false, add(k3, -1, base, base+10)); !b.Applied || b.Results[0].Value != base+6 {
		t.Fatalf("refund near 1.9e18 = (applied %v, value %d); want (true, %d)", b.Applied, b.Results[0].Value, base+6)
	}
}

func testAllOrNothing(t *testing.T, s store.Store) {
	ns := namespace(t)
	minute := store.Key{Namespace: ns + ":m", Caller: "c"}
	day := store.Key{Namespace: ns + ":d", Caller: "c"}
	do(t, s, base, false, add(day, 9, 0, 10))
	// The minute has room, the day has not for 2: nothing is written.
	b := do(t, s, base, false, add(minute, 2, 0, 5), add(day, 2, 0, 10))
	if b.Applied {
		t.Fatal("batch with one op over its ceiling was applied")
	}
	if b.Results[0].Value != 0 || b.Results[1].Value != 9 {
		t.Fatalf("denied batch values = %d, %d; want 0, 9 (N excluded)", b.Results[0].Value, b.Results[1].Value)
	}
	b = do(t, s, base, true, add(minute, 0, 0, 5), add(day, 0, 0, 10))
	if b.Results[0].Value != 0 || b.Results[1].Value != 9 {
		t.Fatalf("after denied batch: minute %d, day %d; want 0, 9", b.Results[0].Value, b.Results[1].Value)
	}
	b = do(t, s, base, false, add(minute, 1, 0, 5), add(day, 1, 0, 10))
	if !b.Applied || b.Results[0].Value != 1 || b.Results[1].Value != 10 {
		t.Fatalf("fitting batch = (applied %v, %d, %d); want (true, 1, 10)", b.Applied, b.Results[0].Value, b.Results[1].Value)
	}
	// A denied log op blocks the add in the same batch.
	lk := store.Key{Namespace: ns + ":l", Caller: "c"}
	b = do(t, s, base, false, add(minute, 1, 0, 5), logOp(lk, 3, 2, time.Minute))
	if b.Applied {
		t.Fatal("batch with a log op over its ceiling was applied")
	}
	if b := do(t, s, base, true, add(minute, 0, 0, 5), logOp(lk, 0, 2, time.Minute)); b.Results[0].Value != 1 || b.Results[1].Value != 0 {
		t.Fatalf("after denied mixed batch: add %d, log %d; want 1, 0", b.Results[0].Value, b.Results[1].Value)
	}
	// A log op that fits in a batch that does not: its result excludes N.
	do(t, s, base, false, logOp(lk, 1, 2, time.Minute))
	b = do(t, s, base+1, false, add(minute, 9, 0, 5), logOp(lk, 1, 2, time.Minute))
	if r := b.Results[1]; b.Applied || r.Value != 1 || r.Oldest != base || r.Newest != base {
		t.Fatalf("fitting log op in a denied batch = (applied %v, %+v); want (false, count 1, oldest = newest = base)", b.Applied, r)
	}
}

func testPeek(t *testing.T, s store.Store) {
	ns := namespace(t)
	k := store.Key{Namespace: ns, Caller: "c"}
	lk := store.Key{Namespace: ns + ":l", Caller: "c"}
	for range 3 {
		b := do(t, s, base, true, add(k, 2, 0, 5), logOp(lk, 2, 5, time.Minute))
		if !b.Applied || b.Results[0].Value != 2 || b.Results[1].Value != 2 {
			t.Fatalf("peek = (applied %v, %d, %d); want (true, 2, 2): would-be values", b.Applied, b.Results[0].Value, b.Results[1].Value)
		}
	}
	b := do(t, s, base, false, add(k, 5, 0, 5), logOp(lk, 5, 5, time.Minute))
	if !b.Applied {
		t.Fatal("peeks wrote state: a full-size batch no longer fits")
	}
	if b := do(t, s, base, true, add(k, 1, 0, 5)); b.Applied || b.Results[0].Value != 5 {
		t.Fatalf("peek on a full cell = (applied %v, value %d); want (false, 5)", b.Applied, b.Results[0].Value)
	}
}

func testLog(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	const w = 10 * time.Second
	ms := int64(time.Millisecond)
	steps := []struct {
		at          int64 // ns after base
		n           int64
		wantApplied bool
		wantCount   int64
		wantOldest  int64 // ns after base, -1 for none
		wantNewest  int64
	}{
		{0, 1, true, 1, 0, 0},
		{1, 1, true, 2, 0, 1}, // one nanosecond later: distinct entry
		{500 * ms, 1, true, 3, 0, 500 * ms},
		{600 * ms, 1, false, 3, 0, 500 * ms}, // full at 3: oldest must expire
		{int64(w) - 1, 1, false, 3, 0, 500 * ms},
		{int64(w), 1, true, 3, 1, int64(w)},                // entry at 0 dropped at exactly +w
		{int64(w) + 1, 1, true, 3, 500 * ms, int64(w) + 1}, // entry at +1 dropped
		{int64(w) + 500*ms, 2, false, 2, int64(w), int64(w) + 1},
		{int64(w) + 500*ms, 1, true, 3, int64(w), int64(w) + 500*ms},
	}
	for i, st := range steps {
		b := do(t, s, base+st.at, false, logOp(k, st.n, 3, w))
		r := b.Results[0]
		if b.Applied != st.wantApplied || r.Value != st.wantCount || r.Oldest != base+st.wantOldest || r.Newest != base+st.wantNewest {
			t.Fatalf("step %d at +%v: log append %d = (applied %v, count %d, oldest +%d, newest +%d); want (%v, %d, +%d, +%d)",
				i, time.Duration(st.at), st.n, b.Applied, r.Value, r.Oldest-base, r.Newest-base,
				st.wantApplied, st.wantCount, st.wantOldest, st.wantNewest)
		}
	}
	// Long after: empty.
	b := do(t, s, base+int64(time.Hour), true, logOp(k, 0, 3, w))
	if r := b.Results[0]; r.Value != 0 || r.Oldest != 0 || r.Newest != 0 {
		t.Fatalf("log an hour later = (count %d, oldest %d, newest %d); want zeros", r.Value, r.Oldest, r.Newest)
	}
}

// testLogOldest checks Oldest for a denied multi-entry append: the entry whose
// expiry makes room.
func testLogOldest(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	const w = time.Minute
	for i := range int64(5) {
		do(t, s, base+i*int64(time.Second), false, logOp(k, 1, 5, w))
	}
	at := base + 5*int64(time.Second)
	b := do(t, s, at, false, logOp(k, 3, 5, w))
	// 5 live, need room for 3: the 3rd oldest (at +2s) must expire.
	if b.Applied || b.Results[0].Oldest != base+2*int64(time.Second) {
		t.Fatalf("denied append of 3 = (applied %v, oldest +%v); want (false, +2s)", b.Applied, time.Duration(b.Results[0].Oldest-base))
	}
	// Time going backwards appends at the newest entry, never before it.
	b = do(t, s, base+int64(time.Minute)+int64(time.Second), false, logOp(k, 1, 5, w))
	newest := b.Results[0].Newest
	b = do(t, s, base+int64(time.Minute), false, logOp(k, 1, 5, w))
	if !b.Applied || b.Results[0].Newest < newest {
		t.Fatalf("append with an earlier clock: newest %d; want >= %d", b.Results[0].Newest, newest)
	}
}

func testReset(t *testing.T, s store.Store) {
	ns := namespace(t)
	k := store.Key{Namespace: ns, Caller: "c"}
	other := store.Key{Namespace: ns, Caller: "d"}
	lk := store.Key{Namespace: ns + ":l", Caller: "c"}
	do(t, s, base, false, add(k, 3, 0, 3), logOp(lk, 3, 3, time.Minute))
	do(t, s, base, false, add(other, 3, 0, 3))
	if err := s.Reset(t.Context(), k, lk, store.Key{Namespace: ns, Caller: "never"}); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if b := do(t, s, base, false, add(k, 3, 0, 3), logOp(lk, 3, 3, time.Minute)); !b.Applied {
		t.Fatal("after Reset, a full batch was denied")
	}
	if b := do(t, s, base, true, add(other, 0, 0, 3)); b.Results[0].Value != 3 {
		t.Fatalf("Reset of c changed d: value %d; want 3", b.Results[0].Value)
	}
}

// MinKeys is the most keys a subtest of Run writes and reads back: a store
// under test must hold that many.
const MinKeys = 256

// hostileNames holds names that break naive key encodings.
var hostileNames = []string{
	"a", "a:", ":a", "a:b", "a}", "{a", "{a}", "}{", "a%", "%61", "a\nb", "a\x00", "\x00",
	"\xff\xfe", "é", "e\u0301", " ", "a b", "*", "a*", "?", "[a]", "\r\n", "{", "}", ":", "%",
	"a{b}c", "{{}}", "::", "0", "-1", "ns:a", "a:ns",
}

func testHostileKeys(t *testing.T, s store.Store) {
	ns := namespace(t)
	// Each (namespace suffix, caller, window) gets a distinct count; none may
	// see another's.
	type cellID struct {
		key  store.Key
		want int64
	}
	var cells []cellID
	for i, a := range hostileNames {
		for j, b := range []string{"", ":", "{x}", "a:", "\xff"} {
			cells = append(cells, cellID{
				key:  store.Key{Namespace: ns + b, Caller: a, Window: int64(j % 2)},
				want: int64(i*5+j)%7 + 1,
			})
		}
	}
	if len(cells) > MinKeys {
		t.Fatalf("the suite writes %d keys, above MinKeys (%d)", len(cells), MinKeys)
	}
	for _, c := range cells {
		do(t, s, base, false, add(c.key, c.want, 0, 100))
	}
	for _, c := range cells {
		if b := do(t, s, base, true, add(c.key, 0, 0, 100)); b.Results[0].Value != c.want {
			t.Fatalf("key %q: value %d; want %d (keys collide, or the store holds fewer than the %d keys written: see MinKeys)",
				c.key.String(), b.Results[0].Value, c.want, len(cells))
		}
	}
}

func testInvalidBatch(t *testing.T, s store.Store) {
	ns := namespace(t)
	k := store.Key{Namespace: ns, Caller: "c"}
	bad := []struct {
		name string
		ops  []store.Op
	}{
		{"no ops", nil},
		{"empty caller", []store.Op{add(store.Key{Namespace: ns}, 1, 0, 5)}},
		{"two callers", []store.Op{add(k, 1, 0, 5), add(store.Key{Namespace: ns, Caller: "d"}, 1, 0, 5)}},
		{"zero TTL", []store.Op{{Kind: store.Add, Key: k, N: 1, Ceil: 5}}},
		{"bad kind", []store.Op{{Kind: 0, Key: k, N: 1, Ceil: 5, TTL: time.Second}}},
		{"zero window", []store.Op{{Kind: store.Log, Key: k, N: 1, Ceil: 5}}},
		{"negative log n", []store.Op{logOp(k, -1, 5, time.Second)}},
		{"one key twice", []store.Op{add(k, 1, 0, 5), add(k, 1, 0, 5)}},
		{"huge log append", []store.Op{logOp(k, store.MaxLogAppend+1, 1<<40, time.Second)}},
		{"weight above 1e6", []store.Op{{Kind: store.Add, Key: k, N: 1, Ceil: 5, TTL: time.Second, Prior: k, PriorWeight: 1_000_001}}},
		{"too many ops", func() []store.Op {
			ops := make([]store.Op, store.MaxOps+1)
			for i := range ops {
				ops[i] = add(store.Key{Namespace: fmt.Sprint(ns, i), Caller: "c"}, 1, 0, 5)
			}
			return ops
		}()},
	}
	for _, tt := range bad {
		// A valid op on k first, so that a partial write would show.
		ops := tt.ops
		b := &store.Batch{Now: base, Ops: ops}
		err := s.Do(t.Context(), b)
		if !errors.Is(err, store.ErrInvalidBatch) {
			t.Errorf("%s: Do error = %v; want ErrInvalidBatch", tt.name, err)
		}
		if b.Applied {
			t.Errorf("%s: invalid batch reported applied", tt.name)
		}
	}
	if b := do(t, s, base, true, add(k, 0, 0, 5)); b.Results[0].Value != 0 {
		t.Fatalf("invalid batches wrote state: value %d; want 0", b.Results[0].Value)
	}
}

func testConcurrentAdd(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	const goroutines, calls, limit = 16, 200, 1000
	var applied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range calls {
				b := &store.Batch{Now: base, Ops: []store.Op{add(k, 1, 0, limit)}}
				if err := s.Do(t.Context(), b); err != nil {
					errs <- err
					return
				}
				if b.Applied {
					applied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Do: %v", err)
	}
	if got := applied.Load(); got != limit {
		t.Fatalf("%d goroutines × %d adds with ceil %d applied %d; want %d", goroutines, calls, limit, got, limit)
	}
}

func testConcurrentLog(t *testing.T, s store.Store) {
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	const goroutines, calls, limit = 16, 50, 300
	var applied atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				b := &store.Batch{Now: base + int64(g*calls+i), Ops: []store.Op{logOp(k, 1, limit, time.Minute)}}
				if err := s.Do(t.Context(), b); err != nil {
					failed.Store(err)
					return
				}
				if b.Applied {
					applied.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatalf("concurrent log Do: %v", err)
	}
	if got := applied.Load(); got != limit {
		t.Fatalf("%d goroutines × %d log appends with ceil %d applied %d; want %d", goroutines, calls, limit, got, limit)
	}
}

func testClosed(t *testing.T, s store.Store) {
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v; want nil (idempotent)", err)
	}
	k := store.Key{Namespace: namespace(t), Caller: "c"}
	if err := s.Do(t.Context(), &store.Batch{Now: base, Ops: []store.Op{add(k, 1, 0, 5)}}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Do after Close = %v; want ErrClosed", err)
	}
	if err := s.Reset(t.Context(), k); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Reset after Close = %v; want ErrClosed", err)
	}
}
