package httplimit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
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

// allowedPath returns the bare handler, the same handler behind the
// middleware (memory store, a limit never reached) and a request.
func allowedPath(tb testing.TB) (bare, limited http.Handler, r *http.Request) {
	st := memory.New()
	tb.Cleanup(func() { st.Close() })
	clk := newClock(start)
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(1<<40)),
		limiter.WithStore(st), limiter.WithClock(clk.Now))
	if err != nil {
		tb.Fatal(err)
	}
	bare = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	g, err := httplimit.New(lim)
	if err != nil {
		tb.Fatal(err)
	}
	r = httptest.NewRequest(http.MethodGet, "/api/items", nil)
	r.RemoteAddr = "203.0.113.9:51000"
	return bare, g.Wrap(bare), r
}

// TestAllowedPathAllocs guards the allocations the middleware adds to an
// allowed request: at most 3.
func TestAllowedPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts in -short mode are not checked")
	}
	bare, limited, r := allowedPath(t)
	serve := func(h http.Handler) func() {
		return func() {
			w := &sinkWriter{h: make(http.Header)}
			h.ServeHTTP(w, r)
			if w.status != http.StatusOK {
				t.Fatalf("status %d", w.status)
			}
		}
	}
	base := testing.AllocsPerRun(1000, serve(bare))
	with := testing.AllocsPerRun(1000, serve(limited))
	t.Logf("allocs/request: bare %.0f, with middleware %.0f", base, with)
	if added := with - base; added > 3 {
		t.Errorf("middleware adds %.1f allocs per allowed request; want <= 3", added)
	}
}

// BenchmarkAllowedPath compares the bare handler with the same handler
// behind the middleware on the allowed path.
func BenchmarkAllowedPath(b *testing.B) {
	bare, limited, r := allowedPath(b)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"handler=bare", bare}, {"handler=httplimit", limited}} {
		b.Run(bc.name, func(b *testing.B) {
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
