package httplimit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// start is 17.5 s into a minute, so a minute window resets in 42.5 s.
var start = time.Date(2026, 1, 1, 10, 0, 17, 500_000_000, time.UTC)

// TestLimitHeadersRetryAfter drives limit+1 requests through the
// middleware for each algorithm and checks every response's headers
// against a model limiter run in lockstep, Retry-After against the known
// wait, and that the wait is exact: one second less is still denied.
func TestLimitHeadersRetryAfter(t *testing.T) {
	const limit = 5
	tests := []struct {
		name      string
		alg       func() limiter.Algorithm
		wantRetry int64 // seconds, rounded up, after limit requests at start
	}{
		{"fixed", func() limiter.Algorithm { return algorithms.FixedWindow(limiter.PerMinute(limit)) }, 43},
		{"sliding", func() limiter.Algorithm { return algorithms.SlidingWindow(limiter.PerMinute(limit)) }, 43},
		{"bucket", func() limiter.Algorithm { return algorithms.TokenBucket(limiter.PerMinute(limit)) }, 12},
		{"log", func() limiter.Algorithm { return algorithms.SlidingLog(limiter.PerMinute(limit)) }, 60},
	}
	for _, tt := range tests {
		t.Run("alg="+tt.name, func(t *testing.T) {
			clk := storetest.NewClock(start)
			lim := newLimiter(t, tt.alg(), nil, clk)
			model := newLimiter(t, tt.alg(), nil, clk)
			h := httplimit.Middleware(lim)(okHandler)
			const peer = "198.51.100.7:40000"

			check := func(i int, wantStatus int) *http.Response {
				t.Helper()
				want, err := model.Allow(t.Context(), "198.51.100.7")
				if err != nil {
					t.Fatal(err)
				}
				w := get(h, "/api", peer)
				if w.Code != wantStatus {
					t.Fatalf("request %d: status %d; want %d", i, w.Code, wantStatus)
				}
				if want.Allowed != (wantStatus == http.StatusOK) {
					t.Fatalf("request %d: model Allowed = %v, disagrees with wanted status %d", i, want.Allowed, wantStatus)
				}
				checkHeaders(t, fmt.Sprintf("request %d", i), w.Header(), wantHeaders(want, "minute"))
				return w.Result()
			}
			for i := 1; i <= limit; i++ {
				check(i, http.StatusOK)
			}
			res := check(limit+1, http.StatusTooManyRequests)
			if got := res.Header.Get("Retry-After"); got != strconv.FormatInt(tt.wantRetry, 10) {
				t.Fatalf("Retry-After = %q; want %d", got, tt.wantRetry)
			}
			// One second short of Retry-After, still denied; at it, admitted.
			clk.Advance(time.Duration(tt.wantRetry-1) * time.Second)
			check(limit+2, http.StatusTooManyRequests)
			clk.Advance(time.Second)
			check(limit+3, http.StatusOK)
		})
	}
}

// TestRetryAfterNeverZero: a wait of 1 ns is announced as 1 second.
func TestRetryAfterNeverZero(t *testing.T) {
	clk := storetest.NewClock(start)
	// One token per nanosecond, bucket of one: the second request at the
	// same instant waits 1 ns.
	lim := newLimiter(t, algorithms.TokenBucket(limiter.PerSecond(1e9).WithBurst(1)), nil, clk)
	h := httplimit.Middleware(lim)(okHandler)
	if w := get(h, "/", "192.0.2.1:1"); w.Code != http.StatusOK {
		t.Fatalf("first request: status %d", w.Code)
	}
	w := get(h, "/", "192.0.2.1:1")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second request: status %d; want 429", w.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After = %q; want 1", got)
	}
	if got := w.Header().Get("RateLimit"); !strings.HasSuffix(got, ";t=1") {
		t.Errorf("RateLimit = %q; want t=1", got)
	}
}

// TestDeniedBody checks the 429 problem document.
func TestDeniedBody(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk)
	h := httplimit.Middleware(lim)(okHandler)
	get(h, "/", "192.0.2.1:1")
	w := get(h, "/", "192.0.2.1:1")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d; want 429", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var p struct {
		Type     string   `json:"type"`
		Title    string   `json:"title"`
		Status   int      `json:"status"`
		Detail   string   `json:"detail"`
		Violated []string `json:"violated-policies"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if p.Type != httplimit.ProblemQuotaExceeded || p.Status != 429 || p.Title == "" ||
		p.Detail != `The "minute" quota is used up; retry in 43 seconds.` || len(p.Violated) != 1 || p.Violated[0] != "minute" {
		t.Errorf("problem = %+v", p)
	}
	if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length = %s; body has %d bytes", cl, w.Body.Len())
	}

	// One second is singular, and a policy name that JSON must escape
	// survives the cached body parts.
	clk2 := storetest.NewClock(start.Add(42 * time.Second)) // 1 s before the window ends
	lim2 := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk2)
	name := `a "quoted" <policy> \ name`
	h2 := httplimit.Middleware(lim2, httplimit.PolicyName(func(limiter.Limit) string { return name }))(okHandler)
	get(h2, "/", "192.0.2.1:1")
	w2 := get(h2, "/", "192.0.2.1:1")
	p.Violated = nil
	if err := json.Unmarshal(w2.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", w2.Body, err)
	}
	if want := "The " + strconv.Quote(name) + " quota is used up; retry in 1 second."; p.Detail != want || len(p.Violated) != 1 || p.Violated[0] != name {
		t.Errorf("problem = %+v; want detail %q and violated [%q]", p, want, name)
	}
}

// TestExempt: exempt paths are never counted and get no headers; lookalike
// and unclean paths are counted.
func TestExempt(t *testing.T) {
	tests := []struct {
		path   string
		exempt bool
	}{
		{"/health", true},
		{"/health/", true},
		{"/health/live", true},
		{"/healthz", false},
		{"/health/../api", false},
		{"//health", false},
		{"/static/app.js", true},
		{"/static", false}, // prefix "/static/" covers what is below it
		{"/api", false},
	}
	for _, tt := range tests {
		t.Run("path="+tt.path, func(t *testing.T) {
			clk := storetest.NewClock(start)
			lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(100)), nil, clk)
			h := httplimit.Middleware(lim, httplimit.Exempt("/health", "/static/"))(okHandler)
			for range 3 {
				r := get(h, "http://example.com"+tt.path, "192.0.2.9:5")
				if r.Code != http.StatusOK {
					t.Fatalf("status %d", r.Code)
				}
				if got := r.Header().Get("X-RateLimit-Remaining") != ""; got == tt.exempt {
					t.Errorf("headers sent = %v; want %v", got, !tt.exempt)
				}
			}
			res, err := lim.Peek(t.Context(), "192.0.2.9")
			if err != nil {
				t.Fatal(err)
			}
			want := int64(97)
			if tt.exempt {
				want = 100
			}
			if res.Remaining != want {
				t.Errorf("Remaining after 3 requests = %d; want %d", res.Remaining, want)
			}
		})
	}
}

// TestOtherKeyUnaffected: exhausting one client leaves another whole.
func TestOtherKeyUnaffected(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(2)), nil, clk)
	h := httplimit.Middleware(lim)(okHandler)
	for range 3 {
		get(h, "/", "192.0.2.1:1")
	}
	if w := get(h, "/", "192.0.2.1:2"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("exhausted client: status %d; want 429", w.Code)
	}
	w := get(h, "/", "192.0.2.2:1")
	if w.Code != http.StatusOK || w.Header().Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("other client: status %d, remaining %q; want 200, 1", w.Code, w.Header().Get("X-RateLimit-Remaining"))
	}
}

// TestHeaderSets: each header set can be switched off.
func TestHeaderSets(t *testing.T) {
	tests := []struct {
		set         httplimit.HeaderSet
		draft, xrl  bool
		description string
	}{
		{httplimit.DraftHeaders | httplimit.XRateLimitHeaders, true, true, "both"},
		{httplimit.DraftHeaders, true, false, "draft"},
		{httplimit.XRateLimitHeaders, false, true, "x"},
		{0, false, false, "none"},
	}
	for _, tt := range tests {
		t.Run("set="+tt.description, func(t *testing.T) {
			clk := storetest.NewClock(start)
			lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk)
			h := httplimit.Middleware(lim, httplimit.Headers(tt.set))(okHandler)
			for i, status := range []int{200, 429} {
				w := get(h, "/", "192.0.2.1:1")
				if w.Code != status {
					t.Fatalf("request %d: status %d; want %d", i, w.Code, status)
				}
				hd := w.Header()
				if got := hd.Get("RateLimit") != "" && hd.Get("RateLimit-Policy") != ""; got != tt.draft {
					t.Errorf("request %d: draft headers = %v; want %v", i, got, tt.draft)
				}
				if got := hd.Get("X-RateLimit-Limit") != "" && hd.Get("X-RateLimit-Reset") != ""; got != tt.xrl {
					t.Errorf("request %d: X-RateLimit headers = %v; want %v", i, got, tt.xrl)
				}
				if got := hd.Get("Retry-After") != ""; got != (status == 429) {
					t.Errorf("request %d: Retry-After present = %v", i, got)
				}
			}
		})
	}
}

// TestPolicyName: a custom name, escaped as a structured-field string.
func TestPolicyName(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.Per(10, 90*time.Second)), nil, clk)
	tests := []struct {
		opt        []httplimit.Option
		wantPolicy string
	}{
		{nil, `"1m30s";q=10;w=90`},
		{[]httplimit.Option{httplimit.PolicyName(func(limiter.Limit) string { return `gold "tier"\é` })},
			`"gold \"tier\"\\__";q=10;w=90`},
	}
	for _, tt := range tests {
		h := httplimit.Middleware(lim, tt.opt...)(okHandler)
		w := get(h, "/", "192.0.2.1:1")
		if got := w.Header().Get("RateLimit-Policy"); got != tt.wantPolicy {
			t.Errorf("RateLimit-Policy = %s; want %s", got, tt.wantPolicy)
		}
	}
}

// TestDeniedHandler: a custom handler sees the decision.
func TestDeniedHandler(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk)
	var seen limiter.Result
	denied := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := httplimit.ResultFrom(r.Context())
		if !ok {
			t.Error("ResultFrom: no result in the denied handler")
		}
		seen = res
		w.WriteHeader(http.StatusTeapot)
	})
	h := httplimit.Middleware(lim, httplimit.DeniedHandler(denied))(okHandler)
	get(h, "/", "192.0.2.1:1")
	w := get(h, "/", "192.0.2.1:1")
	if w.Code != http.StatusTeapot {
		t.Fatalf("status %d; want 418", w.Code)
	}
	if seen.Allowed || seen.RetryAfter != 42500*time.Millisecond || seen.Limit != limiter.PerMinute(1) {
		t.Errorf("result in context = %+v", seen)
	}
	if w.Header().Get("Retry-After") != "43" {
		t.Errorf("Retry-After = %q; want 43 set before the denied handler", w.Header().Get("Retry-After"))
	}
}

// TestStoreFailure: fail-open passes and reports, fail-closed answers 503;
// the hook runs at most once per second of its clock; no error text leaks.
func TestStoreFailure(t *testing.T) {
	for _, closed := range []bool{false, true} {
		name := "mode=open"
		if closed {
			name = "mode=closed"
		}
		t.Run(name, func(t *testing.T) {
			clk := storetest.NewClock(start)
			fs := new(failStore)
			lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(5)), fs, clk)
			hookClock := storetest.NewClock(start)
			var hooked atomic.Int64
			var lastErr error
			opts := []httplimit.Option{
				httplimit.WithClock(hookClock.Now),
				httplimit.ErrorHook(func(r *http.Request, err error) {
					hooked.Add(1)
					lastErr = err
				}),
			}
			wantStatus := http.StatusOK
			if closed {
				opts = append(opts, httplimit.FailClosed())
				wantStatus = http.StatusServiceUnavailable
			}
			var served atomic.Int64
			h := httplimit.Middleware(lim, opts...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
			}))
			for i := range 100 {
				hookClock.Advance(time.Millisecond) // 100 requests within 0.1 s
				w := get(h, "/", "192.0.2.1:1")
				if w.Code != wantStatus {
					t.Fatalf("request %d: status %d; want %d", i, w.Code, wantStatus)
				}
				if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "10.1.2.3") {
					t.Fatalf("response leaks the error: %q", w.Body)
				}
				if w.Header().Get("X-RateLimit-Remaining") != "" {
					t.Fatalf("rate-limit headers on a failed decision")
				}
			}
			if fs.calls.Load() != 100 {
				t.Errorf("store calls = %d; want 100", fs.calls.Load())
			}
			if wantServed := map[bool]int64{false: 100, true: 0}[closed]; served.Load() != wantServed {
				t.Errorf("handler served %d requests; want %d", served.Load(), wantServed)
			}
			if hooked.Load() != 1 {
				t.Errorf("hook calls for 100 failures in 0.1 s = %d; want 1", hooked.Load())
			}
			if !errors.Is(lastErr, store.ErrUnavailable) {
				t.Errorf("hook error = %v; want the store error", lastErr)
			}
			hookClock.Advance(time.Second)
			get(h, "/", "192.0.2.1:1")
			get(h, "/", "192.0.2.1:1")
			if hooked.Load() != 2 {
				t.Errorf("hook calls after one more second = %d; want 2", hooked.Load())
			}
		})
	}
}

// TestDefaultHookLogs: without ErrorHook, failures go to slog's default
// logger, once per second, with the path but not the query.
func TestDefaultHookLogs(t *testing.T) {
	var buf bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(5)), new(failStore), clk)
	h := httplimit.Middleware(lim, httplimit.WithClock(clk.Now))(okHandler)
	for range 10 {
		get(h, "/orders?api_key=hunter2", "192.0.2.1:1")
	}
	out := buf.String()
	if n := strings.Count(out, "rate limiter failed"); n != 1 {
		t.Errorf("%d log records for 10 failures in one instant; want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "path=/orders") || strings.Contains(out, "hunter2") || !strings.Contains(out, "unavailable") {
		t.Errorf("log record = %q; want the path and the error, not the query", out)
	}
}

// TestCanceledRequestNotReported: a store error for a request whose client
// went away is not a limiter failure worth a report.
func TestCanceledRequestNotReported(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(5)), new(failStore), clk)
	var hooked atomic.Int64
	h := httplimit.Middleware(lim, httplimit.ErrorHook(func(*http.Request, error) { hooked.Add(1) }))(okHandler)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	r.RemoteAddr = "192.0.2.1:1"
	h.ServeHTTP(httptest.NewRecorder(), r)
	if hooked.Load() != 0 {
		t.Errorf("hook called %d times for a canceled request; want 0", hooked.Load())
	}
	get(h, "/", "192.0.2.1:1")
	if hooked.Load() != 1 {
		t.Errorf("hook called %d times for a live request; want 1", hooked.Load())
	}
}

// TestKeyErrors: a key that cannot be derived answers 400 without detail.
func TestKeyErrors(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(5)), nil, clk)
	tests := []struct {
		name   string
		opts   []httplimit.Option
		header []string
		remote string
	}{
		{"keyfunc-error", []httplimit.Option{httplimit.KeyFunc(func(*http.Request) (string, error) {
			return "", errors.New("secret-token-abc invalid")
		})}, nil, "192.0.2.1:1"},
		{"empty-key", []httplimit.Option{httplimit.KeyFunc(func(*http.Request) (string, error) { return "", nil })}, nil, "192.0.2.1:1"},
		{"key-too-long", []httplimit.Option{httplimit.KeyByHeader("X-Tenant")}, []string{"X-Tenant", strings.Repeat("k", limiter.MaxKeyLen+1)}, "192.0.2.1:1"},
		{"missing-header-rejected", []httplimit.Option{httplimit.KeyByHeader("X-Tenant"), httplimit.RejectMissingHeader()}, nil, "192.0.2.1:1"},
		{"no-remote-addr", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var served bool
			h := httplimit.Middleware(lim, tt.opts...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true }))
			w := get(h, "/", tt.remote, tt.header...)
			if w.Code != http.StatusBadRequest || served {
				t.Fatalf("status %d, served %v; want 400, not served", w.Code, served)
			}
			if strings.Contains(w.Body.String(), "secret") || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("body %q, type %q", w.Body, w.Header().Get("Content-Type"))
			}
		})
	}
}

// TestInvalidOptions: New reports each bad option; Middleware answers 500
// instead of panicking.
func TestInvalidOptions(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(5)), nil, clk)
	tests := []struct {
		name string
		lim  *limiter.Limiter
		opts []httplimit.Option
		want string
	}{
		{"nil-limiter", nil, nil, "nil limiter"},
		{"bad-cidr", lim, []httplimit.Option{httplimit.TrustProxies("10.0.0.0/33")}, "10.0.0.0/33"},
		{"garbage-proxy", lim, []httplimit.Option{httplimit.TrustProxies("proxy.local")}, "proxy.local"},
		{"proxy-header", lim, []httplimit.Option{httplimit.ProxyHeader("X-Client-IP")}, "X-Client-Ip"},
		{"v6-prefix", lim, []httplimit.Option{httplimit.IPv6Prefix(129)}, "129"},
		{"exempt-relative", lim, []httplimit.Option{httplimit.Exempt("health")}, "health"},
		{"exempt-root", lim, []httplimit.Option{httplimit.Exempt("/")}, `"/"`},
		{"nil-denied", lim, []httplimit.Option{httplimit.DeniedHandler(nil)}, "denied"},
		{"nil-keyfunc", lim, []httplimit.Option{httplimit.KeyFunc(nil)}, "KeyFunc"},
		{"zero-key", lim, []httplimit.Option{httplimit.Key{}}, "zero Key"},
		{"empty-header", lim, []httplimit.Option{httplimit.KeyByHeader("")}, "KeyByHeader"},
		{"no-parts", lim, []httplimit.Option{httplimit.Keys()}, "Keys"},
		{"bad-part", lim, []httplimit.Option{httplimit.Keys(httplimit.KeyByIP(), httplimit.Key{})}, "zero Key"},
		{"header-set", lim, []httplimit.Option{httplimit.Headers(8)}, "header set"},
		{"nil-policy-name", lim, []httplimit.Option{httplimit.PolicyName(nil)}, "policy name"},
		{"nil-clock", lim, []httplimit.Option{httplimit.WithClock(nil)}, "clock"},
		{"nil-hook", lim, []httplimit.Option{httplimit.ErrorHook(nil)}, "hook"},
		{"nil-option", lim, []httplimit.Option{nil}, "nil option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := httplimit.New(tt.lim, tt.opts...)
			if !errors.Is(err, httplimit.ErrInvalidOption) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want ErrInvalidOption mentioning %q", err, tt.want)
			}
			if tt.name == "nil-hook" { // the error goes to slog: keep the test output clean
				defer slog.SetDefault(slog.Default())
				slog.SetDefault(slog.New(slog.DiscardHandler))
			}
			var hooked atomic.Int64
			opts := append([]httplimit.Option{httplimit.ErrorHook(func(*http.Request, error) { hooked.Add(1) })}, tt.opts...)
			h := httplimit.Middleware(tt.lim, opts...)(okHandler)
			w := get(h, "/", "192.0.2.1:1")
			if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("misconfigured middleware: status %d, body %q; want 500 without detail", w.Code, w.Body)
			}
			if tt.name != "nil-hook" && hooked.Load() != 1 {
				t.Errorf("hook calls = %d; want 1", hooked.Load())
			}
			decide := httplimit.Decider(tt.lim, opts...)
			w = httptest.NewRecorder()
			if decide(w, httptest.NewRequest(http.MethodGet, "/", nil)) || w.Code != http.StatusInternalServerError {
				t.Errorf("misconfigured Decider: proceed, status %d; want false, 500", w.Code)
			}
		})
	}
}

// TestMisconfiguredReports: the middleware of invalid options answers 500
// to every request, exempt paths included, and reports the error at most
// once per second of its clock: the limiter's, WithClock's, or, with
// neither, once and for all.
func TestMisconfiguredReports(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(5)), nil, clk)
	tests := []struct {
		name      string
		lim       *limiter.Limiter
		opts      []httplimit.Option
		wantLater int64 // hook calls after the clock moves on by a second
	}{
		{"clock=limiter", lim, []httplimit.Option{httplimit.Exempt("health")}, 2},
		{"clock=option", nil, []httplimit.Option{httplimit.WithClock(clk.Now)}, 2},
		{"clock=none", nil, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hooked atomic.Int64
			var lastErr error
			opts := append([]httplimit.Option{
				httplimit.Exempt("/health"),
				httplimit.ErrorHook(func(_ *http.Request, err error) {
					hooked.Add(1)
					lastErr = err
				}),
			}, tt.opts...)
			h := httplimit.Middleware(tt.lim, opts...)(okHandler)
			for _, target := range []string{"/", "/health", "/"} {
				if w := get(h, target, "192.0.2.1:1"); w.Code != http.StatusInternalServerError {
					t.Errorf("GET %s: status %d; want 500", target, w.Code)
				}
			}
			if hooked.Load() != 1 || !errors.Is(lastErr, httplimit.ErrInvalidOption) {
				t.Errorf("hook calls for 3 requests in one instant = %d, last error %v; want 1, ErrInvalidOption", hooked.Load(), lastErr)
			}
			clk.Advance(time.Second)
			get(h, "/", "192.0.2.1:1")
			if hooked.Load() != tt.wantLater {
				t.Errorf("hook calls after one more second = %d; want %d", hooked.Load(), tt.wantLater)
			}
		})
	}
}

// TestDecider: the function Decider returns decides as Guard.Decide does:
// true with the headers set while under the limit, then false with the
// 429 written.
func TestDecider(t *testing.T) {
	clk := storetest.NewClock(start)
	lim := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(1)), nil, clk)
	decide := httplimit.Decider(lim)
	for i, want := range []struct {
		proceed bool
		status  int
	}{{true, http.StatusOK}, {false, http.StatusTooManyRequests}} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if got := decide(w, r); got != want.proceed || w.Code != want.status {
			t.Errorf("request %d: decide = %v, status %d; want %v, %d", i, got, w.Code, want.proceed, want.status)
		}
		if w.Header().Get(httplimit.HeaderRateLimit) == "" {
			t.Errorf("request %d: no RateLimit header", i)
		}
	}
}

// TestPerRouteLimiters: limiters with different algorithms on one store,
// one per route group, keep separate counts for the same client.
func TestPerRouteLimiters(t *testing.T) {
	clk := storetest.NewClock(start)
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	search := newLimiter(t, algorithms.TokenBucket(limiter.PerMinute(2)), st, clk, limiter.WithPrefix("search"))
	login := newLimiter(t, algorithms.SlidingLog(limiter.PerMinute(1)), st, clk, limiter.WithPrefix("login"))
	api := newLimiter(t, algorithms.FixedWindow(limiter.PerMinute(3)), st, clk, limiter.WithPrefix("api"))

	mux := http.NewServeMux()
	mux.Handle("/search", httplimit.Middleware(search)(okHandler))
	mux.Handle("/login", httplimit.Middleware(login)(okHandler))
	mux.Handle("/api/", httplimit.Middleware(api)(okHandler))

	statuses := func(path string, n int) []int {
		var out []int
		for range n {
			out = append(out, get(mux, path, "192.0.2.1:1").Code)
		}
		return out
	}
	got := map[string][]int{
		"/login":  statuses("/login", 2),
		"/search": statuses("/search", 3),
		"/api/x":  statuses("/api/x", 4),
	}
	want := map[string][]int{
		"/login":  {200, 429},
		"/search": {200, 200, 429},
		"/api/x":  {200, 200, 200, 429},
	}
	for path, w := range want {
		if !equalInts(got[path], w) {
			t.Errorf("%s statuses = %v; want %v", path, got[path], w)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
