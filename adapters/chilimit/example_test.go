package chilimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/floodgate-go/floodgate/adapters/chilimit"
	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// Three routes, three algorithms, one store: logins by a sliding log per
// client, searches by a token bucket per client, and each organisation's
// API calls by a fixed window, whoever makes them.
func Example() {
	st := memory.New()
	defer st.Close()
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC) // a fake clock
	newLimiter := func(alg limiter.Algorithm, prefix string) *limiter.Limiter {
		lim, err := limiter.New(alg, limiter.WithStore(st), limiter.WithPrefix(prefix),
			limiter.WithClock(func() time.Time { return now }))
		if err != nil {
			panic(err)
		}
		return lim
	}
	login := newLimiter(algorithms.SlidingLog(limiter.PerMinute(1)), "login")
	search := newLimiter(algorithms.TokenBucket(limiter.PerSecond(5).WithBurst(2)), "search")
	orgs := newLimiter(algorithms.FixedWindow(limiter.PerHour(1000)), "orgs")

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	r := chi.NewRouter()
	r.With(chilimit.Middleware(login)).Post("/login", ok)
	r.With(chilimit.Middleware(search,
		httplimit.Keys(httplimit.KeyByIP(), chilimit.KeyByRoutePattern()))).Get("/search", ok)
	r.With(chilimit.Middleware(orgs, chilimit.KeyByURLParam("org"))).Get("/orgs/{org}/repos", ok)

	for _, req := range []struct{ method, path, from string }{
		{"POST", "/login", "203.0.113.9:1"},
		{"POST", "/login", "203.0.113.9:2"},
		{"POST", "/login", "198.51.100.4:1"},
		{"GET", "/search", "203.0.113.9:1"},
		{"GET", "/search", "203.0.113.9:1"},
		{"GET", "/search", "203.0.113.9:1"},
		{"GET", "/orgs/acme/repos", "203.0.113.9:1"},
		{"GET", "/orgs/acme/repos", "198.51.100.4:1"},
	} {
		rq := httptest.NewRequest(req.method, req.path, nil)
		rq.RemoteAddr = req.from
		w := httptest.NewRecorder()
		r.ServeHTTP(w, rq)
		fmt.Printf("%-4s %-16s %-14s %d %s\n", req.method, req.path, req.from, w.Code, w.Header().Get("RateLimit"))
	}
	// Output:
	// POST /login           203.0.113.9:1  200 "minute";r=0;t=60
	// POST /login           203.0.113.9:2  429 "minute";r=0;t=60
	// POST /login           198.51.100.4:1 200 "minute";r=0;t=60
	// GET  /search          203.0.113.9:1  200 "second";r=1;t=1
	// GET  /search          203.0.113.9:1  200 "second";r=0;t=1
	// GET  /search          203.0.113.9:1  429 "second";r=0;t=1
	// GET  /orgs/acme/repos 203.0.113.9:1  200 "hour";r=999;t=3600
	// GET  /orgs/acme/repos 198.51.100.4:1 200 "hour";r=998;t=3600
}
