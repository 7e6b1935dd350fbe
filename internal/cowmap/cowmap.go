// Package cowmap is a small, bounded, read-mostly map for hot paths: a
// lookup is one atomic load and one map read, with no lock; an addition
// copies the map under a mutex. Once the map holds Max entries it stops
// growing, and callers compute what they would have cached.
//
// The limiter caches store namespaces per period in one, and the HTTP
// adapter its encoded header parts per limit.
package cowmap

import (
	"sync"
	"sync/atomic"
)

// Max is the most entries a Map holds.
const Max = 1024

// Map is a copy-on-write map from K to V. Its zero value is an empty map
// ready to use. A Map is safe for concurrent use and must not be copied
// after first use.
type Map[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // serializes additions
}

// Load returns the value stored for k, if any.
func (c *Map[K, V]) Load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// Add stores v for k unless k already has a value or the map is full, and
// returns the value k now has: the earlier one, or v (which the caller
// keeps using even when the map was full).
func (c *Map[K, V]) Add(k K, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if p := c.m.Load(); p != nil {
		old = *p
	}
	if have, ok := old[k]; ok {
		return have
	}
	if len(old) >= Max {
		return v
	}
	m := make(map[K]V, len(old)+1)
	for key, val := range old {
		m[key] = val
	}
	m[k] = v
	c.m.Store(&m)
	return v
}

// Len returns the number of entries held.
func (c *Map[K, V]) Len() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}
