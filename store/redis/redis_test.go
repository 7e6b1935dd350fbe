package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/internal/redisstats"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/redis"
)

// base is a realistic instant, so that token-bucket cells hold ~1.8e18.
var base = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano()

func newStore(t *testing.T) (*redis.Store, *redisstats.Counter, string) {
	t.Helper()
	c, cnt, _ := redistest.Client(t)
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	s := redis.New(c, redis.WithPrefix(prefix))
	t.Cleanup(func() { _ = s.Close() })
	return s, cnt, prefix
}

// TestDifferential runs random batches on the Redis store and on the
// memory store (the reference) and requires identical results: bounded adds
// with floors near 1.9e18 and deltas of one, prior-weighted adds, refunds,
// peeks, multi-op batches, and logs at nanosecond-apart instants, with time
// sometimes going backwards.
func TestDifferential(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rs, _, _ := newStore(t)
			ms := memory.New()
			defer ms.Close()
			rng := rand.New(rand.NewPCG(seed, 99))
			ctx := context.Background()
			now := base + int64(seed)*1_000_003
			big := base + 123_456_789 // a GCRA-like floor
			keys := func(kind string) store.Key {
				return store.Key{Namespace: kind + strconv.Itoa(rng.IntN(3)), Caller: "c{}\n:" + strconv.Itoa(int(seed)), Window: int64(rng.IntN(2))}
			}
			outcomes := map[string]int{}
			for step := range 400 {
				// Time moves by 0 to 20 s, sometimes back by a little; never
				// beyond the adds' one-hour TTL in total (400 steps × 5 s on
				// average), and never less than the real time the test takes,
				// since Redis expires keys in its own time.
				switch rng.IntN(5) {
				case 0:
				case 1:
					now += rng.Int64N(1000)
				case 2:
					now += rng.Int64N(2_000_000)
				case 3:
					now += rng.Int64N(20_000_000_000)
				default:
					now -= rng.Int64N(500)
				}
				b := &store.Batch{Now: now, Peek: rng.IntN(5) == 0}
				if rng.IntN(3) == 0 {
					// One window per log: the memory store forgets a log
					// once its last writer's window has passed (expiry is
					// hygiene), Redis when its TTL has.
					k := keys("log")
					w := time.Duration(1+k.Window) * time.Duration(10_000_000_000+int64(seed)*7_919)
					b.Ops = append(b.Ops, store.Op{
						Kind: store.Log, Key: k, N: rng.Int64N(4),
						Ceil: rng.Int64N(8), Window: w,
					})
				} else {
					for range 1 + rng.IntN(3) {
						op := store.Op{Kind: store.Add, Key: keys("add"), TTL: time.Hour}
						if slices.ContainsFunc(b.Ops, func(o store.Op) bool { return o.Key == op.Key }) {
							continue // one key appears once per batch
						}
						if rng.IntN(2) == 0 { // small counters
							op.N, op.Floor, op.Ceil = rng.Int64N(5)-1, rng.Int64N(3)-1, rng.Int64N(12)
						} else { // exact near 1.9e18
							op.N, op.Floor = rng.Int64N(5)-1, big+rng.Int64N(4)
							op.Ceil = op.Floor + rng.Int64N(8)
						}
						if rng.IntN(3) == 0 {
							op.Prior = keys("add")
							op.PriorWeight = []int64{1, 999_999, 1_000_000, rng.Int64N(1_000_001)}[rng.IntN(4)]
						}
						b.Ops = append(b.Ops, op)
					}
				}
				mb := &store.Batch{Now: b.Now, Peek: b.Peek, Ops: b.Ops}
				if err := ms.Do(ctx, mb); err != nil {
					t.Fatalf("step %d: memory Do: %v", step, err)
				}
				if err := rs.Do(ctx, b); err != nil {
					t.Fatalf("step %d: redis Do: %v", step, err)
				}
				if b.Applied != mb.Applied || fmt.Sprint(b.Results) != fmt.Sprint(mb.Results) {
					t.Fatalf("step %d at %d, ops %+v:\nredis  = applied %v %+v\nmemory = applied %v %+v",
						step, now, b.Ops, b.Applied, b.Results, mb.Applied, mb.Results)
				}
				outcomes[fmt.Sprintf("%v applied=%v", b.Ops[0].Kind, b.Applied)]++
				if b.Ops[0].Kind == store.Log && b.Results[0].Oldest != b.Results[0].Newest && b.Results[0].Oldest != 0 {
					outcomes["log spans time"]++
				}
			}
			// The walk must reach every interesting state.
			for _, o := range []string{"add applied=true", "add applied=false", "log applied=true", "log applied=false", "log spans time"} {
				if outcomes[o] == 0 {
					t.Fatalf("no step had outcome %q (%v): the random walk is too narrow", o, outcomes)
				}
			}
		})
	}
}

// TestTTL checks that the script gives every key it writes a TTL: PX for
// cells, PEXPIRE for streams.
func TestTTL(t *testing.T) {
	c, _, mr := redistest.Client(t)
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	s := redis.New(c, redis.WithPrefix(prefix))
	ctx := context.Background()
	cell := store.Key{Namespace: "n", Caller: "ttl"}
	lg := store.Key{Namespace: "l", Caller: "ttl"}
	// A window whose TTL is a round 1e8 ms: some Redis versions print such
	// numbers as "1e+08" when a script passes them as numbers.
	round := store.Key{Namespace: "r", Caller: "ttl"}
	b := &store.Batch{Now: base, Ops: []store.Op{
		{Kind: store.Add, Key: cell, N: 1, Ceil: 5, TTL: 90 * time.Second},
		{Kind: store.Log, Key: lg, N: 2, Ceil: 5, Window: 30 * time.Second},
		{Kind: store.Log, Key: round, N: 1, Ceil: 5, Window: 99_999_999 * time.Millisecond},
	}}
	if err := s.Do(ctx, b); err != nil || !b.Applied {
		t.Fatalf("Do = %v, applied %v; want nil, true", err, b.Applied)
	}
	tests := []struct {
		key      store.Key
		min, max time.Duration
		typ      string
	}{
		{cell, 89 * time.Second, 90*time.Second + time.Millisecond, "string"},
		{lg, 29 * time.Second, 30*time.Second + 2*time.Millisecond, "stream"},
		{round, 99_000 * time.Second, 100_000_000 * time.Millisecond, "stream"},
	}
	for _, tt := range tests {
		name := prefix + tt.key.String()
		ttl, err := c.PTTL(ctx, name).Result()
		if err != nil || ttl < tt.min || ttl > tt.max {
			t.Errorf("PTTL(%q) = %v, %v; want in [%v, %v]", name, ttl, err, tt.min, tt.max)
		}
		if typ, _ := c.Type(ctx, name).Result(); typ != tt.typ {
			t.Errorf("TYPE(%q) = %q; want %q", name, typ, tt.typ)
		}
		if !strings.Contains(name, store.HashTag("ttl")) {
			t.Errorf("key %q lacks the caller's hash tag %q", name, store.HashTag("ttl"))
		}
	}
	if mr != nil { // on miniredis, time can pass: every key goes
		mr.FastForward(100_000 * time.Second)
		if n := len(mr.Keys()); n != 0 {
			t.Fatalf("after the TTLs, miniredis holds %d keys (%v); want 0", n, mr.Keys())
		}
	}
}

// TestOneCommandPerDecision counts, with the hook, what each Do sends: one
// command, one round trip, for every shape of batch (on miniredis or, with
// REDIS_ADDR, the real Redis). The integration test also checks the server.
func TestOneCommandPerDecision(t *testing.T) {
	s, cnt, _ := newStore(t)
	ctx := context.Background()
	k := func(ns string) store.Key { return store.Key{Namespace: ns, Caller: "cost"} }
	batches := map[string][]store.Op{
		"add":       {{Kind: store.Add, Key: k("a"), N: 1, Ceil: 9, TTL: time.Minute}},
		"two-adds":  {{Kind: store.Add, Key: k("a"), N: 1, Ceil: 9, TTL: time.Minute}, {Kind: store.Add, Key: k("b"), N: 1, Ceil: 9, TTL: time.Hour}},
		"prior":     {{Kind: store.Add, Key: k("a"), N: 1, Ceil: 9, TTL: time.Minute, Prior: k("p"), PriorWeight: 500_000}},
		"log":       {{Kind: store.Log, Key: k("l"), N: 1, Ceil: 9, Window: time.Minute}},
		"log+add":   {{Kind: store.Log, Key: k("l"), N: 1, Ceil: 9, Window: time.Minute}, {Kind: store.Add, Key: k("a"), N: 1, Ceil: 9, TTL: time.Minute}},
		"eight-ops": make([]store.Op, 0, store.MaxOps),
	}
	for i := range store.MaxOps {
		batches["eight-ops"] = append(batches["eight-ops"], store.Op{Kind: store.Add, Key: k(strconv.Itoa(i)), N: 1, Ceil: 9, TTL: time.Minute, Prior: k("p"), PriorWeight: 1})
	}
	// Warm up: the first EVALSHA on a fresh server answers NOSCRIPT.
	if err := s.Do(ctx, &store.Batch{Now: base, Ops: batches["add"]}); err != nil {
		t.Fatal(err)
	}
	for name, ops := range batches {
		for _, peek := range []bool{false, true} {
			cnt.Reset()
			if err := s.Do(ctx, &store.Batch{Now: base, Peek: peek, Ops: ops}); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if cnt.Commands() != 1 || cnt.RoundTrips() != 1 {
				t.Errorf("%s (peek %v): %d commands, %d round trips; want 1, 1", name, peek, cnt.Commands(), cnt.RoundTrips())
			}
		}
	}
}

// TestNoScript checks the NOSCRIPT fallback: after SCRIPT FLUSH the next
// decision still succeeds (EVALSHA, then EVAL), and later ones are single
// EVALSHAs again.
func TestNoScript(t *testing.T) {
	if redistest.Addr() != "" {
		t.Skip("SCRIPT FLUSH would disturb other users of the shared REDIS_ADDR; runs on miniredis")
	}
	tests := []struct {
		name string
		opts []redis.Option
		cmds int64 // after a flush
	}{
		{"plain", nil, 2}, // EVALSHA, EVAL
		{"autopipeline", []redis.Option{redis.WithAutoPipeline()}, 3}, // EVALSHA, SCRIPT LOAD, EVALSHA
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cnt, _ := redistest.Client(t)
			s := redis.New(c, tt.opts...)
			ctx := context.Background()
			op := store.Op{Kind: store.Add, Key: store.Key{Namespace: "n", Caller: "x"}, N: 1, Ceil: 5, TTL: time.Minute}
			// Warm up: connections opened now send HELLO through the hooks.
			if err := s.Do(ctx, &store.Batch{Now: base, Ops: []store.Op{op}}); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := c.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				cnt.Reset()
				b := &store.Batch{Now: base, Ops: []store.Op{op}}
				if err := s.Do(ctx, b); err != nil || b.Results[0].Value != int64(i+2) {
					t.Fatalf("decision %d after SCRIPT FLUSH = %v, value %d; want nil, %d", i, err, b.Results[0].Value, i+2)
				}
				if cnt.Commands() != tt.cmds {
					t.Fatalf("decision %d after a flush sent %d commands; want %d", i, cnt.Commands(), tt.cmds)
				}
			}
			cnt.Reset()
			if err := s.Do(ctx, &store.Batch{Now: base, Ops: []store.Op{op}}); err != nil || cnt.Commands() != 1 {
				t.Fatalf("decision with a cached script = %v, %d commands; want nil, 1", err, cnt.Commands())
			}
		})
	}
}

// TestErrors checks the error contract: invalid batches before any I/O,
// ErrClosed after Close, ErrUnavailable (with its cause) when Redis fails.
func TestErrors(t *testing.T) {
	c, cnt, mr := redistest.Client(t)
	s := redis.New(c)
	ctx := context.Background()
	k := store.Key{Namespace: "n", Caller: "e"}

	for name, b := range map[string]*store.Batch{
		"empty":       {Now: base},
		"huge append": {Now: base, Ops: []store.Op{{Kind: store.Log, Key: k, N: store.MaxLogAppend + 1, Ceil: 1 << 40, Window: time.Second}}},
	} {
		cnt.Reset()
		if err := s.Do(ctx, b); !errors.Is(err, store.ErrInvalidBatch) || cnt.Commands() != 0 {
			t.Errorf("%s: Do = %v after %d commands; want ErrInvalidBatch before any", name, err, cnt.Commands())
		}
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	ok := &store.Batch{Now: base, Ops: []store.Op{{Kind: store.Add, Key: k, N: 1, Ceil: 5, TTL: time.Second}}}
	if err := s.Do(canceled, ok); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) || ok.Applied {
		t.Errorf("Do(canceled ctx) = %v, applied %v; want ErrUnavailable wrapping context.Canceled", err, ok.Applied)
	}

	if mr != nil {
		// Server-side failures, then a server that is gone.
		for _, reply := range []string{
			"OOM command not allowed when used memory > 'maxmemory'.",
			"CLUSTERDOWN The cluster is down",
			"LOADING Redis is loading the dataset in memory",
			"READONLY You can't write against a read only replica.",
		} {
			code, _, _ := strings.Cut(reply, " ")
			mr.SetError(reply)
			if err := s.Do(ctx, ok); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), code) || ok.Applied {
				t.Errorf("Do on %s = %v, applied %v; want ErrUnavailable with the cause", code, err, ok.Applied)
			}
			if err := s.Reset(ctx, k); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), code) {
				t.Errorf("Reset on %s = %v; want ErrUnavailable with the cause", code, err)
			}
		}
		mr.SetError("")
		mr.Close()
		if err := s.Do(ctx, ok); !errors.Is(err, store.ErrUnavailable) || ok.Applied {
			t.Errorf("Do with Redis gone = %v, applied %v; want ErrUnavailable, false", err, ok.Applied)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil", err)
	}
	if err := s.Do(ctx, ok); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Do after Close = %v; want ErrClosed", err)
	}
	if mr == nil {
		// Close never closes the caller's client.
		if err := c.Ping(ctx).Err(); err != nil {
			t.Errorf("client after store Close: %v; want it still open", err)
		}
	}
}

// TestResetManyCallers checks that Reset of keys of several callers deletes
// them all (one DEL per caller, in one pipeline) and nothing else.
func TestResetManyCallers(t *testing.T) {
	s, cnt, _ := newStore(t)
	testResetManyCallers(t, s, cnt)
}

// TestResetManyCallersCluster is TestResetManyCallers on the Redis Cluster
// at REDIS_CLUSTER_ADDRS: the callers' keys live in different slots.
func TestResetManyCallersCluster(t *testing.T) {
	c, cnt := redistest.ClusterClient(t)
	prefix := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, prefix)
	testResetManyCallers(t, redis.New(c, redis.WithPrefix(prefix)), cnt)
}

func testResetManyCallers(t *testing.T, s *redis.Store, cnt *redisstats.Counter) {
	ctx := context.Background()
	callers := []string{"a", "b{", "c}"}
	var keys []store.Key
	for _, c := range callers {
		k := store.Key{Namespace: "n", Caller: c}
		keys = append(keys, k)
		if err := s.Do(ctx, &store.Batch{Now: base, Ops: []store.Op{{Kind: store.Add, Key: k, N: 3, Ceil: 3, TTL: time.Minute}}}); err != nil {
			t.Fatal(err)
		}
	}
	keep := store.Key{Namespace: "n", Caller: "keep"}
	if err := s.Do(ctx, &store.Batch{Now: base, Ops: []store.Op{{Kind: store.Add, Key: keep, N: 3, Ceil: 3, TTL: time.Minute}}}); err != nil {
		t.Fatal(err)
	}
	// Warm up the pipeline connection (its HELLO passes the hooks).
	if err := s.Reset(ctx, store.Key{Namespace: "n", Caller: "x"}, store.Key{Namespace: "n", Caller: "y"}); err != nil {
		t.Fatal(err)
	}
	cnt.Reset()
	if err := s.Reset(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	if cnt.RoundTrips() != 1 {
		t.Errorf("Reset of 3 callers took %d round trips; want 1", cnt.RoundTrips())
	}
	for _, k := range append(keys, keep) {
		b := &store.Batch{Now: base, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k, Ceil: 3, TTL: time.Minute}}}
		if err := s.Do(ctx, b); err != nil {
			t.Fatal(err)
		}
		want := int64(0)
		if k == keep {
			want = 3
		}
		if b.Results[0].Value != want {
			t.Errorf("after Reset, %q = %d; want %d", k.Caller, b.Results[0].Value, want)
		}
	}
}

// TestServerTime checks that WithServerTime learns the server's clock:
// with a local clock an hour behind, Now lands within a second of the
// server's time.
func TestServerTime(t *testing.T) {
	c, _, mr := redistest.Client(t)
	serverNow := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if mr != nil {
		mr.SetTime(serverNow)
	} else {
		st, err := c.Time(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		serverNow = st
	}
	local := serverNow.Add(-time.Hour) // a fixed, skewed local clock
	s := redis.New(c, redis.WithServerTime(func() time.Time { return local }))
	if got := s.Now(); !got.Equal(local) {
		t.Fatalf("Now before any reply = %v; want the local clock %v", got, local)
	}
	ns := redistest.Prefix(t)
	redistest.CleanupPrefix(t, c, ns)
	b := &store.Batch{Now: local.UnixNano(), Ops: []store.Op{{Kind: store.Add, Key: store.Key{Namespace: ns, Caller: "t"}, N: 1, Ceil: 5, TTL: time.Second}}}
	if err := s.Do(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if d := s.Now().Sub(serverNow); d < -time.Second || d > time.Second {
		t.Fatalf("Now after a reply = %v, %v off the server's clock; want within 1s", s.Now(), d)
	}
	if got := redis.New(c).Now(); !got.IsZero() {
		t.Fatalf("Now without WithServerTime = %v; want the zero Time", got)
	}
	// SyncTime corrects the clock before the first decision.
	s2 := redis.New(c, redis.WithServerTime(func() time.Time { return local }))
	if err := s2.SyncTime(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := s2.Now().Sub(serverNow); d < -time.Second || d > time.Second {
		t.Fatalf("Now after SyncTime = %v, %v off the server's clock; want within 1s", s2.Now(), d)
	}
}

// TestSameKeyTwice checks that a batch naming one key in two ops is
// refused before any I/O, like every store refuses it.
func TestSameKeyTwice(t *testing.T) {
	rs, _, _ := newStore(t)
	ctx := context.Background()
	cell := store.Key{Namespace: "a", Caller: "dup"}
	lg := store.Key{Namespace: "l", Caller: "dup"}
	add := store.Op{Kind: store.Add, Key: cell, N: 1, Ceil: 10, TTL: time.Hour}
	app := store.Op{Kind: store.Log, Key: lg, N: 1, Ceil: 9, Window: time.Hour}
	for _, ops := range [][]store.Op{{add, add}, {app, app}} {
		b := &store.Batch{Now: base, Ops: ops}
		if err := rs.Do(ctx, b); !errors.Is(err, store.ErrInvalidBatch) || b.Applied {
			t.Fatalf("Do with one key twice = (applied %v, %v); want ErrInvalidBatch", b.Applied, err)
		}
	}
}

func TestNilClient(t *testing.T) {
	s := redis.New(nil)
	ctx := context.Background()
	b := &store.Batch{Now: base, Ops: []store.Op{{Kind: store.Add, Key: store.Key{Namespace: "n", Caller: "c"}, N: 1, Ceil: 5, TTL: time.Second}}}
	if err := s.Do(ctx, b); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Do with a nil client = %v; want ErrUnavailable", err)
	}
	if err := s.Reset(ctx, store.Key{Namespace: "n", Caller: "c"}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Reset with a nil client = %v; want ErrUnavailable", err)
	}
}
