package keytable

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/floodgate-go/floodgate/store"
)

// model is the reference the table must agree with: keys in recency
// order, most recent first.
type model struct {
	order []store.Key
	limit int
}

func (m *model) indexOf(k store.Key) int { return slices.Index(m.order, k) }

func (m *model) use(k store.Key) (evicted store.Key, didEvict bool) {
	if i := m.indexOf(k); i >= 0 {
		m.order = slices.Delete(m.order, i, i+1)
	} else if len(m.order) >= m.limit {
		evicted, didEvict = m.order[len(m.order)-1], true
		m.order = m.order[:len(m.order)-1]
	}
	m.order = slices.Insert(m.order, 0, k)
	return evicted, didEvict
}

func (m *model) remove(k store.Key) {
	if i := m.indexOf(k); i >= 0 {
		m.order = slices.Delete(m.order, i, i+1)
	}
}

// check fails t unless tb holds exactly m's keys, in m's order, each
// reachable through the index, and the free list and index are coherent.
func check(t *testing.T, tb *Table[int64], m *model) {
	t.Helper()
	var got []store.Key
	for p := tb.chunks[0][0].next; p != 0; p = tb.At(p).next {
		e := tb.At(p)
		got = append(got, store.Key{Namespace: e.NS, Caller: e.Caller, Window: e.Window})
		if len(got) > len(m.order)+1 {
			break
		}
	}
	if !slices.Equal(got, m.order) {
		t.Fatalf("recency order = %v; want %v", got, m.order)
	}
	if tb.n != len(m.order) {
		t.Fatalf("n = %d; want %d", tb.n, len(m.order))
	}
	// Backward links mirror forward ones.
	var back []store.Key
	for p := tb.Oldest(); p != 0; p = tb.At(p).prev {
		e := tb.At(p)
		back = append(back, store.Key{Namespace: e.NS, Caller: e.Caller, Window: e.Window})
		if len(back) > len(m.order)+1 {
			break
		}
	}
	slices.Reverse(back)
	if !slices.Equal(back, m.order) {
		t.Fatalf("backward order = %v; want %v", back, m.order)
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
	for _, k := range m.order {
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
		t.Fatalf("%d free + %d live + sentinel != %d positions used", free, tb.n, tb.used)
	}
}

func hashKey(tb *Table[int64], k store.Key) uint64 {
	return hash(tb.seed, maphash.String(tb.seed, k.Caller), k.Namespace, k.Window)
}

// TestTableAgainstModel drives tables of several bounds with random
// lookups, inserts and removals over a small key space (so that probe runs
// collide, wrap around and shift back on removal) and compares every state
// with the model.
func TestTableAgainstModel(t *testing.T) {
	for _, limit := range []int{1, 2, 7, 64, 300} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(limit), 42))
			v := New[int64](limit, maphash.MakeSeed())
			tb := &v
			m := &model{limit: limit}
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
			for step := range 20_000 {
				removed = removed[:0]
				k := keys[rng.IntN(len(keys))]
				h := hashKey(tb, k)
				p := tb.Find(&k, h)
				if (p != 0) != (m.indexOf(k) >= 0) {
					t.Fatalf("step %d: find(%v) = %d; model holds it: %v", step, k, p, m.indexOf(k) >= 0)
				}
				switch op := rng.IntN(4); {
				case op == 0 && p != 0:
					tb.Remove(p, h)
					m.remove(k)
					if len(removed) != 1 || removed[0] != k {
						t.Fatalf("step %d: Remove(%v) reported %v to OnRemove", step, k, removed)
					}
				case p != 0:
					tb.Touch(p)
					m.use(k)
				default:
					p, evicted := tb.Insert(&k, h, int64(step))
					if got := tb.At(p).Val; got != int64(step) {
						t.Fatalf("step %d: Insert(%v, %d) holds %d", step, k, step, got)
					}
					want, didEvict := m.use(k)
					if (evicted != 0) != didEvict {
						t.Fatalf("step %d: insert(%v) evicted %d; model evicted %v (%v)", step, k, evicted, want, didEvict)
					}
					if didEvict && (len(removed) != 1 || removed[0] != want) {
						t.Fatalf("step %d: insert(%v) evicting %v reported %v to OnRemove", step, k, want, removed)
					}
				}
				if step%97 == 0 || limit < 10 {
					check(t, tb, m)
				}
			}
			check(t, tb, m)
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
