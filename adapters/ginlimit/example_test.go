package ginlimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/floodgate-go/floodgate/adapters/ginlimit"
	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/algorithms"
	"github.com/floodgate-go/floodgate/limiter"
	"github.com/floodgate-go/floodgate/store/memory"
)

// Two requests a minute per tenant, keyed by a header an authenticating
// proxy sets; the health check is never counted.
func Example() {
	gin.SetMode(gin.TestMode)
	st := memory.New()
	defer st.Close()
	now := time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC) // a fake clock
	lim, err := limiter.New(algorithms.FixedWindow(limiter.PerMinute(2)),
		limiter.WithStore(st), limiter.WithClock(func() time.Time { return now }))
	if err != nil {
		panic(err)
	}
	g, err := httplimit.New(lim, httplimit.KeyByHeader("X-Tenant-ID"), httplimit.Exempt("/health"))
	if err != nil {
		panic(err)
	}

	r := gin.New()
	r.Use(ginlimit.New(g))
	r.GET("/health", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/reports", func(c *gin.Context) { c.String(http.StatusOK, "report") })

	for _, path := range []string{"/reports", "/health", "/reports", "/reports"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("X-Tenant-ID", "acme")
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Printf("%s %d remaining=%q retry-after=%q\n", path, w.Code,
			w.Header().Get("X-RateLimit-Remaining"), w.Header().Get("Retry-After"))
	}
	// Output:
	// /reports 200 remaining="1" retry-after=""
	// /health 200 remaining="" retry-after=""
	// /reports 200 remaining="0" retry-after=""
	// /reports 429 remaining="0" retry-after="30"
}
