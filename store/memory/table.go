package memory

import (
	"hash/maphash"

	"github.com/floodgate-go/floodgate/internal/timelog"
	"github.com/floodgate-go/floodgate/store"
)

// table holds one shard's keys: a bounded map from store.Key to a cell,
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
// A table is not safe for concurrent use; its shard's mutex guards it.
type table struct {
	chunks [][]entry // the slab; position p is chunks[p>>chunkBits][p&chunkMask]
	used   uint32    // positions handed out so far, the sentinel included
	free   uint32    // head of the list of freed positions (through next); 0 when empty
	n      int       // live keys
	limit  int       // most keys held

	// index maps hashes to positions: a slot is hash>>32<<32 | position, 0
	// when empty. Its length is a power of two; its home slot for a hash is
	// (hash >> 32) & (len − 1).
	index []uint64

	// logs holds the time-ordered logs of Log keys, by position. Add keys,
	// the common case, pay nothing for it.
	logs map[uint32]*timelog.Log

	seed maphash.Seed // the store's, for keyHash
}

// entry is one key and its state. Position 0 is the sentinel of the
// recency list: its next is the most recently used key, its prev the least.
type entry struct {
	ns, caller string
	window     int64
	value      int64 // an Add cell's value
	expires    int64 // Unix ns; the key is absent from then on
	prev, next uint32
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

func newTable(limit int, seed maphash.Seed) table {
	return table{limit: limit, used: 1, seed: seed, chunks: [][]entry{make([]entry, firstChunk)}}
}

// keyHash returns the hash of the key (ns, caller, window), where hc is
// maphash.String(seed, caller), the hash that also picks the shard.
func keyHash(seed maphash.Seed, hc uint64, ns string, window int64) uint64 {
	x := hc ^ maphash.String(seed, ns)*0x9e3779b97f4a7c15 ^ uint64(window)*0xc2b2ae3d27d4eb4f
	x ^= x >> 32
	x *= 0xd6e8feb86659fd93
	return x ^ x>>32
}

// hashOf returns the hash of the key held at e.
func (t *table) hashOf(e *entry) uint64 {
	return keyHash(t.seed, maphash.String(t.seed, e.caller), e.ns, e.window)
}

func (t *table) at(p uint32) *entry { return &t.chunks[p>>chunkBits][p&chunkMask] }

// find returns the position of key, whose hash is h, or 0.
func (t *table) find(key *store.Key, h uint64) uint32 {
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
			if e := t.at(p); e.window == key.Window && e.caller == key.Caller && e.ns == key.Namespace {
				return p
			}
		}
	}
}

// touch makes p the most recently used key.
func (t *table) touch(p uint32) {
	s := &t.chunks[0][0]
	if s.next == p {
		return
	}
	e := t.at(p)
	t.at(e.prev).next = e.next
	t.at(e.next).prev = e.prev
	e.prev, e.next = 0, s.next
	t.at(s.next).prev = p
	s.next = p
}

// insert adds key, which is absent, with hash h as the most recently used
// key and returns its position. When the table is full it first drops its
// least recently used key, and returns that key's position (or 0) as
// evicted.
func (t *table) insert(key *store.Key, h uint64) (p, evicted uint32) {
	if t.n >= t.limit {
		evicted = t.chunks[0][0].prev
		t.remove(evicted, t.hashOf(t.at(evicted)))
	}
	if (t.n+1)*4 > len(t.index)*3 {
		t.grow()
	}
	if t.free != 0 {
		p = t.free
		t.free = t.at(p).next
	} else {
		p = t.used
		if c := int(p >> chunkBits); c == len(t.chunks) {
			t.chunks = append(t.chunks, make([]entry, chunkSize))
		} else if int(p&chunkMask) == len(t.chunks[c]) { // chunk 0, still short
			grown := make([]entry, min(2*len(t.chunks[c]), chunkSize))
			copy(grown, t.chunks[c])
			t.chunks[c] = grown
		}
		t.used++
	}
	e := t.at(p)
	*e = entry{ns: key.Namespace, caller: key.Caller, window: key.Window}
	s := &t.chunks[0][0]
	e.next = s.next
	t.at(s.next).prev = p
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

// remove drops the key at position p, whose hash is h.
func (t *table) remove(p uint32, h uint64) {
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

	e := t.at(p)
	t.at(e.prev).next = e.next
	t.at(e.next).prev = e.prev
	*e = entry{next: t.free}
	t.free = p
	t.n--
	if len(t.logs) > 0 {
		delete(t.logs, p)
	}
}

// grow doubles the index (or creates it) and rehashes every key.
func (t *table) grow() {
	size := max(2*len(t.index), minIndex)
	t.index = make([]uint64, size)
	mask := uint64(size - 1)
	s := &t.chunks[0][0]
	for p := s.next; p != 0; {
		e := t.at(p)
		h := t.hashOf(e)
		i := h >> 32 & mask
		for t.index[i] != 0 {
			i = (i + 1) & mask
		}
		t.index[i] = h>>32<<32 | uint64(p)
		p = e.next
	}
}

// oldest returns the position of the least recently used key, or 0.
func (t *table) oldest() uint32 { return t.chunks[0][0].prev }
