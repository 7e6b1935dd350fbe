package chilimit_test

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/goleak"

	"github.com/floodgate-go/floodgate/adapters/chilimit"
	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// start is 17.5 s into a minute.
var start = time.Date(2026, 1, 1, 10, 0, 17, 500_000_000, time.UTC)

func newStore(t *testing.T) *memory.Store {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	return st
}

func newLimiter(t *testing.T, alg limiter.Algorithm, st store.Store, clk *storetest.Clock, opts ...limiter.Option) *limiter.Limiter {
	t.Helper()
	lim, err := limiter.New(alg, append([]limiter.Option{limiter.WithStore(st), limiter.WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

func get(h http.Handler, target, remote string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func ceilSec(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// TestChiLimitAndHeaders: on a chi router, the (limit+1)th request gets
// 429 with Retry-After rounded up, headers match a model limiter, exempt
// paths are not counted and another client is unaffected.
func TestChiLimitAndHeaders(t *testing.T) {
	const limit = 3
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(limit)), newStore(t), clk)
	model := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(limit)), newStore(t), clk)

	r := chi.NewRouter()
	r.Use(chilimit.Middleware(lim, httplimit.Exempt("/health")))
	r.Get("/health", ok)
	r.Get("/items/{id}", ok)

	for range 5 {
		if w := get(r, "/health", "192.0.2.1:1"); w.Code != 200 || w.Header().Get("RateLimit") != "" {
			t.Fatalf("/health: status %d, RateLimit %q; want 200 and no headers", w.Code, w.Header().Get("RateLimit"))
		}
	}
	for i := 1; i <= limit+1; i++ {
		want, err := model.Allow(t.Context(), "192.0.2.1")
		if err != nil {
			t.Fatal(err)
		}
		w := get(r, fmt.Sprintf("/items/%d", i), "192.0.2.1:1")
		wantStatus := map[bool]int{true: 200, false: 429}[want.Allowed]
		if w.Code != wantStatus || (i <= limit) != want.Allowed {
			t.Fatalf("request %d: status %d; want %d (model allowed %v)", i, w.Code, wantStatus, want.Allowed)
		}
		tSec := ceilSec(want.ResetAfter)
		if !want.Allowed {
			tSec = ceilSec(want.RetryAfter)
			if got := w.Header().Get("Retry-After"); got != "43" || got != fmt.Sprint(tSec) {
				t.Errorf("Retry-After = %q; want 43 (model %d)", got, tSec)
			}
		}
		for name, v := range map[string]string{
			"RateLimit-Policy":      fmt.Sprintf(`"minute";q=%d;w=60`, limit),
			"RateLimit":             fmt.Sprintf(`"minute";r=%d;t=%d`, want.Remaining, tSec),
			"X-RateLimit-Limit":     fmt.Sprint(limit),
			"X-RateLimit-Remaining": fmt.Sprint(want.Remaining),
			"X-RateLimit-Reset":     fmt.Sprint(ceilSec(want.ResetAfter)),
		} {
			if got := w.Header().Get(name); got != v {
				t.Errorf("request %d: %s = %q; want %q", i, name, got, v)
			}
		}
	}
	if w := get(r, "/items/1", "192.0.2.2:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != fmt.Sprint(limit-1) {
		t.Errorf("other client: status %d, remaining %q", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
}

// TestKeyByRoutePattern: the key is the full route pattern wherever the
// middleware sits.
func TestKeyByRoutePattern(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(100)), newStore(t), clk)
	g, err := chilimit.New(lim, chilimit.KeyByRoutePattern())
	if err != nil {
		t.Fatal(err)
	}
	var got string
	record := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got, _ = g.Key(r)
			g.Wrap(next).ServeHTTP(w, r)
		})
	}

	top := chi.NewRouter()
	top.Use(record) // before routing
	top.Get("/users/{id}", ok)
	top.Route("/orgs/{org}", func(r chi.Router) {
		r.Get("/repos/{repo}", ok)
	})

	inline := chi.NewRouter()
	inline.With(record).Get("/users/{id}", ok)
	inline.Route("/orgs/{org}", func(r chi.Router) {
		r.Use(record) // sub-router, before its own routing
		r.Get("/repos/{repo}", ok)
	})
	inline.Group(func(r chi.Router) {
		r.Use(record)
		r.Get("/files/*", ok)
	})

	tests := []struct {
		router string
		h      http.Handler
		path   string
		want   string
	}{
		{"top", top, "/users/7", "/users/{id}"},
		{"top", top, "/orgs/acme/repos/floodgate", "/orgs/{org}/repos/{repo}"},
		{"top", top, "/nowhere", "/nowhere"},
		{"inline", inline, "/users/7", "/users/{id}"},
		{"inline", inline, "/orgs/acme/repos/floodgate", "/orgs/{org}/repos/{repo}"},
		{"inline", inline, "/files/a/b.txt", "/files/*"},
	}
	for _, tt := range tests {
		got = ""
		if w := get(tt.h, tt.path, "192.0.2.1:1"); w.Code == 400 {
			t.Errorf("%s %s: status 400", tt.router, tt.path)
		}
		if got != tt.want {
			t.Errorf("%s router, %s: key %q; want %q", tt.router, tt.path, got, tt.want)
		}
	}
}

// TestKeyByRoutePatternRewrittenPath: chi middleware that rewrites the
// routing path or method before the limiter (CleanPath, StripSlashes,
// URLFormat, GetHead) does not give each spelling of a route its own key,
// which would let a client dodge a per-route limit.
func TestKeyByRoutePatternRewrittenPath(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), newStore(t), clk)
	r := chi.NewRouter()
	r.Use(middleware.CleanPath, middleware.StripSlashes, middleware.URLFormat, middleware.GetHead)
	r.Use(chilimit.Middleware(lim, chilimit.KeyByRoutePattern()))
	r.Get("/users/{id}", ok)
	for i, rq := range []struct{ method, path string }{
		{http.MethodGet, "/users/7"},
		{http.MethodGet, "/users//7"},
		{http.MethodGet, "/users/7/"},
		{http.MethodGet, "/users/7.json"},
		{http.MethodHead, "/users/7"},
		{http.MethodHead, "/users/8/"},
	} {
		req := httptest.NewRequest(rq.method, rq.path, nil)
		req.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if want := map[bool]int{true: 200, false: 429}[i == 0]; w.Code != want {
			t.Errorf("%s %s: status %d; want %d (one limit for the route /users/{id})", rq.method, rq.path, w.Code, want)
		}
	}
}

// TestKeyByRoutePatternAllocs: where the key has to look the route up
// (r.Use, catch-all routes), the lookup allocates no route context per
// request. chi's Find, given a fresh route context each time, allocates 6
// times for a top-level route and 12 for a sub-router's; the bounds leave
// room for the race detector, which makes sync.Pool drop a quarter of what
// it is given.
func TestKeyByRoutePatternAllocs(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), newStore(t), clk)
	g, err := chilimit.New(lim, chilimit.KeyByRoutePattern())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		key    string
		allocs float64
	}
	got := map[string]result{}
	measure := func(where string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				key, _ := g.Key(r)
				got[where+" "+r.URL.Path] = result{key, testing.AllocsPerRun(200, func() { g.Key(r) })}
				next.ServeHTTP(w, r)
			})
		}
	}
	r := chi.NewRouter()
	r.Use(measure("use"))
	r.Get("/users/{id}", ok)
	r.With(measure("with")).Get("/files/*", ok)
	r.Route("/orgs/{org}", func(r chi.Router) {
		r.Use(measure("sub-use"))
		r.Get("/repos/{repo}", ok)
	})
	for _, path := range []string{"/users/7", "/files/a/b", "/orgs/acme/repos/x"} {
		get(r, path, "192.0.2.1:1")
	}
	for _, tt := range []struct {
		at        string
		key       string
		maxAllocs float64
	}{
		{"use /users/7", "/users/{id}", 2},
		{"use /files/a/b", "/files/*", 2},
		{"with /files/a/b", "/files/*", 2},
		{"use /orgs/acme/repos/x", "/orgs/{org}/repos/{repo}", 6},
		{"sub-use /orgs/acme/repos/x", "/orgs/{org}/repos/{repo}", 6},
	} {
		res, ok := got[tt.at]
		if !ok {
			t.Errorf("%s: middleware did not run", tt.at)
			continue
		}
		if res.key != tt.key || res.allocs > tt.maxAllocs {
			t.Errorf("%s: key %q, %.0f allocs per key; want %q, at most %.0f", tt.at, res.key, res.allocs, tt.key, tt.maxAllocs)
		}
	}
}

// TestKeyByURLParam: the parameter keys; a route without it answers 400.
func TestKeyByURLParam(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), newStore(t), clk)
	mw := chilimit.Middleware(lim, chilimit.KeyByURLParam("org"))
	r := chi.NewRouter()
	r.With(mw).Get("/orgs/{org}/repos", ok)
	r.With(mw).Get("/users", ok)
	lim2 := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), newStore(t), clk)
	r.Route("/teams/{org}", func(r chi.Router) {
		r.Use(chilimit.Middleware(lim2, chilimit.KeyByURLParam("org"))) // sub-router, before its routing
		r.Get("/members", ok)
	})

	codes := []int{
		get(r, "/orgs/acme/repos", "192.0.2.1:1").Code,
		get(r, "/orgs/acme/repos", "192.0.2.2:1").Code, // same org, other client: same limit
		get(r, "/orgs/umbrella/repos", "192.0.2.1:1").Code,
		get(r, "/users", "192.0.2.1:1").Code,
		get(r, "/teams/acme/members", "192.0.2.1:1").Code,
		get(r, "/teams/acme/members", "192.0.2.2:1").Code,
		get(r, "/teams/umbrella/members", "192.0.2.1:1").Code,
	}
	want := []int{200, 429, 200, 400, 200, 429, 200}
	for i := range want {
		if codes[i] != want[i] {
			t.Errorf("statuses = %v; want %v", codes, want)
			break
		}
	}
}

// TestRealServerConcurrent: a real server on 127.0.0.1, chi routes with
// their own limiters on one store, 50 concurrent clients: each key gets
// exactly its limit admitted. The clock stands still, so no window ends.
func TestRealServerConcurrent(t *testing.T) {
	const (
		clients   = 50
		perClient = 40
		keys      = 5
	)
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last: server and connections gone
	clk := storetest.NewClock(start)
	st := newStore(t)
	limits := map[string]int64{"/search": 37, "/orders/{id}": 100}
	searchLim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(limits["/search"])), st, clk, limiter.WithPrefix("search"))
	ordersLim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(limits["/orders/{id}"])), st, clk, limiter.WithPrefix("orders"))

	var admitted [2][keys]atomic.Int64
	counting := func(route int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var k int
			fmt.Sscan(r.Header.Get("X-Client"), &k)
			admitted[route][k].Add(1)
		}
	}
	r := chi.NewRouter()
	r.With(chilimit.Middleware(searchLim, httplimit.KeyByHeader("X-Client"))).Get("/search", counting(0))
	r.With(chilimit.Middleware(ordersLim, httplimit.KeyByHeader("X-Client"))).Get("/orders/{id}", counting(1))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	})
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	base := "http://" + ln.Addr().String()

	var wg sync.WaitGroup
	var status [2][keys]struct{ ok, denied, other atomic.Int64 }
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				route, path := i%2, "/search"
				if route == 1 {
					path = fmt.Sprintf("/orders/%d", i)
				}
				k := (c + i) % keys
				req, _ := http.NewRequest(http.MethodGet, base+path, nil)
				req.Header.Set("X-Client", fmt.Sprint(k))
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("client %d: %v", c, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					status[route][k].ok.Add(1)
				case 429:
					status[route][k].denied.Add(1)
				default:
					status[route][k].other.Add(1)
				}
			}
		})
	}
	wg.Wait()

	for route, pattern := range []string{"/search", "/orders/{id}"} {
		for k := range keys {
			s := &status[route][k]
			total := s.ok.Load() + s.denied.Load() + s.other.Load()
			if total <= limits[pattern] {
				t.Fatalf("%s key %d: only %d requests, not enough to reach the limit %d", pattern, k, total, limits[pattern])
			}
			if s.ok.Load() != limits[pattern] || admitted[route][k].Load() != limits[pattern] || s.other.Load() != 0 {
				t.Errorf("%s key %d: %d answered 200, %d reached the handler, %d other statuses, of %d; want exactly %d admitted",
					pattern, k, s.ok.Load(), admitted[route][k].Load(), s.other.Load(), total, limits[pattern])
			}
		}
	}
}
