package store_test

import (
	"strings"
	"testing"

	"github.com/floodgate-go/floodgate/store"
)

// redisHashTag returns the part of key Redis Cluster hashes: the bytes
// between the first '{' and the first '}' after it, when non-empty.
func redisHashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

func checkKey(t *testing.T, k store.Key) {
	t.Helper()
	enc := k.String()
	got, err := store.ParseKey(enc)
	if err != nil || got != k {
		t.Fatalf("ParseKey(%q) = (%+v, %v); want %+v: the encoding is not injective", enc, got, err, k)
	}
	if k.Caller != "" {
		if tag := "{" + redisHashTag(enc) + "}"; tag != store.HashTag(k.Caller) {
			t.Fatalf("key %q hashes on %q; want the caller's tag %q", enc, tag, store.HashTag(k.Caller))
		}
	}
}

func TestKeyEncoding(t *testing.T) {
	names := []string{"", "a", ":", "{", "}", "{}", "%", "%7B", "a b", "\n", "\x00", "\xff", "é", "api:fixed:1m0s", "}{"}
	seen := map[string]store.Key{}
	for _, ns := range names {
		for _, caller := range names {
			for _, w := range []int64{0, 1, -1, 29_123_456} {
				k := store.Key{Namespace: ns, Caller: caller, Window: w}
				checkKey(t, k)
				enc := k.String()
				if prev, dup := seen[enc]; dup {
					t.Fatalf("%+v and %+v both encode to %q", prev, k, enc)
				}
				seen[enc] = k
			}
		}
	}
	for _, bad := range []string{"", "ns", "ns{a}", "ns{a}:", "ns{a}:01", "ns{a}:x", "n%s{a}:1", "n%7b{a}:1", "n%41{a}:1", "ns{a\n}:1", "ns{a}:1:2"} {
		if k, err := store.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) = %+v; want an error", bad, k)
		}
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"api", "api"},
		{"a{b}", "a%7Bb%7D"},
		{"100%", "100%25"},
		{"a b\n", "a%20b%0A"},
	}
	for _, tt := range tests {
		if got := store.Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzKeyEncoding checks that distinct keys never share an encoding: every
// encoding decodes back to the key it came from, and two keys that differ
// encode differently.
func FuzzKeyEncoding(f *testing.F) {
	f.Add("api:fixed:1m0s", "tenant-42", int64(29_000_000), "api:fixed:1m0s", "tenant-4", int64(229_000_000))
	f.Add("a", "{b}", int64(1), "a{", "b}", int64(1))
	f.Add("", "x}:1", int64(0), "", "x", int64(1))
	f.Fuzz(func(t *testing.T, ns1, c1 string, w1 int64, ns2, c2 string, w2 int64) {
		k1 := store.Key{Namespace: ns1, Caller: c1, Window: w1}
		k2 := store.Key{Namespace: ns2, Caller: c2, Window: w2}
		checkKey(t, k1)
		checkKey(t, k2)
		if k1 != k2 && k1.String() == k2.String() {
			t.Fatalf("%+v and %+v collide on %q", k1, k2, k1.String())
		}
	})
}

func TestBatchValidate(t *testing.T) {
	k := store.Key{Namespace: "n", Caller: "c"}
	ok := store.Op{Kind: store.Add, Key: k, N: 1, Ceil: 1, TTL: 1}
	if err := (&store.Batch{Ops: []store.Op{ok}}).Validate(); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	if got := store.Weighted(3_000_001, 500_000); got != 1_500_000 {
		t.Fatalf("Weighted(3000001, 0.5) = %d; want 1500000", got)
	}
	if got := store.Weighted(1<<62, 1_000_000); got != 1<<62 {
		t.Fatalf("Weighted(2^62, 1) = %d; want 2^62 (no overflow)", got)
	}
}

func TestFits(t *testing.T) {
	const maxI, minI = int64(^uint64(0) >> 1), -int64(^uint64(0)>>1) - 1
	tests := []struct {
		v, n, used, ceil int64
		want             bool
	}{
		{0, 1, 0, 1, true},
		{0, 2, 0, 1, false},
		{5, -3, 1, 3, true},
		{maxI - 5, 10, 0, maxI, false}, // wraps around in int64
		{maxI, 1, 0, maxI, false},
		{maxI, 0, 0, maxI, true},
		{maxI, maxI, maxI, maxI, false},
		{minI, -1, 0, 0, true}, // wraps the other way
		{minI, minI, 0, minI, true},
		{1, maxI, 0, 0, false},
		{-1, 0, 0, -1, true},
		{-1, 0, 0, -2, false},
	}
	for _, tt := range tests {
		if got := store.Fits(tt.v, tt.n, tt.used, tt.ceil); got != tt.want {
			t.Errorf("Fits(%d, %d, %d, %d) = %v; want %v", tt.v, tt.n, tt.used, tt.ceil, got, tt.want)
		}
	}
}
