// Package keytable is the in-process stores' bounded map from store.Key to
// per-key state: an exact LRU whose entries sit inline in fixed-size chunks
// and are found through an open-addressing index. The memory store keeps
// its counters in one per shard, the hybrid store its cells.
package keytable

import (
	"hash/maphash"
	"unsafe"

	"github.com/floodgate-go/floodgate/store"
)

// Table holds one shard's keys: a bounded map from store.Key to a V,
// ordered by recency (an exact LRU).
//
// Entries live inline in fixed-size chunks of a slab and are addressed by
// position; an open-addressing index (linear probing) maps a key's hash to
// its position, and an intrusive doubly linked list of positions keeps the
// recency order. Compared with a map of pointers to list elements, a key
// costs one 64-byte entry plus about 8–20 bytes of index, one allocation per
// chunk rather than two per key, and a lookup touches the index slot and the
// entry only.
//
// A Table is not safe for concurrent use; its shard's mutex guards it. Its
// zero value is not usable; call New.
type Table[V any] struct {
	chunks [][]Entry[V] // the slab; position p is chunks[p>>chunkBits][p&chunkMask]
	used   uint32       // positions handed out so far, the sentinel included
	free   uint32       // head of the list of freed positions (through next); 0 when empty
	n      int          // live keys
	limit  int          // most keys held

	// index maps hashes to positions: a slot is hash>>32<<32 | position, 0
	// when empty. Its length is a power of two; its home slot for a hash is
	// (hash >> 32) & (len − 1).
	index []uint64

	seed maphash.Seed // the store's, for Hash

	// OnRemove, when set, is called with every key about to leave the
	// table, evicted or removed, before its entry is cleared.
	OnRemove func(p uint32, e *Entry[V])
}

// Entry is one key and its state. Position 0 is the sentinel of the
// recency list: its next is the most recently used key, its prev the least.
// With a V of 16 bytes an Entry is 64 bytes, one cache line.
type Entry[V any] struct {
	NS, Caller string
	Window     int64
	prev, next uint32
	Val        V
}

const (
	chunkBits = 7
	chunkSize = 1 << chunkBits // entries per chunk: 8 KiB of 64-byte entries
	chunkMask = chunkSize - 1
	minIndex  = 16
)

// firstChunk is the initial length of chunk 0, which doubles up to
// chunkSize as keys arrive, so that an idle shard costs a few entries, not
// a full chunk. Every later chunk is allocated whole.
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
// position 0 is the sentinel.
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

// At returns the entry at position p; At(0) is the sentinel, whose key is
// empty.
func (t *Table[V]) At(p uint32) *Entry[V] { return &t.chunks[p>>chunkBits][p&chunkMask] }

// Holds reports whether e holds key.
func (e *Entry[V]) Holds(key *store.Key) bool {
	return e.Window == key.Window && e.Caller == key.Caller && e.NS == key.Namespace
}

// Len returns the number of keys held.
func (t *Table[V]) Len() int { return t.n }

// Newest returns the position of the most recently used key, or 0.
func (t *Table[V]) Newest() uint32 { return t.chunks[0][0].next }

// Newer returns the position of the key used next after p (toward the most
// recent), or 0.
func (t *Table[V]) Newer(p uint32) uint32 { return t.At(p).prev }

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

// Touch makes p the most recently used key.
func (t *Table[V]) Touch(p uint32) {
	s := &t.chunks[0][0]
	if s.next == p {
		return
	}
	e := t.At(p)
	t.At(e.prev).next = e.next
	t.At(e.next).prev = e.prev
	e.prev, e.next = 0, s.next
	t.At(s.next).prev = p
	s.next = p
}

// Insert adds key, which is absent, with hash h and value v as the most
// recently used key and returns its position. When the table is full it
// first removes its least recently used key, and returns that key's former
// position (or 0) as evicted.
func (t *Table[V]) Insert(key *store.Key, h uint64, v V) (p, evicted uint32) {
	if t.n >= t.limit {
		evicted = t.chunks[0][0].prev
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
	e := t.At(p)
	*e = Entry[V]{NS: key.Namespace, Caller: key.Caller, Window: key.Window, Val: v}
	s := &t.chunks[0][0]
	e.next = s.next
	t.At(s.next).prev = p
	s.next = p
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

	e := t.At(p)
	t.At(e.prev).next = e.next
	t.At(e.next).prev = e.prev
	*e = Entry[V]{next: t.free}
	t.free = p
	t.n--
}

// grow doubles the index (or creates it) and rehashes every key.
func (t *Table[V]) grow() {
	size := max(2*len(t.index), minIndex)
	t.index = make([]uint64, size)
	mask := uint64(size - 1)
	s := &t.chunks[0][0]
	for p := s.next; p != 0; {
		e := t.At(p)
		h := t.HashOf(e)
		i := h >> 32 & mask
		for t.index[i] != 0 {
			i = (i + 1) & mask
		}
		t.index[i] = h>>32<<32 | uint64(p)
		p = e.next
	}
}

// Oldest returns the position of the least recently used key, or 0.
func (t *Table[V]) Oldest() uint32 { return t.chunks[0][0].prev }
