package ginlimit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/floodgate-go/floodgate/adapters/ginlimit"
	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// start is 17.5 s into a minute.
var start = time.Date(2026, 1, 1, 10, 0, 17, 500_000_000, time.UTC)

func newLimiter(t *testing.T, alg limiter.Algorithm, st store.Store, clk *storetest.Clock) *limiter.Limiter {
	t.Helper()
	if st == nil {
		m := memory.New()
		t.Cleanup(func() { m.Close() })
		st = m
	}
	lim, err := limiter.New(alg, limiter.WithStore(st), limiter.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func get(h http.Handler, target, remote string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func ceilSec(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// TestGinLimitAndHeaders: the (limit+1)th request gets 429 with Retry-After
// rounded up and the handler chain aborted; headers match a model limiter;
// exempt paths are not counted; another client is unaffected.
func TestGinLimitAndHeaders(t *testing.T) {
	for _, bc := range []struct {
		name  string
		alg   func() limiter.Algorithm
		retry string
	}{
		{"fixed", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.PerMinute(3)) }, "43"},
		{"bucket", func() limiter.Algorithm { return algorithms.TokenBucket(limiter.PerMinute(3)) }, "20"},
	} {
		t.Run("alg="+bc.name, func(t *testing.T) {
			clk := storetest.NewClock(start)
			lim := newLimiter(t, bc.alg(), nil, clk)
			model := newLimiter(t, bc.alg(), nil, clk)
			var served, after atomic.Int64
			e := gin.New()
			e.Use(ginlimit.Middleware(lim, httplimit.Exempt("/health")))
			e.Use(func(c *gin.Context) { c.Next(); after.Add(1) }) // runs only when not aborted
			e.GET("/health", func(c *gin.Context) { c.String(200, "ok") })
			e.GET("/items/:id", func(c *gin.Context) { served.Add(1); c.String(200, "ok") })

			for range 5 {
				if w := get(e, "/health", "192.0.2.1:1"); w.Code != 200 || w.Header().Get("RateLimit") != "" {
					t.Fatalf("/health: status %d, RateLimit %q", w.Code, w.Header().Get("RateLimit"))
				}
			}
			for i := 1; i <= 4; i++ {
				want, err := model.Allow(t.Context(), "192.0.2.1")
				if err != nil {
					t.Fatal(err)
				}
				w := get(e, fmt.Sprintf("/items/%d", i), "192.0.2.1:1")
				wantStatus := map[bool]int{true: 200, false: 429}[want.Allowed]
				if w.Code != wantStatus || (i <= 3) != want.Allowed {
					t.Fatalf("request %d: status %d; want %d (model allowed %v)", i, w.Code, wantStatus, want.Allowed)
				}
				tSec := ceilSec(want.ResetAfter)
				if !want.Allowed {
					tSec = ceilSec(want.RetryAfter)
					if got := w.Header().Get("Retry-After"); got != bc.retry || got != fmt.Sprint(tSec) {
						t.Errorf("Retry-After = %q; want %s (model %d)", got, bc.retry, tSec)
					}
					if !strings.Contains(w.Body.String(), "quota-exceeded") {
						t.Errorf("429 body = %q", w.Body)
					}
				}
				for name, v := range map[string]string{
					"RateLimit-Policy":      `"minute";q=3;w=60`,
					"RateLimit":             fmt.Sprintf(`"minute";r=%d;t=%d`, want.Remaining, tSec),
					"X-RateLimit-Limit":     "3",
					"X-RateLimit-Remaining": fmt.Sprint(want.Remaining),
					"X-RateLimit-Reset":     fmt.Sprint(ceilSec(want.ResetAfter)),
				} {
					if got := w.Header().Get(name); got != v {
						t.Errorf("request %d: %s = %q; want %q", i, name, got, v)
					}
				}
			}
			if served.Load() != 3 || after.Load() != 5+3 {
				t.Errorf("handler ran %d times, later middleware %d; want 3 and 8 (aborted on 429)", served.Load(), after.Load())
			}
			if w := get(e, "/items/1", "192.0.2.2:1"); w.Code != 200 || w.Header().Get("X-RateLimit-Remaining") != "2" {
				t.Errorf("other client: status %d, remaining %q", w.Code, w.Header().Get("X-RateLimit-Remaining"))
			}
		})
	}
}

// TestGinKeysAndProxies: httplimit's keys and proxy rules apply unchanged.
func TestGinKeysAndProxies(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(10)), nil, clk)
	e := gin.New()
	e.GET("/spoof", ginlimit.Middleware(lim), func(c *gin.Context) {})
	allowed := 0
	for i := range 1000 {
		if get(e, "/spoof", "198.51.100.1:1", "X-Forwarded-For", fmt.Sprintf("203.0.%d.%d", i/256, i%256)).Code == 200 {
			allowed++
		}
	}
	if allowed != 10 {
		t.Errorf("admitted %d of 1000 spoofed requests; want 10", allowed)
	}

	lim2 := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk)
	e.GET("/tenant", ginlimit.Middleware(lim2, httplimit.KeyByHeader("X-Tenant"), httplimit.RejectMissingHeader()), func(c *gin.Context) {})
	codes := []int{
		get(e, "/tenant", "192.0.2.1:1", "X-Tenant", "acme").Code,
		get(e, "/tenant", "192.0.2.2:1", "X-Tenant", "acme").Code,
		get(e, "/tenant", "192.0.2.1:1", "X-Tenant", "other").Code,
		get(e, "/tenant", "192.0.2.1:1").Code,
	}
	if fmt.Sprint(codes) != "[200 429 200 400]" {
		t.Errorf("statuses = %v; want [200 429 200 400]", codes)
	}
}

type failStore struct{}

func (failStore) Do(context.Context, *store.Batch) error {
	return fmt.Errorf("secret-host:6379: %w", store.ErrUnavailable)
}
func (failStore) Reset(context.Context, ...store.Key) error { return store.ErrUnavailable }
func (failStore) Close() error                              { return nil }

// TestGinStoreFailure: fail-open serves and reports once; fail-closed
// answers 503; neither leaks the error.
func TestGinStoreFailure(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), failStore{}, clk)
	for _, tt := range []struct {
		opt  httplimit.Option
		want int
	}{{httplimit.FailOpen(), 200}, {httplimit.FailClosed(), 503}} {
		var hooked atomic.Int64
		e := gin.New()
		e.GET("/", ginlimit.Middleware(lim, tt.opt, httplimit.WithClock(clk.Now),
			httplimit.ErrorHook(func(_ *http.Request, err error) {
				if errors.Is(err, store.ErrUnavailable) {
					hooked.Add(1)
				}
			})), func(c *gin.Context) { c.String(200, "served") })
		for range 20 {
			w := get(e, "/", "192.0.2.1:1")
			if w.Code != tt.want || strings.Contains(w.Body.String(), "secret") {
				t.Fatalf("status %d, body %q; want %d without the error", w.Code, w.Body, tt.want)
			}
		}
		if hooked.Load() != 1 {
			t.Errorf("want %d: hook called %d times for 20 failures in one instant; want 1", tt.want, hooked.Load())
		}
	}
}

// TestGinInvalidOptions: bad options answer 500 with a problem document,
// never panic, and go to the error hook once per second of its clock.
func TestGinInvalidOptions(t *testing.T) {
	clk := storetest.NewClock(start)
	var hooked atomic.Int64
	var lastErr error
	e := gin.New()
	var served bool
	e.GET("/", ginlimit.Middleware(nil, httplimit.WithClock(clk.Now), httplimit.ErrorHook(func(_ *http.Request, err error) {
		hooked.Add(1)
		lastErr = err
	})), func(c *gin.Context) { served = true })
	for range 3 {
		w := get(e, "/", "192.0.2.1:1")
		if w.Code != 500 || served || w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("status %d, Content-Type %q, served %v; want 500, application/problem+json, not served",
				w.Code, w.Header().Get("Content-Type"), served)
		}
	}
	if hooked.Load() != 1 || !errors.Is(lastErr, httplimit.ErrInvalidOption) {
		t.Errorf("hook calls for 3 requests in one instant = %d, last error %v; want 1, ErrInvalidOption", hooked.Load(), lastErr)
	}
	clk.Advance(time.Second)
	get(e, "/", "192.0.2.1:1")
	if hooked.Load() != 2 {
		t.Errorf("hook calls after one more second = %d; want 2", hooked.Load())
	}
}

func TestNilGuardDoesNotPanic(t *testing.T) {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(ginlimit.New(nil))
	r.GET("/", func(c *gin.Context) { c.String(http.StatusOK, "handler ran") })
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "handler ran") {
		t.Fatalf("New(nil): status %d, body %q; want 500 without running the handler", w.Code, w.Body.String())
	}
}
