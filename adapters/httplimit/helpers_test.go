package httplimit_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store"
	"github.com/floodgate-go/floodgate/store/memory"
	"github.com/floodgate-go/floodgate/store/storetest"
)

// newLimiter returns a limiter on st (a fresh memory store when nil) and
// the given clock, closed with the test.
func newLimiter(t *testing.T, alg limiter.Algorithm, st store.Store, clk *storetest.Clock, opts ...limiter.Option) *limiter.Limiter {
	t.Helper()
	if st == nil {
		m := memory.New()
		t.Cleanup(func() { m.Close() })
		st = m
	}
	opts = append([]limiter.Option{limiter.WithStore(st), limiter.WithClock(clk.Now)}, opts...)
	lim, err := limiter.New(alg, opts...)
	if err != nil {
		t.Fatalf("limiter.New: %v", err)
	}
	t.Cleanup(func() { lim.Close() })
	return lim
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Write([]byte("ok"))
})

// get serves GET target from remote through h, with header pairs.
func get(h http.Handler, target, remote string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// ceilSec rounds d up to whole seconds, independently of the package's
// integer arithmetic.
func ceilSec(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// wantHeaders returns the headers the middleware must send for res when
// the limit is named name.
func wantHeaders(res limiter.Result, name string) map[string]string {
	t := ceilSec(res.ResetAfter)
	want := map[string]string{
		"RateLimit-Policy":      fmt.Sprintf("%q;q=%d;w=%d", name, res.Limit.Count, ceilSec(res.Limit.Period)),
		"X-RateLimit-Limit":     fmt.Sprint(res.Limit.Count),
		"X-RateLimit-Remaining": fmt.Sprint(res.Remaining),
		"X-RateLimit-Reset":     fmt.Sprint(ceilSec(res.ResetAfter)),
		"Retry-After":           "",
	}
	if !res.Allowed {
		retry := max(ceilSec(res.RetryAfter), 1)
		want["Retry-After"] = fmt.Sprint(retry)
		t = retry
	}
	want["RateLimit"] = fmt.Sprintf("%q;r=%d;t=%d", name, res.Remaining, t)
	return want
}

// checkHeaders compares the rate-limit headers of h with want.
func checkHeaders(t *testing.T, what string, h http.Header, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := h.Get(name); got != v {
			t.Errorf("%s: header %s = %q; want %q", what, name, got, v)
		}
	}
}

// failStore is a store whose backend is down.
type failStore struct{ calls atomic.Int64 }

var _ store.Store = (*failStore)(nil)

func (f *failStore) Do(context.Context, *store.Batch) error {
	f.calls.Add(1)
	return fmt.Errorf("dial tcp 10.1.2.3:6379: secret-password-xyz: %w", store.ErrUnavailable)
}
func (f *failStore) Reset(context.Context, ...store.Key) error { return store.ErrUnavailable }
func (f *failStore) Close() error                              { return nil }
