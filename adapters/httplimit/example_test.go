package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// A fixed window of 2 requests a minute per client address; the third
// request within the minute gets 429 and the headers say when to return.
func Example() {
	st := memory.New()
	defer st.Close()
	now := time.Date(2026, 1, 1, 10, 0, 18, 0, time.UTC) // a fake clock, 42 s before the minute ends
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(2)),
		limiter.WithStore(st), limiter.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	g, err := httplimit.New(lim, httplimit.Exempt("/health"))
	if err != nil {
		panic(err)
	}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))

	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/hello", nil)
		r.RemoteAddr = "203.0.113.9:51000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("RateLimit-Policy"), w.Header().Get("RateLimit"))
		if ra := w.Header().Get("Retry-After"); ra != "" {
			fmt.Println("Retry-After:", ra)
		}
	}
	// Output:
	// 200 "minute";q=2;w=60 "minute";r=1;t=42
	// 200 "minute";q=2;w=60 "minute";r=0;t=42
	// 429 "minute";q=2;w=60 "minute";r=0;t=42
	// Retry-After: 42
}

// Three route groups with three algorithms share one store; WithPrefix
// keeps their counts apart.
func Example_perRoute() {
	st := memory.New()
	defer st.Close()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	clock := limiter.WithClock(func() time.Time { return now })
	newGuard := func(alg limiter.Algorithm, prefix string) *httplimit.Guard {
		lim, err := limiter.New(alg, limiter.WithStore(st), clock, limiter.WithPrefix(prefix))
		if err != nil {
			panic(err)
		}
		g, err := httplimit.New(lim)
		if err != nil {
			panic(err)
		}
		return g
	}
	login := newGuard(algorithms.SlidingLog(limiter.PerMinute(1)), "login")
	search := newGuard(algorithms.TokenBucket(limiter.PerSecond(1).WithBurst(2)), "search")
	api := newGuard(algorithms.FixedWindow(limiter.PerMinute(100)), "api")

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("POST /login", login.Wrap(ok))
	mux.Handle("GET /search", search.Wrap(ok))
	mux.Handle("/api/", api.Wrap(ok))

	for _, req := range []string{"POST /login", "POST /login", "GET /search", "GET /search", "GET /search", "GET /api/items"} {
		var method, target string
		fmt.Sscan(req, &method, &target)
		r := httptest.NewRequest(method, target, nil)
		r.RemoteAddr = "203.0.113.9:51000"
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(req, w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// POST /login 200 0
	// POST /login 429 0
	// GET /search 200 1
	// GET /search 200 0
	// GET /search 429 0
	// GET /api/items 200 99
}

// Behind a load balancer at 10.0.0.0/8 that appends to X-Forwarded-For,
// the client is the right-most address the balancer did not add; what the
// client wrote further left is ignored.
func Example_trustProxies() {
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(60)))
	if err != nil {
		panic(err)
	}
	defer lim.Close()
	g, err := httplimit.New(lim, httplimit.TrustProxies("10.0.0.0/8"))
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.5:40000"                                   // the balancer
	r.Header.Set("X-Forwarded-For", "1.2.3.4, 203.0.113.9, 10.0.0.6") // forged, client, inner proxy
	key, _ := g.Key(r)
	fmt.Println(key)

	r.Header.Set("X-Forwarded-For", "2001:db8:1:2::77")
	key, _ = g.Key(r)
	fmt.Println(key)
	// Output:
	// 203.0.113.9
	// 2001:db8:1:2::/64
}
