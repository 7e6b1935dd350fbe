package httplimit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// sinkWriter is a ResponseWriter with a fresh header map per response, as
// a server gives each request, and nothing else.
type sinkWriter struct {
	h      http.Header
	status int
}

func (w *sinkWriter) Header() http.Header         { return w.h }
func (w *sinkWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *sinkWriter) WriteHeader(status int)      { w.status = status }

// apps are the handlers behind the middleware: one that only writes a
// status, and one that sets a header first, as most do.
var apps = []struct {
	name string
	h    http.Handler
}{
	{"empty", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})},
	{"json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusOK)
	})},
}

var fixedValue = []string{"1"}

// allowedPath returns a limiter (memory store, a limit never reached) and
// a request for the allowed-path measurements.
func allowedPath(tb testing.TB) (*limiter.Limiter, *http.Request) {
	st := memory.New()
	tb.Cleanup(func() { st.Close() })
	clk := storetest.NewClock(start)
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(1<<40)),
		limiter.WithStore(st), limiter.WithClock(clk.Now))
	if err != nil {
		tb.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/api/items", nil)
	r.RemoteAddr = "203.0.113.9:51000"
	return lim, r
}

func wrap(tb testing.TB, lim *limiter.Limiter, h http.Handler, opts ...httplimit.Option) http.Handler {
	g, err := httplimit.New(lim, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return g.Wrap(h)
}

// TestAllowedPathAllocs guards the allocations the middleware adds to an
// allowed request: at most 3 with every header set on.
func TestAllowedPathAllocs(t *testing.T) {
	lim, r := allowedPath(t)
	for _, app := range apps {
		serve := func(h http.Handler) func() {
			return func() {
				w := &sinkWriter{h: make(http.Header)}
				h.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					t.Fatalf("status %d", w.status)
				}
			}
		}
		base := testing.AllocsPerRun(1000, serve(app.h))
		with := testing.AllocsPerRun(1000, serve(wrap(t, lim, app.h)))
		t.Logf("app=%s: allocs/request bare %.0f, with middleware %.0f", app.name, base, with)
		if added := with - base; added > 3 {
			t.Errorf("app=%s: middleware adds %.1f allocs per allowed request; want <= 3", app.name, added)
		}
	}
}

// BenchmarkAllowedPath compares a bare handler with the same handler
// behind the middleware on the allowed path. mw=allow-only calls
// lim.Allow before the handler, without the middleware: the difference to
// mw=httplimit is the middleware's own cost (key, headers), the rest is
// the limiter's. headers=none shows what the response headers cost.
func BenchmarkAllowedPath(b *testing.B) {
	lim, r := allowedPath(b)
	for _, app := range apps {
		allowOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if res, err := lim.Allow(r.Context(), "203.0.113.9"); err == nil && res.Allowed {
				app.h.ServeHTTP(w, r)
			}
		})
		// What five header insertions cost by themselves, values
		// precomputed: the floor for any middleware sending these headers.
		headersOnly := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h[httplimit.HeaderRateLimitPolicy] = fixedValue
			h[httplimit.HeaderRateLimit] = fixedValue
			h[httplimit.HeaderXRateLimitLimit] = fixedValue
			h[httplimit.HeaderXRateLimitRemaining] = fixedValue
			h[httplimit.HeaderXRateLimitReset] = fixedValue
			app.h.ServeHTTP(w, r)
		})
		for _, bc := range []struct {
			name string
			h    http.Handler
		}{
			{"mw=none", app.h},
			{"mw=headers-only", headersOnly},
			{"mw=allow-only", allowOnly},
			{"mw=httplimit/headers=all", wrap(b, lim, app.h)},
			{"mw=httplimit/headers=draft", wrap(b, lim, app.h, httplimit.Headers(httplimit.DraftHeaders))},
			{"mw=httplimit/headers=none", wrap(b, lim, app.h, httplimit.Headers(0))},
		} {
			b.Run("app="+app.name+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				w := &sinkWriter{}
				for b.Loop() {
					w.h = make(http.Header)
					bc.h.ServeHTTP(w, r)
				}
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			})
		}
	}
}
