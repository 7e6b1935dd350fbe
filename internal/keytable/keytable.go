// Package keytable is the in-process stores' bounded map from store.Key to
// per-key state: entries sit inline in fixed-size chunks, are found through
// an open-addressing index, and, when the table is full, give way by the
// CLOCK policy (second chance), an approximation of least recently used.
// The memory store keeps its counters in one per shard, the hybrid store
// its cells.
package keytable

import (
	"hash/maphash"
	"slices"
	"unsafe"

	"github.com/floodgate-go/floodgate/store"
)

// Table holds one shard's keys: a bounded map from store.Key to a V.
//
// Entries live inline in fixed-size chunks of a slab and are addressed by
// position; an open-addressing index (linear probing) maps a key's hash to
// its position. Compared with a map of pointers to list elements, a key
// costs one 64-byte entry plus about 8–20 bytes of index, one allocation per
// chunk rather than two per key, and a lookup touches the index slot and the
// entry only.
//
// Eviction is CLOCK: Touch sets a key's referenced bit, and a full table
// sweeps a hand over the positions, clearing set bits, until it finds a key
// not referenced since the hand last passed it; that key goes. The last
// recentKeys keys touched or inserted are never chosen while another key
// can go, so that a batch's own keys (at most 2 × store.MaxOps of them, an
// op and its prior cell) survive the inserts of that batch, as they would
// in an exact LRU; a table whose keys are all recent evicts the least
// recently used of them, exactly.
//
// An exact LRU keeps a linked list in recency order instead, and moving a
// key to its front writes two neighbouring entries on every use: at 100,000
// keys those are two more cache misses per decision, where a CLOCK touch
// writes only the entry the lookup already loaded.
//
// A Table is not safe for concurrent use; its shard's mutex guards it. Its
// zero value is not usable; call New.
type Table[V any] struct {
	chunks [][]Entry[V] // the slab; position p is chunks[p>>chunkBits][p&chunkMask]
	used   uint32       // positions handed out so far, the unused position 0 included
	free   uint32       // head of the list of freed positions (through next); 0 when empty
	hand   uint32       // the CLOCK hand: the position the next eviction looks at first

	// recent holds the positions of the latest keys touched or inserted,
	// which eviction spares: the keys of the batch being run.
	recent     [recentKeys]uint32
	nextRecent uint32
	n          int // live keys
	limit      int // most keys held

	// index maps hashes to positions: a slot is hash>>32<<32 | position, 0
	// when empty. Its length is a power of two; its home slot for a hash is
	// (hash >> 32) & (len − 1).
	index []uint64

	seed maphash.Seed // the store's, for Hash

	// OnRemove, when set, is called with every key about to leave the
	// table, evicted or removed, before its entry is cleared.
	OnRemove func(p uint32, e *Entry[V])
}

// Entry is one key and its state. Position 0 holds no key: 0 means none.
// With a V of 16 bytes an Entry is 64 bytes, one cache line.
type Entry[V any] struct {
	NS, Caller string
	Window     int64
	next       uint32 // liveMark in a live entry; in a freed one, the next free position
	ref        uint32 // 1 when used since the CLOCK hand last passed, else 0
	Val        V
}

// liveMark is the next field of an entry that holds a key: a value no
// position takes.
const liveMark = 1<<32 - 1

// recentKeys is how many of the latest keys eviction spares: every key of
// one batch.
const recentKeys = 2 * store.MaxOps

const (
	chunkBits = 7
	chunkSize = 1 << chunkBits // entries per chunk: 8 KiB of 64-byte entries
	chunkMask = chunkSize - 1
	minIndex  = 16
)

// firstChunk is the initial length of chunk 0, which grows as keys arrive
// (to smallChunk, then to a full chunk), so that an idle shard costs a few
// entries, not a full chunk. Every later chunk is allocated whole.
const firstChunk = 4

// smallChunk is the longest chunk 0 grows to before it becomes a full
// chunk: 8 entries of 64 bytes, 512 bytes, the largest allocation the Go
// runtime makes without a header in front of it (see newChunk).
const smallChunk = 8

// paddedChunk is a full chunk with room in front of its entries. The Go
// runtime puts an 8-byte header at the start of a large allocation that
// holds pointers (Go 1.22 and later), so a plain make([]Entry, chunkSize)
// starts 8 bytes past a cache-line boundary: every 64-byte entry would then
// straddle two lines, and a lookup of a key out of cache would miss twice.
// The pad puts the entries back on line boundaries.
type paddedChunk[V any] struct {
	_       [cacheLine - 8]byte
	entries [chunkSize]Entry[V]
}

const cacheLine = 64

// newChunk returns a full chunk whose entries start on a cache-line
// boundary when the runtime allows it: padded or plain, whichever lands
// aligned (padded, on current runtimes).
func newChunk[V any]() []Entry[V] {
	c := new(paddedChunk[V])
	if aligned(&c.entries[0]) {
		return c.entries[:]
	}
	if plain := make([]Entry[V], chunkSize); aligned(&plain[0]) {
		return plain
	}
	return c.entries[:]
}

func aligned[V any](e *Entry[V]) bool { return uintptr(unsafe.Pointer(e))%cacheLine == 0 }

// maxLimit is the most keys a table holds: positions are 32-bit, and
// position 0 holds no key.
const maxLimit = 1<<32 - 2

// New returns an empty table holding at most limit keys (clamped to 1 ..
// 2^32 − 2), hashing with seed.
func New[V any](limit int, seed maphash.Seed) Table[V] {
	limit = int(min(max(int64(limit), 1), maxLimit))
	return Table[V]{limit: limit, used: 1, seed: seed, chunks: [][]Entry[V]{make([]Entry[V], firstChunk)}}
}

// hash returns the hash of the key (ns, caller, window), where hc is
// maphash.String(seed, caller), the hash that also picks the shard.
func hash(seed maphash.Seed, hc uint64, ns string, window int64) uint64 {
	x := hc ^ maphash.String(seed, ns)*0x9e3779b97f4a7c15 ^ uint64(window)*0xc2b2ae3d27d4eb4f
	x ^= x >> 32
	x *= 0xd6e8feb86659fd93
	return x ^ x>>32
}

// HashKey returns the hash of key, whose caller hashes to hc
// (maphash.String with the table's seed).
func (t *Table[V]) HashKey(hc uint64, key *store.Key) uint64 {
	return hash(t.seed, hc, key.Namespace, key.Window)
}

// Hash returns the hash of key.
func (t *Table[V]) Hash(key *store.Key) uint64 {
	return hash(t.seed, maphash.String(t.seed, key.Caller), key.Namespace, key.Window)
}

// HashOf returns the hash of the key held at e.
func (t *Table[V]) HashOf(e *Entry[V]) uint64 {
	return hash(t.seed, maphash.String(t.seed, e.Caller), e.NS, e.Window)
}

// At returns the entry at position p; At(0) holds no key.
func (t *Table[V]) At(p uint32) *Entry[V] { return &t.chunks[p>>chunkBits][p&chunkMask] }

// Holds reports whether e holds key.
func (e *Entry[V]) Holds(key *store.Key) bool {
	return e.Window == key.Window && e.Caller == key.Caller && e.NS == key.Namespace
}

// Len returns the number of keys held.
func (t *Table[V]) Len() int { return t.n }

// Next returns the first position after p that holds a key, or 0 when
// there is none: Next(0) is the first. Removing keys while walking is safe.
func (t *Table[V]) Next(p uint32) uint32 {
	for p++; p < t.used; p++ {
		if t.At(p).next == liveMark {
			return p
		}
	}
	return 0
}

// Find returns the position of key, whose hash is h, or 0.
func (t *Table[V]) Find(key *store.Key, h uint64) uint32 {
	if len(t.index) == 0 {
		return 0
	}
	mask := uint64(len(t.index) - 1)
	tag := h >> 32
	for i := tag & mask; ; i = (i + 1) & mask {
		slot := t.index[i]
		if slot == 0 {
			return 0
		}
		if slot>>32 == tag {
			p := uint32(slot)
			if t.At(p).Holds(key) {
				return p
			}
		}
	}
}

// Touch marks the key at p as used: the next sweep of the CLOCK hand
// passes over it once.
func (t *Table[V]) Touch(p uint32) {
	if e := t.At(p); e.ref == 0 {
		e.ref = 1
	}
	if t.recent[(t.nextRecent-1)%recentKeys] != p { // a hot key is recent already
		t.recent[t.nextRecent%recentKeys] = p
		t.nextRecent++
	}
}

// Insert adds key, which is absent, with hash h and value v, and returns
// its position. When the table is full it first evicts a key (see Table),
// and returns that key's former position as evicted (0 when none).
// A new key is not yet marked used: a key seen once goes before a key
// seen again.
func (t *Table[V]) Insert(key *store.Key, h uint64, v V) (p, evicted uint32) {
	if t.n >= t.limit {
		evicted = t.victim()
		t.Remove(evicted, t.HashOf(t.At(evicted)))
	}
	if (t.n+1)*4 > len(t.index)*3 {
		t.grow()
	}
	if t.free != 0 {
		p = t.free
		t.free = t.At(p).next
	} else {
		p = t.used
		if c := int(p >> chunkBits); c == len(t.chunks) {
			t.chunks = append(t.chunks, newChunk[V]())
		} else if int(p&chunkMask) == len(t.chunks[c]) { // chunk 0, still short
			var grown []Entry[V]
			if n := 2 * len(t.chunks[c]); n <= smallChunk {
				grown = make([]Entry[V], n)
			} else {
				grown = newChunk[V]()
			}
			copy(grown, t.chunks[c])
			t.chunks[c] = grown
		}
		t.used++
	}
	*t.At(p) = Entry[V]{NS: key.Namespace, Caller: key.Caller, Window: key.Window, next: liveMark, Val: v}
	t.recent[t.nextRecent%recentKeys] = p
	t.nextRecent++
	mask := uint64(len(t.index) - 1)
	i := h >> 32 & mask
	for t.index[i] != 0 {
		i = (i + 1) & mask
	}
	t.index[i] = h>>32<<32 | uint64(p)
	t.n++
	return p, evicted
}

// Remove drops the key at position p, whose hash is h, calling OnRemove
// first.
func (t *Table[V]) Remove(p uint32, h uint64) {
	if t.OnRemove != nil {
		t.OnRemove(p, t.At(p))
	}
	mask := uint64(len(t.index) - 1)
	i := h >> 32 & mask
	for uint32(t.index[i]) != p {
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move later members of the probe run into
	// the hole when the hole lies between their home slot and them.
	for j := (i + 1) & mask; t.index[j] != 0; j = (j + 1) & mask {
		home := t.index[j] >> 32 & mask
		if (j-home)&mask >= (j-i)&mask {
			t.index[i] = t.index[j]
			i = j
		}
	}
	t.index[i] = 0

	*t.At(p) = Entry[V]{next: t.free}
	t.free = p
	t.n--
}

// victim returns the position of the key to evict. When every key is
// among the recent ones (a table of a few keys), that is the least recently
// used of them, exactly. Otherwise the CLOCK hand advances to the first key
// that is neither recent nor used since the hand last passed it, clearing
// the marks of the used keys it passes: within two turns it finds one.
func (t *Table[V]) victim() uint32 {
	if t.n <= recentKeys {
		if p, all := t.recentLRU(); all {
			return p
		}
	}
	for steps := uint64(0); ; steps++ {
		p := t.hand
		if p == 0 || p >= t.used {
			p = 1
		}
		t.hand = p + 1
		e := t.At(p)
		switch {
		case e.next != liveMark:
		case steps > 3*uint64(t.used):
			return p // unreachable: a guard against looping for ever
		case t.isRecent(p):
		case e.ref != 0:
			e.ref = 0
		default:
			return p
		}
	}
}

// recentLRU returns the least recently used of the live keys among the
// recent ones, and whether those are all the table's keys.
func (t *Table[V]) recentLRU() (lru uint32, all bool) {
	var seen [recentKeys]uint32
	n := 0
	for i := uint32(1); i <= recentKeys; i++ { // newest first
		q := t.recent[(t.nextRecent-i)%recentKeys]
		if q == 0 || t.At(q).next != liveMark || slices.Contains(seen[:n], q) {
			continue
		}
		seen[n] = q
		n++
		lru = q
	}
	return lru, n == t.n
}

func (t *Table[V]) isRecent(p uint32) bool {
	for _, q := range t.recent {
		if q == p {
			return true
		}
	}
	return false
}

// grow doubles the index (or creates it) and rehashes every key.
func (t *Table[V]) grow() {
	size := max(2*len(t.index), minIndex)
	t.index = make([]uint64, size)
	mask := uint64(size - 1)
	for p := t.Next(0); p != 0; p = t.Next(p) {
		h := t.HashOf(t.At(p))
		i := h >> 32 & mask
		for t.index[i] != 0 {
			i = (i + 1) & mask
		}
		t.index[i] = h>>32<<32 | uint64(p)
	}
}
