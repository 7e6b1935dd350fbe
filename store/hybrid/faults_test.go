package hybrid_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/internal/redistest"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/hybrid"
	"github.com/floodgate-go/floodgate/store/redis"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// Ports of this package's throwaway servers (7200–7299 are ours).
const (
	faultServerPort = 7210
)

// proxy is a TCP proxy in front of a Redis server that can lose replies:
// with drop > 0, the next reply longer than 16 bytes the server sends on any
// connection is read, thrown away, and the connection closed, after Redis
// has run the command.
type proxy struct {
	ln      net.Listener
	backend string
	drop    atomic.Int32
	dropped atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, port int, backend string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &proxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) track(c net.Conn, on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && p.conns == nil {
		return false // closed
	}
	if on {
		p.conns[c] = true
	} else if p.conns != nil {
		delete(p.conns, c)
	}
	return true
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *proxy) serve(client net.Conn) {
	defer func() { client.Close(); p.track(client, false) }()
	server, err := net.DialTimeout("tcp", p.backend, time.Second)
	if err != nil {
		return
	}
	if !p.track(server, true) {
		server.Close()
		return
	}
	defer func() { server.Close(); p.track(server, false) }()
	done := make(chan struct{})
	go func() { // requests, as they come
		defer close(done)
		_, _ = io.Copy(server, client)
		server.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			// Replies of flushes that carry items are longer than a
			// heartbeat's (*2 :n $0): only those are dropped.
			if n > 16 && p.drop.Load() > 0 && p.drop.Add(-1) >= 0 {
				p.dropped.Add(1)
				client.Close() // the reply is lost; Redis has applied the command
				break
			}
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	client.Close()
	<-done
}

// Close stops the proxy and every connection through it, and waits.
func (p *proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

// TestFaults runs the hybrid store against a redis-server this test starts,
// through a proxy: the server is killed mid-run (decisions go on, as fast),
// restarted (what was pending lands once), and a flush reply is lost after
// Redis applied it (counted once). At the end Redis holds exactly what was
// admitted.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server; skipped with -short")
	}
	ctx := context.Background()
	srv := redistest.StartServer(t, faultServerPort)
	px := startProxy(t, 0, srv.Addr) // any free port
	o := redistest.Options(px.Addr())
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 200*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond
	client := goredis.NewClient(o)
	defer client.Close()
	direct := goredis.NewClient(redistest.Options(srv.Addr))
	defer direct.Close()
	prefix := redistest.Prefix(t)

	clock := storetest.NewClock(time.Date(2026, 11, 27, 11, 0, 1, 0, time.UTC))
	h := hybrid.New(redis.New(client, redis.WithPrefix(prefix)), hybrid.WithSyncInterval(10*time.Millisecond), hybrid.WithClock(clock.Now))
	defer h.Close()
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(1e6), limiter.PerDay(1e7)),
		limiter.WithStore(h), limiter.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	callers := make([]string, 20)
	for i := range callers {
		callers[i] = "tenant-" + strconv.Itoa(i)
	}
	// run makes n decisions over callers, and returns their latencies.
	run := func(n int, callers []string) ([]time.Duration, int64) {
		lat := make([]time.Duration, 0, n)
		var ok int64
		for i := range n {
			t0 := time.Now()
			res, err := lim.Allow(ctx, callers[i%len(callers)])
			lat = append(lat, time.Since(t0))
			if err != nil {
				t.Fatalf("Allow: %v", err)
			}
			if res.Allowed {
				ok++
			}
		}
		return lat, ok
	}
	// remote sums the minute counts in Redis, read without the proxy.
	remote := func(callers []string) int64 {
		rs := redis.New(direct, redis.WithPrefix(prefix))
		var sum int64
		now := clock.Now().UnixNano()
		for _, c := range callers {
			k := store.Key{Namespace: "fixed:1m0s", Caller: c, Window: now / int64(time.Minute)}
			b := &store.Batch{Now: now, Peek: true, Ops: []store.Op{{Kind: store.Add, Key: k, Ceil: 1 << 62, TTL: time.Hour}}}
			if err := rs.Do(ctx, b); err != nil {
				t.Fatalf("reading %v: %v", k, err)
			}
			sum += b.Results[0].Value
		}
		return sum
	}
	// settle flushes until a flush succeeds (the first may be a retry).
	settle := func() {
		t.Helper()
		var err error
		for range 50 {
			if err = h.Flush(ctx); err == nil {
				return
			}
		}
		t.Fatalf("Flush never succeeded: %v", err)
	}

	const n = 20000
	before, okA := run(n, callers)
	settle()
	if got := remote(callers); got != okA {
		t.Fatalf("Redis holds %d before the outage; want %d admitted", got, okA)
	}

	// Kill the server: decisions go on from local state, five new callers
	// included, at the same speed.
	srv.Stop()
	outageCallers := append(slices.Clone(callers), "new-1", "new-2", "new-3", "new-4", "new-5")
	during, okB := run(n, outageCallers)
	if okB != n {
		t.Fatalf("admitted %d of %d during the outage; want all (fail-local, limits far)", okB, n)
	}
	if err := h.Flush(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Flush during the outage = %v; want ErrUnavailable", err)
	}
	slices.Sort(before)
	slices.Sort(during)
	p99 := before[len(before)*99/100]
	limit := max(20*p99, 200*time.Microsecond)
	slow := len(during) - sort(during, limit)
	t.Logf("decision latency: p50 %v, p99 %v before; p50 %v, p99 %v during the outage; %d decisions slower than %v during it",
		before[len(before)/2], p99, during[len(during)/2], during[len(during)*99/100], slow, limit)
	if slow > n/100 {
		t.Errorf("%d of %d decisions during the outage took longer than %v (20× the p99 before it); want at most 1%%", slow, n, limit)
	}

	// Restart it, empty (no persistence): what was pending lands once, and
	// the flush's floor (the global count this process last knew) restores
	// what the restart lost.
	srv.Start()
	settle()
	if got := remote(outageCallers); got != okA+okB {
		t.Fatalf("Redis holds %d after the restart; want %d admitted", got, okA+okB)
	}

	// Lose a flush reply after Redis applied it: counted once.
	_, okC := run(2000, outageCallers)
	px.drop.Store(1)
	for px.dropped.Load() == 0 {
		_ = h.Flush(ctx)
	}
	settle()
	if got := remote(outageCallers); got != okA+okB+okC {
		t.Fatalf("Redis holds %d after a lost reply; want %d admitted (nothing lost, nothing doubled)", got, okA+okB+okC)
	}

	_, okD := run(1000, outageCallers)
	if err := h.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := remote(outageCallers); got != okA+okB+okC+okD {
		t.Fatalf("Redis holds %d after Close; want %d admitted", got, okA+okB+okC+okD)
	}
	if st := h.Stats(); st.FlushFailures == 0 || st.DroppedDeltas != 0 {
		t.Fatalf("Stats = %+v; want flush failures and nothing dropped", st)
	}
}

// sort returns the number of durations in sorted d that are at most limit.
func sort(d []time.Duration, limit time.Duration) int {
	i, _ := slices.BinarySearch(d, limit+1)
	return i
}
