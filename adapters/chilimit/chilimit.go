// Package chilimit is floodgate's middleware for the chi router: the
// httplimit middleware, with the same options, plus keys by route pattern
// and by URL parameter.
//
// Per-route limits attach a limiter to a route or a group with chi's
// r.With or r.Group:
//
//	r.With(chilimit.Middleware(loginLim, chilimit.KeyByRoutePattern())).Post("/login", login)
//
// Several limiters, one per route group and each with its own algorithm,
// share one store when each has its own limiter.WithPrefix.
package chilimit

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/floodgate-go/floodgate/adapters/httplimit"
	"github.com/floodgate-go/floodgate/limiter"
)

// Option is an httplimit option; every httplimit option applies.
type Option = httplimit.Option

// ErrMissingParam is returned by the key of KeyByURLParam when the route
// has no such parameter or its value is empty.
var ErrMissingParam = errors.New("chilimit: missing URL parameter")

// New returns an httplimit.Guard over lim; see httplimit.New.
func New(lim *limiter.Limiter, opts ...Option) (*httplimit.Guard, error) {
	return httplimit.New(lim, opts...)
}

// Middleware returns the rate-limit middleware in chi's form; see
// httplimit.Middleware. It never panics: invalid options answer 500 and
// go to the error hook, so call New at startup to see them.
func Middleware(lim *limiter.Limiter, opts ...Option) func(http.Handler) http.Handler {
	return httplimit.Middleware(lim, opts...)
}

// KeyByRoutePattern keys requests by the pattern of the chi route that
// serves them, such as "/users/{id}", so that every URL of a route shares
// one limit. Combine it with a client key to limit each client per route:
//
//	chilimit.Middleware(lim, httplimit.Keys(httplimit.KeyByIP(), chilimit.KeyByRoutePattern()))
//
// chi completes the pattern as it routes. A middleware of r.With, or of
// r.Use inside r.Group, runs once the route is matched: the key reads the
// pattern from chi's route context, at no cost. A middleware of a router's
// r.Use, the top router's or a sub-router's (r.Route, r.Mount), runs before
// that router matches, and the limit must be decided before the handler
// runs; there the key asks the top router for the pattern the request will
// match, for the path and method chi will route as middleware before it
// (CleanPath, StripSlashes, GetHead) left them. That is a second route
// lookup per request, the same tree walk as chi's own, without allocation
// for a route of the top router and with two for a route of a sub-router. Catch-all routes ("/files/*") take the
// lookup wherever the middleware sits, since their pattern cannot be told
// from a sub-router's mount point. To avoid it, attach the middleware with
// r.With or r.Group. A request outside any chi router, or matching no
// route, is keyed by its path.
func KeyByRoutePattern() httplimit.Key {
	return httplimit.KeyFunc(routePattern)
}

func routePattern(r *http.Request) (string, error) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return pathOf(r), nil
	}
	if n := len(rctx.RoutePatterns); n > 0 && !strings.HasSuffix(rctx.RoutePatterns[n-1], "/*") {
		return rctx.RoutePattern(), nil
	}
	// Not routed yet at this level (r.Use), or routed to a sub-router
	// whose own match is still to come: ask the top router, for the method
	// and path chi routes. Middleware before routing may have rewritten
	// them (CleanPath, StripSlashes, URLFormat set RoutePath, GetHead sets
	// RouteMethod); the raw path would give each spelling of a route its
	// own key. Once a pattern is matched, RoutePath is the rest of the path
	// for a sub-router, not one the top router can route.
	if rctx.Routes != nil {
		method, path := r.Method, pathOf(r)
		if rctx.RouteMethod != "" {
			method = rctx.RouteMethod
		}
		if len(rctx.RoutePatterns) == 0 && rctx.RoutePath != "" {
			path = rctx.RoutePath
		}
		if p := find(rctx.Routes, method, path); p != "" {
			return p, nil
		}
	}
	if p := rctx.RoutePattern(); p != "" {
		return p, nil
	}
	return pathOf(r), nil
}

// scratch holds the route contexts find walks the tree with, so that the
// lookup allocates none.
var scratch = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// find returns the pattern routes matches for method and path, or "". The
// pattern shares no memory with the scratch context, which goes back to
// the pool at once.
func find(routes chi.Routes, method, path string) string {
	rctx := scratch.Get().(*chi.Context)
	rctx.Reset()
	p := routes.Find(rctx, method, path)
	scratch.Put(rctx)
	return p
}

func pathOf(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	if r.URL.Path == "" {
		return "/"
	}
	return r.URL.Path
}

// KeyByURLParam keys requests by the value of the named route parameter,
// e.g. "org" for the route "/orgs/{org}/repos". The parameter is known
// once chi has matched the route, so use it in r.With, r.Group or r.Route
// middleware, not in the top router's r.Use. A request without the
// parameter answers 400 (ErrMissingParam).
func KeyByURLParam(name string) httplimit.Key {
	return httplimit.KeyFunc(func(r *http.Request) (string, error) {
		if v := chi.URLParam(r, name); v != "" {
			return v, nil
		}
		return "", ErrMissingParam
	})
}
