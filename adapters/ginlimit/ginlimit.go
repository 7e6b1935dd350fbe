// Package ginlimit is floodgate's middleware for gin: the httplimit
// decision, with httplimit's options and key functions, as a
// gin.HandlerFunc.
//
//	r := gin.New()
//	r.Use(ginlimit.Middleware(lim, httplimit.KeyByHeader("X-Tenant-ID")))
//
// A request over its limit is answered (429, with the same headers and
// problem document as httplimit) and the chain is aborted; an allowed one
// goes on with c.Next. Per-route limits attach a middleware to a route or
// a group: r.GET("/login", ginlimit.Middleware(loginLim), login).
package ginlimit

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/limiter"
)

// New returns the middleware of g, a Guard built by httplimit.New.
func New(g *httplimit.Guard) gin.HandlerFunc {
	if g == nil {
		return Middleware(nil) // answers 500 and reports the nil limiter
	}
	return handlerFunc(g.Decide)
}

// Middleware returns the rate-limit middleware for lim with httplimit's
// options. It never panics: with invalid options every request gets 500
// and the error goes to the error hook; build the Guard with httplimit.New
// and pass it to New to see the error at startup.
func Middleware(lim *limiter.Limiter, opts ...httplimit.Option) gin.HandlerFunc {
	return handlerFunc(httplimit.Decider(lim, opts...))
}

// handlerFunc runs decide and goes on with the chain or aborts it.
func handlerFunc(decide func(http.ResponseWriter, *http.Request) bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !decide(c.Writer, c.Request) {
			c.Abort()
			return
		}
		c.Next()
	}
}
