package keytable

import (
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/floodgate-go/floodgate/store"
)

// model is the reference the table must agree with: the keys held, and
// the keys used most recently (latest last), which eviction must spare.
type model struct {
	held  map[store.Key]bool
	used  []store.Key
	limit int
}

func (m *model) use(k store.Key) {
	m.held[k] = true
	m.used = append(m.used, k)
}

// recent reports whether k is among the last recentKeys keys used.
func (m *model) recent(k store.Key) bool {
	return slices.Contains(m.used[max(len(m.used)-recentKeys, 0):], k)
}

// check fails t unless tb holds exactly m's keys, each reachable through
// the index, and its positions, free list and index are coherent.
func check(t *testing.T, tb *Table[int64], m *model) {
	t.Helper()
	got := map[store.Key]bool{}
	for p := tb.Next(0); p != 0; p = tb.Next(p) {
		e := tb.At(p)
		got[store.Key{Namespace: e.NS, Caller: e.Caller, Window: e.Window}] = true
	}
	if !maps.Equal(got, m.held) {
		t.Fatalf("table holds %v; want %v", got, m.held)
	}
	if tb.n != len(m.held) || tb.n > m.limit {
		t.Fatalf("n = %d; want %d, at most %d", tb.n, len(m.held), m.limit)
	}
	occupied := 0
	for _, slot := range tb.index {
		if slot != 0 {
			occupied++
		}
	}
	if occupied != tb.n {
		t.Fatalf("index holds %d slots; want %d", occupied, tb.n)
	}
	for k := range m.held {
		if tb.Find(&k, hashKey(tb, k)) == 0 {
			t.Fatalf("key %v not found through the index", k)
		}
	}
	free := 0
	for p := tb.free; p != 0; p = tb.At(p).next {
		free++
		if free > int(tb.used) {
			t.Fatal("free list has a cycle")
		}
	}
	if free+tb.n+1 != int(tb.used) {
		t.Fatalf("%d free + %d live + position 0 != %d positions used", free, tb.n, tb.used)
	}
}

func hashKey(tb *Table[int64], k store.Key) uint64 {
	return hash(tb.seed, maphash.String(tb.seed, k.Caller), k.Namespace, k.Window)
}

// TestTableAgainstModel drives tables of several bounds with random
// lookups, inserts and removals over a small key space (so that probe runs
// collide, wrap around and shift back on removal) and compares every state
// with the model: the same keys held, evictions exactly when full, each
// reported to OnRemove, and never of a recent key while another could go.
func TestTableAgainstModel(t *testing.T) {
	for _, limit := range []int{1, 2, 7, 17, 64, 300} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(limit), 42))
			v := New[int64](limit, maphash.MakeSeed())
			tb := &v
			m := &model{limit: limit, held: map[store.Key]bool{}}
			keys := make([]store.Key, 3*limit+5)
			for i := range keys {
				keys[i] = store.Key{Namespace: []string{"a", "b"}[i%2], Caller: fmt.Sprint("c", i/4), Window: int64(i % 3)}
			}
			var removed []store.Key // what OnRemove saw since the last step
			tb.OnRemove = func(p uint32, e *Entry[int64]) {
				if tb.At(p) != e {
					t.Fatalf("OnRemove(%d, e): e is not the entry at %d", p, p)
				}
				removed = append(removed, store.Key{Namespace: e.NS, Caller: e.Caller, Window: e.Window})
			}
			evictions := 0
			for step := range 20_000 {
				removed = removed[:0]
				k := keys[rng.IntN(len(keys))]
				h := hashKey(tb, k)
				p := tb.Find(&k, h)
				if (p != 0) != m.held[k] {
					t.Fatalf("step %d: find(%v) = %d; model holds it: %v", step, k, p, m.held[k])
				}
				switch op := rng.IntN(4); {
				case op == 0 && p != 0:
					tb.Remove(p, h)
					delete(m.held, k)
					if len(removed) != 1 || removed[0] != k {
						t.Fatalf("step %d: Remove(%v) reported %v to OnRemove", step, k, removed)
					}
				case p != 0:
					tb.Touch(p)
					m.use(k)
				default:
					full := len(m.held) == limit
					// Some held key may go without touching the recent ones.
					spareable := false
					for h := range m.held {
						spareable = spareable || !m.recent(h)
					}
					p, evicted := tb.Insert(&k, h, int64(step))
					if got := tb.At(p).Val; got != int64(step) {
						t.Fatalf("step %d: Insert(%v, %d) holds %d", step, k, step, got)
					}
					if (evicted != 0) != full {
						t.Fatalf("step %d: insert(%v) into a table of %d/%d keys evicted position %d", step, k, len(m.held), limit, evicted)
					}
					if full {
						evictions++
						if len(removed) != 1 || !m.held[removed[0]] {
							t.Fatalf("step %d: insert(%v) reported %v to OnRemove; want one held key", step, k, removed)
						}
						if spareable && m.recent(removed[0]) {
							t.Fatalf("step %d: insert(%v) evicted the recent key %v while an older one could go", step, k, removed[0])
						}
						delete(m.held, removed[0])
					}
					m.use(k)
				}
				if step%97 == 0 || limit < 10 {
					check(t, tb, m)
				}
			}
			check(t, tb, m)
			if evictions == 0 {
				t.Fatal("no insert evicted: the test does not exercise eviction")
			}
		})
	}
}

// TestHotKeysSurviveAScan: keys in steady use stay while a stream of keys
// seen once flows through a full table. Eviction in insertion order (FIFO)
// or at random would push the hot keys out.
func TestHotKeysSurviveAScan(t *testing.T) {
	const limit, hot = 100, 50
	v := New[int64](limit, maphash.MakeSeed())
	tb := &v
	key := func(name string, i int) store.Key { return store.Key{Namespace: "n", Caller: fmt.Sprint(name, i)} }
	for i := range hot {
		k := key("hot", i)
		tb.Insert(&k, hashKey(tb, k), 0)
	}
	for i := range 10_000 {
		k := key("cold", i)
		tb.Insert(&k, hashKey(tb, k), 0)
		hk := key("hot", i%hot)
		p := tb.Find(&hk, hashKey(tb, hk))
		if p == 0 {
			t.Fatalf("after %d keys seen once, hot key %v was evicted", i+1, hk)
		}
		tb.Touch(p)
	}
	if tb.Len() != limit {
		t.Fatalf("Len = %d; want the bound %d", tb.Len(), limit)
	}
}

// TestEvictionOrder pins the policy on small cases: a key used since the
// hand last passed gets a second chance, and an exact LRU agrees.
func TestEvictionOrder(t *testing.T) {
	tests := []struct {
		limit int
		steps string // a letter inserts or touches that key, in order
		gone  string // the keys evicted, in order
	}{
		{2, "abac", "b"},
		{3, "abcbd", "a"},
		{3, "abcbde", "ac"},
		{2, "ababc", "a"},
		{3, "abcdef", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.steps, func(t *testing.T) {
			v := New[int64](tt.limit, maphash.MakeSeed())
			tb := &v
			var gone []byte
			tb.OnRemove = func(_ uint32, e *Entry[int64]) { gone = append(gone, e.Caller[0]) }
			for _, c := range []byte(tt.steps) {
				k := store.Key{Namespace: "n", Caller: string(c)}
				h := hashKey(tb, k)
				if p := tb.Find(&k, h); p != 0 {
					tb.Touch(p)
				} else {
					tb.Insert(&k, h, 0)
				}
			}
			if string(gone) != tt.gone {
				t.Fatalf("evicted %q; want %q", gone, tt.gone)
			}
		})
	}
}

// TestTableCollidingHashes forces every key onto one home slot and one tag,
// the worst case for the index: lookups must still tell keys apart by
// their contents, and removals must keep every other key reachable.
func TestTableCollidingHashes(t *testing.T) {
	v := New[int64](50, maphash.MakeSeed())
	tb := &v
	tb.index = make([]uint64, 128) // big enough that no insert rehashes with the real hash
	const h = 0xdeadbeef_00000000  // same home and tag for all
	keys := make([]store.Key, 40)
	for i := range keys {
		keys[i] = store.Key{Namespace: "n", Caller: fmt.Sprint("c", i)}
		if _, ev := tb.Insert(&keys[i], h, 0); ev != 0 {
			t.Fatalf("insert %d evicted; table is not full", i)
		}
	}
	for i := 0; i < len(keys); i += 3 {
		p := tb.Find(&keys[i], h)
		if p == 0 {
			t.Fatalf("key %d not found", i)
		}
		// remove uses the hash to find the slot; the colliding hash is
		// the one the key was stored under.
		tb.Remove(p, h)
	}
	for i, k := range keys {
		found := tb.Find(&k, h) != 0
		if want := i%3 != 0; found != want {
			t.Fatalf("after removals, find(key %d) = %v; want %v", i, found, want)
		}
	}
}

// TestLimitClamped: a table asked to hold no keys still holds one, and
// its sentinel is never evicted.
func TestLimitClamped(t *testing.T) {
	for _, limit := range []int{0, -5} {
		tb := New[int64](limit, maphash.MakeSeed())
		a, b := store.Key{Namespace: "n", Caller: "a"}, store.Key{Namespace: "n", Caller: "b"}
		tb.Insert(&a, hashKey(&tb, a), 0)
		if _, ev := tb.Insert(&b, hashKey(&tb, b), 0); ev == 0 {
			t.Fatalf("New(%d): second insert evicted nothing; want the bound of one key", limit)
		}
		if tb.Len() != 1 || tb.Find(&b, hashKey(&tb, b)) == 0 {
			t.Fatalf("New(%d): Len %d, newest key found %v; want 1, true", limit, tb.Len(), tb.Find(&b, hashKey(&tb, b)) != 0)
		}
	}
}

// TestChunksCacheAligned: every full chunk's entries start on a cache-line
// boundary, so that a 64-byte entry sits in one line and a lookup out of
// cache misses once, not twice (a plain make([]Entry, chunkSize) starts 8
// bytes past a boundary, behind the runtime's allocation header).
func TestChunksCacheAligned(t *testing.T) {
	if s := unsafe.Sizeof(Entry[[2]int64]{}); s != cacheLine {
		t.Fatalf("an entry with a 16-byte value is %d bytes; want %d", s, cacheLine)
	}
	tb := New[[2]int64](10*chunkSize, maphash.MakeSeed())
	for i := range 3 * chunkSize {
		k := store.Key{Namespace: "n", Caller: fmt.Sprint("c", i)}
		tb.Insert(&k, tb.Hash(&k), [2]int64{})
	}
	if len(tb.chunks) < 3 {
		t.Fatalf("%d chunks after %d inserts; want at least 3", len(tb.chunks), 3*chunkSize)
	}
	for i, c := range tb.chunks {
		if !aligned(&c[0]) {
			t.Errorf("chunk %d starts at %#x, %d bytes past a cache line", i, uintptr(unsafe.Pointer(&c[0])), uintptr(unsafe.Pointer(&c[0]))%cacheLine)
		}
	}
}
