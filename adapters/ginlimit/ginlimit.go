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
	return func(c *gin.Context) {
		if !g.Decide(c.Writer, c.Request) {
			c.Abort()
			return
		}
		c.Next()
	}
}

// Middleware returns the rate-limit middleware for lim with httplimit's
// options. It never panics: with invalid options every request gets 500
// and the error goes to the error hook; build the Guard with httplimit.New
// and pass it to New to see the error at startup.
func Middleware(lim *limiter.Limiter, opts ...httplimit.Option) gin.HandlerFunc {
	g, err := httplimit.New(lim, opts...)
	if err != nil {
		h := httplimit.Middleware(lim, opts...)(http.NotFoundHandler())
		return func(c *gin.Context) {
			h.ServeHTTP(c.Writer, c.Request)
			c.Abort()
		}
	}
	return New(g)
}
